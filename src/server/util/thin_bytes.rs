//! `ThinBytes`: an immutable byte string in one pointer, its length in front of the
//! bytes in the same allocation (a `Box<[u8]>` is two words, a `Vec<u8>` three).
//!
//! The building block of the node map's one-word handles: `NodeData` (a payload, or
//! null) and `ThinStr` (a path key). A million znodes pay each handle a million times.
//! The u32 length costs nothing extra in most malloc size classes (a 100-byte payload
//! takes a 112-byte chunk with or without it). Every empty value points at one static
//! header, so empty allocates nothing.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// The length header in front of the bytes.
const HEADER: usize = std::mem::size_of::<u32>();

/// The header every empty value points at; never freed.
static EMPTY: u32 = 0;

pub struct ThinBytes(NonNull<u32>);

// SAFETY: a ThinBytes owns its allocation exclusively (or points at the immutable
// EMPTY), and the bytes never change after construction, like a Box<[u8]>.
unsafe impl Send for ThinBytes {}
// SAFETY: as above; shared references only read.
unsafe impl Sync for ThinBytes {}

impl ThinBytes {
    /// A copy of `bytes`.
    ///
    /// Paths and payloads come from frames bounded by jute.maxbuffer (an i32), so their
    /// length fits the u32 header; a longer slice cannot be stored and is refused loudly
    /// rather than cut short.
    pub fn new(bytes: &[u8]) -> ThinBytes {
        if bytes.is_empty() {
            return ThinBytes(NonNull::from(&EMPTY));
        }
        let len = u32::try_from(bytes.len()).unwrap_or_else(|_| panic!("{} bytes exceed a 4 GiB value", bytes.len()));
        let layout = layout(len);
        // SAFETY: layout has a non-zero size (the header plus at least one byte).
        let p = unsafe { alloc::alloc(layout) };
        let Some(p) = NonNull::new(p.cast::<u32>()) else { alloc::handle_alloc_error(layout) };
        // SAFETY: p is a fresh allocation of HEADER + len bytes aligned for u32: the
        // header goes at its start and the bytes right after, inside the allocation.
        unsafe {
            p.as_ptr().write(len);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr().cast::<u8>().add(HEADER), bytes.len());
        }
        ThinBytes(p)
    }

    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: self.0 points at a live header (an allocation this value owns, or
        // EMPTY) followed by that many initialized bytes, immutable while self is
        // borrowed.
        unsafe {
            let len = self.0.as_ptr().read() as usize;
            std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>().add(HEADER), len)
        }
    }

    fn is_static_empty(&self) -> bool {
        std::ptr::eq(self.0.as_ptr(), &EMPTY)
    }
}

fn layout(len: u32) -> Layout {
    // Cannot fail: the size is at most 4 + u32::MAX, far below isize::MAX on the 64-bit
    // targets the server builds for, and the alignment is a power of two.
    Layout::from_size_align(HEADER + len as usize, std::mem::align_of::<u32>()).unwrap_or_else(|_| unreachable!())
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        if self.is_static_empty() {
            return;
        }
        // SAFETY: self.0 is an allocation made by `new` with this header's length, owned
        // by self alone and not used after this.
        unsafe {
            let len = self.0.as_ptr().read();
            alloc::dealloc(self.0.as_ptr().cast::<u8>(), layout(len));
        }
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> ThinBytes {
        ThinBytes::new(self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pointer_wide_and_an_option_of_it_too() {
        assert_eq!(std::mem::size_of::<ThinBytes>(), std::mem::size_of::<usize>());
        assert_eq!(std::mem::size_of::<Option<ThinBytes>>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn keeps_every_byte_through_clone_and_drop() {
        for len in [0usize, 1, 3, 4, 5, 100, 4096, 1 << 20] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let t = ThinBytes::new(&bytes);
            assert_eq!(t.as_bytes(), &bytes[..]);
            let c = t.clone();
            drop(t);
            assert_eq!(c.as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn empties_share_the_static_header_and_drop_without_freeing_it() {
        let a = ThinBytes::new(&[]);
        let b = a.clone();
        assert!(a.is_static_empty() && b.is_static_empty());
        drop(a);
        drop(b);
        assert_eq!(ThinBytes::new(&[]).as_bytes(), &[] as &[u8]);
    }
}
