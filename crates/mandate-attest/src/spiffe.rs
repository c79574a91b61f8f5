//! SPIFFE JWT-SVIDs of a federated trust domain.
//!
//! The trust bundle is a SPIFFE bundle (a JWKS whose entries carry `use`
//! `x509-svid`, `jwt-svid` or `wit-svid`, plus `spiffe_refresh_hint` and
//! `spiffe_sequence`) or a plain JWKS. Only `jwt-svid` entries, and entries
//! with no `use` or `use` `sig` (the JWT bundle and plain JWKS forms),
//! become verification keys; X.509 and
//! WIT authorities are skipped and their `x5c` is never used for JWT trust.
//! Every JWT key needs a `kid` (SPIFFE Trust Domain and Bundle §4.2.2).
//!
//! A JWT-SVID (SPIFFE JWT-SVID standard §3) must have `sub` (a SPIFFE ID,
//! checked exactly as the SPIFFE-ID standard says, in the configured trust
//! domain), `aud` containing the configured audience, and `exp`; `iss` is
//! optional and, when configured, must match. `typ`, when present, must be
//! `JWT` or `JOSE`.

use mandate_core::SpiffeId;
use mandate_jose::jwk::{Jwk, JwkSet};
use mandate_jose::jws::Header;
use serde_json::{Map, Value};

use crate::Error;

/// A parsed trust bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The JWT authorities.
    pub keys: JwkSet,
    /// `spiffe_refresh_hint`, seconds, when present.
    pub refresh_hint: Option<i64>,
    /// `spiffe_sequence`, when present.
    pub sequence: Option<i64>,
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid spiffe bundle: {0}")]
pub struct BundleError(pub String);

/// Parses a SPIFFE bundle or JWT bundle (JWKS).
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle, BundleError> {
    let doc: Map<String, Value> = serde_json::from_slice(bytes)
        .map_err(|e| BundleError(format!("not a json object: {e}")))?;
    let int = |name: &str| -> Result<Option<i64>, BundleError> {
        match doc.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| BundleError(format!("`{name}` is not an integer"))),
        }
    };
    let refresh_hint = int("spiffe_refresh_hint")?;
    let sequence = int("spiffe_sequence")?;
    let Some(Value::Array(entries)) = doc.get("keys") else {
        return Err(BundleError("no authorities found".to_owned()));
    };
    let mut keys = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Value::Object(m) = entry else {
            return Err(BundleError(format!("entry {i} is not an object")));
        };
        match m.get("use").and_then(Value::as_str) {
            Some("jwt-svid" | "sig") | None => {}
            Some(_) => continue,
        }
        if !matches!(m.get("kid"), Some(Value::String(k)) if !k.is_empty()) {
            return Err(BundleError(format!(
                "authority {i}: key id cannot be empty"
            )));
        }
        let mut m = m.clone();
        m.remove("use");
        let jwk = Jwk::from_map(&m).map_err(|e| BundleError(format!("authority {i}: {e}")))?;
        keys.push(jwk);
    }
    if keys.is_empty() {
        return Err(BundleError("no jwt authorities found".to_owned()));
    }
    let keys = JwkSet::from_keys(keys).map_err(|e| BundleError(e.to_string()))?;
    Ok(Bundle {
        keys,
        refresh_hint,
        sequence,
    })
}

/// Checks a verified JWT-SVID's header and subject.
pub fn check_svid(
    header: &Header,
    sub: Option<&str>,
    trust_domain: &str,
) -> Result<SpiffeId, Error> {
    if let Some(typ) = header.typ()
        && typ != "JWT"
        && typ != "JOSE"
    {
        return Err(Error::Spiffe(format!(
            "token type `{typ}` is not `JWT` or `JOSE`"
        )));
    }
    let sub = sub.ok_or_else(|| Error::Spiffe("missing `sub`".to_owned()))?;
    let id: SpiffeId = sub.parse().map_err(|e: mandate_core::ValidationError| {
        Error::Spiffe(format!("`sub` {}", e.message))
    })?;
    if !sub["spiffe://".len()..].contains('/') {
        return Err(Error::Spiffe(format!(
            "`sub` `{sub}` names a trust domain, not a workload"
        )));
    }
    if id.trust_domain() != trust_domain {
        return Err(Error::Spiffe(format!(
            "`sub` `{sub}` is not in trust domain `{trust_domain}`"
        )));
    }
    Ok(id)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/spiffe");

    fn read(rel: &str) -> Vec<u8> {
        std::fs::read(format!("{DATA}/{rel}")).unwrap()
    }

    #[test]
    fn upstream_bundles_load_or_fail_as_upstream_says() {
        let b = parse_bundle(&read("spiffebundle/spiffebundle_valid_1.json")).unwrap();
        assert_eq!(b.keys.len(), 1);
        assert_eq!(b.refresh_hint, None);
        let b = parse_bundle(&read("spiffebundle/spiffebundle_valid_2.json")).unwrap();
        assert_eq!(b.keys.len(), 6);
        assert_eq!(b.refresh_hint, Some(60));
        assert_eq!(b.sequence, Some(1));
        let b = parse_bundle(&read("spiffebundle/spiffebundle_valid_with_wit.json")).unwrap();
        assert_eq!(b.keys.len(), 2);
        assert!(parse_bundle(&read("spiffebundle/spiffebundle_missing_kid.json")).is_err());
        assert!(parse_bundle(&read("spiffebundle/spiffebundle_no_keys.json")).is_err());
        let b = parse_bundle(&read("jwtbundle/jwks_valid_2.json")).unwrap();
        assert!(b.keys.get("gHTCunJbefYtnZnTctd84xeRWyMrEsWD").is_some());
        assert!(parse_bundle(&read("jwtbundle/jwks_missing_kid.json")).is_err());
    }
}
