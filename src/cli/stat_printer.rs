//! `StatPrinter`: the eleven `name = value` lines zkCli prints for a Stat.

use crate::proto::data::Stat;
use crate::common::time::java_date;

/// The lines, without trailing newlines. Hex is `Long.toHexString` (lower case, no
/// padding, two's complement for negatives); dates are `Date.toString()` in UTC.
pub fn stat_lines(stat: &Stat) -> Vec<String> {
    vec![
        format!("cZxid = 0x{:x}", stat.czxid),
        format!("ctime = {}", java_date(stat.ctime)),
        format!("mZxid = 0x{:x}", stat.mzxid),
        format!("mtime = {}", java_date(stat.mtime)),
        format!("pZxid = 0x{:x}", stat.pzxid),
        format!("cversion = {}", stat.cversion),
        format!("dataVersion = {}", stat.version),
        format!("aclVersion = {}", stat.aversion),
        format!("ephemeralOwner = 0x{:x}", stat.ephemeral_owner),
        format!("dataLength = {}", stat.data_length),
        format!("numChildren = {}", stat.num_children),
    ]
}

/// `StatPrinter.print`: to stdout.
pub fn print(stat: &Stat) {
    super::out(&stat_lines(stat).join("\n"));
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_stat() {
        let s = crate::proto::data::Stat { ephemeral_owner: -1, ..Default::default() };
        let l = super::stat_lines(&s);
        assert_eq!(l[0], "cZxid = 0x0");
        assert_eq!(l[1], "ctime = Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(l[8], "ephemeralOwner = 0xffffffffffffffff");
    }
}
