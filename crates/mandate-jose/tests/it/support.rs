//! Shared fixtures: test data paths, a trusted issuer and token minting.

use mandate_jose::claims::Validation;
use mandate_jose::jwk::JwkSet;
use mandate_jose::jws::{Algorithm, SigningKey};
use mandate_jose::jwt::JwtVerifier;
use serde_json::{Value, json};

/// The shared test data folder (the repository's sibling `shared/`).
pub const TEST_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

/// Reads a file under the shared test data folder.
pub fn read(rel: &str) -> Vec<u8> {
    let path = format!("{TEST_DATA}/{rel}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Hex to bytes.
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub const ISSUER: &str = "https://issuer.example.com";
pub const AUDIENCE: &str = "https://broker.example.com";
/// "Now" for token tests.
pub const NOW: i64 = 1_700_000_100;

/// A trusted issuer with an ES256 key (`es`) and the Kubernetes RS256 key (`rs`).
pub struct Issuer {
    pub es: SigningKey,
    pub rs: SigningKey,
    pub keys: JwkSet,
}

impl Issuer {
    pub fn new() -> Self {
        let es = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("es-1");
        let rs = SigningKey::from_pem(Algorithm::Rs256, &read("kubernetes/rsa-private-key.pem"))
            .unwrap()
            .with_kid("rs-1");
        let keys =
            JwkSet::from_keys(vec![es.public_jwk().unwrap(), rs.public_jwk().unwrap()]).unwrap();
        Self { es, rs, keys }
    }

    pub fn verifier(&self) -> JwtVerifier {
        JwtVerifier::new(
            self.keys.clone(),
            &[Algorithm::Es256, Algorithm::Rs256],
            Validation::new(ISSUER, AUDIENCE),
        )
    }
}

/// Claims valid at [`NOW`].
pub fn good_claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "system:serviceaccount:test:my-service-account",
        "aud": [AUDIENCE],
        "iat": NOW - 100,
        "nbf": NOW - 100,
        "exp": NOW + 3500,
    })
}

/// Signs `claims` with `key` under its default header.
pub fn mint(key: &SigningKey, claims: &Value) -> String {
    key.sign(None, &serde_json::to_vec(claims).unwrap())
        .unwrap()
}
