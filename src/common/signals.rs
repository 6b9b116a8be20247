//! Termination signals taken synchronously: SIGTERM, SIGINT and SIGHUP are blocked in
//! the thread that calls [`TerminationSignals::block`] (and so in every thread it starts
//! afterwards) and picked up by `sigwait` in one thread, which then runs ordinary code —
//! no async-signal-safety constraints, no handler racing the server's threads.
//!
//! Apache ZooKeeper installs no hook of its own: the JVM runs its shutdown hooks and
//! exits with 128 + the signal number (143 for SIGTERM). Our servers exit with the same
//! status, after a graceful stop.

use std::time::Duration;

#[derive(Clone, Copy)]
pub struct TerminationSignals {
    set: libc::sigset_t,
}

impl TerminationSignals {
    /// Blocks the signals in the calling thread. Call it before any thread starts.
    pub fn block() -> TerminationSignals {
        // SAFETY: sigemptyset/sigaddset fill a local set; pthread_sigmask only changes
        // the calling thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::sigaddset(&mut set, s);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            TerminationSignals { set }
        }
    }

    /// Waits for one of the signals and returns its number.
    pub fn wait(&self) -> i32 {
        let mut sig: libc::c_int = 0;
        loop {
            // SAFETY: `set` is a valid signal set and `sig` a valid out pointer.
            let rc = unsafe { libc::sigwait(&self.set, &mut sig) };
            if rc == 0 {
                return sig;
            }
        }
    }

    /// After the first signal: a thread that takes the next one and exits at once with
    /// its status (an operator's second Ctrl-C, or a supervisor that lost patience).
    pub fn exit_on_next(self) {
        let spawned = std::thread::Builder::new().name("SignalHandler".into()).spawn(move || {
            let sig = self.wait();
            log::warn!("Received signal {} again, exiting at once", name(sig));
            std::process::exit(exit_status(sig));
        });
        if let Err(e) = spawned {
            log::warn!("Could not start the second-signal thread: {e}");
        }
    }
}

/// The status a JVM gives for a death by `sig`: 128 + its number.
pub fn exit_status(sig: i32) -> i32 {
    128 + sig
}

pub fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// Runs `stop` in its own thread and waits for it at most `limit`: a graceful stop that
/// hangs (a peer that never answers, a disk that never returns) must not keep the
/// process alive. False when it did not finish in time.
pub fn run_bounded(stop: impl FnOnce() + Send + 'static, limit: Duration) -> bool {
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let spawned = std::thread::Builder::new().name("ShutdownThread".into()).spawn(move || {
        stop();
        let _ = tx.send(());
    });
    match spawned {
        Ok(_) => rx.recv_timeout(limit).is_ok(),
        Err(e) => {
            log::warn!("Could not start the shutdown thread: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_jvms() {
        assert_eq!(exit_status(libc::SIGTERM), 143);
        assert_eq!(exit_status(libc::SIGINT), 130);
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
    }

    #[test]
    fn a_hung_stop_is_given_up_on() {
        assert!(run_bounded(|| {}, Duration::from_secs(5)));
        assert!(!run_bounded(|| std::thread::sleep(Duration::from_secs(3)), Duration::from_millis(100)));
    }
}
