//! The two kernel objects a selector thread needs: an epoll set (Java's `Selector` on
//! Linux is the same thing) and an eventfd to wake it (`Selector.wakeup`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Readable, or the peer closed its side.
pub const READ: u32 = libc::EPOLLIN as u32;
pub const WRITE: u32 = libc::EPOLLOUT as u32;
/// Reported whatever the interest: error, or both directions closed.
pub const HANGUP: u32 = (libc::EPOLLHUP | libc::EPOLLERR) as u32;

pub struct Epoll {
    fd: OwnedFd,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

#[derive(Clone, Copy)]
pub struct Event {
    pub token: u64,
    pub flags: u32,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd we own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fd was just created and is owned by nothing else.
        Ok(Epoll { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, interest: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: interest, u64: token };
        // SAFETY: ev is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Level-triggered, as a Java selector.
    pub fn add(&self, fd: RawFd, token: u64, interest: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    pub fn modify(&self, fd: RawFd, token: u64, interest: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout_ms` and fills `out` with what is ready; an interrupted wait
    /// returns nothing.
    pub fn wait(&self, out: &mut Events, timeout_ms: i32) -> io::Result<()> {
        out.n = 0;
        // SAFETY: out.raw holds initialized events the kernel may overwrite, and its
        // length is what the kernel is told.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), out.raw.as_mut_ptr(), out.raw.len() as libc::c_int, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(()) } else { Err(e) };
        }
        out.n = n as usize;
        Ok(())
    }
}

/// What one `epoll_wait` returned, in a buffer kept from call to call.
pub struct Events {
    raw: Vec<libc::epoll_event>,
    n: usize,
}

impl Events {
    pub fn with_capacity(max: usize) -> Events {
        Events { raw: vec![libc::epoll_event { events: 0, u64: 0 }; max.max(1)], n: 0 }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn get(&self, i: usize) -> Event {
        let e = self.raw[i];
        Event { token: e.u64, flags: e.events }
    }
}

/// A counter other threads bump to wake the selector out of `epoll_wait`.
///
/// Wake-ups are coalesced as `Selector.wakeup()` does in the JDK (EPollSelectorImpl's
/// interrupt flag): once one is pending, further calls until the selector takes it
/// write nothing. A group commit that answers thirty connections of one selector wakes
/// it with one write instead of thirty.
pub struct EventFd {
    fd: OwnedFd,
    pending: AtomicBool,
}

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: no pointers; a non-negative result is a new fd we own.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: fd was just created and is owned by nothing else.
        Ok(EventFd { fd: unsafe { OwnedFd::from_raw_fd(fd) }, pending: AtomicBool::new(false) })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn wake(&self) {
        // Whoever queued work before calling this is covered by the pending wake-up:
        // the selector clears the flag (in `drain`) before it looks at its queues.
        if self.pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN) is already a
        // pending wake-up, so the result does not matter.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the counter after a wake-up; the caller then looks at its queues, so
    /// anything queued after this point wakes it again.
    ///
    /// The counter is read before the flag is cleared: cleared first, a wake-up that
    /// wrote in between would be read away here while its flag stayed set, and every
    /// later `wake` would then write nothing. The swap (not a store) takes the flag
    /// from the last `wake` that set it, so what that waker queued is visible to the
    /// caller's next look at its queues.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; EAGAIN when already zero.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        self.pending.swap(false, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn reports_readable_sockets_and_wakeups() {
        let ep = Epoll::new().unwrap();
        let wake = EventFd::new().unwrap();
        ep.add(wake.raw_fd(), 0, READ).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        ep.add(s.as_raw_fd(), 7, READ).unwrap();
        let mut evs = Events::with_capacity(16);
        ep.wait(&mut evs, 0).unwrap();
        assert!(evs.is_empty());
        c.write_all(b"x").unwrap();
        ep.wait(&mut evs, 5_000).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs.get(0).token, 7);
        assert!(evs.get(0).flags & READ != 0);
        ep.modify(s.as_raw_fd(), 7, 0).unwrap();
        wake.wake();
        ep.wait(&mut evs, 5_000).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs.get(0).token, 0);
        wake.drain();
        ep.wait(&mut evs, 0).unwrap();
        assert!(evs.is_empty(), "drained, and the socket has no interest");
        // Coalesced: two wake-ups before the drain are one; after it, the next wakes again.
        wake.wake();
        wake.wake();
        ep.wait(&mut evs, 5_000).unwrap();
        assert_eq!(evs.len(), 1);
        wake.drain();
        ep.wait(&mut evs, 0).unwrap();
        assert!(evs.is_empty(), "one drain takes both wake-ups");
        wake.wake();
        ep.wait(&mut evs, 5_000).unwrap();
        assert_eq!((evs.len(), evs.get(0).token), (1, 0), "a wake-up after a drain is not lost");
        ep.delete(s.as_raw_fd()).unwrap();
    }

    /// A producer queueing and waking as fast as it can, a selector-like consumer
    /// draining and taking: every item is taken without waiting out the timeout, so
    /// no coalesced wake-up was lost (clearing the flag before reading the counter
    /// lost one within a few thousand rounds).
    #[test]
    fn coalesced_wakeups_are_never_lost() {
        const N: u64 = 200_000;
        let ep = Epoll::new().unwrap();
        let wake = std::sync::Arc::new(EventFd::new().unwrap());
        ep.add(wake.raw_fd(), 0, READ).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded::<u64>();
        let w = wake.clone();
        let producer = std::thread::spawn(move || {
            for i in 0..N {
                tx.send(i).unwrap();
                w.wake();
                if i % 256 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut evs = Events::with_capacity(4);
        let mut taken = 0u64;
        while taken < N {
            ep.wait(&mut evs, 5_000).unwrap();
            assert!(!evs.is_empty(), "lost wake-up: {taken} of {N} taken, {} queued", rx.len());
            wake.drain();
            while rx.try_recv().is_ok() {
                taken += 1;
            }
        }
        producer.join().unwrap();
    }

}
