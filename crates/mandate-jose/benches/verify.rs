//! JWT verification cost against the physical floor.
//!
//! For Kubernetes-style ES256 and RS256 service-account tokens (the
//! Kubernetes project's test keys, verified against its JWKS, already
//! loaded), three levels:
//! - `token`: [`JwtVerifier::verify`]: size check, base64, strict header
//!   JSON, `kid` lookup, algorithm checks, signature, strict claims JSON and
//!   claim validation;
//! - `parse_only`: the token's parsing without the signature (base64,
//!   strict header and claims JSON), where the overhead over the floor goes;
//! - `key_verify`: [`VerifyingKey::verify`] over the pre-split signing input;
//! - `bare_aws_lc`: aws-lc-rs `ParsedPublicKey::verify_sig` on the same bytes,
//!   the floor no JWT library can go below.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use mandate_jose::claims::{Claims, Validation};
use mandate_jose::jwk::JwkSet;
use mandate_jose::jws::{self, Algorithm, SigningKey};
use mandate_jose::jwt::JwtVerifier;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject as _;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/kubernetes");
const NOW: i64 = 1_700_000_100;

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{name}")).unwrap()
}

struct Case {
    name: &'static str,
    token: String,
    kid: &'static str,
    floor: ParsedPublicKey,
}

fn cases() -> Vec<Case> {
    let claims = read("claims-example.json");
    let spki = |file: &str| {
        SubjectPublicKeyInfoDer::from_pem_slice(&read(file))
            .unwrap()
            .to_vec()
    };
    let es_kid = "SoABiieYuNx4UdqYvZRVeuC6SihxgLrhLy9peHMHpTc";
    let rs_kid = "JHJehTTTZlsspKHT-GaJxK7Kd1NQgZJu3fyK6K_QDYU";
    let es = SigningKey::from_pem(Algorithm::Es256, &read("ecdsa-p256-private-key.pem"))
        .unwrap()
        .with_kid(es_kid);
    let rs = SigningKey::from_pem(Algorithm::Rs256, &read("rsa-private-key.pem"))
        .unwrap()
        .with_kid(rs_kid);
    vec![
        Case {
            name: "es256",
            token: es.sign(None, &claims).unwrap(),
            kid: es_kid,
            floor: ParsedPublicKey::new(
                &sig::ECDSA_P256_SHA256_FIXED,
                spki("ecdsa-p256-public-key.pem"),
            )
            .unwrap(),
        },
        Case {
            name: "rs256",
            token: rs.sign(None, &claims).unwrap(),
            kid: rs_kid,
            floor: ParsedPublicKey::new(
                &sig::RSA_PKCS1_2048_8192_SHA256,
                spki("rsa-public-key.pem"),
            )
            .unwrap(),
        },
    ]
}

fn verify(c: &mut Criterion) {
    let keys = JwkSet::from_json(&read("jwks.json")).unwrap();
    let verifier = JwtVerifier::new(
        keys.clone(),
        &[Algorithm::Es256, Algorithm::Rs256],
        Validation::new("https://issuer.example.com", "https://broker.example.com"),
    );
    let mut group = c.benchmark_group("jwt_verify");
    for case in cases() {
        let (input, signature) = case.token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let key = keys.get(case.kid).unwrap().verifying_key().clone();
        assert!(verifier.verify(&case.token, NOW).is_ok());
        assert!(key.verify(input.as_bytes(), &signature).is_ok());
        assert!(case.floor.verify_sig(input.as_bytes(), &signature).is_ok());

        group.bench_function(format!("{}/token", case.name), |b| {
            b.iter(|| verifier.verify(black_box(&case.token), NOW).unwrap())
        });
        group.bench_function(format!("{}/parse_only", case.name), |b| {
            b.iter(|| {
                let jws = jws::decode(black_box(&case.token), jws::DEFAULT_MAX_TOKEN_LEN).unwrap();
                let claims = Claims::from_json(jws.payload_unverified()).unwrap();
                black_box((jws, claims))
            })
        });
        group.bench_function(format!("{}/key_verify", case.name), |b| {
            b.iter(|| key.verify(black_box(input.as_bytes()), black_box(&signature)))
        });
        group.bench_function(format!("{}/bare_aws_lc", case.name), |b| {
            b.iter(|| {
                case.floor
                    .verify_sig(black_box(input.as_bytes()), black_box(&signature))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
