//! The one-way dependencies of the source tree (DEVELOPERS.md, issue #14), checked on the
//! source itself so that a change that breaks them fails CI: `client` and `cli` never use
//! `server`; `common`, `proto` and `jute` (shared by both sides) use neither; the data
//! tree does not reach into the command layer or the snapshot file format.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Lines of the files under `dir` (or the file `dir`) that mention one of `forbidden`,
/// comments left out.
fn offenders(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    if root.is_dir() {
        rust_files(&root, &mut files);
    } else {
        files.push(root);
    }
    assert!(!files.is_empty(), "no sources under {dir}");
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if forbidden.iter().any(|w| code.contains(w)) {
                out.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn client_and_cli_do_not_use_the_server() {
    for dir in ["src/client", "src/cli"] {
        let bad = offenders(dir, &["crate::server", "zookeeper::server"]);
        assert!(bad.is_empty(), "{dir} uses the server:\n{}", bad.join("\n"));
    }
}

#[test]
fn shared_modules_use_neither_side() {
    for dir in ["src/common", "src/proto", "src/jute"] {
        let bad = offenders(dir, &["crate::server", "crate::client", "crate::cli"]);
        assert!(bad.is_empty(), "{dir} uses a side:\n{}", bad.join("\n"));
    }
}

#[test]
fn the_data_tree_does_not_use_commands_or_the_snapshot_format() {
    let bad = offenders("src/server/data_tree.rs", &["server::command", "file_snap::", "crate::server::persistence::file_snap"]);
    assert!(bad.is_empty(), "data_tree:\n{}", bad.join("\n"));
}
