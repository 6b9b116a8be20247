//! `NIOServerCnxnFactory.SelectorThread`: one epoll set over the connections the accept
//! thread handed it, and the only thread that reads or writes their sockets.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::nio_server_cnxn::{Leftover, NioServerCnxn, ReadState, Stop};
use super::Accepted;
use crate::common::time;
use crate::server::command;
use crate::server::server_cnxn::{fmt_addr, ServerCnxn};
use crate::server::util::epoll::{self, Epoll, EventFd, Events};
use crate::server::zookeeper_server::ZooKeeperServer;

/// The token of the wake-up eventfd; connection ids start at 1.
const WAKEUP: u64 = 0;
/// `zookeeper.nio.directBufferBytes`' default: the read buffer shared by a selector's
/// connections.
const READ_BUFFER: usize = 64 * 1024;
/// How often parked readers are re-checked without a wake-up (the global outstanding
/// bound clears through other connections' replies), as the threaded reader's recheck.
const THROTTLE_RECHECK: Duration = Duration::from_millis(500);
const EXPIRY_SCAN: Duration = Duration::from_secs(1);

pub use crate::server::server_cnxn_factory::sessionless_cnxn_timeout;

pub struct SelectorThread {
    id: usize,
    epoll: Epoll,
    wakeup: Arc<EventFd>,
    accepted: Receiver<Accepted>,
    updates: Receiver<u64>,
    stopped: Arc<AtomicBool>,
    closer: Sender<(Arc<ServerCnxn>, Arc<ZooKeeperServer>)>,
    cnxns: HashMap<u64, NioServerCnxn>,
    parked: HashSet<u64>,
    sessionless_ms: u64,
}

impl SelectorThread {
    pub fn new(
        id: usize,
        wakeup: Arc<EventFd>,
            accepted: Receiver<Accepted>,
        updates: Receiver<u64>,
        stopped: Arc<AtomicBool>,
        closer: Sender<(Arc<ServerCnxn>, Arc<ZooKeeperServer>)>,
    ) -> io::Result<SelectorThread> {
        let epoll = Epoll::new()?;
        epoll.add(wakeup.raw_fd(), WAKEUP, epoll::READ)?;
        Ok(SelectorThread {
            id,
            epoll,
            wakeup,
            accepted,
            updates,
            stopped,
            closer,
            cnxns: HashMap::new(),
            parked: HashSet::new(),
            sessionless_ms: sessionless_cnxn_timeout(),
        })
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut scratch = vec![0u8; READ_BUFFER].into_boxed_slice();
        let (mut last_recheck, mut last_scan) = (Instant::now(), Instant::now());
        while !self.stopped.load(Ordering::Acquire) {
            let timeout = if self.parked.is_empty() { EXPIRY_SCAN } else { THROTTLE_RECHECK };
            if let Err(e) = self.epoll.wait(&mut events, timeout.as_millis() as i32) {
                log::warn!("Ignoring unexpected exception: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
            for i in 0..events.len() {
                let ev = events.get(i);
                if ev.token == WAKEUP {
                    self.wakeup.drain();
                } else {
                    self.handle_io(ev.token, ev.flags, &mut scratch);
                }
            }
            self.process_accepted();
            self.process_updates();
            if !self.parked.is_empty() && last_recheck.elapsed() >= THROTTLE_RECHECK {
                last_recheck = Instant::now();
                let parked: Vec<u64> = self.parked.iter().copied().collect();
                for id in parked {
                    self.refresh(id);
                }
            }
            if last_scan.elapsed() >= EXPIRY_SCAN {
                last_scan = Instant::now();
                self.expire_idle();
            }
        }
        let ids: Vec<u64> = self.cnxns.keys().copied().collect();
        for id in ids {
            self.close(id, None);
        }
        log::info!("selector thread exited run method");
    }

    fn process_accepted(&mut self) {
        while let Ok(a) = self.accepted.try_recv() {
            let id = a.cnxn.id;
            let mut c = NioServerCnxn::new(a.cnxn, a.stream, a.out, a.zks);
            if let Err(e) = c.stream.set_nonblocking(true).and_then(|_| self.epoll.add(c.stream.as_raw_fd(), id, epoll::READ)) {
                log::warn!("Unable to register new connection from {} with selector {}: {e}", fmt_addr(&c.cnxn.remote), self.id);
                self.finish(c, None);
                continue;
            }
            c.registered = epoll::READ;
            c.touch(self.sessionless_ms);
            self.cnxns.insert(id, c);
            // Anything queued before registration (nothing, normally) goes out now.
            self.refresh(id);
        }
    }

    fn process_updates(&mut self) {
        while let Ok(id) = self.updates.try_recv() {
            if let Some(c) = self.cnxns.get(&id) {
                c.cnxn.update_taken();
            }
            self.refresh(id);
        }
    }

    /// The socket is ready.
    fn handle_io(&mut self, id: u64, flags: u32, scratch: &mut [u8]) {
        let Some(c) = self.cnxns.get_mut(&id) else { return };
        let mut res: Result<(), Stop> = Ok(());
        if flags & epoll::WRITE != 0 {
            res = c.do_write().map(|n| {
                if n > 0 {
                    c.touch(self.sessionless_ms);
                }
            });
        }
        let mut read_any = false;
        if res.is_ok() && flags & (epoll::READ | epoll::HANGUP) != 0 {
            res = c.do_read(scratch).map(|read| {
                read_any = read;
                if read {
                    c.touch(self.sessionless_ms);
                }
            });
        }
        // Hung up or reset, and nothing more to read (the reader may be parked):
        // level-triggered, this would be reported on every wait until the socket closes.
        if res.is_ok() && flags & epoll::HANGUP != 0 && !read_any {
            res = Err(Stop::Close(None));
        }
        match res {
            Ok(()) => self.refresh(id),
            Err(stop) => self.stop(id, stop),
        }
    }

    /// Brings one connection up to date after something changed: the session decided,
    /// output queued, a parked reader allowed on, a close requested.
    fn refresh(&mut self, id: u64) {
        let Some(c) = self.cnxns.get_mut(&id) else { return };
        if c.cnxn.is_closed() {
            self.close(id, None);
            return;
        }
        let step = (|| {
            c.check_session()?;
            let written = c.do_write()?;
            if written > 0 {
                c.touch(self.sessionless_ms);
                // Replies leaving while the reader is parked stand in for the pings it
                // does not read: the client is alive.
                if matches!(c.state, ReadState::Parked) {
                    c.zks.session_tracker().touch_session(c.cnxn.session_id(), c.cnxn.session_timeout());
                }
            }
            if c.try_resume()? {
                // Requests released by the resume may have replies ready at once.
                c.do_write()?;
            }
            Ok(())
        })();
        if let Err(stop) = step {
            self.stop(id, stop);
            return;
        }
        if matches!(c.state, ReadState::Parked) {
            self.parked.insert(id);
        } else {
            self.parked.remove(&id);
        }
        let want = c.interest();
        if want != c.registered {
            match self.epoll.modify(c.stream.as_raw_fd(), id, want) {
                Ok(()) => c.registered = want,
                Err(e) => {
                    log::warn!("Unable to update the interest of {}: {e}", fmt_addr(&c.cnxn.remote));
                    self.close(id, None);
                }
            }
        }
    }

    fn stop(&mut self, id: u64, stop: Stop) {
        match stop {
            Stop::Close(why) => self.close(id, why),
            Stop::Command(cmd) => self.run_command(id, cmd),
        }
    }

    fn expire_idle(&mut self) {
        let now = time::current_wall_time();
        let expired: Vec<u64> = self
            .cnxns
            .iter()
            .filter(|(_, c)| c.cnxn.expires_at.load(Ordering::Relaxed) <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(c) = self.cnxns.get(&id) {
                log::info!(
                    "Closing idle connection from {} (session 0x{:x}): connection expired",
                    fmt_addr(&c.cnxn.remote),
                    c.cnxn.session_id()
                );
                crate::server::metrics::server_metrics::SESSIONLESS_CONNECTIONS_EXPIRED.fetch_add(1, Ordering::Relaxed);
            }
            self.close(id, None);
        }
    }

    fn close(&mut self, id: u64, why: Option<String>) {
        let Some(c) = self.cnxns.remove(&id) else { return };
        self.parked.remove(&id);
        let _ = self.epoll.delete(c.stream.as_raw_fd());
        self.finish(c, why);
    }

    /// `NIOServerCnxn.close`: the connection stops taking replies, what is queued goes
    /// out as far as the socket takes it, the socket closes, and the closer thread
    /// deregisters the connection.
    fn finish(&mut self, mut c: NioServerCnxn, why: Option<String>) {
        if let Some(why) = why {
            log::info!("Closing connection from {}: {why}", fmt_addr(&c.cnxn.remote));
        }
        c.cnxn.mark_closed();
        c.flush_for_close();
        c.cnxn.throttle.unpark();
        c.zks.unregister_cnxn(&c.cnxn);
        c.cnxn.shutdown_socket();
        let (cnxn, zks) = (c.cnxn.clone(), c.zks.clone());
        drop(c);
        if let Err(e) = self.closer.send((cnxn, zks)) {
            let (cnxn, zks) = e.into_inner();
            crate::server::server_cnxn_factory::close_cnxn(&cnxn, &zks);
            cnxn.writer_exited();
        }
    }

    /// A four-letter word leaves the selector: its command may read more and writes its
    /// whole answer, so it runs with blocking IO on a thread of its own (upstream's
    /// `CommandThread`), then closes the connection.
    fn run_command(&mut self, id: u64, cmd: &'static str) {
        let Some(mut c) = self.cnxns.remove(&id) else { return };
        self.parked.remove(&id);
        let _ = self.epoll.delete(c.stream.as_raw_fd());
        let leftover = std::mem::take(&mut c.input);
        let (stream, cnxn, zks) = (c.stream.clone(), c.cnxn.clone(), c.zks.clone());
        let closer = self.closer.clone();
        let sessionless = self.sessionless_ms;
        let (c2, z2) = (cnxn.clone(), zks.clone());
        let spawned = thread::Builder::new().name(format!("CommandThread:{}", fmt_addr(&cnxn.remote))).stack_size(256 * 1024).spawn(
            move || {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(sessionless)));
                let _ = stream.set_write_timeout(Some(Duration::from_millis(sessionless)));
                let mut input = Leftover { buffered: io::Cursor::new(leftover), stream: &stream };
                let text = command::run(cmd, &mut input, &cnxn, &zks);
                let mut out: &std::net::TcpStream = &stream;
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
                cnxn.mark_closed();
                zks.unregister_cnxn(&cnxn);
                cnxn.shutdown_socket();
                drop(c);
                if let Err(e) = closer.send((cnxn, zks)) {
                    let (cnxn, zks) = e.into_inner();
                    crate::server::server_cnxn_factory::close_cnxn(&cnxn, &zks);
                    cnxn.writer_exited();
                }
            },
        );
        if let Err(e) = spawned {
            log::warn!("Unable to start a thread for the four-letter word {cmd}: {e}");
            c2.mark_closed();
            c2.shutdown_socket();
            let _ = self.closer.send((c2, z2));
        }
    }
}
