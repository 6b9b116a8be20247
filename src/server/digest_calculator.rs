//! `DigestCalculator`: the per-node CRC-32 digest whose wrapping sum is the tree's
//! digest (`DataTree.getTreeDigest`), carried by txns (TxnDigest), snapshots and the
//! `hash` command, checked as upstream checks it.

use crate::proto::data::StatPersisted;
use crate::server::data_tree::DataTree;

/// `DigestCalculator.DIGEST_VERSION`.
pub const DIGEST_VERSION: i32 = 2;

/// CRC-32 (IEEE, as `java.util.zip.CRC32`), used by the tree digest.
pub fn crc32(chunks: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for c in chunks {
        h.update(c);
    }
    h.finalize()
}

/// `DigestCalculator.calculateDigest`: CRC-32 of path ("/" as ""), data and a 60-byte
/// stat blob; nodes under `/zookeeper/` count 0.
pub fn node_digest(path: &str, data: Option<&[u8]>, stat: &StatPersisted) -> i64 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    // Five longs, three ints, one long: 60 bytes, on the stack (this runs per change).
    let mut blob = [0u8; 60];
    let mut at = 0;
    for v in [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime] {
        blob[at..at + 8].copy_from_slice(&v.to_be_bytes());
        at += 8;
    }
    for v in [stat.version, stat.cversion, stat.aversion] {
        blob[at..at + 4].copy_from_slice(&v.to_be_bytes());
        at += 4;
    }
    blob[at..at + 8].copy_from_slice(&stat.ephemeral_owner.to_be_bytes());
    crc32(&[path.as_bytes(), data.unwrap_or(&[]), &blob]) as i64
}

/// The tree digest (`DataTree.getTreeDigest`): wrapping sum of all node digests.
pub fn tree_digest(tree: &DataTree) -> i64 {
    let mut sum = 0i64;
    tree.for_each_node(|p, n| sum = sum.wrapping_add(node_digest(p, n.data(), &n.stat)));
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_java_util_zip_crc32() {
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }
}
