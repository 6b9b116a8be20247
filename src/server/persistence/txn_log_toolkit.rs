//! `TxnLogToolkit` (and `LogChopper`): dump one txn log file the way upstream's
//! `zkTxnLogToolkit.sh` prints it, rewrite it with broken CRCs fixed (`-r`), or copy it
//! up to a zxid (`-c -z`).
//!
//! Output is byte-for-byte upstream's: the header line, one line per txn (dates as
//! `DateFormat.getDateTimeInstance(SHORT, LONG)` in the `en` locale, UTC), record
//! bodies in the `toString()` layout of jute records (`ToStringOutputArchive`), and the
//! `EOF reached after N txns.` line.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::proto::data::ACL;
use crate::proto::op_code;
use crate::proto::txn::TxnHeader;
use crate::server::persistence::file_txn_log::TXNLOG_MAGIC;
use crate::server::persistence::util::{self, FilePadding};
use crate::server::txn_record::TxnRecord;

/// `ExitCode` values used by the tools.
pub mod exit_code {
    pub const EXECUTION_FINISHED: i32 = 0;
    pub const UNEXPECTED_ERROR: i32 = 1;
    pub const INVALID_INVOCATION: i32 = 2;
}

// --------------------------------------------------------------- dates --

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn twelve_hour(h: i64) -> (i64, &'static str) {
    let ampm = if h < 12 { "AM" } else { "PM" };
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    (h12, ampm)
}

/// `DateFormat.getDateTimeInstance(SHORT, LONG)` (locale `en`, zone UTC):
/// `11/14/23, 10:13:20 PM UTC`.
pub fn java_short_long_date(ms: i64) -> String {
    let (y, mo, d, h, m, s, _, _) = crate::common::time::civil_from_millis(ms);
    let (h12, ampm) = twelve_hour(h);
    format!("{mo}/{d}/{:02}, {h12}:{m:02}:{s:02} {ampm} UTC", y.rem_euclid(100))
}

/// `DateFormat.getDateTimeInstance()` (MEDIUM, MEDIUM; locale `en`, zone UTC):
/// `Nov 14, 2023, 10:13:20 PM`.
pub fn java_medium_date(ms: i64) -> String {
    let (y, mo, d, h, m, s, _, _) = crate::common::time::civil_from_millis(ms);
    let (h12, ampm) = twelve_hour(h);
    format!("{} {d}, {y}, {h12}:{m:02}:{s:02} {ampm}", MONTHS[((mo - 1).clamp(0, 11)) as usize])
}

// ------------------------------------------------- jute toString layout --

/// `org.apache.jute.ToStringOutputArchive`: what a jute record's `toString()` prints.
pub struct ToStringArchive {
    out: String,
    first: bool,
}

impl Default for ToStringArchive {
    fn default() -> Self {
        Self::new()
    }
}

impl ToStringArchive {
    pub fn new() -> Self {
        ToStringArchive {
            out: String::new(),
            first: true,
        }
    }

    fn comma(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    pub fn long(&mut self, v: i64) {
        self.comma();
        self.out.push_str(&v.to_string());
    }

    pub fn bool(&mut self, b: bool) {
        self.comma();
        self.out.push_str(if b { "T" } else { "F" });
    }

    pub fn string(&mut self, s: &str) {
        self.comma();
        self.out.push('\'');
        for c in s.chars() {
            match c {
                '\0' => self.out.push_str("%00"),
                '\n' => self.out.push_str("%0A"),
                '\r' => self.out.push_str("%0D"),
                ',' => self.out.push_str("%2C"),
                '}' => self.out.push_str("%7D"),
                '%' => self.out.push_str("%25"),
                c => self.out.push(c),
            }
        }
    }

    pub fn buffer(&mut self, b: Option<&[u8]>) {
        self.comma();
        if let Some(b) = b.filter(|b| !b.is_empty()) {
            self.out.push('#');
            for &x in b {
                // Integer.toHexString of a (sign-extended) byte, no padding.
                self.out.push_str(&format!("{:x}", x as i8 as i32 as u32));
            }
        }
    }

    /// `startRecord`: a nested record (non-empty tag) opens `s{`; the outermost
    /// record (empty tag) prints nothing.
    pub fn start_record(&mut self, nested: bool) {
        if nested {
            self.comma();
            self.out.push_str("s{");
            self.first = true;
        }
    }

    pub fn end_record(&mut self, nested: bool) {
        if nested {
            self.out.push('}');
            self.first = false;
        } else {
            self.out.push('\n');
            self.first = true;
        }
    }

    pub fn start_vector(&mut self) {
        self.comma();
        self.out.push_str("v{");
        self.first = true;
    }

    pub fn end_vector(&mut self) {
        self.out.push('}');
        self.first = false;
    }

    pub fn acl(&mut self, a: &ACL, nested: bool) {
        self.start_record(nested);
        self.long(a.perms as i64);
        self.start_record(true);
        self.string(&a.id.scheme);
        self.string(&a.id.id);
        self.end_record(true);
        self.end_record(nested);
    }

    pub fn acls(&mut self, v: &[ACL]) {
        self.start_vector();
        for a in v {
            self.acl(a, true);
        }
        self.end_vector();
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// `ACL.toString()`.
pub fn acl_to_string(a: &ACL) -> String {
    let mut t = ToStringArchive::new();
    t.acl(a, false);
    t.finish()
}

/// Java's `List<ACL>.toString()`: `[a, b]` of the elements' `toString()`.
pub fn acl_list_to_string(v: &[ACL]) -> String {
    let parts: Vec<String> = v.iter().map(acl_to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// The `toString()` of the txn records the toolkit prints that way (the others get
/// custom layouts in [`formatted_txn`]).
pub fn record_to_string(r: &TxnRecord) -> String {
    let mut t = ToStringArchive::new();
    match r {
        TxnRecord::Create(c) => {
            t.string(&c.path);
            t.buffer(c.data.as_deref());
            t.acls(&c.acl);
            t.bool(c.ephemeral);
            t.long(c.parent_c_version as i64);
        }
        TxnRecord::CreateTtl(c) => {
            t.string(&c.path);
            t.buffer(c.data.as_deref());
            t.acls(&c.acl);
            t.long(c.parent_c_version as i64);
            t.long(c.ttl);
        }
        TxnRecord::CreateContainer(c) => {
            t.string(&c.path);
            t.buffer(c.data.as_deref());
            t.acls(&c.acl);
            t.long(c.parent_c_version as i64);
        }
        TxnRecord::Delete(d) => t.string(&d.path),
        TxnRecord::SetData(s) => {
            t.string(&s.path);
            t.buffer(s.data.as_deref());
            t.long(s.version as i64);
        }
        TxnRecord::SetAcl(s) => {
            t.string(&s.path);
            t.acls(&s.acl);
            t.long(s.version as i64);
        }
        TxnRecord::Check(c) => {
            t.string(&c.path);
            t.long(c.version as i64);
        }
        TxnRecord::CreateSession(c) => t.long(c.time_out as i64),
        TxnRecord::CloseSession(c) => {
            t.start_vector();
            for p in &c.paths2_delete {
                t.string(p);
            }
            t.end_vector();
        }
        TxnRecord::Error(e) => t.long(e.err as i64),
        TxnRecord::Multi(m) => {
            t.start_vector();
            for s in &m.txns {
                t.start_record(true);
                t.long(s.r#type as i64);
                t.buffer(s.data.as_deref());
                t.end_record(true);
            }
            t.end_vector();
        }
    }
    t.end_record(false);
    t.finish()
}

/// `Request.op2String`.
pub fn op2string(op: i32) -> String {
    use op_code::*;
    let s = match op {
        NOTIFICATION => "notification",
        CREATE => "create",
        DELETE => "delete",
        EXISTS => "exists",
        GET_DATA => "getData",
        SET_DATA => "setData",
        GET_ACL => "getACL",
        SET_ACL => "setACL",
        GET_CHILDREN => "getChildren",
        SYNC => "sync",
        PING => "ping",
        GET_CHILDREN2 => "getChildren2",
        CHECK => "check",
        MULTI => "multi",
        CREATE2 => "create2",
        RECONFIG => "reconfig",
        CHECK_WATCHES => "checkWatches",
        REMOVE_WATCHES => "removeWatches",
        CREATE_CONTAINER => "createContainer",
        DELETE_CONTAINER => "deleteContainer",
        CREATE_TTL => "createTtl",
        MULTI_READ => "multiRead",
        AUTH => "auth",
        SET_WATCHES => "setWatches",
        SET_WATCHES2 => "setWatches2",
        SASL => "sasl",
        GET_EPHEMERALS => "getEphemerals",
        GET_ALL_CHILDREN_NUMBER => "getAllChildrenNumber",
        CREATE_SESSION => "createSession",
        CLOSE_SESSION => "closeSession",
        ERROR => "error",
        WHO_AM_I => "whoAmI",
        _ => return format!("unknown {op}"),
    };
    s.to_owned()
}

/// `new String(data, UTF_8)`, "" for null.
fn utf8(data: Option<&[u8]>) -> String {
    String::from_utf8_lossy(data.unwrap_or(&[])).into_owned()
}

/// `TxnLogToolkit.getFormattedTxnStr`.
pub fn formatted_txn(txn: Option<&TxnRecord>) -> String {
    let Some(txn) = txn else { return String::new() };
    match txn {
        TxnRecord::Create(c) => format!(
            "{},{},{},{},{}",
            c.path,
            utf8(c.data.as_deref()),
            acl_list_to_string(&c.acl),
            c.ephemeral,
            c.parent_c_version
        ),
        TxnRecord::SetData(s) => format!("{},{},{}", s.path, utf8(s.data.as_deref()), s.version),
        TxnRecord::CreateContainer(c) => format!(
            "{},{},{},{}",
            c.path,
            utf8(c.data.as_deref()),
            acl_list_to_string(&c.acl),
            c.parent_c_version
        ),
        TxnRecord::CreateTtl(c) => format!(
            "{},{},{},{},{}",
            c.path,
            utf8(c.data.as_deref()),
            acl_list_to_string(&c.acl),
            c.parent_c_version,
            c.ttl
        ),
        TxnRecord::Multi(m) => m
            .txns
            .iter()
            .map(|t| format!("{}:{}", op2string(t.r#type), utf8(t.data.as_deref())))
            .collect::<Vec<_>>()
            .join(";"),
        other => record_to_string(other),
    }
}

/// One txn line as `printTxn` builds it (without the prefix), newline-terminated.
pub fn txn_line(hdr: &TxnHeader, txn: Option<&TxnRecord>) -> String {
    let s = format!(
        "{} session 0x{:x} cxid 0x{:x} zxid 0x{:x} {} {}",
        java_short_long_date(hdr.time),
        hdr.client_id as u64,
        hdr.cxid as i64 as u64,
        hdr.zxid as u64,
        op2string(hdr.r#type),
        formatted_txn(txn)
    );
    if s.ends_with('\n') {
        s
    } else {
        s + "\n"
    }
}

// ------------------------------------------------------------- reading --

/// A failure that ends the tool: message for stderr and the exit code.
#[derive(Debug)]
pub struct ToolError {
    pub code: i32,
    pub message: String,
    /// True for what upstream lets escape `main` as an uncaught exception.
    pub uncaught: bool,
}

impl ToolError {
    fn new(code: i32, message: impl Into<String>) -> Self {
        ToolError {
            code,
            message: message.into(),
            uncaught: false,
        }
    }

    fn uncaught(message: impl Into<String>) -> Self {
        ToolError {
            code: exit_code::UNEXPECTED_ERROR,
            message: message.into(),
            uncaught: true,
        }
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<io::Error> for ToolError {
    fn from(e: io::Error) -> Self {
        ToolError::uncaught(format!("java.io.IOException: {e}"))
    }
}

/// `BinaryInputArchive` over a file, as the toolkit reads it.
struct LogReader<R: Read> {
    inp: R,
}

enum Rec {
    Eof,
    Entry(i64, Vec<u8>),
}

impl<R: Read> LogReader<R> {
    /// Fills `buf`; Ok(false) at end of file (a partial read counts as the end).
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let mut n = 0;
        while n < buf.len() {
            match self.inp.read(&mut buf[n..]) {
                Ok(0) => return Ok(false),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn header(&mut self) -> Result<(i32, i32, i64), ToolError> {
        let mut h = [0u8; 16];
        if !self.fill(&mut h)? {
            return Err(ToolError::uncaught("java.io.EOFException"));
        }
        let magic = i32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let version = i32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let mut d = [0u8; 8];
        d.copy_from_slice(&h[8..16]);
        Ok((magic, version, i64::from_be_bytes(d)))
    }

    /// crcvalue + txnEntry (readLong, readBuffer); Eof where upstream catches an
    /// EOFException or sees an empty buffer.
    fn record(&mut self) -> Result<Rec, ToolError> {
        let mut c = [0u8; 8];
        if !self.fill(&mut c)? {
            return Ok(Rec::Eof);
        }
        let mut l = [0u8; 4];
        if !self.fill(&mut l)? {
            return Ok(Rec::Eof);
        }
        let len = i32::from_be_bytes(l);
        if len == -1 {
            return Err(ToolError::uncaught("java.lang.NullPointerException"));
        }
        let max = crate::jute::max_buffer().saturating_add(crate::jute::max_buffer_extra());
        if len < 0 || len as usize > max {
            return Err(ToolError::uncaught(format!("java.io.IOException: Unreasonable length = {len}")));
        }
        let mut bytes = vec![0u8; len as usize];
        if !self.fill(&mut bytes)? {
            return Ok(Rec::Eof);
        }
        if bytes.is_empty() {
            return Ok(Rec::Eof);
        }
        Ok(Rec::Entry(i64::from_be_bytes(c), bytes))
    }

    fn eor(&mut self) -> Result<u8, ToolError> {
        let mut b = [0u8; 1];
        if !self.fill(&mut b)? {
            return Err(ToolError::uncaught("java.io.EOFException"));
        }
        Ok(b[0])
    }
}

fn decode(bytes: &[u8]) -> Result<(TxnHeader, Option<TxnRecord>), ToolError> {
    match util::deserialize_txn_entry(bytes) {
        Ok((h, t, _)) => Ok((h, t)),
        Err(e) => Err(ToolError::uncaught(format!("java.io.IOException: {e}"))),
    }
}

/// Whitespace-separated answers (`Scanner.next()`).
pub struct Answers<R: BufRead> {
    input: R,
    pending: Vec<String>,
}

impl<R: BufRead> Answers<R> {
    pub fn new(input: R) -> Self {
        Answers {
            input,
            pending: Vec::new(),
        }
    }

    fn next_token(&mut self) -> Option<String> {
        loop {
            if !self.pending.is_empty() {
                return Some(self.pending.remove(0));
            }
            let mut line = String::new();
            match self.input.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => self.pending = line.split_whitespace().map(str::to_owned).collect(),
            }
        }
    }
}

/// The options of one dump/recover run.
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    pub recover: bool,
    pub verbose: bool,
    pub force: bool,
}

fn load_txn_file(name: &str) -> Result<PathBuf, ToolError> {
    let p = PathBuf::from(name);
    if std::fs::metadata(&p).is_err() || File::open(&p).is_err() {
        return Err(ToolError::new(
            exit_code::UNEXPECTED_ERROR,
            format!("File doesn't exist or not readable: {name}"),
        ));
    }
    Ok(p)
}

/// `TxnLogToolkit.dump` + `printStat`: prints to `out`, asks on `out` and reads the
/// answers from `answers` in recovery mode without `force`.
pub fn dump<W: Write, R: BufRead>(
    file_name: &str,
    opts: &DumpOptions,
    out: &mut W,
    answers: &mut Answers<R>,
) -> Result<(), ToolError> {
    let path = load_txn_file(file_name)?;
    let recovery_name = format!("{file_name}.fixed");
    let mut recovery: Option<(File, u64, FilePadding)> = None;
    if opts.recover {
        let rp = Path::new(&recovery_name);
        if rp.exists() {
            return Err(ToolError::new(
                exit_code::UNEXPECTED_ERROR,
                format!("Recovery file {recovery_name} already exists or not writable"),
            ));
        }
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(rp)
            .map_err(|e| ToolError::uncaught(format!("java.io.FileNotFoundException: {recovery_name} ({e})")))?;
        recovery = Some((f, 0, FilePadding::new(util::prealloc_size_from_properties())));
    }
    let file = File::open(&path).map_err(|e| ToolError::uncaught(format!("java.io.FileNotFoundException: {file_name} ({e})")))?;
    let mut rd = LogReader {
        inp: io::BufReader::new(file),
    };
    let (magic, version, dbid) = rd.header()?;
    if magic != TXNLOG_MAGIC {
        let short = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        return Err(ToolError::new(exit_code::INVALID_INVOCATION, format!("Invalid magic number for {short}")));
    }
    writeln!(out, "ZooKeeper Transactional Log File with dbid {dbid} txnlog format version {version}")?;
    let write_at = |rec: &mut (File, u64, FilePadding), bytes: &[u8]| -> io::Result<()> {
        rec.0.write_all_at(bytes, rec.1)?;
        rec.1 += bytes.len() as u64;
        Ok(())
    };
    if let Some(rec) = recovery.as_mut() {
        let mut h = Vec::with_capacity(16);
        h.extend_from_slice(&magic.to_be_bytes());
        h.extend_from_slice(&version.to_be_bytes());
        h.extend_from_slice(&dbid.to_be_bytes());
        write_at(rec, &h)?;
        rec.2.set_current_size(rec.1 as i64);
    }
    let mut crc_fixed = 0u64;
    let mut count = 0u64;
    loop {
        let (mut crc_value, bytes) = match rd.record()? {
            Rec::Eof => {
                writeln!(out, "EOF reached after {count} txns.")?;
                break;
            }
            Rec::Entry(c, b) => (c, b),
        };
        let actual = util::adler32(&bytes);
        if crc_value != actual {
            let (hdr, txn) = decode(&bytes)?;
            if opts.recover {
                if !opts.force {
                    write!(out, "CRC ERROR - {}", txn_line(&hdr, txn.as_ref()))?;
                    if ask_for_fix(out, answers)? {
                        crc_value = actual;
                        crc_fixed += 1;
                    }
                } else {
                    crc_value = actual;
                    write!(out, "CRC FIXED - {}", txn_line(&hdr, txn.as_ref()))?;
                    crc_fixed += 1;
                }
            } else {
                write!(out, "CRC ERROR - {}", txn_line(&hdr, txn.as_ref()))?;
            }
        }
        if !opts.recover || opts.verbose {
            let (hdr, txn) = decode(&bytes)?;
            write!(out, "{}", txn_line(&hdr, txn.as_ref()))?;
        }
        if rd.eor()? != util::EOR {
            return Err(ToolError::new(exit_code::UNEXPECTED_ERROR, "Last transaction was partial."));
        }
        if let Some(rec) = recovery.as_mut() {
            let pos = rec.1 as i64;
            rec.2.pad_file(&rec.0, pos)?;
            let mut b = Vec::with_capacity(bytes.len() + 13);
            b.extend_from_slice(&crc_value.to_be_bytes());
            b.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            b.extend_from_slice(&bytes);
            b.push(util::EOR);
            write_at(rec, &b)?;
        }
        count += 1;
    }
    if opts.recover {
        writeln!(
            out,
            "Recovery file {recovery_name} has been written with {crc_fixed} fixed CRC error(s)"
        )?;
    }
    out.flush()?;
    Ok(())
}

fn ask_for_fix<W: Write, R: BufRead>(out: &mut W, answers: &mut Answers<R>) -> Result<bool, ToolError> {
    loop {
        write!(out, "Would you like to fix it (Yes/No/Abort) ? ")?;
        out.flush()?;
        let Some(tok) = answers.next_token() else {
            return Err(ToolError::uncaught("java.util.NoSuchElementException"));
        };
        match tok.chars().next().map(|c| c.to_ascii_uppercase()) {
            Some('Y') => return Ok(true),
            Some('N') => return Ok(false),
            Some('A') => return Err(ToolError::new(exit_code::EXECUTION_FINISHED, "Recovery aborted.")),
            _ => {}
        }
    }
}

/// Java's `Long.decode`: optional sign, then `0x`/`0X`/`#` hex, `0` octal or decimal.
pub fn java_long_decode(s: &str) -> Option<i64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(r) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        (16, r)
    } else if let Some(r) = rest.strip_prefix('#') {
        (16, r)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        (10, rest)
    };
    if digits.is_empty() || digits.starts_with('-') || digits.starts_with('+') {
        return None;
    }
    let mag = i128::from_str_radix(digits, radix).ok()?;
    let v = if neg { -mag } else { mag };
    i64::try_from(v).ok()
}

/// `LogChopper.chop`: copies the records up to and including `zxid` into `os`; true
/// when the log had `zxid` and a later txn.
pub fn chop<R: Read, W: Write, O: Write>(is: R, os: &mut W, zxid: i64, out: &mut O) -> Result<bool, ToolError> {
    let mut rd = LogReader { inp: is };
    let (magic, version, dbid) = rd.header()?;
    if magic != TXNLOG_MAGIC {
        eprintln!("Invalid magic number in txn log file");
        return Ok(false);
    }
    writeln!(out, "ZooKeeper Transactional Log File with dbid {dbid} txnlog format version {version}")?;
    os.write_all(&magic.to_be_bytes())?;
    os.write_all(&version.to_be_bytes())?;
    os.write_all(&dbid.to_be_bytes())?;
    let mut count = 0u64;
    let mut has_zxid = false;
    let mut previous: i64 = -1;
    loop {
        let (crc, bytes) = match rd.record()? {
            Rec::Eof => {
                writeln!(out, "EOF reached after {count} txns.")?;
                return Ok(false);
            }
            Rec::Entry(c, b) => (c, b),
        };
        let actual = util::adler32(&bytes);
        if crc != actual {
            return Err(ToolError::new(0, format!("CRC doesn't match {crc} vs {actual}")));
        }
        let (hdr, _) = decode(&bytes)?;
        if rd.eor()? != util::EOR {
            writeln!(out, "Last transaction was partial.")?;
            return Err(ToolError::new(0, "Last transaction was partial."));
        }
        let tz = hdr.zxid;
        if tz == zxid {
            has_zxid = true;
        }
        if previous != -1 && tz != previous + 1 {
            let (te, tc, pe) = (tz >> 32, tz & 0xffff_ffff, previous >> 32);
            if te == pe {
                writeln!(out, "There is intra-epoch gap between {previous:x} and {tz:x}")?;
            } else if tc != 1 {
                writeln!(out, "There is inter-epoch gap between {previous:x} and {tz:x}")?;
            }
        }
        previous = tz;
        if tz > zxid {
            if count == 0 || !has_zxid {
                writeln!(out, "This log does not contain zxid {:x}", zxid as u64)?;
                return Ok(false);
            }
            writeln!(out, "Chopping at {:x} new log has {count} records", zxid as u64)?;
            return Ok(true);
        }
        os.write_all(&crc.to_be_bytes())?;
        os.write_all(&(bytes.len() as i32).to_be_bytes())?;
        os.write_all(&bytes)?;
        os.write_all(&[util::EOR])?;
        count += 1;
    }
}

/// `TxnLogToolkit.chop`: writes `<file>.chopped<zxid>` next to the log. Every failure
/// is reported as `Got exception: ...` on stdout, as upstream.
pub fn chop_file<O: Write>(file_name: &str, zxid: i64, out: &mut O) -> io::Result<()> {
    let path = Path::new(file_name);
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let short = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let target = parent.join(format!("{short}.chopped{zxid}"));
    let result = (|| -> Result<(), ToolError> {
        let is = io::BufReader::new(File::open(path).map_err(|e| ToolError::new(0, format!("{file_name} ({e})")))?);
        let f = File::create(&target).map_err(|e| ToolError::new(0, format!("{} ({e})", target.display())))?;
        let mut os = io::BufWriter::new(f);
        let ok = chop(is, &mut os, zxid, out);
        os.flush()?;
        if !ok? {
            return Err(ToolError::new(0, format!("Failed to chop {short}")));
        }
        Ok(())
    })();
    if let Err(e) = result {
        let msg = e.message.trim_start_matches("java.io.IOException: ").to_owned();
        writeln!(out, "Got exception: {msg}")?;
    }
    out.flush()
}

pub const HELP: &str = "usage: TxnLogToolkit [-dhrvc] <txn_log_file_name> (-z <zxid>)
 -c,--chop         Chop mode. Chop txn file to a zxid.
 -d,--dump         Dump mode. Dump all entries of the log file with printing the content of a nodepath (default)
 -h,--help         Print help message
 -r,--recover      Recovery mode. Re-calculate CRC for broken entries.
 -v,--verbose      Be verbose in recovery mode: print all entries, not just fixed ones.
 -y,--yes          Non-interactive mode: repair all CRC errors without asking
 -z,--zxid <arg>   Used with chop. Zxid to which to chop.
";

/// The command line of `zkTxnLogToolkit.sh`; returns the exit code.
pub fn main_with_args(args: &[String]) -> i32 {
    let (mut recover, mut verbose, mut force, mut chop_mode, mut help) = (false, false, false, false, false);
    let mut zxid: Option<String> = None;
    let mut files: Vec<String> = Vec::new();
    let mut it = args.iter();
    let mut only_args = false;
    let parse_err = |msg: String| -> i32 {
        eprintln!("{msg}\n");
        print!("{HELP}");
        exit_code::UNEXPECTED_ERROR
    };
    while let Some(a) = it.next() {
        if only_args || !a.starts_with('-') || a == "-" {
            files.push(a.clone());
            continue;
        }
        if a == "--" {
            only_args = true;
            continue;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, val) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            match name {
                "help" => help = true,
                "recover" => recover = true,
                "verbose" => verbose = true,
                "dump" => {}
                "yes" => force = true,
                "chop" => chop_mode = true,
                "zxid" => match val.or_else(|| it.next().cloned()) {
                    Some(v) => zxid = Some(v),
                    None => return parse_err("Missing argument for option: z".into()),
                },
                _ => return parse_err(format!("Unrecognized option: {a}")),
            }
            continue;
        }
        // A cluster of short flags; z takes the rest or the next word.
        let flags: Vec<char> = a[1..].chars().collect();
        for (i, c) in flags.iter().enumerate() {
            match c {
                'h' => help = true,
                'r' => recover = true,
                'v' => verbose = true,
                'd' => {}
                'y' => force = true,
                'c' => chop_mode = true,
                'z' => {
                    let rest: String = flags[i + 1..].iter().collect();
                    let v = if rest.is_empty() { it.next().cloned() } else { Some(rest) };
                    match v {
                        Some(v) => zxid = Some(v),
                        None => return parse_err("Missing argument for option: z".into()),
                    }
                    break;
                }
                _ => return parse_err(format!("Unrecognized option: {a}")),
            }
        }
    }
    if help {
        print!("{HELP}");
        return 0;
    }
    let Some(file) = files.first() else {
        print!("{HELP}");
        return exit_code::UNEXPECTED_ERROR;
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match (chop_mode, zxid) {
        (true, Some(z)) => {
            if let Err(e) = load_txn_file(file) {
                eprintln!("{e}");
                return e.code;
            }
            let Some(z) = java_long_decode(&z) else {
                eprintln!("Exception in thread \"main\" java.lang.NumberFormatException: For input string: \"{z}\"");
                return exit_code::UNEXPECTED_ERROR;
            };
            return match chop_file(file, z, &mut out) {
                Ok(()) => 0,
                Err(_) => exit_code::UNEXPECTED_ERROR,
            };
        }
        _ => {
            let opts = DumpOptions { recover, verbose, force };
            let stdin = io::stdin();
            let mut answers = Answers::new(stdin.lock());
            dump(file, &opts, &mut out, &mut answers)
        }
    };
    let _ = out.flush();
    match result {
        Ok(()) => 0,
        Err(e) => {
            if e.uncaught {
                eprintln!("Exception in thread \"main\" {}", e.message);
            } else {
                eprintln!("{}", e.message);
            }
            e.code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::txn::{CreateTxn, DeleteTxn};

    #[test]
    fn dates_and_strings() {
        assert_eq!(java_short_long_date(1_700_000_000_000), "11/14/23, 10:13:20 PM UTC");
        assert_eq!(java_short_long_date(1_700_000_000_000 - 13 * 3_600_000), "11/14/23, 9:13:20 AM UTC");
        assert_eq!(java_medium_date(1_700_000_000_000), "Nov 14, 2023, 10:13:20 PM");
        assert_eq!(java_medium_date(0), "Jan 1, 1970, 12:00:00 AM");
        let c = TxnRecord::Create(CreateTxn {
            path: "/p,}".into(),
            data: Some(vec![0x64, 0x80, 0x05]),
            acl: vec![ACL::new(31, "world", "anyone")],
            ephemeral: false,
            parent_c_version: 1,
        });
        assert_eq!(record_to_string(&c), "'/p%2C%7D,#64ffffff805,v{s{31,s{'world,'anyone}}},F,1\n");
        assert_eq!(
            formatted_txn(Some(&c)),
            "/p,},d\u{fffd}\u{5},[31,s{'world,'anyone}\n],false,1"
        );
        assert_eq!(record_to_string(&TxnRecord::Delete(DeleteTxn { path: "/a".into() })), "'/a\n");
        assert_eq!(java_long_decode("0x1f"), Some(31));
        assert_eq!(java_long_decode("010"), Some(8));
        assert_eq!(java_long_decode("-5"), Some(-5));
        assert_eq!(java_long_decode("zz"), None);
    }
}
