//! The ZooKeeper wire protocol over any byte stream, without the client library: the
//! length-prefixed frames and the session handshake. For measurements the client
//! library must not be part of (`compare --tls`'s session opening over a bare TLS
//! stream, `benches/standalone_compare.rs`'s pipelined load generator).

use std::io::{Read, Write};

use crate::jute::{OutputArchive, Record};
use crate::proto::proto::{ConnectRequest, ConnectResponse};

/// `body` as one frame: its length (4 bytes, big-endian), then the body.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(body.len() + 4);
    f.extend_from_slice(&(body.len() as i32).to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// Writes `body` as one frame ([`frame`]) and flushes.
pub fn write_frame(mut w: impl Write, body: &[u8]) -> Result<(), String> {
    w.write_all(&frame(body)).and_then(|_| w.flush()).map_err(|e| format!("write: {e}"))
}

/// Reads one frame's body, refusing lengths a server never sends (negative, or above
/// `jute.maxbuffer`).
pub fn read_frame(mut r: impl Read) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(|e| format!("read: {e}"))?;
    let n = i32::from_be_bytes(len);
    if n < 0 || n as usize > crate::jute::max_buffer() {
        return Err(format!("the server sent a frame of {n} bytes"));
    }
    let mut buf = vec![0u8; n as usize];
    r.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
    Ok(buf)
}

/// Opens a new session on a connected stream as our client does (protocol version 0, a
/// 16-byte zero password, the read-only flag off) and returns the server's answer; Err
/// if the server refused it (no timeout or no session id).
pub fn open_session<S: Read + Write>(s: &mut S, timeout_ms: i32) -> Result<ConnectResponse, String> {
    let mut out = OutputArchive::new();
    ConnectRequest { protocol_version: 0, last_zxid_seen: 0, time_out: timeout_ms, session_id: 0, passwd: Some(vec![0; 16]) }.serialize(&mut out);
    out.write_bool(false);
    write_frame(&mut *s, out.as_slice())?;
    let rsp = ConnectResponse::from_bytes(&read_frame(&mut *s)?).map_err(|e| format!("bad ConnectResponse: {e}"))?;
    if rsp.time_out <= 0 || rsp.session_id == 0 {
        return Err(format!("the server refused the session (timeout {}, session 0x{:x})", rsp.time_out, rsp.session_id));
    }
    Ok(rsp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::InputArchive;
    use std::io::Cursor;

    /// A stream that answers from `input` and records what is written.
    struct Scripted {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn answer(time_out: i32, session_id: i64) -> Scripted {
        let rsp = ConnectResponse { protocol_version: 0, time_out, session_id, passwd: Some(vec![1; 16]) };
        Scripted { input: Cursor::new(frame(&rsp.to_bytes())), output: Vec::new() }
    }

    #[test]
    fn frames_round_trip_and_bad_lengths_are_refused() {
        assert_eq!(read_frame(&frame(b"abc")[..]).unwrap(), b"abc");
        assert!(read_frame(&(-1i32).to_be_bytes()[..]).is_err());
        assert!(read_frame(&((crate::jute::max_buffer() + 1) as i32).to_be_bytes()[..]).is_err());
        // A frame cut short is an error, not a short body.
        assert!(read_frame(&frame(b"abc")[..5]).is_err());
    }

    #[test]
    fn open_session_sends_a_connect_request_and_reads_the_answer() {
        let mut s = answer(30_000, 0x42);
        let rsp = open_session(&mut s, 30_000).unwrap();
        assert_eq!((rsp.time_out, rsp.session_id), (30_000, 0x42));
        let body = read_frame(&s.output[..]).unwrap();
        let mut inp = InputArchive::new(&body);
        let req = ConnectRequest::deserialize(&mut inp).unwrap();
        assert_eq!((req.protocol_version, req.time_out, req.session_id), (0, 30_000, 0));
        assert_eq!(req.passwd, Some(vec![0; 16]));
        assert!(!inp.read_bool().unwrap(), "read-only flag");
    }

    #[test]
    fn a_refused_session_is_an_error() {
        assert!(open_session(&mut answer(0, 0), 30_000).is_err());
    }
}
