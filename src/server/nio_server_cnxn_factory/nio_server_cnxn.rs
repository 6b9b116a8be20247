//! `NIOServerCnxn`'s IO half: what a selector thread keeps for one plain connection and
//! does when its socket is ready (`doIO`: `readLength`/`readPayload` in, gathered writes
//! out). The connection's shared half (session, counters, outgoing queue) is the same
//! [`ServerCnxn`] the threaded path uses.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, TryRecvError};

use crate::server::command;
use crate::server::server_cnxn::{fmt_addr, Outgoing, ServerCnxn, SharedStream};
use crate::server::server_cnxn_factory::checked_frame_len;
use crate::server::util::epoll;
use crate::server::zookeeper_server::ZooKeeperServer;

/// Frames gathered into one `writev` at most (IOV_MAX is 1024; replies are small, and
/// 64 of them already fill a socket buffer).
const MAX_GATHER: usize = 64;
/// An emptied input buffer larger than this is freed, so that one large request does not
/// pin its buffer on an idle connection.
const KEEP_INPUT_CAPACITY: usize = 16 * 1024;

/// Where the connection's reading stands.
pub enum ReadState {
    /// Before the ConnectRequest (or a four-letter word).
    Handshake,
    /// ConnectRequest submitted; nothing more is read until the session is decided
    /// (`disableRecv` until `finishSessionInit`).
    AwaitingSession(Receiver<bool>),
    Reading,
    /// Throttled (`disableRecv`): the complete request at the head of `input` waits.
    Parked,
    /// The server closes after writing what is queued (a refused session, a failed auth).
    Draining,
}

/// Why the connection stops being this selector's.
pub enum Stop {
    /// Closed; the message, if any, is logged at info (upstream's "Closing connection
    /// from ... : reason").
    Close(Option<String>),
    /// A four-letter word: answered on its own thread with blocking IO, as upstream
    /// answers it outside the selector.
    Command(&'static str),
}

pub struct NioServerCnxn {
    pub cnxn: Arc<ServerCnxn>,
    pub stream: SharedStream,
    pub zks: Arc<ZooKeeperServer>,
    out: Receiver<Outgoing>,
    /// Bytes read but not yet parsed: at most one incomplete frame after a parse, more
    /// while the reader is parked or awaiting its session.
    pub input: Vec<u8>,
    outgoing: VecDeque<Vec<u8>>,
    /// Bytes of `outgoing`'s first frame already written.
    written: usize,
    /// `Outgoing::Close` was dequeued: write what came before it, then close.
    close_after_flush: bool,
    pub state: ReadState,
    /// The interest registered with epoll, to skip redundant `epoll_ctl` calls.
    pub registered: u32,
}

impl NioServerCnxn {
    pub fn new(cnxn: Arc<ServerCnxn>, stream: SharedStream, out: Receiver<Outgoing>, zks: Arc<ZooKeeperServer>) -> Self {
        NioServerCnxn {
            cnxn,
            stream,
            zks,
            out,
            input: Vec::new(),
            outgoing: VecDeque::new(),
            written: 0,
            close_after_flush: false,
            state: ReadState::Handshake,
            registered: 0,
        }
    }

    /// What the selector should watch for: reads while the reader runs, writes while
    /// output is stuck behind a full socket buffer.
    pub fn interest(&self) -> u32 {
        let mut i = 0;
        if matches!(self.state, ReadState::Handshake | ReadState::Reading) && !self.close_after_flush {
            i |= epoll::READ;
        }
        if !self.outgoing.is_empty() {
            i |= epoll::WRITE;
        }
        i
    }

    /// The idle bound as upstream's `touchCnxn` uses it: the session timeout as soon as
    /// the ConnectRequest has set one, the sessionless timeout before. (Not "once the
    /// session is decided": the ConnectResponse may go out before the selector sees the
    /// decision, and a touch then with the sessionless bound expired idle sessions of
    /// 600 s after 10 s, 214 of 19 000 under a get load.)
    pub fn touch(&self, sessionless_ms: u64) {
        self.cnxn.touch(idle_timeout_ms(self.cnxn.session_timeout(), sessionless_ms), sessionless_ms);
    }

    /// Reads what the socket has (bounded, so one busy client cannot starve the
    /// selector's others) and handles every complete frame.
    pub fn do_read(&mut self, scratch: &mut [u8]) -> Result<bool, Stop> {
        let mut progressed = false;
        for _ in 0..4 {
            if !matches!(self.state, ReadState::Handshake | ReadState::Reading) || self.close_after_flush {
                break;
            }
            match (&*self.stream).read(scratch) {
                Ok(0) => {
                    if !self.cnxn.is_closed() {
                        log::debug!(
                            "EndOfStreamException: Unable to read additional data from client, it probably closed the socket: address = {}, session = 0x{:x}",
                            fmt_addr(&self.cnxn.remote),
                            self.cnxn.session_id()
                        );
                    }
                    return Err(Stop::Close(None));
                }
                Ok(n) => {
                    progressed = true;
                    self.ingest(&scratch[..n])?;
                    if n < scratch.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if !self.cnxn.is_closed() {
                        log::debug!(
                            "Unable to read additional data from client {} (session 0x{:x}): {e}",
                            fmt_addr(&self.cnxn.remote),
                            self.cnxn.session_id()
                        );
                    }
                    return Err(Stop::Close(None));
                }
            }
        }
        Ok(progressed)
    }

    /// Parses `data` after what is already buffered. Frames are handled straight from
    /// the read buffer when nothing was left over, so a connection keeps no bytes of
    /// its own between requests.
    fn ingest(&mut self, data: &[u8]) -> Result<(), Stop> {
        if self.input.is_empty() {
            let res = self.process_frames(data);
            self.input.extend_from_slice(&data[consumed(&res, data.len())..]);
            res?;
        } else {
            self.input.extend_from_slice(data);
            self.process_input()?;
        }
        Ok(())
    }

    /// Handles the complete frames buffered in `input` (after a resume, or more data).
    pub fn process_input(&mut self) -> Result<(), Stop> {
        let buf = std::mem::take(&mut self.input);
        let res = self.process_frames(&buf);
        let used = consumed(&res, buf.len());
        let mut buf = buf;
        buf.drain(..used);
        if buf.is_empty() && buf.capacity() > KEEP_INPUT_CAPACITY {
            buf = Vec::new();
        }
        self.input = buf;
        res.map(|_| ())
    }

    /// `readLength` / `readPayload` over the frames in `buf`, as far as the reader may
    /// go; returns the bytes consumed.
    fn process_frames(&mut self, buf: &[u8]) -> Result<usize, Stop> {
        let zks = self.zks.clone();
        let cnxn = self.cnxn.clone();
        let max = crate::jute::max_buffer();
        let mut at = 0;
        while buf.len() - at >= 4 {
            if !matches!(self.state, ReadState::Handshake | ReadState::Reading) || self.close_after_flush {
                break;
            }
            let len = i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
            let handshake = matches!(self.state, ReadState::Handshake);
            if handshake {
                if let Some(cmd) = command::four_letter_word(len) {
                    cnxn.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                    zks.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                    cnxn.interest_ops.store(0, Ordering::Relaxed);
                    return if at == 0 { Err(Stop::Command(cmd)) } else { Ok(at) };
                }
            }
            let Some(n) = checked_frame_len(len, max) else {
                log::warn!(
                    "Len error. A message from {} with advertised length of {len} is either a malformed message or too large to process (length is greater than jute.maxbuffer={max})",
                    fmt_addr(&cnxn.remote)
                );
                return Err(Stop::Close(None));
            };
            if buf.len() - at - 4 < n {
                break;
            }
            if !handshake && zks.recv_throttle_reason(&cnxn, false).is_some() {
                // Held, complete, at the head of the input until the reader resumes.
                self.park();
                break;
            }
            let frame = &buf[at + 4..at + 4 + n];
            at += 4 + n;
            cnxn.stats.packets_received.fetch_add(1, Ordering::Relaxed);
            zks.stats.packets_received.fetch_add(1, Ordering::Relaxed);
            if !zks.is_running() {
                return Err(Stop::Close(None));
            }
            if handshake {
                let (tx, rx) = bounded(1);
                *cnxn.init_tx.lock() = Some(tx);
                if let Err(e) = zks.process_connect_request(&cnxn, frame) {
                    return Err(Stop::Close(Some(e.0)));
                }
                self.state = ReadState::AwaitingSession(rx);
            } else if let Err(e) = zks.process_packet(&cnxn, frame) {
                return Err(Stop::Close(Some(e.0)));
            }
            if cnxn.is_closed() {
                return Err(Stop::Close(None));
            }
        }
        Ok(at)
    }

    fn park(&mut self) {
        log::debug!(
            "Throttling - disabling recv {} (session 0x{:x}): {:?}, {} bytes unwritten, {} reads in the pipeline, {} requests outstanding",
            fmt_addr(&self.cnxn.remote),
            self.cnxn.session_id(),
            self.zks.recv_throttle_reason(&self.cnxn, false),
            self.cnxn.throttle.unwritten(),
            self.cnxn.throttle.pipelined_reads(),
            self.cnxn.outstanding.load(Ordering::Relaxed)
        );
        self.cnxn.throttle.park();
        self.state = ReadState::Parked;
    }

    /// A parked reader goes on once the connection is back under half its bounds
    /// (`enableRecv`); returns whether it did.
    pub fn try_resume(&mut self) -> Result<bool, Stop> {
        if !matches!(self.state, ReadState::Parked) {
            return Ok(false);
        }
        if self.zks.recv_throttle_reason(&self.cnxn, true).is_some() {
            return Ok(false);
        }
        log::debug!("Sending unthrottle event {} (session 0x{:x})", fmt_addr(&self.cnxn.remote), self.cnxn.session_id());
        self.cnxn.throttle.unpark();
        self.state = ReadState::Reading;
        self.process_input()?;
        Ok(true)
    }

    /// The session's fate, once `finishSessionInit` has sent it.
    pub fn check_session(&mut self) -> Result<(), Stop> {
        let ReadState::AwaitingSession(rx) = &self.state else { return Ok(()) };
        match rx.try_recv() {
            Ok(true) => {
                self.state = ReadState::Reading;
                self.process_input()
            }
            // The refusal is queued, followed by the close.
            Ok(false) => {
                self.state = ReadState::Draining;
                Ok(())
            }
            Err(TryRecvError::Empty) => Ok(()),
            Err(TryRecvError::Disconnected) => Err(Stop::Close(None)),
        }
    }

    /// The last write before the socket closes: what is queued up to now (an auth
    /// failure's reply, say), as far as the socket takes it without blocking; the rest
    /// is dropped with the connection.
    pub fn flush_for_close(&mut self) {
        // Stops at a queued Close, at a full socket or at an error: all the same here.
        let _ = self.do_write();
    }

    /// Writes what is queued, gathering frames into one `writev`, until the queue is
    /// empty or the socket is full. Returns the bytes written; a dequeued `Close` with
    /// nothing left before it ends the connection.
    pub fn do_write(&mut self) -> Result<usize, Stop> {
        let mut total = 0;
        loop {
            while !self.close_after_flush && self.outgoing.len() < MAX_GATHER {
                match self.out.try_recv() {
                    Ok(Outgoing::Frame(f)) => self.outgoing.push_back(f),
                    Ok(Outgoing::Close) => self.close_after_flush = true,
                    Err(_) => break,
                }
            }
            if self.outgoing.is_empty() {
                return if self.close_after_flush { Err(Stop::Close(None)) } else { Ok(total) };
            }
            let mut slices: [IoSlice<'_>; MAX_GATHER] = [IoSlice::new(&[]); MAX_GATHER];
            let mut n = 0;
            for (i, f) in self.outgoing.iter().enumerate() {
                slices[n] = IoSlice::new(if i == 0 { &f[self.written..] } else { f });
                n += 1;
            }
            match (&*self.stream).write_vectored(&slices[..n]) {
                Ok(0) => return Err(Stop::Close(None)),
                Ok(mut w) => {
                    total += w;
                    while w > 0 {
                        let Some(first) = self.outgoing.front() else { break };
                        let left = first.len() - self.written;
                        if w >= left {
                            w -= left;
                            let len = first.len();
                            self.outgoing.pop_front();
                            self.written = 0;
                            self.cnxn.frame_written(len);
                        } else {
                            self.written += w;
                            w = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("Unable to write to client {}: {e}", fmt_addr(&self.cnxn.remote));
                    return Err(Stop::Close(None));
                }
            }
        }
    }
}

/// Bytes of a parsed buffer of `len` that are done with: what the frames used; for a
/// four-letter word its four (what follows is the command's); all of it on a close.
fn consumed(res: &Result<usize, Stop>, len: usize) -> usize {
    match res {
        Ok(n) => *n,
        Err(Stop::Command(_)) => 4,
        Err(Stop::Close(_)) => len,
    }
}

/// How long a connection may stay without IO: its session timeout once the
/// ConnectRequest set one (whether or not the session is decided yet), else the
/// sessionless timeout.
pub fn idle_timeout_ms(session_timeout: i32, sessionless_ms: u64) -> u64 {
    match session_timeout {
        t if t > 0 => t as u64,
        _ => sessionless_ms,
    }
}

/// The bytes a four-letter word's command may read after its four: what the selector
/// had already read, then the socket.
pub struct Leftover<'a> {
    pub buffered: io::Cursor<Vec<u8>>,
    pub stream: &'a std::net::TcpStream,
}

impl Read for Leftover<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.buffered.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        self.stream.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_bound_is_the_session_timeout_as_soon_as_one_is_set() {
        assert_eq!(idle_timeout_ms(0, 10_000), 10_000, "no session yet");
        assert_eq!(idle_timeout_ms(600_000, 10_000), 600_000, "a long session outlives the sessionless bound");
        assert_eq!(idle_timeout_ms(4_000, 10_000), 4_000);
        assert_eq!(idle_timeout_ms(-1, 10_000), 10_000);
    }

    #[test]
    fn leftover_bytes_come_before_the_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        c.write_all(b"cd").unwrap();
        let mut r = Leftover { buffered: io::Cursor::new(b"ab".to_vec()), stream: &s };
        let mut out = [0u8; 4];
        r.read_exact(&mut out).unwrap();
        assert_eq!(&out, b"abcd");
    }
}
