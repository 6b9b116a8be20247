//! The DIGEST-MD5 SASL mechanism (RFC 2831) as ZooKeeper uses it: the JDK's
//! `DigestMD5Server` on the server (`Sasl.createSaslServer("DIGEST-MD5", "zookeeper",
//! "zk-sasl-md5", ...)`) and `DigestMD5Client` in the client. Only the `auth` quality of
//! protection: ZooKeeper never negotiates integrity or confidentiality layers. Pure
//! functions and small state machines; the connection threads carry the tokens.

use std::collections::HashMap;
use std::fmt::Write as _;

use md5::{Digest, Md5};

/// `ZooKeeperSaslServer`'s protocol and server name: the digest-uri is
/// `zookeeper/zk-sasl-md5` and the realm `zk-sasl-md5`.
pub const PROTOCOL: &str = "zookeeper";
pub const SERVER_NAME: &str = "zk-sasl-md5";

/// A failed exchange, worded as the JDK's `SaslException`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslError(pub String);

impl std::fmt::Display for SaslError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(msg: &str) -> SaslError {
    SaslError(format!("DIGEST-MD5: {msg}"))
}

/// Splits `k=v,k="quoted, \"v\"",...` into (lower-case key, value) pairs.
pub fn parse_directives(s: &str) -> Result<Vec<(String, String)>, SaslError> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let k0 = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(err("digest message format violation: directive without a value"));
        }
        let key = s[k0..i].trim().to_ascii_lowercase();
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(err("digest message format violation: unterminated quoted string")),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let Some(c) = b.get(i + 1) else {
                            return Err(err("digest message format violation: unterminated quoted string"));
                        };
                        value.push(*c);
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && b[i] != b',' {
                value.push(b[i]);
                i += 1;
            }
            while value.last().is_some_and(|c| c.is_ascii_whitespace()) {
                value.pop();
            }
        }
        let value = String::from_utf8(value).map_err(|_| err("digest message format violation: value is not UTF-8"))?;
        out.push((key, value));
    }
    Ok(out)
}

fn quote(v: &str) -> String {
    let mut o = String::with_capacity(v.len() + 2);
    o.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

fn hex(d: &[u8]) -> String {
    let mut s = String::with_capacity(d.len() * 2);
    for b in d {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The `response` (with `a2_method` "AUTHENTICATE") or `rspauth` (with "") value.
#[allow(clippy::too_many_arguments)]
pub fn response_value(
    username: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    nc: &str,
    qop: &str,
    digest_uri: &str,
    authzid: Option<&str>,
    a2_method: &str,
) -> String {
    let secret = Md5::digest(format!("{username}:{realm}:{password}").as_bytes());
    let mut a1 = secret.to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    if let Some(z) = authzid {
        a1.extend_from_slice(format!(":{z}").as_bytes());
    }
    let ha1 = hex(&Md5::digest(&a1));
    let ha2 = hex(&Md5::digest(format!("{a2_method}:{digest_uri}").as_bytes()));
    hex(&Md5::digest(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes()))
}

/// A random nonce: 30 bytes of the OS's randomness in base64, as the JDK's length.
pub fn random_nonce() -> String {
    use base64::Engine as _;
    use std::io::Read as _;
    let mut b = [0u8; 30];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_ok();
    if !filled {
        // No /dev/urandom: the clock and the process id still make it unique.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let seed = Md5::digest(format!("{t}:{}", std::process::id()).as_bytes());
        b[..16].copy_from_slice(&seed);
    }
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerStep {
    Challenge,
    Response,
    Complete,
    Failed,
}

/// `DigestMD5Server` for the `auth` qop: first an empty response gets the challenge,
/// then the client's digest-response is checked against the password the callback
/// (the JAAS `Server` section's `user_<name>` entries) has for its user.
pub struct DigestMd5Server {
    realm: String,
    digest_uri: String,
    nonce: String,
    step: ServerStep,
    authorization_id: Option<String>,
}

impl Default for DigestMd5Server {
    fn default() -> Self {
        DigestMd5Server::new(PROTOCOL, SERVER_NAME)
    }
}

impl DigestMd5Server {
    pub fn new(protocol: &str, server_name: &str) -> DigestMd5Server {
        DigestMd5Server {
            realm: server_name.to_owned(),
            digest_uri: format!("{protocol}/{server_name}"),
            nonce: random_nonce(),
            step: ServerStep::Challenge,
            authorization_id: None,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.step == ServerStep::Complete
    }

    pub fn authorization_id(&self) -> Option<&str> {
        self.authorization_id.as_deref()
    }

    /// `evaluateResponse`: the next token for the client, or why the exchange failed
    /// (after which the server is done with this client).
    pub fn evaluate_response(&mut self, response: &[u8], users: &HashMap<String, String>) -> Result<Vec<u8>, SaslError> {
        match self.step {
            ServerStep::Challenge => {
                // The client starts with an empty token (DIGEST-MD5 has no initial
                // response); the JDK's server answers the challenge whatever it got.
                // Its challenge leaves qop out: "auth", the default, is all it offers.
                let _ = response;
                self.step = ServerStep::Response;
                Ok(format!("realm={},nonce={},charset=utf-8,algorithm=md5-sess", quote(&self.realm), quote(&self.nonce)).into_bytes())
            }
            ServerStep::Response => {
                let r = self.check_response(response, users);
                self.step = if r.is_ok() { ServerStep::Complete } else { ServerStep::Failed };
                r
            }
            ServerStep::Complete | ServerStep::Failed => {
                Err(err("Authentication exchange already completed or failed"))
            }
        }
    }

    fn check_response(&mut self, response: &[u8], users: &HashMap<String, String>) -> Result<Vec<u8>, SaslError> {
        if response.len() > 4096 {
            return Err(err(&format!("Invalid digest response length. Got:  {} Expected < 4096", response.len())));
        }
        let text = std::str::from_utf8(response).map_err(|_| err("digest response format violation. Response is not UTF-8."))?;
        let d = parse_directives(text)?;
        let get = |k: &str| d.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let username = get("username").ok_or_else(|| err("digest response format violation. Missing username."))?;
        let realm = get("realm").unwrap_or("");
        if !realm.is_empty() && realm != self.realm {
            return Err(err(&format!("digest response format violation. Nonexistent realm: {realm}")));
        }
        let nonce = get("nonce").ok_or_else(|| err("digest response format violation. Missing nonce."))?;
        if nonce != self.nonce {
            return Err(err("digest response format violation. Mismatched nonce."));
        }
        let cnonce = get("cnonce").ok_or_else(|| err("digest response format violation. Missing cnonce."))?;
        let nc = get("nc").unwrap_or("");
        if nc != "00000001" {
            return Err(err(&format!("digest response format violation. Nonce count does not match: {nc}")));
        }
        let qop = get("qop").unwrap_or("auth");
        if qop != "auth" {
            return Err(err(&format!("digest response format violation. Invalid QOP: {qop}")));
        }
        let uri = get("digest-uri").ok_or_else(|| err("digest response format violation. Missing digest-uri."))?;
        if !uri.eq_ignore_ascii_case(&self.digest_uri) {
            return Err(err(&format!("digest response format violation. Mismatched URI: {uri}; expecting: {}", self.digest_uri)));
        }
        let client_response = get("response").ok_or_else(|| err("digest response format violation. Missing response."))?;
        let authzid = get("authzid").filter(|z| !z.is_empty());
        let Some(password) = users.get(username) else {
            // The callback finds no password: the JDK fails the same way.
            log::warn!("No password found for user: {username}");
            return Err(err(&format!("Cannot get password for {username}")));
        };
        let expected = response_value(username, realm, password, nonce, cnonce, nc, qop, uri, authzid, "AUTHENTICATE");
        if !expected.eq_ignore_ascii_case(client_response) {
            return Err(err("digest response format violation. Mismatched response."));
        }
        let authorization = authzid.unwrap_or(username);
        log::info!("Successfully authenticated client: authenticationID={username};  authorizationID={authorization}.");
        self.authorization_id = Some(authorization.to_owned());
        let rspauth = response_value(username, realm, password, nonce, cnonce, nc, qop, uri, authzid, "");
        Ok(format!("rspauth={rspauth}").into_bytes())
    }
}

/// `DigestMD5Client` for the `auth` qop, with the JAAS `Client` section's username and
/// password.
pub struct DigestMd5Client {
    username: String,
    password: String,
    digest_uri: String,
    expected_rspauth: Option<String>,
    complete: bool,
}

impl DigestMd5Client {
    pub fn new(username: &str, password: &str, protocol: &str, server_name: &str) -> DigestMd5Client {
        DigestMd5Client {
            username: username.to_owned(),
            password: password.to_owned(),
            digest_uri: format!("{protocol}/{server_name}"),
            expected_rspauth: None,
            complete: false,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// `evaluateChallenge`: the digest-response to the server's challenge, then the
    /// check of its `rspauth` (an empty token back).
    pub fn evaluate_challenge(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let text = std::str::from_utf8(challenge).map_err(|_| err("digest challenge is not UTF-8"))?;
        let d = parse_directives(text)?;
        let get = |k: &str| d.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if let Some(expected) = self.expected_rspauth.take() {
            let got = get("rspauth").ok_or_else(|| err("server response does not carry rspauth"))?;
            if !got.eq_ignore_ascii_case(&expected) {
                return Err(err("Server's rspauth value does not match what client expects"));
            }
            self.complete = true;
            return Ok(Vec::new());
        }
        let nonce = get("nonce").ok_or_else(|| err("digest challenge format violation: missing nonce"))?;
        if let Some(q) = get("qop") {
            if !q.split(',').any(|x| x.trim() == "auth") {
                return Err(err(&format!("No common protection layer between client and server: {q}")));
            }
        }
        let realm = get("realm").unwrap_or("");
        let cnonce = random_nonce();
        let nc = "00000001";
        let response =
            response_value(&self.username, realm, &self.password, nonce, &cnonce, nc, "auth", &self.digest_uri, None, "AUTHENTICATE");
        self.expected_rspauth =
            Some(response_value(&self.username, realm, &self.password, nonce, &cnonce, nc, "auth", &self.digest_uri, None, ""));
        let mut out = String::new();
        if get("charset").is_some_and(|c| c.eq_ignore_ascii_case("utf-8")) {
            out.push_str("charset=utf-8,");
        }
        let _ = write!(
            out,
            "username={},realm={},nonce={},nc={nc},cnonce={},digest-uri={},maxbuf=65536,response={response},qop=auth",
            quote(&self.username),
            quote(realm),
            quote(nonce),
            quote(&cnonce),
            quote(&self.digest_uri)
        );
        Ok(out.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 section 4's example (IMAP, chris / secret): response and rspauth.
    #[test]
    fn rfc_2831_example() {
        let value = |method: &str| {
            response_value(
                "chris",
                "elwood.innosoft.com",
                "secret",
                "OA6MG9tEQGm2hh",
                "OA6MHXh6VqTrRk",
                "00000001",
                "auth",
                "imap/elwood.innosoft.com",
                None,
                method,
            )
        };
        assert_eq!(value("AUTHENTICATE"), "d388dad90d4bbd760a152321f2143af7");
        assert_eq!(value(""), "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn client_and_server_agree_and_wrong_passwords_fail() {
        let users: HashMap<String, String> = [("bob".to_string(), "bobsecret".to_string())].into_iter().collect();
        let mut s = DigestMd5Server::default();
        let mut c = DigestMd5Client::new("bob", "bobsecret", PROTOCOL, SERVER_NAME);
        let challenge = s.evaluate_response(b"", &users).unwrap();
        let resp = c.evaluate_challenge(&challenge).unwrap();
        let rspauth = s.evaluate_response(&resp, &users).unwrap();
        assert!(s.is_complete());
        assert_eq!(s.authorization_id(), Some("bob"));
        assert!(c.evaluate_challenge(&rspauth).unwrap().is_empty());
        assert!(c.is_complete());

        let mut s = DigestMd5Server::default();
        let mut c = DigestMd5Client::new("bob", "wrong", PROTOCOL, SERVER_NAME);
        let challenge = s.evaluate_response(b"", &users).unwrap();
        let resp = c.evaluate_challenge(&challenge).unwrap();
        let e = s.evaluate_response(&resp, &users).unwrap_err();
        assert!(e.0.contains("Mismatched response"), "{e}");
        assert!(!s.is_complete());
        assert!(s.evaluate_response(&resp, &users).is_err(), "no second try");

        // Garbage and unknown users.
        let mut s = DigestMd5Server::default();
        s.evaluate_response(b"", &users).unwrap();
        assert!(s.evaluate_response(b"\xff\xfe garbage", &users).is_err());
        let mut s = DigestMd5Server::default();
        let ch = s.evaluate_response(b"", &users).unwrap();
        let mut c = DigestMd5Client::new("eve", "x", PROTOCOL, SERVER_NAME);
        let resp = c.evaluate_challenge(&ch).unwrap();
        assert!(s.evaluate_response(&resp, &users).is_err());
    }

    #[test]
    fn directives() {
        let d = parse_directives("realm=\"a\\\"b\",nonce=\"x,y\", qop=auth ,charset=utf-8").unwrap();
        assert_eq!(
            d,
            vec![
                ("realm".into(), "a\"b".into()),
                ("nonce".into(), "x,y".into()),
                ("qop".into(), "auth".into()),
                ("charset".into(), "utf-8".into())
            ]
        );
        assert!(parse_directives("realm=\"unterminated").is_err());
        assert!(parse_directives("novalue").is_err());
    }
}
