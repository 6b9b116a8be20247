//! The Zab packet (`QuorumPacket`: int type, long zxid, buffer data, vector<Id>
//! authinfo), its type codes (upstream: constants of `Leader`), and stream IO. Packets
//! follow each other on the quorum socket with no length prefix.

use std::io::{self, Read, Write};
use std::sync::Arc;

use byteorder::{BigEndian, ReadBytesExt};

use crate::jute::{OutputArchive, Record};
use crate::proto::data::Id;
use crate::proto::quorum::QuorumPacket;

pub const REQUEST: i32 = 1;
pub const PROPOSAL: i32 = 2;
pub const ACK: i32 = 3;
pub const COMMIT: i32 = 4;
pub const PING: i32 = 5;
pub const REVALIDATE: i32 = 6;
pub const SYNC: i32 = 7;
pub const INFORM: i32 = 8;
pub const COMMITANDACTIVATE: i32 = 9;
pub const NEWLEADER: i32 = 10;
pub const FOLLOWERINFO: i32 = 11;
pub const UPTODATE: i32 = 12;
pub const DIFF: i32 = 13;
pub const TRUNC: i32 = 14;
pub const SNAP: i32 = 15;
pub const OBSERVERINFO: i32 = 16;
pub const LEADERINFO: i32 = 17;
pub const ACKEPOCH: i32 = 18;
pub const INFORMANDACTIVATE: i32 = 19;

/// The Zab protocol version leaders and learners announce (`0x10000`).
pub const ZAB_PROTOCOL_VERSION: i32 = 0x10000;

/// `LearnerHandler.packetToString`'s type names.
pub fn type_name(t: i32) -> String {
    match t {
        REQUEST => "REQUEST".into(),
        PROPOSAL => "PROPOSAL".into(),
        ACK => "ACK".into(),
        COMMIT => "COMMIT".into(),
        PING => "PING".into(),
        REVALIDATE => "REVALIDATE".into(),
        SYNC => "SYNC".into(),
        INFORM => "INFORM".into(),
        COMMITANDACTIVATE => "COMMITANDACTIVATE".into(),
        NEWLEADER => "NEWLEADER".into(),
        FOLLOWERINFO => "FOLLOWERINFO".into(),
        UPTODATE => "UPTODATE".into(),
        DIFF => "DIFF".into(),
        TRUNC => "TRUNC".into(),
        SNAP => "SNAP".into(),
        OBSERVERINFO => "OBSERVERINFO".into(),
        LEADERINFO => "LEADERINFO".into(),
        ACKEPOCH => "ACKEPOCH".into(),
        INFORMANDACTIVATE => "INFORMANDACTIVATE".into(),
        other => format!("UNKNOWN{other}"),
    }
}

/// `LearnerHandler.packetToString` (type and zxid; the data is not printed).
pub fn packet_to_string(p: &QuorumPacket) -> String {
    format!("{} {:x} {}", type_name(p.r#type), p.zxid, p.data.as_ref().map(|d| format!("{} bytes", d.len())).unwrap_or_else(|| "null".into()))
}

pub fn packet(t: i32, zxid: i64, data: Option<Vec<u8>>) -> QuorumPacket {
    QuorumPacket { r#type: t, zxid, data, authinfo: Vec::new() }
}

/// Serializes a packet once; the same bytes can then be queued to every learner.
pub fn encode(p: &QuorumPacket) -> Arc<[u8]> {
    let mut out = OutputArchive::new();
    p.serialize(&mut out);
    Arc::from(out.into_inner())
}

/// `type, zxid, data` encoded without building a QuorumPacket (no authinfo: null
/// vector), so a large proposal's bytes are copied once, straight into the frame.
pub fn encode_parts(t: i32, zxid: i64, data: Option<&[u8]>) -> Arc<[u8]> {
    let mut out = OutputArchive::new();
    out.write_int(t);
    out.write_long(zxid);
    out.write_buffer(data);
    out.write_int(-1);
    Arc::from(out.into_inner())
}

pub fn write_packet<W: Write>(w: &mut W, p: &QuorumPacket) -> io::Result<()> {
    w.write_all(&encode(p))
}

/// Reads one packet. Lengths are checked as jute does (`jute.maxbuffer` + extra), so a
/// garbage or hostile stream fails instead of allocating.
pub fn read_packet<R: Read>(r: &mut R) -> io::Result<QuorumPacket> {
    let max = crate::jute::max_buffer().saturating_add(crate::jute::max_buffer_extra());
    let t = r.read_i32::<BigEndian>()?;
    let zxid = r.read_i64::<BigEndian>()?;
    let data = read_buffer(r, max)?;
    let n = r.read_i32::<BigEndian>()?;
    let mut authinfo = Vec::new();
    if n != -1 {
        if n < 0 || n as usize > max {
            return Err(unreasonable(n));
        }
        for _ in 0..n {
            let scheme = read_string(r, max)?;
            let id = read_string(r, max)?;
            authinfo.push(Id { scheme, id });
        }
    }
    Ok(QuorumPacket { r#type: t, zxid, data, authinfo })
}

fn unreasonable(n: i32) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("Unreasonable length = {n}"))
}

fn read_buffer<R: Read>(r: &mut R, max: usize) -> io::Result<Option<Vec<u8>>> {
    let len = r.read_i32::<BigEndian>()?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 || len as usize > max {
        return Err(unreasonable(len));
    }
    crate::jute::read_exact_vec(r, len as usize).map(Some)
}

pub fn read_string<R: Read>(r: &mut R, max: usize) -> io::Result<String> {
    Ok(read_buffer(r, max)?.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default())
}

/// What reads a peer connection: buffered, with bytes pushed back in front (a peek at
/// an auth packet's magic).
pub type PeerReader = PacketReader<std::io::BufReader<crate::common::tls_stream::TlsStream>>;

/// Reads what a peer sends and remembers bytes pushed back in front of the socket (the
/// part of a stream a snapshot reader took but did not use).
pub struct PacketReader<R: Read> {
    pending: Vec<u8>,
    pos: usize,
    inner: R,
}

impl<R: Read> PacketReader<R> {
    pub fn new(inner: R) -> Self {
        PacketReader { pending: Vec::new(), pos: 0, inner }
    }

    pub fn unread(&mut self, mut bytes: Vec<u8>) {
        bytes.extend_from_slice(&self.pending[self.pos..]);
        self.pending = bytes;
        self.pos = 0;
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn read_packet(&mut self) -> io::Result<QuorumPacket> {
        read_packet(self)
    }
}

impl<R: Read> Read for PacketReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.pending.len() {
            let n = buf.len().min(self.pending.len() - self.pos);
            buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.pending.len() {
                self.pending.clear();
                self.pos = 0;
            }
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let p = QuorumPacket { r#type: PROPOSAL, zxid: 0x1_0000_0002, data: Some(vec![1, 2, 3]), authinfo: vec![Id { scheme: "digest".into(), id: "u:x".into() }] };
        let b = encode(&p);
        assert_eq!(read_packet(&mut &b[..]).unwrap(), p);
        let q = packet(UPTODATE, -1, None);
        let b = encode(&q);
        assert_eq!(b.len(), 4 + 8 + 4 + 4);
        assert_eq!(read_packet(&mut &b[..]).unwrap(), q);
        // A null authinfo (-1, what Java writes) reads as an empty one.
        assert_eq!(read_packet(&mut &encode_parts(COMMIT, 5, None)[..]).unwrap(), packet(COMMIT, 5, None));
        let mut bad = encode(&packet(PING, 1, Some(vec![0; 4]))).to_vec();
        bad[12..16].copy_from_slice(&(-7i32).to_be_bytes());
        assert!(read_packet(&mut &bad[..]).is_err());
        let mut huge = bad.clone();
        huge[12..16].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(read_packet(&mut &huge[..]).is_err());
        assert_eq!(type_name(99), "UNKNOWN99");
    }

    #[test]
    fn reader_replays_pushed_back_bytes_first() {
        let a = encode(&packet(NEWLEADER, 7, None));
        let b = encode(&packet(UPTODATE, -1, None));
        let mut r = PacketReader::new(&b[..]);
        r.unread(a.to_vec());
        assert_eq!(r.read_packet().unwrap().r#type, NEWLEADER);
        assert_eq!(r.read_packet().unwrap().r#type, UPTODATE);
    }
}
