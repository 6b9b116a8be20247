//! TLS on the client port (`secureClientPort`, the `ssl.*` keys with PEM stores, client
//! certificates and the `x509` scheme) side by side with Apache 3.8: the same zoo.cfg
//! and certificates on both, Apache's Java zkCli over TLS (its Netty client, as
//! `CLIENT_JVMFLAGS` would set it) against both, and bad input on the secure port.
//! Certificates are made per run with openssl (a CA, a server certificate for
//! 127.0.0.1, a client certificate for `CN=bob,O=zk`, and an untrusted one).
//!
//! Run: `cargo test --test tls -- --nocapture`.

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::certs::Certs;
use common::{describe_output, free_port, java_client_command_with, line_diff, run_with_timeout, ApacheServer, OurServer, TestServer};

const SAN: &str = "DNS:localhost,IP:127.0.0.1";

fn certs() -> Certs {
    let c = Certs::new();
    c.make("ca", "/CN=zk-test-ca", None, SAN);
    c.make("server", "/CN=localhost", Some("ca"), SAN);
    c.make("bob", "/CN=bob/O=zk", Some("ca"), SAN);
    c.make("rogue-ca", "/CN=rogue-ca", None, SAN);
    c.make("mallory", "/CN=mallory/O=zk", Some("rogue-ca"), SAN);
    c
}

/// zoo.cfg lines of a secure port (Apache needs the Netty factory for it).
fn secure_cfg(c: &Certs, port: u16, extra: &str) -> String {
    format!(
        "secureClientPort={port}\nsecureClientPortAddress=127.0.0.1\n\
         serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         ssl.keyStore.location={}\nssl.keyStore.type=PEM\n\
         ssl.trustStore.location={}\nssl.trustStore.type=PEM\n{extra}",
        c.path("server.pem").display(),
        c.path("ca.crt").display()
    )
}

/// Apache's zkCli over TLS with `keystore` as its certificate (None: no certificate).
fn tls_zkcli(c: &Certs, port: u16, keystore: Option<&str>, args: &[&str]) -> String {
    let mut jvm = vec![
        "-Dzookeeper.client.secure=true".to_string(),
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".to_string(),
        format!("-Dzookeeper.ssl.trustStore.location={}", c.path("ca.crt").display()),
        "-Dzookeeper.ssl.trustStore.type=PEM".to_string(),
    ];
    if let Some(k) = keystore {
        jvm.push(format!("-Dzookeeper.ssl.keyStore.location={}", c.path(k).display()));
        jvm.push("-Dzookeeper.ssl.keyStore.type=PEM".to_string());
    }
    let jvm: Vec<&str> = jvm.iter().map(String::as_str).collect();
    let mut cmd = java_client_command_with("org.apache.zookeeper.ZooKeeperMain", &jvm);
    cmd.args(["-server", &format!("127.0.0.1:{port}"), "-timeout", "5000", "-waitforconnection"]).args(args);
    let o = run_with_timeout(cmd, b"", Duration::from_secs(60));
    eprintln!("[tls] port {port} {keystore:?} {args:?}: {}", describe_output("zkCli", &o).lines().take(14).collect::<Vec<_>>().join(" | "));
    // The shell's own output: stdout, and stderr without the client's log lines.
    let mut out = String::from_utf8_lossy(&o.stdout).replace(&port.to_string(), "<PORT>");
    for l in String::from_utf8_lossy(&o.stderr).lines() {
        let log = l.starts_with('[') || l.starts_with('\t') || l.split_whitespace().next().is_some_and(|w| w.ends_with("Exception:") || w.ends_with("Exception"));
        if !log && !l.trim().is_empty() {
            out.push_str(&l.replace(&port.to_string(), "<PORT>"));
            out.push('\n');
        }
    }
    // How often the client retried in its 5 s depends on timing; the alert a refused
    // certificate gets is rustls' (certificate_required) where the JDK says
    // bad_certificate: both refuse the handshake, which is what is compared.
    let mut lines: Vec<String> = Vec::new();
    for l in out.lines() {
        let l = match l.find("Received fatal alert: ") {
            Some(i) => format!("{}Received fatal alert: <alert>", &l[..i]),
            None => l.to_string(),
        };
        if lines.last() != Some(&l) {
            lines.push(l);
        }
    }
    lines.join("\n")
}

struct Pair {
    apache: ApacheServer,
    ours: OurServer,
    apache_secure: u16,
    ours_secure: u16,
}

fn start_pair(c: &Certs, extra: &str) -> Pair {
    common::require_apache();
    let (ap, op) = (free_port(), free_port());
    let apache = ApacheServer::start_standalone(&secure_cfg(c, ap, extra));
    let ours = OurServer::start_standalone(&secure_cfg(c, op, extra), &[]);
    Pair { apache, ours, apache_secure: ap, ours_secure: op }
}

#[test]
fn java_shell_over_tls_gets_apaches_answers() {
    let c = certs();
    let p = start_pair(&c, "");
    assert!(p.ours.log_contents().contains("(secure)"), "{}", p.ours.log_contents());
    let steps: Vec<(&str, Option<&str>, Vec<&str>)> = vec![
        ("bob creates", Some("bob.pem"), vec!["create", "/t", "tls-data"]),
        // The shell splits ACLs at commas, so the DN goes in through the auth scheme:
        // every authenticated id of the session (x509, not ip).
        ("bob restricts", Some("bob.pem"), vec!["setAcl", "/t", "auth::cdrwa"]),
        ("bob reads the ACL", Some("bob.pem"), vec!["getAcl", "/t"]),
        ("bob reads", Some("bob.pem"), vec!["get", "/t"]),
        ("bob is", Some("bob.pem"), vec!["whoami"]),
        ("a client without a certificate", None, vec!["get", "/t"]),
        ("an untrusted certificate", Some("mallory.pem"), vec!["get", "/t"]),
    ];
    let mut diffs = Vec::new();
    for (what, ks, args) in &steps {
        let a = tls_zkcli(&c, p.apache_secure, *ks, args);
        let o = tls_zkcli(&c, p.ours_secure, *ks, args);
        if a != o {
            diffs.push(format!("{what}:\n{}", line_diff("apache", &a, "ours", &o)));
        }
        if *what == "bob reads" {
            assert!(o.contains("tls-data"), "{o}");
        }
        if *what == "bob is" {
            assert!(o.contains("x509: O=zk,CN=bob"), "{o}");
        }
        if *what == "bob reads the ACL" {
            // The shell prints commas of an id as %2C.
            assert!(o.contains("'x509,'O=zk%2CCN=bob"), "{o}");
        }
    }
    assert!(diffs.is_empty(), "transcripts differ:\n{}", diffs.join("\n"));
    // The plain port serves the same tree; bob's ACL keeps plain clients out on both.
    for (who, s) in [("apache", &*p.apache), ("ours", &*p.ours)] {
        let o = common::run_java_zkcli(&s.connect_string(), &["get", "/t"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("Insufficient permission : /t"), "{who}: {}", describe_output("plain get", &o));
    }
    assert!(p.ours.log_contents().contains("Authenticated Id 'O=zk,CN=bob' for Scheme 'x509'"));
    // `conf` names the secure port on both.
    assert!(p.apache.four_letter("conf").contains(&format!("secureClientPort={}", p.apache_secure)));
    assert!(p.ours.four_letter("conf").contains(&format!("secureClientPort={}", p.ours_secure)));
}

/// Whether the server closes a connection that sent `bytes` (within 20 s: both close an
/// unfinished handshake after Netty's 10 s handshake timeout, which a 10 s wait raced).
fn closes_after(port: u16, bytes: &[u8]) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = s.write_all(bytes);
    let mut sink = [0u8; 4096];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn bad_input_on_the_secure_port_is_closed_like_apache() {
    let c = certs();
    let p = start_pair(&c, "");
    // A plaintext ConnectRequest, garbage, a truncated ClientHello, a 4lw in clear.
    let connect = {
        let mut b = Vec::new();
        b.extend_from_slice(&45i32.to_be_bytes());
        b.extend_from_slice(&[0u8; 45]);
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("plaintext ConnectRequest", connect),
        ("garbage", b"\x00\xff garbage that is no TLS record at all \x17\x03".to_vec()),
        ("truncated ClientHello", vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
        ("ruok in clear", b"ruok".to_vec()),
    ];
    for (what, bytes) in &cases {
        let a = closes_after(p.apache_secure, bytes);
        let o = closes_after(p.ours_secure, bytes);
        assert_eq!(o, a, "{what}: Apache closes {a}, ours {o}");
    }
    // Nothing else broke: bob still gets in over TLS, the plain port answers.
    for (s, port) in [(&*p.apache as &TestServer, p.apache_secure), (&*p.ours, p.ours_secure)] {
        assert_eq!(s.four_letter("ruok"), "imok");
        let out = tls_zkcli(&c, port, Some("bob.pem"), &["ls", "/"]);
        assert!(out.contains("[zookeeper]"), "{out}");
    }
}

#[test]
fn bad_key_stores_stop_the_start() {
    let c = certs();
    let port = free_port();
    let bad = |extra: &str| -> (Option<i32>, String) {
        let cfg = format!(
            "secureClientPort={port}\nsecureClientPortAddress=127.0.0.1\n{extra}ssl.trustStore.location={}\nssl.trustStore.type=PEM\n",
            c.path("ca.crt").display()
        );
        let mut s = OurServer::spawn_standalone(&cfg, &[]);
        let st = s.wait_exit(Duration::from_secs(20)).expect("our server should exit");
        (st.code(), s.log_contents())
    };
    let (code, log) = bad("ssl.keyStore.location=/nonexistent/server.pem\nssl.keyStore.type=PEM\n");
    assert_eq!(code, Some(1));
    assert!(log.contains("Failed to load /nonexistent/server.pem"), "{log}");
    let (code, log) = bad(&format!("ssl.keyStore.location={}\nssl.keyStore.type=JKS\n", c.path("server.pem").display()));
    assert_eq!(code, Some(1));
    assert!(log.contains("JKS stores are not supported") && log.contains("use PEM or PKCS12"), "{log}");
    // A PEM file declared PKCS12, and a PKCS12 store with the wrong password.
    let (code, log) = bad(&format!("ssl.keyStore.location={}\nssl.keyStore.type=PKCS12\n", c.path("server.pem").display()));
    assert_eq!(code, Some(1));
    assert!(log.contains(&format!("Failed to load {}", c.path("server.pem").display())), "{log}");
    make_pkcs12_stores(&c);
    let (code, log) = bad(&format!("ssl.keyStore.location={}\nssl.keyStore.password=wrong\n", c.path("server.p12").display()));
    assert_eq!(code, Some(1));
    assert!(log.contains("wrong password?"), "{log}");
    let (code, log) = bad("");
    assert_eq!(code, Some(1));
    assert!(log.contains("ssl.keyStore.location is not set"), "{log}");
    let (code, log) = bad(&format!("ssl.keyStore.location={}\nssl.keyStore.type=PEM\nssl.clientAuth=sometimes\n", c.path("server.pem").display()));
    assert_eq!(code, Some(1));
    assert!(log.contains("clientAuth"), "{log}");
}

/// `client.portUnification=true`: the plain client port takes TLS and plain clients
/// alike (Apache's Netty `DualModeSslHandler`), four-letter words included. The Java
/// shell over TLS and in plain text gets the same answers from both servers.
#[test]
fn client_port_unification_takes_tls_and_plain_like_apache() {
    let c = certs();
    common::require_apache();
    // Apache 3.8.0 registers the x509 provider for a unified port only after its
    // ProviderRegistry is initialised ("X509 Auth provider not found: x509", every
    // client certificate refused), unless zoo.cfg names it, as here. Ours registers x509
    // as on the secure port either way.
    let cfg = format!(
        "client.portUnification=true\nserverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n\
         ssl.keyStore.location={}\nssl.keyStore.type=PEM\nssl.trustStore.location={}\nssl.trustStore.type=PEM\n",
        c.path("server.pem").display(),
        c.path("ca.crt").display()
    );
    let apache = ApacheServer::start_standalone(&cfg);
    let ours = OurServer::start_standalone(&cfg, &[]);
    assert!(ours.log_contents().contains("client.portUnification"), "{}", ours.log_contents());
    let port = |s: &TestServer| -> u16 { s.connect_string().rsplit(':').next().and_then(|p| p.parse().ok()).expect("port") };
    let (ap, op) = (port(&*apache), port(&*ours));
    for args in [vec!["create", "/u", "unified"], vec!["get", "/u"], vec!["whoami"]] {
        let (a, o) = (tls_zkcli(&c, ap, Some("bob.pem"), &args), tls_zkcli(&c, op, Some("bob.pem"), &args));
        assert_eq!(a, o, "TLS {args:?}:\n{}", line_diff("apache", &a, "ours", &o));
    }
    let o = tls_zkcli(&c, op, Some("bob.pem"), &["whoami"]);
    assert!(o.contains("x509: O=zk,CN=bob"), "{o}");
    for (who, s) in [("apache", &*apache), ("ours", &*ours)] {
        let plain = common::run_java_zkcli(&s.connect_string(), &["get", "/u"]);
        assert!(String::from_utf8_lossy(&plain.stdout).contains("unified"), "{who} plain: {}", describe_output("zkCli", &plain));
        let ruok = common::four_letter_word(&s.connect_string(), "ruok", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{who} ruok: {e}"));
        assert_eq!(ruok, "imok", "{who}");
    }
}

/// The PKCS12 stores a Java deployment makes with keytool (the JDK's own algorithms):
/// `server.p12` and `bob.p12` (key + chain), `trust.p12` (the CA as a trusted entry),
/// all with the password `s3cret`, also in `pass.txt` for `passwordPath`.
fn make_pkcs12_stores(c: &Certs) {
    let keytool = |args: &[&str]| {
        let o = Command::new("keytool").args(args).current_dir(c.dir.path()).output().expect("keytool (JDK)");
        assert!(o.status.success(), "keytool {args:?}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    };
    for name in ["server", "bob"] {
        if c.path(&format!("{name}.p12")).exists() {
            continue;
        }
        let raw = format!("{name}-openssl.p12");
        common::certs::openssl(
            c.dir.path(),
            &["pkcs12", "-export", "-in", &format!("{name}.crt"), "-inkey", &format!("{name}.key"), "-certfile", "ca.crt", "-name", name, "-out", &raw, "-passout", "pass:s3cret"],
        );
        keytool(&[
            "-importkeystore", "-noprompt", "-srckeystore", &raw, "-srcstoretype", "PKCS12", "-srcstorepass", "s3cret", "-destkeystore", &format!("{name}.p12"),
            "-deststoretype", "PKCS12", "-deststorepass", "s3cret",
        ]);
    }
    if !c.path("trust.p12").exists() {
        keytool(&["-importcert", "-noprompt", "-alias", "ca", "-file", "ca.crt", "-keystore", "trust.p12", "-storetype", "PKCS12", "-storepass", "s3cret"]);
    }
    std::fs::write(c.path("pass.txt"), "s3cret\n").expect("pass.txt");
}

/// keytool's PKCS12 stores on both servers (the trust store's password from a file on
/// ours, `passwordPath`), the Java shell with a PKCS12 client certificate against
/// both, and our zk-cli with PKCS12 stores against Apache: the same transcripts.
#[test]
fn pkcs12_stores_made_by_keytool_work_like_apache() {
    let c = certs();
    make_pkcs12_stores(&c);
    common::require_apache();
    let stores = |port: u16, trust_password: &str| {
        format!(
            "secureClientPort={port}\nsecureClientPortAddress=127.0.0.1\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location={}\nssl.keyStore.type=PKCS12\nssl.keyStore.password=s3cret\n\
             ssl.trustStore.location={}\nssl.trustStore.type=PKCS12\n{trust_password}\n",
            c.path("server.p12").display(),
            c.path("trust.p12").display()
        )
    };
    let (ap, op) = (free_port(), free_port());
    let _apache = ApacheServer::start_standalone(&stores(ap, "ssl.trustStore.password=s3cret"));
    let _ours = OurServer::start_standalone(&stores(op, &format!("ssl.trustStore.passwordPath={}", c.path("pass.txt").display())), &[]);
    let java = |port: u16, args: &[&str]| {
        let jvm = [
            "-Dzookeeper.client.secure=true".to_string(),
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".to_string(),
            format!("-Dzookeeper.ssl.trustStore.location={}", c.path("trust.p12").display()),
            "-Dzookeeper.ssl.trustStore.password=s3cret".to_string(),
            format!("-Dzookeeper.ssl.keyStore.location={}", c.path("bob.p12").display()),
            "-Dzookeeper.ssl.keyStore.password=s3cret".to_string(),
        ];
        let jvm: Vec<&str> = jvm.iter().map(String::as_str).collect();
        let mut cmd = java_client_command_with("org.apache.zookeeper.ZooKeeperMain", &jvm);
        cmd.args(["-server", &format!("127.0.0.1:{port}"), "-timeout", "5000", "-waitforconnection"]).args(args);
        let o = run_with_timeout(cmd, b"", Duration::from_secs(60));
        String::from_utf8_lossy(&o.stdout).replace(&port.to_string(), "<PORT>")
    };
    for args in [vec!["create", "/p12", "pkcs12-data"], vec!["get", "/p12"], vec!["whoami"]] {
        let (a, o) = (java(ap, &args), java(op, &args));
        assert_eq!(a, o, "{args:?}:\n{}", line_diff("apache", &a, "ours", &o));
        if args[0] == "get" {
            assert!(o.contains("pkcs12-data"), "{o}");
        }
        if args[0] == "whoami" {
            assert!(o.contains("x509: O=zk,CN=bob"), "{o}");
        }
    }
    // Our zk-cli with PKCS12 stores against Apache.
    let o = Command::new(env!("CARGO_BIN_EXE_zk-cli"))
        .env_remove("RUST_LOG")
        .arg("-Dzookeeper.client.secure=true")
        .arg(format!("-Dzookeeper.ssl.trustStore.location={}", c.path("trust.p12").display()))
        .arg("-Dzookeeper.ssl.trustStore.password=s3cret")
        .arg(format!("-Dzookeeper.ssl.keyStore.location={}", c.path("bob.p12").display()))
        .arg("-Dzookeeper.ssl.keyStore.password=s3cret")
        .args(["-server", &format!("127.0.0.1:{ap}"), "get", "/p12"])
        .output()
        .expect("zk-cli");
    assert!(String::from_utf8_lossy(&o.stdout).contains("pkcs12-data"), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

/// Our zk-cli with upstream's client properties (`-Dzookeeper.client.secure=true` and
/// the `zookeeper.ssl.*` stores, as CLIENT_JVMFLAGS carries them) against Apache's
/// secure port and ours: what the Java shell prints.
#[test]
fn our_zkcli_over_tls_prints_what_the_java_shell_prints() {
    let c = certs();
    let p = start_pair(&c, "");
    let ours_cli = |port: u16, keystore: Option<&str>, args: &[&str]| -> (Option<i32>, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zk-cli"));
        cmd.env_remove("RUST_LOG").env("TZ", "UTC");
        cmd.arg("-Dzookeeper.client.secure=true")
            .arg(format!("-Dzookeeper.ssl.trustStore.location={}", c.path("ca.crt").display()))
            .arg("-Dzookeeper.ssl.trustStore.type=PEM");
        if let Some(k) = keystore {
            cmd.arg(format!("-Dzookeeper.ssl.keyStore.location={}", c.path(k).display())).arg("-Dzookeeper.ssl.keyStore.type=PEM");
        }
        cmd.args(["-server", &format!("127.0.0.1:{port}"), "-timeout", "5000", "-waitforconnection"]).args(args);
        let o = run_with_timeout(cmd, b"", Duration::from_secs(60));
        eprintln!("[tls] zk-cli port {port} {keystore:?} {args:?}: {}", describe_output("zk-cli", &o).lines().take(14).collect::<Vec<_>>().join(" | "));
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)).replace(&port.to_string(), "<PORT>");
        (o.status.code(), text)
    };
    let mut diffs = Vec::new();
    for port in [p.apache_secure, p.ours_secure] {
        for (what, ks, args) in [
            ("create", Some("bob.pem"), vec!["create", "/z-SHELL", "over-tls"]),
            ("get", Some("bob.pem"), vec!["get", "/z-java"]),
            ("whoami", Some("bob.pem"), vec!["whoami"]),
            ("ls", Some("bob.pem"), vec!["ls", "/z-java"]),
        ] {
            // Each shell creates its own node; both read the Java shell's.
            let with = |shell: &str| args.iter().map(|a| a.replace("SHELL", shell)).collect::<Vec<_>>();
            let (ja, oa) = (with("java"), with("ours"));
            let java = tls_zkcli(&c, port, ks, &ja.iter().map(String::as_str).collect::<Vec<_>>()).replace("/z-java", "/z-X");
            let (code, mine) = ours_cli(port, ks, &oa.iter().map(String::as_str).collect::<Vec<_>>());
            let mine = mine.replace("/z-ours", "/z-X");
            assert_eq!(code, Some(0), "{what} on {port}: {mine}");
            let norm = |t: &str| t.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n");
            if norm(&java) != norm(&mine) {
                diffs.push(format!("port {port} {what}:\n{}", line_diff("java zkCli", &norm(&java), "zk-cli", &norm(&mine))));
            }
        }
        // Without a certificate the server refuses the handshake: no session, a failed command.
        let (code, mine) = ours_cli(port, None, &["get", "/z-java"]);
        assert_ne!(code, Some(0), "no certificate on {port}: {mine}");
        assert!(!mine.contains("over-tls"), "{mine}");
    }
    assert!(diffs.is_empty(), "zk-cli and the Java shell differ:\n{}", diffs.join("\n"));
}
