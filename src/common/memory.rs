//! Giving freed heap memory back to the operating system.
//!
//! The JVM's collector decides when upstream's heap shrinks; here glibc's malloc does,
//! and it keeps freed chunks inside its per-thread arenas until something asks for
//! them back. A server that created and then deleted a few hundred thousand znodes
//! (or served many short connections, each with its own threads) otherwise stays at
//! its high-water mark for good. `malloc_trim(0)` returns the free pages of every
//! arena; it costs a walk of the free lists, so it is called at quiet points that
//! already follow large frees, such as the end of a snapshot.

/// Returns free heap pages to the OS where the allocator supports it (glibc); a no-op
/// elsewhere.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim has no preconditions; it only takes the allocator's own
        // locks and may be called from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}
