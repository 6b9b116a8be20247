//! `NodeData`: a znode's payload in one pointer.
//!
//! An `Option<Vec<u8>>` is three words (pointer, capacity, length); this is one
//! ([`ThinBytes`], the length in front of the bytes). That takes `DataNode` from 104 to
//! 88 bytes, one malloc size class down (112 to 96 bytes a node), while a payload costs
//! what it did.
//!
//! Null (a create with null data) and empty stay distinct, as upstream's `byte[]`
//! null and `new byte[0]`: null is no pointer, and empty allocates nothing.

use std::fmt;

use super::thin_bytes::ThinBytes;

#[derive(Clone, Default)]
pub struct NodeData(Option<ThinBytes>);

impl NodeData {
    /// Null data.
    pub const NULL: NodeData = NodeData(None);

    /// A copy of `bytes`; None is null data.
    pub fn new(bytes: Option<&[u8]>) -> NodeData {
        NodeData(bytes.map(ThinBytes::new))
    }

    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }

    /// The bytes; None for null data.
    pub fn as_deref(&self) -> Option<&[u8]> {
        self.0.as_ref().map(ThinBytes::as_bytes)
    }

    /// The length of the data (0 for null, as `DataNode`'s stat reports it).
    pub fn len(&self) -> usize {
        self.as_deref().map_or(0, <[u8]>::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An owned copy, as replies and txns carry data.
    pub fn to_vec(&self) -> Option<Vec<u8>> {
        self.as_deref().map(<[u8]>::to_vec)
    }
}

impl PartialEq for NodeData {
    fn eq(&self, other: &NodeData) -> bool {
        self.as_deref() == other.as_deref()
    }
}

impl Eq for NodeData {}

impl fmt::Debug for NodeData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_deref().fmt(f)
    }
}

impl From<Option<Vec<u8>>> for NodeData {
    fn from(v: Option<Vec<u8>>) -> NodeData {
        NodeData::new(v.as_deref())
    }
}

impl From<Option<&[u8]>> for NodeData {
    fn from(v: Option<&[u8]>) -> NodeData {
        NodeData::new(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pointer_wide_with_null_as_none() {
        assert_eq!(std::mem::size_of::<NodeData>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn null_empty_and_bytes_stay_distinct() {
        let null = NodeData::NULL;
        assert!(null.is_null());
        assert_eq!(null.as_deref(), None);
        assert_eq!(null.len(), 0);
        assert_eq!(null.to_vec(), None);

        let empty = NodeData::new(Some(&[]));
        assert!(!empty.is_null());
        assert_eq!(empty.as_deref(), Some(&[][..]));
        assert_eq!(empty.to_vec(), Some(Vec::new()));
        assert_ne!(empty, null);

        let d = NodeData::from(Some(b"payload".to_vec()));
        assert_eq!(d.clone().to_vec(), Some(b"payload".to_vec()));
        assert_eq!(d.len(), 7);
    }
}
