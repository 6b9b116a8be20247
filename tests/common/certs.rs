//! Certificates made per run with /usr/bin/openssl (package openssl) for the TLS tests:
//! a CA, certificates it signs, and PEM key stores (private key + certificate in one
//! file, as Apache 3.8 reads `ssl.keyStore.type=PEM`).

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        Certs { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `name.key`, `name.crt` and the key store `name.pem`, signed by `ca` (or
    /// self-signed), with the subject alternative names `san` (e.g.
    /// `DNS:localhost,IP:127.0.0.1`) on signed certificates.
    pub fn make(&self, name: &str, subject: &str, ca: Option<&str>, san: &str) {
        make_cert(self.dir.path(), name, subject, ca, san);
    }
}

pub fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("/usr/bin/openssl").args(args).current_dir(dir).output().expect("openssl (package openssl)");
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn make_cert(dir: &Path, name: &str, subject: &str, ca: Option<&str>, san: &str) {
    let key = format!("{name}.key");
    let crt = format!("{name}.crt");
    let ext = format!("{name}.ext");
    std::fs::write(dir.join(&ext), format!("subjectAltName={san}\n")).expect("san");
    match ca {
        None => openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &crt, "-days", "2", "-subj", subject]),
        Some(ca) => {
            let csr = format!("{name}.csr");
            openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject]);
            openssl(
                dir,
                &[
                    "x509", "-req", "-in", &csr, "-CA", &format!("{ca}.crt"), "-CAkey", &format!("{ca}.key"), "-CAcreateserial", "-out", &crt,
                    "-days", "2", "-extfile", &ext,
                ],
            );
        }
    }
    let pem = [std::fs::read(dir.join(&key)).expect("key"), std::fs::read(dir.join(&crt)).expect("crt")].concat();
    std::fs::write(dir.join(format!("{name}.pem")), pem).expect("pem");
}
