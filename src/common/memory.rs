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

/// The mmap threshold [`fix_mmap_threshold`] sets: the largest buffer the protocol
/// lets a single request, reply or znode hold (jute.maxbuffer's default, 0xfffff)
/// rounded up. Whatever is larger is a bulk transient: a snapshot being written, or
/// serialized for a learner's SNAP.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`], which also turns off its dynamic
/// adjustment. Call once, before the server's threads start.
///
/// Why: by default glibc raises the threshold to the size of every mmapped block that
/// is freed (up to 32 MB), and the trim threshold to twice that. After the first SNAP
/// sent to a learner (a snapshot-sized buffer), the next one's buffer is no longer
/// mmapped but carved from the calling thread's arena, and once freed it stays
/// resident as the top of that arena, which is not trimmed below the raised threshold
/// (and `malloc_trim` never trims a secondary arena's top). Every LearnerHandler is a
/// new thread, and new threads cycle through up to 8 × cores arenas, so a leader kept
/// one snapshot-sized block per arena: with a 4 MB tree and every sync a SNAP,
/// peer_fault_leaks.rs saw a leader grow from 26 MB to 84 MB over 15 follower
/// restarts (101 MB over 45: one block per arena, 16 arenas on 2 cores), and a
/// follower by ~2.5 MB per resync. Upstream's LearnerHandler streams the
/// snapshot into the socket's buffered stream and keeps no copy, and the JVM's heap is
/// bounded by -Xmx, so Apache's footprint after a SNAP is what it was before; with the
/// threshold fixed, our snapshot buffers are mmapped and go back to the OS when freed
/// (and the trim threshold stays at its 128 KB default, so a secondary arena's free
/// top is given back too), and the same holds for ours. The price is an mmap/munmap
/// pair per allocation over 1 MB, which only snapshot-sized buffers make.
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // <malloc.h>: M_MMAP_THRESHOLD.
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt takes two integers and only changes the allocator's own
        // parameters under its lock; any thread may call it at any time.
        let ok = unsafe { mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD as i32) };
        if ok != 1 {
            log::warn!("mallopt(M_MMAP_THRESHOLD, {MMAP_THRESHOLD}) failed");
        }
    }
}

/// When a count that holds memory (znodes, connections) has fallen far enough from its
/// high-water mark that what it freed is worth a [`release_free_memory`]: each time it
/// halves from a peak of at least `min_peak`. One trim per halving, so a mass delete of
/// a million nodes trims about log2(1M / min_peak) times, not once per delete.
#[derive(Debug, Clone, Copy)]
pub struct PeakTracker {
    peak: usize,
    min_peak: usize,
}

impl PeakTracker {
    pub const fn new(min_peak: usize) -> Self {
        PeakTracker { peak: 0, min_peak }
    }

    /// The count grew (or was set) to `now`.
    pub fn grew(&mut self, now: usize) {
        self.peak = self.peak.max(now);
    }

    /// The count shrank to `now`: true when it is time to release, and the peak then
    /// starts again from `now`.
    pub fn shrank(&mut self, now: usize) -> bool {
        if self.peak >= self.min_peak && now <= self.peak / 2 {
            self.peak = now;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::PeakTracker;

    #[test]
    fn releases_once_per_halving_from_a_large_peak() {
        let mut t = PeakTracker::new(1000);
        // Small counts never ask.
        for n in 0..999 {
            t.grew(n);
        }
        assert!((0..999).rev().all(|n| !t.shrank(n)));
        let mut t = PeakTracker::new(1000);
        t.grew(8000);
        let fired: Vec<usize> = (0..8000).rev().filter(|&n| t.shrank(n)).collect();
        assert_eq!(fired, vec![4000, 2000, 1000, 500]);
        // Growing again raises the mark; the next halving counts from there.
        t.grew(3000);
        assert!(!t.shrank(1600));
        assert!(t.shrank(1500));
    }
}
