//! `Leader.LearnerCnxAcceptor` (thread `LearnerCnxAcceptor-<addrs>`) with one
//! `LearnerCnxAcceptorHandler-<addr>` thread per quorum address: accept learners and
//! start a LearnerHandler for each.

use std::io;
use std::net::{Shutdown, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use super::Leader;
use crate::server::quorum::learner_handler::LearnerHandler;
use crate::server::quorum::quorum_server::QuorumAddr;

pub struct LearnerCnxAcceptor {
    sockets: Vec<Arc<socket2::Socket>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn bind(address: &QuorumAddr) -> io::Result<socket2::Socket> {
    let sa = address.resolve()?;
    let s = socket2::Socket::new(socket2::Domain::for_address(sa), socket2::Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&sa.into())?;
    s.listen(50)?;
    Ok(s)
}

impl LearnerCnxAcceptor {
    /// Binds every quorum address (upstream binds in the Leader constructor and leading
    /// fails with "Couldn't bind to ..."), then starts accepting.
    pub fn start(leader: Arc<Leader>) -> io::Result<LearnerCnxAcceptor> {
        let addrs = if leader.peer.config.quorum_listen_on_all_ips {
            leader.peer.quorum_address().wildcard()
        } else {
            leader.peer.quorum_address().all().to_vec()
        };
        let mut sockets = Vec::new();
        for a in &addrs {
            match bind(a) {
                Ok(s) => sockets.push((a.clone(), Arc::new(s))),
                Err(e) => {
                    log::error!("Couldn't bind to {}: {e}", a.format_inet_addr());
                    return Err(e);
                }
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let names: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        let handles: Vec<Arc<socket2::Socket>> = sockets.iter().map(|(_, s)| s.clone()).collect();
        let st = stop.clone();
        let thread = thread::Builder::new().name(format!("LearnerCnxAcceptor-{}", names.join("|"))).spawn(move || {
            let mut workers = Vec::new();
            for (addr, sock) in sockets {
                let (l, st2) = (leader.clone(), st.clone());
                let spawned = thread::Builder::new()
                    .name(format!("LearnerCnxAcceptorHandler-{addr}"))
                    .spawn(move || accept_loop(l, sock, st2));
                match spawned {
                    Ok(t) => workers.push(t),
                    Err(e) => log::error!("Unable to start an acceptor thread: {e}"),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        })?;
        Ok(LearnerCnxAcceptor { sockets: handles, stop, thread: Some(thread) })
    }

    /// `halt`: close the listening sockets and wait for the threads.
    pub fn halt(mut self) {
        self.stop.store(true, Ordering::Release);
        for s in &self.sockets {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(leader: Arc<Leader>, sock: Arc<socket2::Socket>, stop: Arc<AtomicBool>) {
    let listener: TcpListener = match sock.try_clone() {
        Ok(s) => s.into(),
        Err(e) => {
            log::error!("Exception while accepting follower: {e}");
            return;
        }
    };
    let nodelay = crate::system_properties::get_or("leader.nodelay", "true") == "true";
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((s, _)) => {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let _ = s.set_nodelay(nodelay);
                if let Err(e) = LearnerHandler::start(&leader, s) {
                    log::error!("Exception while accepting follower: {e}");
                }
            }
            Err(e) => {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                log::error!("Exception while accepting follower: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}
