//! `NodeData`: a znode's payload in one pointer.
//!
//! A million znodes each carry a payload, so its handle is paid a million times. An
//! `Option<Vec<u8>>` is three words (pointer, capacity, length); this is one, with the
//! length in front of the bytes in the same allocation. That takes `DataNode` from 104
//! to 88 bytes, one malloc size class down (112 to 96 bytes a node), while a payload
//! costs what it did (a 4-byte length instead of the allocator's rounding slack: 100
//! bytes still take a 112-byte chunk).
//!
//! Null (a create with null data) and empty stay distinct, as upstream's `byte[]`
//! null and `new byte[0]`: null is no pointer, and every empty payload shares one
//! static header, so empty data allocates nothing (like an empty `Vec`).

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::NonNull;

/// The length header in front of the bytes.
const HEADER: usize = std::mem::size_of::<u32>();

/// The header every empty payload points at; never freed.
static EMPTY: u32 = 0;

pub struct NodeData(Option<NonNull<u32>>);

// SAFETY: a NodeData owns its allocation exclusively (or points at the immutable
// EMPTY), and the bytes are never changed after construction, like a Box<[u8]>.
unsafe impl Send for NodeData {}
// SAFETY: as above; shared references only read.
unsafe impl Sync for NodeData {}

impl NodeData {
    /// Null data.
    pub const NULL: NodeData = NodeData(None);

    /// A copy of `bytes`; None is null data.
    ///
    /// Payloads come from frames bounded by jute.maxbuffer (an i32), so their length
    /// fits the u32 header; a longer slice cannot be stored and is refused loudly
    /// rather than cut short.
    pub fn new(bytes: Option<&[u8]>) -> NodeData {
        let Some(bytes) = bytes else { return NodeData::NULL };
        if bytes.is_empty() {
            return NodeData(Some(NonNull::from(&EMPTY)));
        }
        let len = u32::try_from(bytes.len()).unwrap_or_else(|_| panic!("znode data of {} bytes exceeds 4 GiB", bytes.len()));
        let layout = Self::layout(len);
        // SAFETY: layout has a non-zero size (header plus at least one byte).
        let p = unsafe { alloc::alloc(layout) };
        let Some(p) = NonNull::new(p.cast::<u32>()) else { alloc::handle_alloc_error(layout) };
        // SAFETY: p is a fresh allocation of HEADER + len bytes aligned for u32: the
        // header goes at its start and the bytes right after, inside the allocation.
        unsafe {
            p.as_ptr().write(len);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr().cast::<u8>().add(HEADER), bytes.len());
        }
        NodeData(Some(p))
    }

    fn layout(len: u32) -> Layout {
        // Cannot fail: the size is at most 4 + u32::MAX, far below isize::MAX on the
        // 64-bit targets the server builds for, and the alignment is a power of two.
        Layout::from_size_align(HEADER + len as usize, std::mem::align_of::<u32>()).unwrap_or_else(|_| unreachable!())
    }

    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }

    /// The bytes; None for null data.
    pub fn as_deref(&self) -> Option<&[u8]> {
        let p = self.0?;
        // SAFETY: p points at a live header (an allocation this value owns, or EMPTY)
        // followed by that many initialized bytes, immutable while self is borrowed.
        unsafe {
            let len = p.as_ptr().read() as usize;
            Some(std::slice::from_raw_parts(p.as_ptr().cast::<u8>().add(HEADER), len))
        }
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

impl Drop for NodeData {
    fn drop(&mut self) {
        let Some(p) = self.0 else { return };
        if std::ptr::eq(p.as_ptr(), &EMPTY) {
            return;
        }
        // SAFETY: p is an allocation made by `new` with this header's length, owned by
        // self alone and not used after this.
        unsafe {
            let len = p.as_ptr().read();
            alloc::dealloc(p.as_ptr().cast::<u8>(), Self::layout(len));
        }
    }
}

impl Clone for NodeData {
    fn clone(&self) -> NodeData {
        NodeData::new(self.as_deref())
    }
}

impl Default for NodeData {
    fn default() -> NodeData {
        NodeData::NULL
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

        for len in [1usize, 3, 4, 5, 100, 4096, 1 << 20] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let d = NodeData::from(Some(bytes.clone()));
            assert_eq!(d.as_deref(), Some(&bytes[..]));
            assert_eq!(d.len(), len);
            let c = d.clone();
            drop(d);
            assert_eq!(c.to_vec(), Some(bytes));
        }
    }

    #[test]
    fn empties_share_the_static_header_and_drop_without_freeing_it() {
        let a = NodeData::new(Some(&[]));
        let b = a.clone();
        assert!(std::ptr::eq(a.0.map(NonNull::as_ptr).unwrap_or(std::ptr::null_mut()), &EMPTY));
        drop(a);
        drop(b);
        assert_eq!(NodeData::new(Some(&[])).as_deref(), Some(&[][..]));
    }
}
