//! One-time join tokens for development and bootstrap.
//!
//! A join token reads `mjt_<id>_<secret>`: `id` is 12 characters of
//! `[a-z0-9]` (public: it names the token in listings and audit events),
//! `secret` is 32 random bytes in base64url. Only SHA-256 of the secret is
//! stored; it is compared in constant time. A token is created by an admin
//! for one agent and one `join-token` provider, expires, and is consumed by
//! its first successful (non-dry-run) attestation.

use mandate_jose::digest::sha256_hex;
use mandate_jose::{SecretString, ct_eq, random};

use crate::Error;

/// Every join token starts with this.
pub const PREFIX: &str = "mjt_";
const ID_LEN: usize = 12;

/// A freshly minted token: its public id, the full secret value (shown
/// once) and the hash to store.
#[derive(Debug)]
pub struct Minted {
    /// Public id.
    pub id: String,
    /// `mjt_<id>_<secret>`.
    pub token: SecretString,
    /// Hex SHA-256 of the secret part.
    pub secret_hash: String,
}

/// Mints a new token.
pub fn mint() -> Result<Minted, Error> {
    let rand = |_| Error::Config("secure random generator unavailable".to_owned());
    let id = random::id(ID_LEN).map_err(rand)?;
    let secret = random::token::<32>().map_err(rand)?;
    Ok(Minted {
        token: SecretString::from(format!("{PREFIX}{id}_{secret}")),
        secret_hash: sha256_hex(secret.as_bytes()),
        id,
    })
}

/// A presented token, split.
#[derive(Debug)]
pub struct Presented {
    /// Public id.
    pub id: String,
    secret: SecretString,
}

impl Presented {
    /// Whether the secret hashes to `stored_hash` (constant time).
    pub fn matches(&self, stored_hash: &str) -> bool {
        use mandate_jose::secret::ExposeSecret;
        let h = sha256_hex(self.secret.expose_secret().as_bytes());
        ct_eq(h.as_bytes(), stored_hash.as_bytes())
    }
}

/// Parses presented evidence (surrounding whitespace ignored).
pub fn parse(evidence: &[u8]) -> Result<Presented, Error> {
    let malformed = || Error::Evidence("not a join token (`mjt_<id>_<secret>`)".to_owned());
    let s = std::str::from_utf8(evidence)
        .map_err(|_| malformed())?
        .trim();
    let rest = s.strip_prefix(PREFIX).ok_or_else(malformed)?;
    let (id, secret) = rest.split_once('_').ok_or_else(malformed)?;
    let id_ok = id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = (40..=64).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok || !secret_ok {
        return Err(malformed());
    }
    Ok(Presented {
        id: id.to_owned(),
        secret: SecretString::from(secret.to_owned()),
    })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use mandate_jose::secret::ExposeSecret;

    use super::*;

    #[test]
    fn minted_tokens_parse_and_match_only_their_hash() {
        let m = mint().unwrap();
        let p = parse(m.token.expose_secret().as_bytes()).unwrap();
        assert_eq!(p.id, m.id);
        assert!(p.matches(&m.secret_hash));
        let other = mint().unwrap();
        assert!(!p.matches(&other.secret_hash));
        for bad in [
            "",
            "mjt_",
            "mdt_abcdefabcdef_xxx",
            "mjt_ABC_def",
            "mjt_abcdefabcdef_short",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
