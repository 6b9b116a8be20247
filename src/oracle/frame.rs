//! Length-prefixed frames, the unit the proxy forwards: a 4-byte big-endian length and
//! that many bytes (`ClientCnxnSocketNIO` / `NIOServerCnxn` framing).

use std::io::{self, Read, Write};

/// The four-letter words upstream's `FourLetterCommands` knows. A connection whose first
/// four bytes spell one of them carries no session: the proxy relays it to the primary.
const FOUR_LETTER_WORDS: &[&[u8; 4]] = &[
    b"conf", b"cons", b"crst", b"dirs", b"dump", b"envi", b"gtmk", b"ruok", b"stmk", b"srst", b"srvr", b"stat",
    b"wchc", b"wchp", b"wchs", b"mntr", b"isro", b"hash",
];

/// Whether a connection's first four bytes are a four-letter word.
pub fn is_four_letter_word(head: &[u8; 4]) -> bool {
    FOUR_LETTER_WORDS.contains(&head)
}

/// What reading a frame found.
pub enum Frame {
    Data(Vec<u8>),
    /// The peer closed the stream at a frame boundary.
    Eof,
}

/// Reads the 4-byte length word; None on a clean EOF before any byte of it.
pub fn read_len_word(r: &mut impl Read) -> io::Result<Option<[u8; 4]>> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a length word")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(head))
}

/// Checks a length word against `max` and reads the body. A negative or oversized length
/// is `InvalidData`: the stream cannot be resynchronised after it, so the caller closes.
pub fn read_body(r: &mut impl Read, head: [u8; 4], max: usize) -> io::Result<Vec<u8>> {
    let len = i32::from_be_bytes(head);
    if len < 0 || len as usize > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame length {len} outside 0..={max}")));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// Reads one frame of at most `max` bytes.
pub fn read_frame(r: &mut impl Read, max: usize) -> io::Result<Frame> {
    match read_len_word(r)? {
        None => Ok(Frame::Eof),
        Some(head) => Ok(Frame::Data(read_body(r, head, max)?)),
    }
}

/// Writes one frame (length word and body in a single write, so a frame is never split
/// between two writers' bytes even if a socket ever got two).
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&(body.len() as i32).to_be_bytes());
    buf.extend_from_slice(body);
    w.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_lengths_are_errors() {
        let mut out = Vec::new();
        write_frame(&mut out, b"abc").unwrap();
        let mut r = &out[..];
        assert!(matches!(read_frame(&mut r, 10).unwrap(), Frame::Data(b) if b == b"abc"));
        assert!(matches!(read_frame(&mut r, 10).unwrap(), Frame::Eof));
        let mut neg = &(-5i32).to_be_bytes()[..];
        assert!(read_frame(&mut neg, 10).is_err());
        let mut big = &(11i32).to_be_bytes()[..];
        assert!(read_frame(&mut big, 10).is_err());
        let mut torn = &[0u8, 0][..];
        assert!(read_frame(&mut torn, 10).is_err());
        assert!(is_four_letter_word(b"ruok"));
        assert!(!is_four_letter_word(&[0, 0, 0, 44]));
    }
}
