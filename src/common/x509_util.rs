//! `X509Util` / `ClientX509Util`: TLS settings from the `zookeeper.ssl.*` properties a
//! Java deployment sets (zoo.cfg's `ssl.*` keys become them), turned into a rustls
//! configuration; and the certificate subject as `X509AuthenticationProvider` names a
//! client (`X500Principal.getName()`, RFC 2253).
//!
//! Key and trust stores are PEM files (`ssl.keyStore.type=PEM`, or a `.pem` name) or
//! PKCS12 files (`PKCS12`, `.p12`/`.pfx`, keytool's default), as Apache 3.8 reads
//! them: the key store holds the private key and its certificate chain, the trust
//! store the CA certificates. JKS and BCFKS are refused with an error that names what
//! is supported.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::system_properties;

/// The client port's settings (`ClientX509Util`, prefix `zookeeper.ssl.`).
pub const CLIENT_PREFIX: &str = "zookeeper.ssl.";
/// The election and quorum ports' settings (`QuorumX509Util`, prefix
/// `zookeeper.ssl.quorum.`).
pub const QUORUM_PREFIX: &str = "zookeeper.ssl.quorum.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Need,
    Want,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslSettings {
    /// The property prefix, for messages that name a key as zoo.cfg spells it.
    pub prefix: String,
    pub key_store_location: Option<String>,
    pub key_store_type: Option<String>,
    /// `keyStore.password`, or the contents of `keyStore.passwordPath`.
    pub key_store_password: Option<String>,
    pub trust_store_location: Option<String>,
    pub trust_store_type: Option<String>,
    pub trust_store_password: Option<String>,
    /// `ciphersuites`: JDK names; None is the provider's defaults.
    pub cipher_suites: Option<Vec<String>>,
    pub client_auth: ClientAuth,
    pub protocol: String,
    pub enabled_protocols: Option<Vec<String>>,
    /// `hostnameVerification` (default true): the client checks the server's name; on
    /// the quorum ports the server also checks the connecting peer's address against
    /// its certificate (`QuorumX509Util.shouldVerifyClientHostname`).
    pub hostname_verification: bool,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl SslSettings {
    /// The settings under `prefix`; Err names a bad value.
    pub fn from_system_properties(prefix: &str) -> Result<SslSettings, String> {
        let get = |k: &str| non_empty(system_properties::get(&format!("{prefix}{k}")));
        let client_auth = match get("clientAuth").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("need") => ClientAuth::Need,
            Some("want") => ClientAuth::Want,
            Some("none") => ClientAuth::None,
            Some(other) => return Err(format!("Invalid {prefix}clientAuth value: {other} (need, want or none)")),
        };
        Ok(SslSettings {
            prefix: prefix.to_owned(),
            key_store_location: get("keyStore.location"),
            key_store_type: get("keyStore.type"),
            key_store_password: password(get("keyStore.password"), get("keyStore.passwordPath"), &format!("{prefix}keyStore.passwordPath"))?,
            trust_store_location: get("trustStore.location"),
            trust_store_type: get("trustStore.type"),
            trust_store_password: password(get("trustStore.password"), get("trustStore.passwordPath"), &format!("{prefix}trustStore.passwordPath"))?,
            cipher_suites: get("ciphersuites").map(|v| v.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect()),
            client_auth,
            // 3.8's default (X509Util.DEFAULT_PROTOCOL).
            protocol: get("protocol").unwrap_or_else(|| "TLSv1.2".into()),
            enabled_protocols: get("enabledProtocols").map(|v| v.split(',').map(|p| p.trim().to_owned()).collect()),
            hostname_verification: get("hostnameVerification").is_none_or(|v| !v.eq_ignore_ascii_case("false")),
        })
    }

    /// A key as zoo.cfg spells it (`ssl.quorum.keyStore.location`).
    pub fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix.strip_prefix("zookeeper.").unwrap_or(&self.prefix))
    }

    /// The rustls versions for `ssl.enabledProtocols`, else `ssl.protocol`.
    fn versions(&self) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
        let names: Vec<String> = match &self.enabled_protocols {
            Some(v) => v.clone(),
            None => vec![self.protocol.clone()],
        };
        let mut out = Vec::new();
        for n in names {
            match n.as_str() {
                "TLSv1.3" => out.push(&rustls::version::TLS13),
                "TLSv1.2" => out.push(&rustls::version::TLS12),
                "TLS" => out.extend([&rustls::version::TLS13, &rustls::version::TLS12]),
                other => return Err(format!("Unsupported TLS protocol {other} (TLSv1.2, TLSv1.3)")),
            }
        }
        Ok(out)
    }
}

/// `X509Util.getPasswordFromConfigPropertyOrFile`: the password property, else the
/// contents of the password file (trailing newline trimmed), else none.
fn password(value: Option<String>, path: Option<String>, key: &str) -> Result<Option<String>, String> {
    if value.is_some() {
        return Ok(value);
    }
    match path {
        None => Ok(None),
        Some(p) => std::fs::read_to_string(&p)
            .map(|t| Some(t.trim_end_matches(['\r', '\n']).to_owned()))
            .map_err(|e| format!("Failed to read password file {p} ({key}): {e}")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreType {
    Pem,
    Pkcs12,
}

/// A store type as upstream's `KeyStoreFileType.fromPropertyValueOrFileName` decides it:
/// the property, else the file's extension.
fn store_type(location: &str, declared: Option<&str>) -> Result<StoreType, String> {
    let t = declared.map(str::to_ascii_uppercase).unwrap_or_else(|| {
        let lower = location.to_ascii_lowercase();
        if lower.ends_with(".pem") {
            "PEM".into()
        } else if lower.ends_with(".p12") || lower.ends_with(".pfx") {
            "PKCS12".into()
        } else if lower.ends_with(".jks") {
            "JKS".into()
        } else if lower.ends_with(".bcfks") {
            "BCFKS".into()
        } else {
            String::new()
        }
    });
    match t.as_str() {
        "PEM" => Ok(StoreType::Pem),
        "PKCS12" => Ok(StoreType::Pkcs12),
        "" => Err(format!("Unable to auto-detect store file type from file name: {location}: set the type to PEM or PKCS12")),
        other => Err(format!(
            "{other} stores are not supported by this server ({location}): use PEM or PKCS12 (keytool -importkeystore -deststoretype PKCS12 converts one)"
        )),
    }
}

/// A PKCS12 file opened with its password (none: the empty one).
fn open_pkcs12(location: &str, password: Option<&str>) -> Result<p12_keystore::KeyStore, String> {
    let data = std::fs::read(location).map_err(|e| format!("Failed to load {location}: {e}"))?;
    p12_keystore::KeyStore::from_pkcs12(&data, password.unwrap_or("")).map_err(|e| format!("Failed to load {location}: {e} (wrong password?)"))
}

/// The key store: the private key and its certificate chain.
fn load_key_store(location: &str, declared: Option<&str>, password: Option<&str>) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    match store_type(location, declared)? {
        StoreType::Pem => {
            let chain = load_pem_certs(location)?;
            let key = PrivateKeyDer::from_pem_file(location).map_err(|e| format!("Failed to load the private key of {location}: {e}"))?;
            Ok((chain, key))
        }
        StoreType::Pkcs12 => {
            let ks = open_pkcs12(location, password)?;
            let (_, chain) = ks.private_key_chain().ok_or_else(|| format!("Failed to load {location}: it holds no private key entry"))?;
            let certs: Vec<CertificateDer<'static>> = chain.chain().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
            if certs.is_empty() {
                return Err(format!("Failed to load {location}: its private key has no certificate"));
            }
            let key = PrivateKeyDer::try_from(chain.key().to_vec()).map_err(|e| format!("Failed to load the private key of {location}: {e}"))?;
            Ok((certs, key))
        }
    }
}

/// The trust store's certificates (a PKCS12 key entry's chain counts too, as a JDK
/// trust manager reads a key store given as trust store).
fn load_trust_store(location: &str, declared: Option<&str>, password: Option<&str>) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = match store_type(location, declared)? {
        StoreType::Pem => return load_pem_certs(location),
        StoreType::Pkcs12 => {
            let ks = open_pkcs12(location, password)?;
            let mut out = Vec::new();
            for (_, e) in ks.entries() {
                match e {
                    p12_keystore::KeyStoreEntry::Certificate(c) => out.push(CertificateDer::from(c.as_der().to_vec())),
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(k) => out.extend(k.chain().iter().map(|c| CertificateDer::from(c.as_der().to_vec()))),
                    _ => {}
                }
            }
            out
        }
    };
    if certs.is_empty() {
        return Err(format!("Failed to load {location}: no certificate in it"));
    }
    Ok(certs)
}

fn load_pem_certs(location: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(location)
        .map_err(|e| format!("Failed to load {location}: {e}"))?
        .collect();
    let certs = certs.map_err(|e| format!("Failed to load {location}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("Failed to load {location}: no certificate in it"));
    }
    Ok(certs)
}

/// The ring provider, with only the cipher suites `ciphersuites` names (JDK names:
/// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, `TLS_AES_128_GCM_SHA256`).
fn provider(s: &SslSettings) -> Result<Arc<rustls::crypto::CryptoProvider>, String> {
    // ring: no C toolchain beyond cc. It has no post-quantum key exchange, which the
    // Java 17 peers this talks to do not offer either.
    #[allow(deprecated)]
    let mut p = rustls::crypto::ring::default_provider();
    if let Some(names) = &s.cipher_suites {
        let wanted: Vec<_> = p.cipher_suites.iter().filter(|cs| names.iter().any(|n| *n == jdk_suite_name(cs.suite()))).copied().collect();
        if wanted.is_empty() {
            let known: Vec<String> = p.cipher_suites.iter().map(|cs| jdk_suite_name(cs.suite())).collect();
            return Err(format!("None of the cipher suites in {} ({}) is supported; supported: {}", s.key("ciphersuites"), names.join(","), known.join(",")));
        }
        p.cipher_suites = wanted;
    }
    Ok(Arc::new(p))
}

/// A suite as a JDK names it (TLS 1.3 suites without rustls's `TLS13_`).
pub fn jdk_suite_name(suite: rustls::CipherSuite) -> String {
    let n = format!("{suite:?}");
    match n.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => n,
    }
}

/// The server side of a TLS port (`createSSLContextAndOptions` + the Netty
/// `SslContext`): key store, trust store, client authentication, protocols.
pub fn server_config(s: &SslSettings) -> Result<Arc<rustls::ServerConfig>, String> {
    let key_location = s.key_store_location.as_deref().ok_or_else(|| format!("{} is not set: a TLS port needs a key store", s.key("keyStore.location")))?;
    let (chain, key) = load_key_store(key_location, s.key_store_type.as_deref(), s.key_store_password.as_deref())?;
    let provider = provider(s)?;
    let versions = s.versions()?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS protocols: {e}"))?;
    let builder = match (s.client_auth, s.trust_store_location.as_deref()) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (auth, Some(trust)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in load_trust_store(trust, s.trust_store_type.as_deref(), s.trust_store_password.as_deref())? {
                roots.add(c).map_err(|e| format!("Failed to load {trust}: {e}"))?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if auth == ClientAuth::Want { v.allow_unauthenticated() } else { v };
            builder.with_client_cert_verifier(v.build().map_err(|e| format!("client certificate verifier: {e}"))?)
        }
        (_, None) => {
            return Err(format!(
                "{} is not set: client certificates cannot be verified (set {}=none to accept clients without one)",
                s.key("trustStore.location"),
                s.key("clientAuth")
            ))
        }
    };
    let cfg = builder.with_single_cert(chain, key).map_err(|e| format!("the key store's key and certificate: {e}"))?;
    Ok(Arc::new(cfg))
}

/// Whether the client connects with TLS (`zookeeper.client.secure`).
pub fn client_secure() -> bool {
    system_properties::get("zookeeper.client.secure").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `ZKTrustManager` on the connecting side: the server's chain against the trust store,
/// then, with `hostnameVerification`, its certificate against the address connected
/// to — an IP SAN, else the name that address resolves back to, as a JDK peer accepts.
#[derive(Debug)]
struct ZkServerVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    hostname_verification: bool,
}

impl rustls::client::danger::ServerCertVerifier for ZkServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                let by_reverse_name = match server_name {
                    rustls::pki_types::ServerName::IpAddress(ip) => cert_names_address(end_entity, std::net::IpAddr::from(*ip)),
                    _ => false,
                };
                if !self.hostname_verification || by_reverse_name {
                    Ok(rustls::client::danger::ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
                }
            }
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client side (`ClientX509Util` with `zookeeper.client.secure=true`): the trust
/// store checks the server, the key store, if any, is the client certificate.
pub fn client_config(s: &SslSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = provider(s)?;
    let trust = s
        .trust_store_location
        .as_deref()
        .ok_or_else(|| format!("{}trustStore.location is not set: the server's certificate cannot be verified", s.prefix))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in load_trust_store(trust, s.trust_store_type.as_deref(), s.trust_store_password.as_deref())? {
        roots.add(c).map_err(|e| format!("Failed to load {trust}: {e}"))?;
    }
    // Clients may speak TLS 1.3 as well unless told otherwise.
    let versions = match &s.enabled_protocols {
        Some(_) => s.versions()?,
        None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("server certificate verifier: {e}"))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS protocols: {e}"))?;
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ZkServerVerifier { inner: verifier, hostname_verification: s.hostname_verification }));
    let cfg = match s.key_store_location.as_deref() {
        Some(k) => {
            let (chain, key) = load_key_store(k, s.key_store_type.as_deref(), s.key_store_password.as_deref())?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("the key store's key and certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// `ZKTrustManager.performHostVerification`: whether a certificate names `ip` — as an
/// IP SAN, else by the host name `ip` resolves back to (`InetAddress.getHostName`).
pub fn cert_names_address(cert_der: &[u8], ip: std::net::IpAddr) -> bool {
    use rustls::pki_types::ServerName;
    let der = CertificateDer::from(cert_der);
    let Ok(parsed) = rustls::server::ParsedCertificate::try_from(&der) else { return false };
    if rustls::client::verify_server_name(&parsed, &ServerName::IpAddress(ip.into())).is_ok() {
        return true;
    }
    reverse_lookup(ip).and_then(|h| ServerName::try_from(h).ok()).is_some_and(|n| rustls::client::verify_server_name(&parsed, &n).is_ok())
}

/// The host name `ip` resolves back to, if any.
fn reverse_lookup(ip: std::net::IpAddr) -> Option<String> {
    let sa = socket2::SockAddr::from(std::net::SocketAddr::new(ip, 0));
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `sa` is a valid socket address of the length passed, `host` a writable
    // buffer of the length passed; no service name is asked for.
    let rc = unsafe {
        libc::getnameinfo(sa.as_ptr().cast(), sa.len(), host.as_mut_ptr(), host.len() as libc::socklen_t, std::ptr::null_mut(), 0, libc::NI_NAMEREQD)
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo leaves a NUL-terminated string in `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    name.to_str().ok().map(str::to_owned)
}

// ---------------------------------------------------------------- X.500 names --

/// A DER element: (tag, content, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (l0 as usize, rest)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn oid_string(b: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate() {
        v = (v << 7) | (byte & 0x7f) as u64;
        if byte & 0x80 == 0 {
            if parts.is_empty() && i < b.len() {
                let first = if v < 40 { 0 } else if v < 80 { 1 } else { 2 };
                parts.push(first);
                parts.push(v - first * 40);
            } else {
                parts.push(v);
            }
            v = 0;
        }
    }
    parts.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(".")
}

/// The keywords `X500Principal.getName()` (RFC 2253) uses.
fn attribute_keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 2253 escaping of an attribute value.
fn escape_value(v: &str) -> String {
    let mut o = String::new();
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i + 1 == n && c == ' ');
        if special {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// The certificate's subject as `X500Principal.getName()` (RFC 2253): the RDNs in
/// reverse order, `TYPE=value` with the known keywords, other types as dotted OIDs with
/// the DER value in hex. None when the certificate does not parse.
pub fn subject_rfc2253(cert_der: &[u8]) -> Option<String> {
    let (_, cert, _) = der(cert_der)?; // Certificate
    let (_, tbs, _) = der(cert)?; // TBSCertificate
    let mut rest = tbs;
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject
    let (tag, _, r) = der(rest)?;
    rest = if tag == 0xa0 { der(r)?.2 } else { r }; // serial skipped
    let (_, _, r) = der(rest)?; // signature
    let (_, _, r) = der(r)?; // issuer
    let (_, _, r) = der(r)?; // validity
    let (_, subject, _) = der(r)?;
    let mut rdns: Vec<String> = Vec::new();
    let mut s = subject;
    while !s.is_empty() {
        let (_, set, r) = der(s)?;
        s = r;
        let mut atvs: Vec<String> = Vec::new();
        let mut a = set;
        while !a.is_empty() {
            let (_, atv, r) = der(a)?;
            a = r;
            let (_, oid, vrest) = der(atv)?;
            let oid = oid_string(oid);
            let (vtag, value, _) = der(vrest)?;
            let text = match attribute_keyword(&oid) {
                Some(k) if matches!(vtag, 0x0c | 0x13 | 0x16 | 0x14 | 0x1e) => {
                    let v = if vtag == 0x1e {
                        let u: Vec<u16> = value.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
                        String::from_utf16_lossy(&u)
                    } else {
                        String::from_utf8_lossy(value).into_owned()
                    };
                    format!("{k}={}", escape_value(&v))
                }
                _ => {
                    let whole = &vrest[..vrest.len()];
                    let hex: String = whole.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{oid}=#{hex}")
                }
            };
            atvs.push(text);
        }
        rdns.push(atvs.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_oids() {
        assert_eq!(escape_value("a,b"), "a\\,b");
        assert_eq!(escape_value(" x "), "\\ x\\ ");
        assert_eq!(oid_string(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(oid_string(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19]), "0.9.2342.19200300.100.1.25");
    }

    #[test]
    fn store_types() {
        assert_eq!(store_type("/a/b.pem", None), Ok(StoreType::Pem));
        assert_eq!(store_type("/a/b", Some("PEM")), Ok(StoreType::Pem));
        assert_eq!(store_type("/a/b.p12", None), Ok(StoreType::Pkcs12));
        assert_eq!(store_type("/a/b.pfx", None), Ok(StoreType::Pkcs12));
        assert_eq!(store_type("/a/b.pem", Some("pkcs12")), Ok(StoreType::Pkcs12));
        assert!(store_type("/a/b.jks", None).unwrap_err().contains("JKS stores are not supported"));
        assert!(store_type("/a/b", Some("BCFKS")).unwrap_err().contains("use PEM or PKCS12"));
        assert!(store_type("/a/b", None).is_err());
    }
}
