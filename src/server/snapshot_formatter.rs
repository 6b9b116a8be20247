//! `SnapshotFormatter`: what `zkSnapShotToolkit.sh` prints for one snapshot file —
//! every znode with its stat (and, with `-d`, its data in base64), the sessions, and
//! the last zxid; or, with `-json`, the ncdu-style JSON tree.
//!
//! Upstream walks children and sessions in Java `HashSet`/`HashMap` order; this module
//! reproduces that order from the order the snapshot stores them in (see
//! `common::java_hash`), so the output is the same byte for byte.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use base64::Engine as _;

use crate::common::java_hash;
use crate::jute::{InputArchive, Record};
use crate::proto::data::{StatPersisted, ACL};
use crate::common::time::java_date;
use crate::server::data_tree::DataTree;
use crate::server::persistence::file_snap::{deserialize_tree, SNAP_MAGIC};
use crate::server::persistence::snap_stream::SnapStream;
use crate::server::persistence::util::{self, StreamMode, SNAPSHOT_FILE_PREFIX};

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A snapshot as `SnapshotFormatter` sees it: the tree, the sessions in file order,
/// and every node path in file order.
pub struct FormattedSnapshot {
    pub tree: DataTree,
    pub sessions: Vec<(i64, i32)>,
    pub paths: Vec<String>,
    pub file_name_zxid: i64,
}

/// Reads a snapshot without checking its seals (as the formatter does).
pub fn load(path: &Path) -> io::Result<FormattedSnapshot> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if util::stream_mode_of(&name) != StreamMode::Checked {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("compressed snapshot {} (.gz/.snappy) is not supported", path.display()),
        ));
    }
    let bytes = std::fs::read(path)?;
    let at = |inp: &InputArchive<'_>, e: crate::jute::JuteError| invalid(format!("{e} at offset {}", inp.position()));
    let mut inp = InputArchive::new(&bytes);
    let magic = inp.read_int().map_err(|e| at(&inp, e))?;
    let _version = inp.read_int().map_err(|e| at(&inp, e))?;
    let _dbid = inp.read_long().map_err(|e| at(&inp, e))?;
    if magic != SNAP_MAGIC {
        return Err(invalid(format!("mismatching magic headers {magic} !=  {SNAP_MAGIC}")));
    }
    let count = inp.read_int().map_err(|e| at(&inp, e))?;
    let mut sessions = Vec::new();
    for _ in 0..count.max(0) {
        let id = inp.read_long().map_err(|e| at(&inp, e))?;
        let to = inp.read_int().map_err(|e| at(&inp, e))?;
        sessions.push((id, to));
    }
    let tree_start = inp.position();
    let mut stream = SnapStream::starting_at(&bytes[tree_start..], tree_start as u64);
    let tree = deserialize_tree(&mut stream)?;
    // Second pass over the tree section for the order of the node records.
    let mut scan = InputArchive::new(&bytes[tree_start..]);
    let n = scan.read_int().map_err(|e| at(&scan, e))?;
    for _ in 0..n.max(0) {
        scan.read_long().map_err(|e| at(&scan, e))?;
        let len = scan.read_vector_len().map_err(|e| at(&scan, e))?;
        for _ in 0..len {
            ACL::deserialize(&mut scan).map_err(|e| at(&scan, e))?;
        }
    }
    let mut paths = Vec::new();
    loop {
        let p = scan.read_string().map_err(|e| at(&scan, e))?;
        if p == "/" {
            break;
        }
        scan.read_buffer().map_err(|e| at(&scan, e))?;
        scan.read_long().map_err(|e| at(&scan, e))?;
        StatPersisted::deserialize(&mut scan).map_err(|e| at(&scan, e))?;
        paths.push(p);
    }
    Ok(FormattedSnapshot {
        tree,
        sessions,
        paths,
        file_name_zxid: util::get_zxid_from_name(&name, SNAPSHOT_FILE_PREFIX),
    })
}

/// Capacity of a `new HashSet<>(8)` after `n` inserts.
fn hashset8_capacity(n: usize) -> usize {
    let mut cap = 8;
    while n > cap * 3 / 4 {
        cap *= 2;
    }
    cap
}

impl FormattedSnapshot {
    /// Children of every node in Java `HashSet` iteration order (keys: "/" for the root).
    fn children_map(&self) -> HashMap<String, Vec<String>> {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for p in &self.paths {
            if let Some(i) = p.rfind('/') {
                let parent = if i == 0 { "/".to_owned() } else { p[..i].to_owned() };
                m.entry(parent).or_default().push(p[i + 1..].to_owned());
            }
        }
        for v in m.values_mut() {
            let cap = hashset8_capacity(v.len());
            *v = java_hash::iteration_order(std::mem::take(v), cap, |s| java_hash::string_hash(s));
        }
        m
    }

    /// Sessions in Java `HashMap` iteration order.
    fn sessions_ordered(&self) -> Vec<(i64, i32)> {
        // A repeated id keeps its first position and the last timeout.
        let mut order: Vec<i64> = Vec::new();
        let mut to: HashMap<i64, i32> = HashMap::new();
        for (id, t) in &self.sessions {
            if to.insert(*id, *t).is_none() {
                order.push(*id);
            }
        }
        let cap = java_hash::hashmap_capacity_for_inserts(order.len());
        java_hash::iteration_order(order, cap, |id| crate::common::java_hash::long_hash(*id))
            .into_iter()
            .map(|id| (id, to.get(&id).copied().unwrap_or(0)))
            .collect()
    }

    /// `printDetails`: the default (and `-d`) layout.
    pub fn details(&self, dump_data: bool) -> String {
        let children = self.children_map();
        let mut out = String::new();
        let _ = writeln!(out, "ZNode Details (count={}):", self.paths.len() + 1);
        let dt_zxid = self.print_znode(&mut out, &children, "/", dump_data);
        out.push_str("----\n");
        out.push_str("Session Details (sid, timeout, ephemeralCount):\n");
        for (sid, timeout) in self.sessions_ordered() {
            let _ = writeln!(
                out,
                "{:#016x}, {timeout}, {}",
                sid as u64,
                self.tree.ephemerals_of(sid).len()
            );
        }
        let last = self.file_name_zxid.max(dt_zxid);
        let _ = writeln!(out, "----\nLast zxid: 0x{:x}", last as u64);
        out
    }

    fn print_znode(&self, out: &mut String, children: &HashMap<String, Vec<String>>, name: &str, dump_data: bool) -> i64 {
        out.push_str("----\n");
        let Some(n) = self.tree.get_node(name) else {
            return 0;
        };
        let _ = writeln!(out, "{name}");
        let s = &n.stat;
        let hex = |out: &mut String, k: &str, v: i64| {
            let _ = writeln!(out, "  {k} = {:#016x}", v as u64);
        };
        hex(out, "cZxid", s.czxid);
        let _ = writeln!(out, "  ctime = {}", java_date(s.ctime));
        hex(out, "mZxid", s.mzxid);
        let _ = writeln!(out, "  mtime = {}", java_date(s.mtime));
        hex(out, "pZxid", s.pzxid);
        let _ = writeln!(out, "  cversion = {}", s.cversion);
        let _ = writeln!(out, "  dataVersion = {}", s.version);
        let _ = writeln!(out, "  aclVersion = {}", s.aversion);
        hex(out, "ephemeralOwner", s.ephemeral_owner);
        let mut zxid = s.mzxid.max(s.pzxid);
        if dump_data {
            let d = n
                .data()
                .map(|d| base64::engine::general_purpose::STANDARD.encode(d))
                .unwrap_or_default();
            let _ = writeln!(out, "  data = {d}");
        } else {
            let _ = writeln!(out, "  dataLength = {}", n.data_len());
        }
        if let Some(kids) = children.get(name) {
            for c in kids {
                let p = if name == "/" { format!("/{c}") } else { format!("{name}/{c}") };
                zxid = zxid.max(self.print_znode(out, children, &p, dump_data));
            }
        }
        zxid
    }

    /// `printSnapshotJson`, with the timestamp given (upstream: the current time).
    pub fn json(&self, timestamp_ms: i64) -> String {
        let children = self.children_map();
        let mut out = format!(
            "[1,0,{{\"progname\":\"SnapshotFormatter.java\",\"progver\":\"0.01\",\"timestamp\":{timestamp_ms}}}"
        );
        let mut inode = 1000u64;
        self.json_node(&mut out, &children, "/", &mut inode);
        out.push(']');
        out
    }

    fn json_node(&self, out: &mut String, children: &HashMap<String, Vec<String>>, full: &str, inode: &mut u64) {
        let Some(n) = self.tree.get_node(full) else {
            eprintln!("DataTree Node for {full} doesn't exist");
            return;
        };
        let name = if full == "/" { full } else { &full[full.rfind('/').map(|i| i + 1).unwrap_or(0)..] };
        out.push(',');
        let len = n.data_len();
        *inode += 1;
        let node = format!(
            "{{\"name\":\"{}\",\"asize\":{len},\"dsize\":{len},\"dev\":0,\"ino\":{inode}}}",
            json_quote(name)
        );
        match children.get(full).filter(|k| !k.is_empty()) {
            Some(kids) => {
                out.push('[');
                out.push_str(&node);
                for c in kids {
                    let p = if full == "/" { format!("/{c}") } else { format!("{full}/{c}") };
                    self.json_node(out, children, &p, inode);
                }
                out.push(']');
            }
            None => out.push_str(&node),
        }
    }
}

/// Jackson's `JsonStringEncoder.quoteAsString`.
pub fn json_quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\u{8}' => o.push_str("\\b"),
            '\t' => o.push_str("\\t"),
            '\u{c}' => o.push_str("\\f"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// `ZKUtil.validateFileInput`.
fn validate_file_input(p: &str) -> Option<String> {
    let abs = if p.starts_with('/') {
        p.to_owned()
    } else {
        let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
        format!("{cwd}/{p}")
    };
    let md = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(_) => return Some(format!("File '{abs}' does not exist.")),
    };
    if !md.is_dir() && std::fs::File::open(p).is_err() {
        return Some(format!("Read permission is denied on the file '{abs}'"));
    }
    if md.is_dir() {
        return Some(format!("'{abs}' is a directory. it must be a file."));
    }
    None
}

const USAGE: &str = "USAGE: SnapshotFormatter [-d|-json] snapshot_file
       -d dump the data for each znode
       -json dump znode info in json format";

/// The command line of `zkSnapShotToolkit.sh`; returns the exit code.
pub fn main_with_args(args: &[String]) -> i32 {
    let (mut dump_data, mut dump_json) = (false, false);
    let mut file: Option<&String> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-d" => dump_data = true,
            "-json" => dump_json = true,
            _ => {
                file = Some(&args[i]);
                i += 1;
                break;
            }
        }
        i += 1;
    }
    let file = match file {
        Some(f) if i == args.len() => f,
        _ => {
            eprintln!("{USAGE}");
            return 2;
        }
    };
    if let Some(err) = validate_file_input(file) {
        eprintln!("{err}");
        return 2;
    }
    if dump_data && dump_json {
        eprintln!("Cannot specify both data dump (-d) and json mode (-json) in same call");
        return 2;
    }
    let snap = match load(Path::new(file)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Exception in thread \"main\" java.io.IOException: {e}");
            return 1;
        }
    };
    let text = if dump_json {
        snap.json(crate::common::time::current_wall_time())
    } else {
        snap.details(dump_data)
    };
    use std::io::Write;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if out.write_all(text.as_bytes()).and_then(|_| out.flush()).is_err() {
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(hashset8_capacity(6), 8);
        assert_eq!(hashset8_capacity(7), 16);
        assert_eq!(crate::common::java_hash::long_hash(0x1000_0000_0000_0001), 0x1000_0001);
        assert_eq!(json_quote("a\"b\\\u{1}\n"), "a\\\"b\\\\\\u0001\\n");
    }
}
