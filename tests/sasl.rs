//! Client SASL (DIGEST-MD5) side by side with Apache: both servers read the same JAAS
//! file (`-Djava.security.auth.login.config`, a `Server` section of `user_<name>`
//! entries) and register `SASLAuthenticationProvider`; Apache's Java zkCli, with a
//! JAAS `Client` section, runs the same commands against both and the transcripts must
//! match. Wrong passwords, unknown users, clients without SASL, garbage tokens and a
//! server without JAAS are compared too, and both servers keep serving others.
//!
//! Run: `cargo test --test sasl -- --nocapture`.

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{describe_output, line_diff, run_java_zkcli_with, ApacheServer, OurServer, TestServer};
use raw_client::RawClient;
use zookeeper::jute::Record;
use zookeeper::proto::op_code;
use zookeeper::proto::proto::{GetSASLRequest, SetSASLResponse};

const SASL_PROVIDER: &str = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn server_jaas(dir: &Path) -> PathBuf {
    write(
        dir,
        "server-jaas.conf",
        "// the Server section of a Java deployment\n\
         Server {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    user_super=\"adminsecret\"\n    user_bob=\"bobsecret\";\n};\n",
    )
}

fn client_jaas(dir: &Path, name: &str, user: &str, password: &str) -> PathBuf {
    write(
        dir,
        name,
        &format!(
            "Client {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    username=\"{user}\"\n    password=\"{password}\";\n}};\n"
        ),
    )
}

/// The Java shell's output with what differs between any two runs masked: ports,
/// session ids, timestamps of log lines.
fn normalize(o: &Output, port: u16) -> String {
    let text = format!("{}\n--stderr--\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let mut out = Vec::new();
    for line in text.lines() {
        // The Java client's own log lines (slf4j-simple, warn and up) and the exception
        // lines under them are its logging, not the shell's output.
        let is_log = line.starts_with('[') && ["] WARN ", "] ERROR ", "] INFO "].iter().any(|k| line.contains(k));
        let first = line.split_whitespace().next().unwrap_or("");
        let is_exception = first.ends_with("Exception:") || first.ends_with("Exception") || line.starts_with('\t');
        if is_log || is_exception {
            continue;
        }
        let l = line.replace(&port.to_string(), "<PORT>");
        out.push(mask_hex_ids(&l));
    }
    out.join("\n")
}

fn mask_hex_ids(l: &str) -> String {
    // 0x<16 hex digits> session ids
    let mut s = String::new();
    let b: Vec<char> = l.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '0' && b.get(i + 1) == Some(&'x') {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_hexdigit() {
                j += 1;
            }
            if j - i > 6 {
                s.push_str("0x<ID>");
                i = j;
                continue;
            }
        }
        s.push(b[i]);
        i += 1;
    }
    s
}

fn zkcli(srv: &TestServer, jaas: Option<&Path>, args: &[&str]) -> String {
    let prop;
    let mut jvm: Vec<&str> = vec!["-Dzookeeper.sasl.client=true"];
    if let Some(j) = jaas {
        prop = format!("-Djava.security.auth.login.config={}", j.display());
        jvm.push(&prop);
    } else {
        jvm = vec!["-Dzookeeper.sasl.client=false"];
    }
    let o = run_java_zkcli_with(&srv.connect_string(), &jvm, args);
    let n = normalize(&o, srv.port());
    eprintln!("[sasl] {:?} {args:?} {}", srv.kind(), describe_output("zkCli", &o).lines().take(12).collect::<Vec<_>>().join(" | "));
    n
}

/// Lines of the transcript that are the commands' own output (the client's SASL and
/// connection log lines are compared separately, by keyword).
fn command_lines(t: &str) -> String {
    t.lines()
        .filter(|l| !l.is_empty())
        .filter(|l| !l.contains("WATCHER::") && !l.starts_with("WatchedEvent") && !l.contains("--stderr--"))
        .filter(|l| !l.contains("SLF4J") && !l.contains("INFO") && !l.contains("WARN ") && !l.contains("log4j"))
        // The Java client logs a failed SASL exchange with its stack trace on stderr.
        .filter(|l| !l.starts_with('\t') && !l.starts_with("javax.security") && !l.contains("SASL authentication failed"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Apache and ours with the same JAAS `Server` section and the sasl ACL provider.
fn sasl_servers() -> (tempfile::TempDir, ApacheServer, OurServer) {
    common::require_apache();
    let tmp = tempfile::tempdir().expect("tempdir");
    let sjaas = server_jaas(tmp.path());
    let prop = format!("-Djava.security.auth.login.config={}", sjaas.display());
    let apache = ApacheServer::start_standalone_with_jvm_args(SASL_PROVIDER, &[&prop]);
    let ours = OurServer::start_standalone(SASL_PROVIDER, &[&prop]);
    (tmp, apache, ours)
}

#[test]
fn digest_md5_with_the_java_shell_matches_apache() {
    let (tmp, apache, ours) = sasl_servers();
    assert!(ours.log_contents().contains("SASL login from section 'Server'"), "{}", ours.log_contents());

    let bob = client_jaas(tmp.path(), "bob.conf", "bob", "bobsecret");
    let wrong = client_jaas(tmp.path(), "wrong.conf", "bob", "not-the-password");
    let alice = client_jaas(tmp.path(), "alice.conf", "alice", "x");

    let steps: Vec<(&str, Option<&Path>, Vec<&str>)> = vec![
        ("bob creates", Some(&bob), vec!["create", "/s", "secret-data"]),
        ("bob restricts", Some(&bob), vec!["setAcl", "/s", "sasl:bob:cdrwa"]),
        ("bob reads the ACL", Some(&bob), vec!["getAcl", "/s"]),
        ("bob reads", Some(&bob), vec!["get", "/s"]),
        ("bob is", Some(&bob), vec!["whoami"]),
        ("no SASL client", None, vec!["get", "/s"]),
        ("wrong password", Some(&wrong), vec!["get", "/s"]),
        ("unknown user", Some(&alice), vec!["get", "/s"]),
        ("bob again", Some(&bob), vec!["get", "/s"]),
    ];
    let mut diffs = Vec::new();
    for (what, jaas, args) in &steps {
        let a = zkcli(&apache, *jaas, args);
        let o = zkcli(&ours, *jaas, args);
        let (ca, co) = (command_lines(&a), command_lines(&o));
        if ca != co {
            diffs.push(format!("{what}:\n{}", line_diff("apache", &ca, "ours", &co)));
        }
        // The client's view of SASL: authenticated, or the failure it reports.
        for key in ["AuthFailed", "SaslAuthenticated", "Authentication failed", "KeeperErrorCode"] {
            if a.contains(key) != o.contains(key) {
                diffs.push(format!("{what}: '{key}' in Apache's transcript: {}, in ours: {}\n--apache--\n{a}\n--ours--\n{o}", a.contains(key), o.contains(key)));
            }
        }
        if *what == "bob reads" {
            assert!(co.contains("secret-data"), "{co}");
        }
        if *what == "bob is" {
            assert!(co.contains("sasl: bob"), "{co}");
        }
    }
    assert!(diffs.is_empty(), "transcripts differ:\n{}", diffs.join("\n"));
    // Failures are logged with upstream's words, and both keep serving.
    let log = ours.log_contents();
    assert!(log.contains("failed to SASL authenticate") && log.contains("Mismatched response"), "{log}");
    assert!(log.contains("adding SASL authorization for authorizationID: bob"));
    for s in [&*apache, &*ours] {
        assert_eq!(s.four_letter("ruok"), "imok");
    }
}

/// One raw SASL packet: (reply err, token) or None when the server closed first.
fn raw_sasl(addr: &str, token: &[u8]) -> (Option<(i32, Option<Vec<u8>>)>, bool) {
    raw_sasl_exchange(addr, &[token])
}

/// Several SASL packets on one connection: the last reply, and whether the server
/// closed the connection after it.
fn raw_sasl_exchange(addr: &str, tokens: &[&[u8]]) -> (Option<(i32, Option<Vec<u8>>)>, bool) {
    let mut c = RawClient::connect(addr).expect("connect");
    let mut last = None;
    for t in tokens {
        let req = GetSASLRequest { token: Some(t.to_vec()) };
        last = c.call(op_code::SASL, &req.to_bytes()).ok().map(|(h, b)| {
            let t = SetSASLResponse::from_bytes(&b).ok().and_then(|r| r.token);
            (h.err, t)
        });
        if last.is_none() {
            break;
        }
    }
    let closed = c.wait_closed(Duration::from_secs(3));
    (last, closed)
}

fn challenge_text(who: &str, r: Option<(i32, Option<Vec<u8>>)>) -> String {
    let (err, tok) = r.unwrap_or_else(|| panic!("{who}: no reply"));
    assert_eq!(err, 0, "{who}");
    String::from_utf8(tok.unwrap_or_default()).expect("challenge text")
}

#[test]
fn raw_sasl_tokens_get_apaches_answers() {
    let (_tmp, apache, ours) = sasl_servers();
    // The first token gets the challenge whatever it holds (the JDK ignores an
    // initial response): realm, nonce, utf-8, md5-sess, no qop (auth by default).
    for first in [&b""[..], &b"garbage \xff\x00 token"[..]] {
        let (a, ac) = raw_sasl(&apache.connect_string(), first);
        let (o, oc) = raw_sasl(&ours.connect_string(), first);
        let (ta, to) = (challenge_text("apache", a), challenge_text("ours", o));
        for t in [&ta, &to] {
            for part in ["realm=\"zk-sasl-md5\"", "nonce=\"", "charset=utf-8", "algorithm=md5-sess"] {
                assert!(t.contains(part), "challenge {t}");
            }
        }
        assert_eq!(ta.contains("qop"), to.contains("qop"), "qop directive: {ta} / {to}");
        assert_eq!((ac, oc), (false, false));
    }
    // A second token that is not a digest-response: AUTHFAILED and closed, on both.
    for second in [&b"garbage \xff\x00 token"[..], &b"username=\"bob\""[..], &[b'a'; 5000][..]] {
        let (a, ac) = raw_sasl_exchange(&apache.connect_string(), &[b"", second]);
        let (o, oc) = raw_sasl_exchange(&ours.connect_string(), &[b"", second]);
        eprintln!("[sasl] second token of {} bytes: Apache {:?} closed {ac}, ours {:?} closed {oc}", second.len(), a.as_ref().map(|r| r.0), o.as_ref().map(|r| r.0));
        assert_eq!(a.as_ref().map(|r| r.0), Some(-115), "Apache: AUTHFAILED");
        assert_eq!(o.as_ref().map(|r| r.0), a.as_ref().map(|r| r.0), "reply code");
        assert_eq!((ac, oc), (true, true), "both close the connection");
    }
    assert_eq!(ours.four_letter("ruok"), "imok");

    // A server without JAAS answers a SASL token with an empty OK and keeps the
    // connection (upstream logs the missing SaslServer).
    let plain_a = ApacheServer::start_standalone("");
    let plain_o = OurServer::start_standalone("", &[]);
    let (a, ac) = raw_sasl(&plain_a.connect_string(), b"");
    let (o, oc) = raw_sasl(&plain_o.connect_string(), b"");
    assert_eq!(a, Some((0, None)), "Apache without JAAS");
    assert_eq!(o, a, "ours without JAAS");
    assert_eq!((ac, oc), (false, false), "neither closes");
}

#[test]
fn bad_jaas_configuration_fails_the_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let no_section = write(tmp.path(), "client-only.conf", "Client { org.apache.zookeeper.server.auth.DigestLoginModule required username=\"a\" password=\"b\"; };\n");
    let prop = format!("-Djava.security.auth.login.config={}", no_section.display());
    // A file without the Server section is a server without SASL, as upstream: it
    // starts, and a SASL token gets the empty OK.
    let ours = OurServer::start_standalone("", &[&prop]);
    assert_eq!(ours.four_letter("ruok"), "imok");
    assert_eq!(raw_sasl(&ours.connect_string(), b"").0, Some((0, None)));
    drop(ours);
    // Kerberos is refused loudly, never ignored.
    let krb = write(tmp.path(), "krb.conf", "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/x\" principal=\"zookeeper/h@R\"; };\n");
    let prop = format!("-Djava.security.auth.login.config={}", krb.display());
    let mut k = OurServer::spawn_standalone("", &[&prop]);
    let st = k.wait_exit(Duration::from_secs(20)).expect("exit");
    assert_eq!(st.code(), Some(1));
    assert!(k.log_contents().contains("Kerberos (GSSAPI) is not supported"), "{}", k.log_contents());
    // A JAAS file that does not parse.
    let broken = write(tmp.path(), "broken.conf", "Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_a=\"b\"\n");
    let prop = format!("-Djava.security.auth.login.config={}", broken.display());
    let mut b = OurServer::spawn_standalone("", &[&prop]);
    let st = b.wait_exit(Duration::from_secs(20)).expect("exit");
    assert_eq!(st.code(), Some(1));
    let log = b.log_contents();
    assert!(log.contains("No JAAS configuration section named 'Server' was found in") && log.contains("Configuration Error"), "{log}");
}

/// Our `zk-cli`, given the same JAAS `Client` section through `-D` (as
/// `CLIENT_JVMFLAGS` carries it), authenticates against Apache's server and ours and
/// prints what the Java shell prints.
#[test]
fn our_zkcli_authenticates_like_the_java_shell() {
    let (tmp, apache, ours) = sasl_servers();
    let bob = client_jaas(tmp.path(), "bob.conf", "bob", "bobsecret");
    let wrong = client_jaas(tmp.path(), "wrong.conf", "bob", "nope");
    let mut diffs = Vec::new();
    for srv in [&*apache, &*ours] {
        zkcli(srv, Some(&bob), &["create", "/s", "secret-data"]);
        zkcli(srv, Some(&bob), &["setAcl", "/s", "sasl:bob:cdrwa"]);
        for (what, jaas, args) in [
            ("bob reads", Some(&bob), vec!["get", "/s"]),
            ("bob is", Some(&bob), vec!["whoami"]),
            ("bob lists the ACL", Some(&bob), vec!["getAcl", "/s"]),
            ("wrong password", Some(&wrong), vec!["get", "/s"]),
            ("no SASL", None, vec!["get", "/s"]),
        ] {
            let java = zkcli(srv, jaas.map(|p| p.as_path()), &args);
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zk-cli"));
            cmd.env_remove("RUST_LOG").env("TZ", "UTC");
            match jaas {
                Some(j) => {
                    cmd.arg(format!("-Djava.security.auth.login.config={}", j.display()));
                }
                None => {
                    cmd.arg("-Dzookeeper.sasl.client=false");
                }
            }
            cmd.args(["-server", &srv.connect_string(), "-waitforconnection"]).args(&args);
            let o = common::run_with_timeout(cmd, b"", Duration::from_secs(60));
            let mine = normalize(&o, srv.port());
            eprintln!("[sasl] zk-cli {:?} {what}: {}", srv.kind(), describe_output("zk-cli", &o).lines().take(12).collect::<Vec<_>>().join(" | "));
            let (cj, cm) = (command_lines(&java), command_lines(&mine));
            if cj != cm {
                diffs.push(format!("{:?} {what}:\n{}", srv.kind(), line_diff("java zkCli", &cj, "zk-cli", &cm)));
            }
            if what == "bob reads" {
                assert!(cm.contains("secret-data"), "{mine}");
            }
        }
    }
    assert!(diffs.is_empty(), "zk-cli and the Java shell differ:\n{}", diffs.join("\n"));
}

/// `zookeeper.sessionRequireClientSASLAuth=true`: a client without SASL, or whose
/// SASL fails, is closed with SESSIONCLOSEDREQUIRESASLAUTH; the same transcripts on
/// both. A misconfigured enforcement stops both servers at start.
#[test]
fn required_sasl_is_enforced_like_apache() {
    common::require_apache();
    let tmp = tempfile::tempdir().expect("tempdir");
    let sjaas = server_jaas(tmp.path());
    let prop = format!("-Djava.security.auth.login.config={}", sjaas.display());
    let req = "-Dzookeeper.sessionRequireClientSASLAuth=true";
    let apache = ApacheServer::start_standalone_with_jvm_args(SASL_PROVIDER, &[&prop, req]);
    let ours = OurServer::start_standalone(SASL_PROVIDER, &[&prop, req]);
    let bob = client_jaas(tmp.path(), "bob.conf", "bob", "bobsecret");
    let wrong = client_jaas(tmp.path(), "wrong.conf", "bob", "nope");
    let mut diffs = Vec::new();
    for (what, jaas, args) in [
        ("bob creates", Some(&bob), vec!["create", "/r", "x"]),
        ("no SASL", None, vec!["get", "/r"]),
        ("wrong password", Some(&wrong), vec!["get", "/r"]),
        ("bob reads", Some(&bob), vec!["get", "/r"]),
    ] {
        let a = command_lines(&zkcli(&apache, jaas.map(|p| p.as_path()), &args));
        let o = command_lines(&zkcli(&ours, jaas.map(|p| p.as_path()), &args));
        if a != o {
            diffs.push(format!("{what}:\n{}", line_diff("apache", &a, "ours", &o)));
        }
    }
    assert!(diffs.is_empty(), "transcripts differ:\n{}", diffs.join("\n"));
    // A raw client that skips SASL: the reply code and the close, as Apache's.
    for srv in [&*apache, &*ours] {
        let mut c = RawClient::connect(&srv.connect_string()).expect("connect");
        let r = c.call(op_code::EXISTS, &zookeeper::proto::proto::ExistsRequest { path: "/r".into(), watch: false }.to_bytes());
        assert_eq!(r.ok().map(|(h, _)| h.err), Some(-124), "{:?}", srv.kind());
        assert!(c.wait_closed(Duration::from_secs(3)), "{:?} closes", srv.kind());
    }
    assert!(ours.log_contents().contains("does not match with any of the expected authentication scheme [sasl], closing session."));

    // enforce.auth.enabled without schemes: neither starts.
    let bad = "-Dzookeeper.enforce.auth.enabled=true";
    let mut a = ApacheServer::spawn_standalone_with_jvm_args("", &[bad]);
    let mut o = OurServer::spawn_standalone("", &[bad]);
    let sa = a.wait_exit(Duration::from_secs(30)).expect("Apache exits");
    let so = o.wait_exit(Duration::from_secs(30)).expect("ours exits");
    assert_eq!(so.code(), sa.code(), "exit status");
    assert!(o.log_contents().contains("zookeeper.enforce.auth.enabled is true zookeeper.enforce.auth.schemes must be  configured."));
}
