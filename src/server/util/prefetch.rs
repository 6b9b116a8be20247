//! A hint to the CPU that memory will be read soon.
//!
//! The snapshot walk spends most of its time waiting for memory: each node is a path
//! lookup, then the node, then its data, each likely a miss on a big tree. Asking for
//! the nodes and data of a run of siblings before writing any of them lets those misses
//! overlap instead of following one another.

/// Starts loading the cache line at `p`. Only a hint: any address is allowed, nothing
/// is read architecturally, and it does nothing on targets without a prefetch.
#[inline(always)]
pub fn read<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: PREFETCHT0 never faults and has no architectural effect, whatever the
        // address; SSE is part of the x86_64 baseline.
        unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_address_is_a_harmless_hint() {
        let v = vec![1u8; 64];
        super::read(v.as_ptr());
        super::read(std::ptr::null::<u8>());
        super::read(usize::MAX as *const u64);
        assert_eq!(v[0], 1);
    }
}
