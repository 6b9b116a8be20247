//! `QuorumCnxManager.RecvWorker` (thread `RecvWorker:<sid>`): reads `int length ‖
//! payload` frames from one peer into the shared receive queue. A length outside
//! 1..=PACKETMAXSIZE, a short read or a closed socket ends the connection (both
//! workers); the next message to that peer dials again.

use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;

use byteorder::{BigEndian, ReadBytesExt};

use super::send_worker::SendWorker;
use super::{Message, QuorumCnxManager, PACKETMAXSIZE};
use crate::server::quorum::quorum_packet::PeerReader;

pub(crate) fn spawn(qcm: Arc<QuorumCnxManager>, sw: Arc<SendWorker>, din: PeerReader) -> io::Result<()> {
    qcm.thread_cnt.fetch_add(1, Ordering::AcqRel);
    let sid = sw.sid;
    // OK to wait as long as the connection lives: the handshake timeout no longer applies.
    if let Err(e) = din.get_ref().get_ref().set_read_timeout(None) {
        log::error!("Error while accessing socket for {sid}: {e}");
        sw.finish(&qcm);
        return Ok(());
    }
    let (q2, sw2) = (qcm.clone(), sw.clone());
    let spawned = thread::Builder::new().name(format!("RecvWorker:{sid}")).spawn(move || run(q2, sw2, din));
    if let Err(e) = spawned {
        sw.finish(&qcm);
        return Err(e);
    }
    Ok(())
}

pub(crate) fn read_frame<R: Read>(din: &mut R) -> io::Result<Vec<u8>> {
    let length = din.read_i32::<BigEndian>()?;
    if length <= 0 || length > PACKETMAXSIZE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("Received packet with invalid packet: {length}")));
    }
    crate::jute::read_exact_vec(din, length as usize)
}

fn run(qcm: Arc<QuorumCnxManager>, sw: Arc<SendWorker>, mut din: PeerReader) {
    let sid = sw.sid;
    log::debug!("RecvWorker thread towards {sid} started. myId: {}", qcm.my_sid);
    while sw.recv_running() && !qcm.is_shutdown() {
        match read_frame(&mut din) {
            Ok(buffer) => qcm.add_to_recv_queue(Message { buffer, sid }),
            Err(e) => {
                if sw.is_running() {
                    log::warn!("Connection broken for id {sid}, my id = {}: {e}", qcm.my_sid);
                }
                break;
            }
        }
    }
    log::warn!("Interrupting SendWorker thread from RecvWorker. sid: {sid}. myId: {}", qcm.my_sid);
    sw.finish(&qcm);
    sw.finish_recv(&qcm);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_limits() {
        let ok = [0, 0, 0, 2, 7, 8];
        assert_eq!(read_frame(&mut &ok[..]).unwrap(), vec![7, 8]);
        for bad in [0i32, -1, PACKETMAXSIZE + 1] {
            let b = bad.to_be_bytes();
            let e = read_frame(&mut &b[..]).unwrap_err();
            assert_eq!(e.to_string(), format!("Received packet with invalid packet: {bad}"));
        }
        let short = [0, 0, 0, 5, 1];
        assert!(read_frame(&mut &short[..]).is_err());
    }
}
