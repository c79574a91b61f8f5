//! Verifying a Kubernetes-style token through a trust provider, against
//! the bare signature verification.
//!
//! For ES256 and RS256 service-account tokens (the Kubernetes project's
//! test keys and claims shape, the provider's key cache warm), three levels:
//! - `bare_verify`: [`VerifyingKey::verify`] over the pre-split signing
//!   input (mandate-jose's bench shows it at the aws-lc-rs floor);
//! - `jwt_verifier`: [`JwtVerifier::verify`] (parse, kid, algorithm,
//!   signature, strict claims JSON, claim validation);
//! - `provider`: [`Provider::verify`] of a `kubernetes` provider: evidence
//!   checks, key cache lookup, the JWT verification, claim flattening and
//!   the preset's checks, driven by a current-thread Tokio runtime.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark setup"
)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use mandate_attest::{Fetcher, Provider, ProviderSpec};
use mandate_jose::jwk::JwkSet;
use mandate_jose::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/kubernetes");
const NOW: i64 = 1_700_000_100;

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{name}")).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let jwks: Value = serde_json::from_slice(&read("jwks.json")).unwrap();
    let keys = JwkSet::from_json(&read("jwks.json")).unwrap();
    let spec: ProviderSpec = serde_json::from_value(json!({
        "kind": "kubernetes",
        "config": {
            "issuer": "https://issuer.example.com",
            "audience": "https://broker.example.com",
            "keys": {"from": "inline", "document": jwks},
        }
    }))
    .unwrap();
    let provider = Provider::build(&spec, false, &Fetcher::new().unwrap()).unwrap();
    let Provider::Jwt(jwt) = &provider else {
        panic!("a jwt provider")
    };
    let verifier = rt.block_on(jwt.verifier(NOW)).unwrap();
    let claims = read("claims-example.json");
    for (name, alg, pem, kid) in [
        (
            "es256",
            Algorithm::Es256,
            "ecdsa-p256-private-key.pem",
            "SoABiieYuNx4UdqYvZRVeuC6SihxgLrhLy9peHMHpTc",
        ),
        (
            "rs256",
            Algorithm::Rs256,
            "rsa-private-key.pem",
            "JHJehTTTZlsspKHT-GaJxK7Kd1NQgZJu3fyK6K_QDYU",
        ),
    ] {
        let key = SigningKey::from_pem(alg, &read(pem)).unwrap().with_kid(kid);
        let token = key.sign(None, &claims).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let vk = keys.get(kid).unwrap().verifying_key().clone();
        // Sanity: every level accepts the token.
        vk.verify(input.as_bytes(), &sig).unwrap();
        let att = rt.block_on(provider.verify(token.as_bytes(), NOW)).unwrap();
        assert_eq!(att.claims["kubernetes.io.namespace"], "test");

        let mut g = c.benchmark_group(format!("k8s_{name}"));
        g.bench_function("bare_verify", |b| {
            b.iter(|| {
                vk.verify(black_box(input.as_bytes()), black_box(&sig))
                    .unwrap()
            })
        });
        g.bench_function("jwt_verifier", |b| {
            b.iter(|| verifier.verify(black_box(&token), NOW).unwrap())
        });
        g.bench_function("provider", |b| {
            b.iter(|| {
                rt.block_on(provider.verify(black_box(token.as_bytes()), NOW))
                    .unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
