//! `DigestAuthenticationProvider`: `user:password` becomes `user:BASE64(SHA1(user:password))`.

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::system_properties;

/// `generateDigest`.
pub fn generate_digest(id_password: &str) -> String {
    let user = id_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(id_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// The configured super digest
/// (`zookeeper.DigestAuthenticationProvider.superDigest`).
pub fn super_digest() -> Option<String> {
    system_properties::get("zookeeper.DigestAuthenticationProvider.superDigest")
}

/// `isValid`: exactly `user:hash`.
pub fn is_valid(id: &str) -> bool {
    id.split(':').count() == 2
}

#[cfg(test)]
mod tests {
    #[test]
    fn digest_is_sha1_base64() {
        // Known value from upstream documentation: super:test.
        assert_eq!(super::generate_digest("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }
}
