//! Jute, ZooKeeper's binary record encoding (`org.apache.jute.BinaryInputArchive` /
//! `BinaryOutputArchive`).
//!
//! Every integer is big-endian; a record is its fields back to back with no tag or
//! padding; strings and buffers carry an `int` length where -1 means null.

use std::fmt;

use byteorder::{BigEndian, ByteOrder};

use crate::system_properties;

/// Default `jute.maxbuffer`: 0xfffff bytes, as in `BinaryInputArchive`.
pub const DEFAULT_MAX_BUFFER: usize = 0xfffff;

/// Errors raised while decoding a jute stream. Decoding never panics: every length is
/// checked against what is left and against `jute.maxbuffer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JuteError {
    /// The input ended before the record did.
    Eof { wanted: usize, left: usize },
    /// A length field outside `0..=maxbuffer+extrasize` (upstream's `checkLength`).
    UnreasonableLength(i32),
    /// A record-level decoding failure (bad enum value, bad multi framing, ...).
    Invalid(String),
}

impl fmt::Display for JuteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JuteError::Eof { wanted, left } => {
                write!(f, "unexpected end of input: wanted {wanted} bytes, {left} left")
            }
            JuteError::UnreasonableLength(n) => write!(f, "Unreasonable length = {n}"),
            JuteError::Invalid(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for JuteError {}

impl From<JuteError> for std::io::Error {
    fn from(e: JuteError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, JuteError>;

/// `jute.maxbuffer` as the process sees it (the system property, not a zoo.cfg key).
/// Every decode asks, so the value is cached until a property changes.
pub fn max_buffer() -> usize {
    cached(&MAX_BUFFER_CACHE, || system_properties::get_usize("jute.maxbuffer").unwrap_or(DEFAULT_MAX_BUFFER))
}

static MAX_BUFFER_CACHE: parking_lot::Mutex<(u64, usize)> = parking_lot::Mutex::new((0, 0));
static EXTRA_CACHE: parking_lot::Mutex<(u64, usize)> = parking_lot::Mutex::new((0, 0));

fn cached(cache: &parking_lot::Mutex<(u64, usize)>, compute: impl FnOnce() -> usize) -> usize {
    let gen = system_properties::generation();
    {
        let c = cache.lock();
        if c.0 == gen {
            return c.1;
        }
    }
    let v = compute();
    *cache.lock() = (gen, v);
    v
}

/// `zookeeper.jute.maxbuffer.extrasize`: slack allowed on top of `jute.maxbuffer` when
/// reading a field length. Defaults to maxbuffer itself, never below 1024.
pub fn max_buffer_extra() -> usize {
    cached(&EXTRA_CACHE, || {
        let extra = system_properties::get_usize("zookeeper.jute.maxbuffer.extrasize").unwrap_or_else(max_buffer);
        extra.max(1024)
    })
}

/// Reads exactly `len` bytes from a stream into a new buffer that grows with what
/// arrives (64 KiB at a time), so a peer that announces a large length and then sends
/// little or nothing costs little memory. `UnexpectedEof` when the stream ends first.
pub fn read_exact_vec<R: std::io::Read + ?Sized>(r: &mut R, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut v = Vec::with_capacity(len.min(64 * 1024));
    r.take(len as u64).read_to_end(&mut v)?;
    if v.len() != len {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("wanted {len} bytes, got {}", v.len())));
    }
    Ok(v)
}

/// Reads jute fields from a byte slice.
pub struct InputArchive<'a> {
    buf: &'a [u8],
    pos: usize,
    max_len: usize,
}

impl<'a> InputArchive<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self::with_max_length(buf, max_buffer().saturating_add(max_buffer_extra()))
    }

    pub fn with_max_length(buf: &'a [u8], max_len: usize) -> Self {
        InputArchive { buf, pos: 0, max_len }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(JuteError::Eof { wanted: n, left: self.remaining() });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn read_byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn read_bool(&mut self) -> Result<bool> {
        Ok(self.read_byte()? != 0)
    }

    pub fn read_int(&mut self) -> Result<i32> {
        Ok(BigEndian::read_i32(self.take(4)?))
    }

    pub fn read_long(&mut self) -> Result<i64> {
        Ok(BigEndian::read_i64(self.take(8)?))
    }

    /// A length-prefixed field's length; None for -1 (null).
    fn read_len(&mut self) -> Result<Option<usize>> {
        let len = self.read_int()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as usize > self.max_len {
            return Err(JuteError::UnreasonableLength(len));
        }
        Ok(Some(len as usize))
    }

    pub fn read_buffer(&mut self) -> Result<Option<Vec<u8>>> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    /// A `ustring`. Null reads as the empty string: no server path distinguishes the two.
    pub fn read_string(&mut self) -> Result<String> {
        match self.read_len()? {
            None => Ok(String::new()),
            Some(n) => Ok(decode_modified_utf8(self.take(n)?)),
        }
    }

    /// A `vector<T>` count; null (-1) reads as an empty vector.
    pub fn read_vector_len(&mut self) -> Result<usize> {
        let n = self.read_int()?;
        if n == -1 {
            return Ok(0);
        }
        // Each element takes at least one byte: a count larger than what is left is garbage.
        if n < 0 || n as usize > self.remaining() {
            return Err(JuteError::UnreasonableLength(n));
        }
        Ok(n as usize)
    }
}

/// Java's reader is `new String(bytes, UTF_8)`: malformed input becomes U+FFFD as with
/// `from_utf8_lossy`, except that an encoded surrogate (the writer's CESU-8 form of a
/// character outside the BMP: `ED A0..BF` and a continuation byte) becomes one U+FFFD,
/// not one per byte. Surrogates are not joined back, exactly as Java does not.
fn decode_modified_utf8(bytes: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    let (mut start, mut i) = (0, 0);
    while i + 1 < bytes.len() {
        if bytes[i] == 0xed && (0xa0..=0xbf).contains(&bytes[i + 1]) {
            out.push_str(&String::from_utf8_lossy(&bytes[start..i]));
            out.push('\u{FFFD}');
            i += if bytes.get(i + 2).is_some_and(|b| (0x80..=0xbf).contains(b)) { 3 } else { 2 };
            start = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&String::from_utf8_lossy(&bytes[start..]));
    out
}

/// Writes jute fields into a growable buffer.
#[derive(Default)]
pub struct OutputArchive {
    buf: Vec<u8>,
}

impl OutputArchive {
    pub fn new() -> Self {
        OutputArchive { buf: Vec::with_capacity(64) }
    }

    pub fn with_buffer(buf: Vec<u8>) -> Self {
        OutputArchive { buf }
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Empties the buffer and keeps its allocation, for a writer that reuses it.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    pub fn write_byte(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn write_bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }

    pub fn write_int(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_long(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.write_int(-1),
            Some(b) => {
                self.write_int(b.len() as i32);
                self.buf.extend_from_slice(b);
            }
        }
    }

    /// Java writes each UTF-16 unit on its own; for characters inside the BMP that is plain
    /// UTF-8, outside it each surrogate becomes a 3-byte sequence (CESU-8).
    pub fn write_string(&mut self, s: &str) {
        if s.chars().all(|c| (c as u32) < 0x10000) {
            self.write_int(s.len() as i32);
            self.buf.extend_from_slice(s.as_bytes());
            return;
        }
        let mut enc = Vec::with_capacity(s.len() + 8);
        for unit in s.encode_utf16() {
            let c = unit as u32;
            if c < 0x80 {
                enc.push(c as u8);
            } else if c < 0x800 {
                enc.push(0xc0 | (c >> 6) as u8);
                enc.push(0x80 | (c & 0x3f) as u8);
            } else {
                enc.push(0xe0 | (c >> 12) as u8);
                enc.push(0x80 | ((c >> 6) & 0x3f) as u8);
                enc.push(0x80 | (c & 0x3f) as u8);
            }
        }
        self.write_int(enc.len() as i32);
        self.buf.extend_from_slice(&enc);
    }

    pub fn write_raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
}

/// A jute record: fields in IDL order.
pub trait Record: Sized {
    fn serialize(&self, out: &mut OutputArchive);
    fn deserialize(inp: &mut InputArchive<'_>) -> Result<Self>;

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = OutputArchive::new();
        self.serialize(&mut out);
        out.into_inner()
    }

    /// Decodes a record from the start of `buf`; trailing bytes are ignored, as upstream's
    /// readers ignore whatever follows a record in a packet.
    fn from_bytes(buf: &[u8]) -> Result<Self> {
        Self::deserialize(&mut InputArchive::new(buf))
    }
}

/// A value that can be a field of a record.
pub trait Field: Sized {
    fn write_field(&self, out: &mut OutputArchive);
    fn read_field(inp: &mut InputArchive<'_>) -> Result<Self>;
}

impl Field for i32 {
    fn write_field(&self, out: &mut OutputArchive) {
        out.write_int(*self)
    }
    fn read_field(inp: &mut InputArchive<'_>) -> Result<Self> {
        inp.read_int()
    }
}

impl Field for i64 {
    fn write_field(&self, out: &mut OutputArchive) {
        out.write_long(*self)
    }
    fn read_field(inp: &mut InputArchive<'_>) -> Result<Self> {
        inp.read_long()
    }
}

impl Field for bool {
    fn write_field(&self, out: &mut OutputArchive) {
        out.write_bool(*self)
    }
    fn read_field(inp: &mut InputArchive<'_>) -> Result<Self> {
        inp.read_bool()
    }
}

impl Field for String {
    fn write_field(&self, out: &mut OutputArchive) {
        out.write_string(self)
    }
    fn read_field(inp: &mut InputArchive<'_>) -> Result<Self> {
        inp.read_string()
    }
}

/// A nullable `ustring`: None is the null string (length -1), which upstream tells from
/// an empty one (ReconfigRequest's absent lists are null, not "").
impl Field for Option<String> {
    fn write_field(&self, out: &mut OutputArchive) {
        match self {
            None => out.write_int(-1),
            Some(s) => out.write_string(s),
        }
    }
    fn read_field(inp: &mut InputArchive<'_>) -> Result<Self> {
        match inp.read_buffer()? {
            None => Ok(None),
            Some(b) => Ok(Some(decode_modified_utf8(&b))),
        }
    }
}

/// `buffer`: None is the null buffer (length -1), distinct from an empty one.
impl Field for Option<Vec<u8>> {
    fn write_field(&self, out: &mut OutputArchive) {
        out.write_buffer(self.as_deref())
    }
    fn read_field(inp: &mut InputArchive<'_>) -> Result<Self> {
        inp.read_buffer()
    }
}

impl<T: Field> Field for Vec<T> {
    fn write_field(&self, out: &mut OutputArchive) {
        out.write_int(self.len() as i32);
        for v in self {
            v.write_field(out);
        }
    }
    fn read_field(inp: &mut InputArchive<'_>) -> Result<Self> {
        let n = inp.read_vector_len()?;
        let mut v = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            v.push(T::read_field(inp)?);
        }
        Ok(v)
    }
}

/// Declares a jute record: a plain struct whose fields are encoded in declaration order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::jute::Record for $name {
            #[allow(unused_variables)]
            fn serialize(&self, out: &mut $crate::jute::OutputArchive) {
                $($crate::jute::Field::write_field(&self.$field, out);)*
            }
            #[allow(unused_variables)]
            fn deserialize(inp: &mut $crate::jute::InputArchive<'_>) -> $crate::jute::Result<Self> {
                Ok($name { $($field: $crate::jute::Field::read_field(inp)?),* })
            }
        }

        impl $crate::jute::Field for $name {
            fn write_field(&self, out: &mut $crate::jute::OutputArchive) {
                $crate::jute::Record::serialize(self, out)
            }
            fn read_field(inp: &mut $crate::jute::InputArchive<'_>) -> $crate::jute::Result<Self> {
                <$name as $crate::jute::Record>::deserialize(inp)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_exact_vec_allocates_with_what_arrives() {
        let data = [1u8, 2, 3];
        let v = read_exact_vec(&mut &data[..], 3).unwrap();
        assert_eq!(v, data);
        let e = read_exact_vec(&mut &data[..], 1 << 30).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn null_and_empty_buffers_differ() {
        let mut out = OutputArchive::new();
        out.write_buffer(None);
        out.write_buffer(Some(&[]));
        assert_eq!(out.as_slice(), &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let mut inp = InputArchive::new(out.as_slice());
        assert_eq!(inp.read_buffer().unwrap(), None);
        assert_eq!(inp.read_buffer().unwrap(), Some(vec![]));
    }

    #[test]
    fn unreasonable_lengths_are_errors() {
        let bytes = (-2i32).to_be_bytes();
        assert_eq!(InputArchive::new(&bytes).read_buffer(), Err(JuteError::UnreasonableLength(-2)));
        let bytes = [0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(InputArchive::new(&bytes).read_string(), Err(JuteError::UnreasonableLength(_))));
        let bytes = [0, 0, 0, 5, b'a'];
        assert!(matches!(InputArchive::new(&bytes).read_string(), Err(JuteError::Eof { .. })));
    }

    #[test]
    fn supplementary_characters_use_surrogate_triplets() {
        let mut out = OutputArchive::new();
        out.write_string("\u{1F600}");
        assert_eq!(&out.as_slice()[..4], &6i32.to_be_bytes());
        assert_eq!(&out.as_slice()[4..], &[0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]);
    }
}
