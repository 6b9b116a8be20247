//! `SnapStream` (the reading half): a snapshot read as a stream, in chunks, with the
//! Adler-32 of everything consumed kept up to date for the seals.
//!
//! Upstream reads snapshots through a `CheckedInputStream` over a buffered file; we do
//! the same thing so a restart does not hold a second, file-sized copy of the tree in
//! memory. Records are decoded with the ordinary jute [`InputArchive`] over the bytes
//! already buffered; a record that runs past the buffered window is retried after the
//! window is refilled (and grown, for a record bigger than the window), so the jute
//! decoders are shared with every other reader and only the framing lives here.

use std::io::{self, Read};

use crate::jute::{InputArchive, JuteError};

/// How much of the file is read at a time. Big enough that refills are rare, small
/// next to a snapshot of a large tree.
const CHUNK: usize = 4 << 20;

/// A decoding failure with the absolute file offset of the field that failed.
#[derive(Debug)]
pub struct SnapStreamError {
    pub error: JuteError,
    pub offset: u64,
}

impl std::fmt::Display for SnapStreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.error, self.offset)
    }
}

pub enum SnapReadError {
    Io(io::Error),
    Decode(SnapStreamError),
}

impl From<SnapReadError> for io::Error {
    fn from(e: SnapReadError) -> io::Error {
        match e {
            SnapReadError::Io(e) => e,
            SnapReadError::Decode(d) => io::Error::new(io::ErrorKind::InvalidData, d.to_string()),
        }
    }
}

pub struct SnapStream<R: Read> {
    src: R,
    buf: Vec<u8>,
    /// Next unread byte of `buf`.
    pos: usize,
    /// End of the valid bytes of `buf`.
    end: usize,
    /// `buf[..hashed]` has been fed to `adler` (always `<= pos`).
    hashed: usize,
    /// File offset of `buf[0]`.
    base: u64,
    adler: adler2::Adler32,
    src_done: bool,
    /// jute's length limit, read once: looking it up per record showed in profiles.
    max_len: usize,
    /// Fill the whole window on every refill (files); a network stream reads only what
    /// the next record needs, since nothing more may come until we answer.
    greedy: bool,
}

impl<R: Read> SnapStream<R> {
    pub fn new(src: R) -> Self {
        Self::starting_at(src, 0)
    }

    /// A stream whose first byte is at file offset `base` (for error messages only; the
    /// checksum covers what this stream reads).
    pub fn starting_at(src: R, base: u64) -> Self {
        SnapStream {
            src,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            hashed: 0,
            base,
            adler: adler2::Adler32::new(),
            src_done: false,
            max_len: crate::jute::max_buffer().saturating_add(crate::jute::max_buffer_extra()),
            greedy: true,
        }
    }

    /// A reader over a socket (a leader's SNAP): refills stop as soon as the record being
    /// decoded is complete, so the stream never waits for bytes the peer has not sent.
    pub fn for_stream(src: R) -> Self {
        SnapStream { greedy: false, ..Self::starting_at(src, 0) }
    }

    /// The source and the bytes read from it but not decoded (what follows the snapshot
    /// on a network stream).
    pub fn into_remainder(self) -> (R, Vec<u8>) {
        let rest = self.buf[self.pos..self.end].to_vec();
        (self.src, rest)
    }

    /// File offset of the next byte to decode.
    pub fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Decodes one item from the buffered bytes; on a short window, refills and tries
    /// again, so `f` must have no side effects besides reading `inp`.
    pub fn decode<T>(&mut self, mut f: impl FnMut(&mut InputArchive<'_>) -> Result<T, JuteError>) -> Result<T, SnapReadError> {
        loop {
            let mut inp = InputArchive::with_max_length(&self.buf[self.pos..self.end], self.max_len);
            match f(&mut inp) {
                Ok(v) => {
                    self.pos += inp.position();
                    return Ok(v);
                }
                Err(JuteError::Eof { wanted, .. }) if !self.src_done => {
                    // The window may simply end mid-record; `wanted` is the field that did
                    // not fit, so the record needs at least that much past its own start.
                    let need = inp.position() + wanted;
                    self.refill(need).map_err(SnapReadError::Io)?;
                }
                Err(error) => {
                    let offset = self.position() + inp.position() as u64;
                    return Err(SnapReadError::Decode(SnapStreamError { error, offset }));
                }
            }
        }
    }

    /// The Adler-32 of every byte consumed so far (`CheckedInputStream.getChecksum`).
    pub fn checksum(&mut self) -> i64 {
        self.adler.write_slice(&self.buf[self.hashed..self.pos]);
        self.hashed = self.pos;
        self.adler.checksum() as i64
    }

    /// Makes room and reads more, so that at least `need` bytes past `pos` are buffered
    /// unless the source ends first.
    fn refill(&mut self, need: usize) -> io::Result<()> {
        // Consumed bytes leave the window: account for them in the checksum first.
        self.adler.write_slice(&self.buf[self.hashed..self.pos]);
        self.buf.copy_within(self.pos..self.end, 0);
        self.base += self.pos as u64;
        self.end -= self.pos;
        self.pos = 0;
        self.hashed = 0;
        if self.buf.len() < need.max(CHUNK) {
            // Grow geometrically: a huge record may be decoded a field at a time.
            let want = need.max(CHUNK).max(self.buf.len() * 2);
            self.buf.resize(want, 0);
        }
        // Fill the whole window: refills stay rare and reads stay large.
        let target = if self.greedy { self.buf.len() } else { need.min(self.buf.len()) };
        while self.end < target {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.src_done = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per call, to put the window's end
    /// in the middle of fields.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(self.step).min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn records_across_refills_and_checksum() {
        let mut bytes = Vec::new();
        for i in 0..50_000i32 {
            bytes.extend_from_slice(&i.to_be_bytes());
            let s = format!("/node/{i}");
            bytes.extend_from_slice(&(s.len() as i32).to_be_bytes());
            bytes.extend_from_slice(s.as_bytes());
        }
        // One record much larger than the window.
        let big = vec![7u8; CHUNK * 2 + 3];
        bytes.extend_from_slice(&(big.len() as i32).to_be_bytes());
        bytes.extend_from_slice(&big);
        let mut s = SnapStream::new(Trickle { data: &bytes, step: 1_000_003 });
        for i in 0..50_000i32 {
            let (n, p) = s.decode(|inp| Ok((inp.read_int()?, inp.read_string()?))).ok().expect("decode");
            assert_eq!((n, p), (i, format!("/node/{i}")));
        }
        let mut inp_max = |inp: &mut InputArchive<'_>| {
            let len = inp.read_int()? as usize;
            let mut v = Vec::new();
            for _ in 0..len {
                v.push(inp.read_byte()?);
            }
            Ok(v)
        };
        let got = s.decode(&mut inp_max).ok().expect("big record");
        assert_eq!(got, big);
        assert_eq!(s.position(), bytes.len() as u64);
        assert_eq!(s.checksum(), crate::server::persistence::util::adler32(&bytes));
        match s.decode(|inp| inp.read_int()) {
            Err(SnapReadError::Decode(e)) => {
                assert_eq!(e.offset, bytes.len() as u64);
                assert!(matches!(e.error, JuteError::Eof { .. }));
            }
            _ => panic!("expected EOF"),
        }
    }
}
