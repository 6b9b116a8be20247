//! `ZxidUtils`: a zxid is the epoch in the high 32 bits and a counter in the low 32.

pub fn epoch_from_zxid(zxid: i64) -> i64 {
    zxid >> 32
}

pub fn counter_from_zxid(zxid: i64) -> i64 {
    zxid & 0xffff_ffff
}

pub fn make_zxid(epoch: i64, counter: i64) -> i64 {
    (epoch << 32) | (counter & 0xffff_ffff)
}

/// `zxidToString`: lowercase hex without a prefix.
pub fn zxid_to_string(zxid: i64) -> String {
    format!("{zxid:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join() {
        let z = make_zxid(5, 7);
        assert_eq!(z, 0x5_0000_0007);
        assert_eq!(epoch_from_zxid(z), 5);
        assert_eq!(counter_from_zxid(z), 7);
        assert_eq!(epoch_from_zxid(-1), -1);
        assert_eq!(zxid_to_string(z), "500000007");
    }
}
