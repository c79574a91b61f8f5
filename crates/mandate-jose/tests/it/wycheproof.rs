//! Project Wycheproof vectors through [`VerifyingKey::verify`], the primitive
//! every JWS verification ends in. Each group's key is loaded from its JWK
//! form through [`Jwk::from_map`], as a key from a JWKS would be.
//!
//! Choices, recorded here as the data's SOURCE.md asks:
//! - RSA groups 2 and 3 use public exponent 3. Mandate refuses RSA keys with
//!   an exponent below 65537 when loading them (as *ring* does), so those two
//!   groups' keys are refused with [`KeyError::RsaExponent`] and their two
//!   `valid` signatures are never checked. No real JWKS uses e = 3.
//! - RSA tcId 8 is `acceptable` (DigestInfo without the NULL parameter,
//!   flag `MissingNull`). We take the strict reading and require a refusal.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mandate_jose::KeyError;
use mandate_jose::jwk::Jwk;
use serde_json::{Map, Value, json};

use crate::support::{hex, read};

#[derive(Default, Debug, PartialEq, Eq)]
struct Tally {
    valid_accepted: usize,
    invalid_refused: usize,
    acceptable_refused: usize,
    keys_refused: usize,
}

fn run(file: &str, jwk_of: impl Fn(&Map<String, Value>) -> Value) -> Tally {
    let doc: Value = serde_json::from_slice(&read(&format!("wycheproof/{file}"))).unwrap();
    let mut tally = Tally::default();
    for group in doc["testGroups"].as_array().unwrap() {
        let group = group.as_object().unwrap();
        let jwk = jwk_of(group);
        let key = match Jwk::from_map(jwk.as_object().unwrap()) {
            Ok(key) => key,
            Err(e) => {
                assert_eq!(e, KeyError::RsaExponent, "group key {jwk} refused");
                tally.keys_refused += 1;
                continue;
            }
        };
        for test in group["tests"].as_array().unwrap() {
            let id = &test["tcId"];
            let msg = hex(test["msg"].as_str().unwrap());
            let sig = hex(test["sig"].as_str().unwrap());
            let outcome = key.verifying_key().verify(&msg, &sig);
            match test["result"].as_str().unwrap() {
                "valid" => {
                    assert_eq!(outcome, Ok(()), "valid tcId {id} refused");
                    tally.valid_accepted += 1;
                }
                "invalid" => {
                    assert!(outcome.is_err(), "invalid tcId {id} accepted");
                    tally.invalid_refused += 1;
                }
                "acceptable" => {
                    assert!(outcome.is_err(), "acceptable tcId {id} accepted");
                    tally.acceptable_refused += 1;
                }
                other => panic!("unknown result {other}"),
            }
        }
    }
    tally
}

fn given_jwk(member: &'static str) -> impl Fn(&Map<String, Value>) -> Value {
    move |g| g[member].clone()
}

#[test]
fn wycheproof_ecdsa_p256_p1363() {
    // Nine groups carry no JWK (keys with short coordinates); build it from
    // the raw coordinates, left-padded to 32 bytes as RFC 7518 requires.
    let tally = run("ecdsa_secp256r1_sha256_p1363_test.json", |g| {
        if let Some(jwk) = g.get("publicKeyJwk") {
            return jwk.clone();
        }
        let coord = |name: &str| {
            let raw = hex(g["publicKey"][name].as_str().unwrap());
            let raw = &raw[raw.len().saturating_sub(32)..];
            let mut padded = vec![0u8; 32 - raw.len()];
            padded.extend_from_slice(raw);
            URL_SAFE_NO_PAD.encode(padded)
        };
        json!({"kty": "EC", "crv": "P-256", "x": coord("wx"), "y": coord("wy")})
    });
    assert_eq!(
        tally,
        Tally {
            valid_accepted: 173,
            invalid_refused: 89,
            ..Tally::default()
        }
    );
}

#[test]
fn wycheproof_ed25519() {
    let tally = run("ed25519_test.json", given_jwk("publicKeyJwk"));
    assert_eq!(
        tally,
        Tally {
            valid_accepted: 88,
            invalid_refused: 63,
            ..Tally::default()
        }
    );
}

#[test]
fn wycheproof_rsa_2048_pkcs1_sha256() {
    let tally = run("rsa_signature_2048_sha256_test.json", given_jwk("keyJwk"));
    assert_eq!(
        tally,
        Tally {
            valid_accepted: 7,
            invalid_refused: 249,
            acceptable_refused: 1,
            keys_refused: 2,
        }
    );
}
