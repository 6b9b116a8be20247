//! The JAAS login configuration file of a Java deployment
//! (`-Djava.security.auth.login.config=FILE`, the JDK's `ConfigFile` syntax):
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! Client { org.apache.zookeeper.server.auth.DigestLoginModule required username="bob" password="bobsecret"; };
//! ```
//!
//! Sections of login modules, each with a control flag and `key=value` options;
//! `//` and `/* */` comments. Read by the server (its `Server` section) and the client
//! (its `Client` section).

use std::collections::BTreeMap;

/// One login module line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfigurationEntry {
    pub login_module: String,
    pub control_flag: String,
    pub options: BTreeMap<String, String>,
}

/// Every section of the file, by name.
pub type JaasConfiguration = BTreeMap<String, Vec<AppConfigurationEntry>>;

/// `java.security.auth.login.config`: the file, once read.
pub const JAAS_CONF_KEY: &str = "java.security.auth.login.config";

/// The module ZooKeeper's DIGEST-MD5 sections name.
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokens(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let c: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line = 1;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                if c[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            if i >= c.len() {
                return Err(format!("Configuration Error: unterminated comment (line {line})"));
            }
            i += 2;
        } else if ch == '"' || ch == '\'' {
            let q = ch;
            i += 1;
            let mut s = String::new();
            while i < c.len() && c[i] != q {
                if c[i] == '\\' && i + 1 < c.len() {
                    i += 1;
                }
                if c[i] == '\n' {
                    line += 1;
                }
                s.push(c[i]);
                i += 1;
            }
            if i >= c.len() {
                return Err(format!("Configuration Error: unterminated quoted string (line {line})"));
            }
            i += 1;
            out.push(Tok::Quoted(s));
        } else if matches!(ch, '{' | '}' | ';' | '=') {
            out.push(Tok::Punct(ch));
            i += 1;
        } else {
            let mut s = String::new();
            while i < c.len() && !c[i].is_whitespace() && !matches!(c[i], '{' | '}' | ';' | '=' | '"' | '\'') {
                s.push(c[i]);
                i += 1;
            }
            out.push(Tok::Word(s));
        }
    }
    Ok(out)
}

/// Parses the whole file; errors name what was expected, as the JDK's `ConfigFile`.
pub fn parse(text: &str) -> Result<JaasConfiguration, String> {
    let toks = tokens(text)?;
    let mut cfg = JaasConfiguration::new();
    let mut i = 0;
    let word = |t: Option<&Tok>| match t {
        Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Some(w.clone()),
        _ => None,
    };
    while i < toks.len() {
        let name = word(toks.get(i)).ok_or("Configuration Error: expected [application name]")?;
        i += 1;
        if toks.get(i) != Some(&Tok::Punct('{')) {
            return Err(format!("Configuration Error: expected [{{] after {name}"));
        }
        i += 1;
        let mut entries = Vec::new();
        while toks.get(i) != Some(&Tok::Punct('}')) {
            let module = word(toks.get(i)).ok_or("Configuration Error: expected [controlFlag] / [LoginModule]")?;
            i += 1;
            let flag = word(toks.get(i)).ok_or("Configuration Error: expected [controlFlag]")?;
            if !["required", "requisite", "sufficient", "optional"].iter().any(|f| f.eq_ignore_ascii_case(&flag)) {
                return Err(format!("Configuration Error: Invalid control flag, {flag}"));
            }
            i += 1;
            let mut options = BTreeMap::new();
            while toks.get(i) != Some(&Tok::Punct(';')) {
                let k = word(toks.get(i)).ok_or("Configuration Error: expected [option key]")?;
                i += 1;
                if toks.get(i) != Some(&Tok::Punct('=')) {
                    return Err(format!("Configuration Error: expected [=] after {k}"));
                }
                i += 1;
                let v = word(toks.get(i)).ok_or_else(|| format!("Configuration Error: expected [option value] for {k}"))?;
                i += 1;
                options.insert(k, v);
            }
            i += 1;
            entries.push(AppConfigurationEntry { login_module: module, control_flag: flag.to_ascii_lowercase(), options });
            if i >= toks.len() {
                return Err("Configuration Error: expected [}]".into());
            }
        }
        i += 1;
        if toks.get(i) != Some(&Tok::Punct(';')) {
            return Err(format!("Configuration Error: expected [;] after the section {name}"));
        }
        i += 1;
        cfg.insert(name, entries);
    }
    Ok(cfg)
}

/// Reads the file `java.security.auth.login.config` names (a leading `=` means "this
/// file only" to the JDK; here there is only ever one). None when unset.
pub fn load_from_system_property() -> Option<Result<JaasConfiguration, String>> {
    let path = crate::system_properties::get(JAAS_CONF_KEY)?;
    let path = path.strip_prefix('=').unwrap_or(&path).to_owned();
    Some(
        std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the JAAS configuration {path}: {e}"))
            .and_then(|t| parse(&t).map_err(|e| format!("{path}: {e}"))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_and_client_sections() {
        let text = r#"
            // a comment
            Server {
                org.apache.zookeeper.server.auth.DigestLoginModule required
                user_super="adminsecret"
                user_bob="bob\"secret";
            };
            /* another */
            Client { org.apache.zookeeper.server.auth.DigestLoginModule required username="bob" password="bobsecret"; };
        "#;
        let c = parse(text).unwrap();
        let s = &c["Server"][0];
        assert_eq!(s.login_module, DIGEST_LOGIN_MODULE);
        assert_eq!(s.control_flag, "required");
        assert_eq!(s.options["user_bob"], "bob\"secret");
        assert_eq!(s.options["user_super"], "adminsecret");
        assert_eq!(c["Client"][0].options["username"], "bob");
    }

    #[test]
    fn errors() {
        assert!(parse("Server { m required a=\"b\" }").is_err());
        assert!(parse("Server { m bogus; };").unwrap_err().contains("Invalid control flag"));
        assert!(parse("Server { m required a; };").is_err());
        assert!(parse("Server { m required a=\"unterminated; };").is_err());
        assert!(parse("Server m required;").is_err());
        assert_eq!(parse("").unwrap().len(), 0);
    }
}
