//! `QuorumCnxManager.Listener` (thread `QuorumPeerListener`) and its `ListenerHandler`s
//! (one thread `ListenerHandler-<addr>` per election address): bind with
//! SO_REUSEADDR, accept, and hand every connection to the manager. A failed bind or
//! accept is retried after a second, up to `zookeeper.electionPortBindRetry` times
//! (default 3, 0 = forever); a peer that cannot listen cannot take part in elections,
//! so after a socket error the process exits with UNABLE_TO_BIND_QUORUM_PORT (14).

use std::io;
use std::net::{Shutdown, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::Mutex;

use super::QuorumCnxManager;
use crate::server::quorum::quorum_server::QuorumAddr;
use crate::system_properties;

pub const ELECTION_PORT_BIND_RETRY: &str = "zookeeper.electionPortBindRetry";
const DEFAULT_PORT_BIND_MAX_RETRY: i64 = 3;
/// `ExitCode.UNABLE_TO_BIND_QUORUM_PORT`.
pub const UNABLE_TO_BIND_QUORUM_PORT: i32 = 14;

/// Called when the listener gives up after a socket error; exits the process unless a
/// test replaced it.
pub type BindErrorHandler = Arc<dyn Fn() + Send + Sync>;

static BIND_ERROR_HANDLER: Mutex<Option<BindErrorHandler>> = Mutex::new(None);

/// Replaces the process exit on a lost election port (tests).
pub fn set_socket_bind_error_handler(h: Option<BindErrorHandler>) {
    *BIND_ERROR_HANDLER.lock() = h;
}

struct Handler {
    address: QuorumAddr,
    /// The bound socket while accepting; shut down to wake `accept`.
    socket: Mutex<Option<Arc<socket2::Socket>>>,
}

impl Handler {
    fn close(&self) {
        if let Some(s) = self.socket.lock().take() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

pub struct Listener {
    handlers: Vec<Arc<Handler>>,
    thread: Option<JoinHandle<()>>,
}

fn port_bind_max_retry() -> i64 {
    let v = system_properties::get_i64(ELECTION_PORT_BIND_RETRY).unwrap_or(DEFAULT_PORT_BIND_MAX_RETRY);
    if v >= 0 {
        log::info!("Election port bind maximum retries is {}", if v == 0 { "infinite".to_string() } else { v.to_string() });
        v
    } else {
        log::info!("'{ELECTION_PORT_BIND_RETRY}' contains invalid value: {v}(must be >= 0). Use default value of {DEFAULT_PORT_BIND_MAX_RETRY} instead.");
        DEFAULT_PORT_BIND_MAX_RETRY
    }
}

impl Listener {
    pub(crate) fn start(qcm: Arc<QuorumCnxManager>, addresses: Vec<QuorumAddr>) -> io::Result<Listener> {
        let max_retry = port_bind_max_retry();
        let handlers: Vec<Arc<Handler>> = addresses.into_iter().map(|address| Arc::new(Handler { address, socket: Mutex::new(None) })).collect();
        let hs = handlers.clone();
        let thread = thread::Builder::new().name("QuorumPeerListener".into()).spawn(move || run(qcm, hs, max_retry))?;
        Ok(Listener { handlers, thread: Some(thread) })
    }

    /// `Listener.halt` + `join`.
    pub(crate) fn halt_and_join(mut self) {
        log::debug!("Halt called: Trying to close listeners");
        for h in &self.handlers {
            h.close();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(qcm: Arc<QuorumCnxManager>, handlers: Vec<Arc<Handler>>, max_retry: i64) {
    let socket_exception = Arc::new(AtomicBool::new(false));
    if !qcm.is_shutdown() {
        log::debug!("Listener thread started, myId: {}", qcm.my_sid);
        let mut threads = Vec::new();
        for h in &handlers {
            let (q, h2, se) = (qcm.clone(), h.clone(), socket_exception.clone());
            let name = format!("ListenerHandler-{}", h.address);
            match thread::Builder::new().name(name).spawn(move || accept_connections(q, h2, max_retry, se)) {
                Ok(t) => threads.push(t),
                Err(e) => log::error!("Unexpected error {e}"),
            }
        }
        for t in threads {
            let _ = t.join();
        }
        for h in &handlers {
            h.close();
        }
    }
    log::info!("Leaving listener");
    if !qcm.is_shutdown() {
        let addrs: Vec<String> = qcm.peer().election_address().all().iter().map(QuorumAddr::format_inet_addr).collect();
        log::error!(
            "As I'm leaving the listener thread, I won't be able to participate in leader election any longer: {}",
            addrs.join("|")
        );
        if socket_exception.load(Ordering::Acquire) {
            match BIND_ERROR_HANDLER.lock().clone() {
                Some(h) => h(),
                None => std::process::exit(UNABLE_TO_BIND_QUORUM_PORT),
            }
        }
    }
}

fn bind(address: &QuorumAddr) -> io::Result<socket2::Socket> {
    let sa = address.resolve()?;
    let s = socket2::Socket::new(socket2::Domain::for_address(sa), socket2::Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&sa.into())?;
    s.listen(50)?;
    Ok(s)
}

fn accept_connections(qcm: Arc<QuorumCnxManager>, h: Arc<Handler>, max_retry: i64, socket_exception: Arc<AtomicBool>) {
    let mut num_retries = 0i64;
    while !qcm.is_shutdown() && (max_retry == 0 || num_retries < max_retry) {
        let res: io::Result<()> = (|| {
            // ListenerHandler.createNewServerSocket's words; TLS itself comes per
            // connection (quorum_x509_util::accept).
            match qcm.peer().x509.as_deref() {
                Some(x) if x.port_unification => log::info!("Creating TLS-enabled quorum server socket"),
                Some(x) if x.ssl_quorum => log::info!("Creating TLS-only quorum server socket"),
                _ => {}
            }
            let sock = Arc::new(bind(&h.address)?);
            *h.socket.lock() = Some(sock.clone());
            if qcm.is_shutdown() {
                return Ok(());
            }
            log::info!("{} is accepting connections now, my election bind port: {}", qcm.my_sid, h.address);
            let listener: TcpListener = sock.try_clone()?.into();
            while !qcm.is_shutdown() {
                let (client, remote) = listener.accept()?;
                if qcm.is_shutdown() {
                    break;
                }
                if let Err(e) = qcm.set_sock_opts(&client) {
                    log::warn!("Unable to set socket options for {remote}: {e}");
                    continue;
                }
                log::info!("Received connection request from /{remote}");
                qcm.receive_connection_async(client);
                num_retries = 0;
            }
            Ok(())
        })();
        if let Err(e) = res {
            if qcm.is_shutdown() {
                break;
            }
            log::error!("Exception while listening to address {}: {e}", h.address);
            // Every bind/accept failure here is what Java reports as a SocketException.
            socket_exception.store(true, Ordering::Release);
            num_retries += 1;
            h.close();
            thread::sleep(Duration::from_millis(1000));
        }
    }
    if !qcm.is_shutdown() {
        log::error!(
            "Leaving listener thread for address {} after {num_retries} errors. Use {ELECTION_PORT_BIND_RETRY} property to increase retry count.",
            h.address.format_inet_addr()
        );
    }
}
