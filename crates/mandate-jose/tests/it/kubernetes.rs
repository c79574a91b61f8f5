//! Kubernetes-style service-account tokens, signed at test time with the
//! Kubernetes project's fixed test keys and verified against the JWKS
//! kube-apiserver serves for them.

use mandate_jose::claims::Validation;
use mandate_jose::digest::sha256;
use mandate_jose::jwk::{Jwk, JwkSet, PublicKey};
use mandate_jose::jws::{Algorithm, SigningKey};
use mandate_jose::jwt::JwtVerifier;
use mandate_jose::{ClaimsError, Error, JwsError};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::Value;

use crate::support::read;

const RSA_KID: &str = "JHJehTTTZlsspKHT-GaJxK7Kd1NQgZJu3fyK6K_QDYU";
const EC_KID: &str = "SoABiieYuNx4UdqYvZRVeuC6SihxgLrhLy9peHMHpTc";
const OTHER_KID: &str = "yEooMTEt7THsoVd-yf2m_0tmtgtZWGhAPFm296R5q18";
const ISSUER: &str = "https://issuer.example.com";
const AUDIENCE: &str = "https://broker.example.com";
/// Inside the example claims' iat..exp window.
const NOW: i64 = 1_700_000_100;

fn jwks() -> JwkSet {
    JwkSet::from_json(&read("kubernetes/jwks.json")).unwrap()
}

fn claims() -> Vec<u8> {
    read("kubernetes/claims-example.json")
}

fn verifier(keys: JwkSet) -> JwtVerifier {
    JwtVerifier::new(
        keys,
        &[Algorithm::Es256, Algorithm::Rs256],
        Validation::new(ISSUER, AUDIENCE),
    )
}

fn key(alg: Algorithm, file: &str, kid: &str) -> SigningKey {
    SigningKey::from_pem(alg, &read(&format!("kubernetes/{file}")))
        .unwrap()
        .with_kid(kid)
}

#[test]
fn kubernetes_jwks_kids_follow_the_spki_rule() {
    use base64::Engine as _;
    let set = jwks();
    assert_eq!(set.len(), 2);
    for (file, kid, alg) in [
        ("rsa-public-key.pem", RSA_KID, Algorithm::Rs256),
        ("ecdsa-p256-public-key.pem", EC_KID, Algorithm::Es256),
        ("other-rsa-public-key.pem", OTHER_KID, Algorithm::Rs256),
    ] {
        let pem = read(&format!("kubernetes/{file}"));
        let spki = SubjectPublicKeyInfoDer::from_pem_slice(&pem).unwrap();
        let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(&[&spki]));
        assert_eq!(computed, kid, "{file}");
        if let Some(jwk) = set.get(kid) {
            assert_eq!(jwk.algorithm(), alg);
            assert_eq!(jwk.key_use(), Some("sig"));
            assert_eq!(
                jwk.verifying_key().public_key(),
                &PublicKey::from_pem(&pem).unwrap()
            );
        }
    }
}

#[test]
fn kubernetes_rs256_token_verifies_against_jwks() {
    let t = key(Algorithm::Rs256, "rsa-private-key.pem", RSA_KID)
        .sign(None, &claims())
        .unwrap();
    let ok = verifier(jwks()).verify(&t, NOW).unwrap();
    assert_eq!(
        ok.claims().sub(),
        Some("system:serviceaccount:test:my-service-account")
    );
    assert_eq!(
        ok.claims().get("kubernetes.io").unwrap()["namespace"],
        Value::from("test")
    );
}

#[test]
fn kubernetes_es256_token_verifies_against_jwks() {
    let t = key(Algorithm::Es256, "ecdsa-p256-private-key.pem", EC_KID)
        .sign(None, &claims())
        .unwrap();
    let ok = verifier(jwks()).verify(&t, NOW).unwrap();
    assert_eq!(ok.header().alg(), Algorithm::Es256);
    // Outside the window the same token is refused.
    assert!(matches!(
        verifier(jwks()).verify(&t, 1_700_003_600 + 60),
        Err(Error::Claims(ClaimsError::Expired { .. }))
    ));
}

#[test]
fn kubernetes_key_with_params_loads_but_is_not_trusted() {
    let k = key(
        Algorithm::Es256,
        "ecdsa-p256-private-key-with-params.pem",
        EC_KID,
    );
    let t = k.sign(None, &claims()).unwrap();
    assert!(matches!(
        verifier(jwks()).verify(&t, NOW),
        Err(Error::Jws(JwsError::BadSignature))
    ));
}

#[test]
fn kubernetes_rotated_keys() {
    let other = PublicKey::from_pem(&read("kubernetes/other-rsa-public-key.pem")).unwrap();
    let other_vk = mandate_jose::jwk::VerifyingKey::new(other, Algorithm::Rs256).unwrap();
    let rsa = key(Algorithm::Rs256, "rsa-private-key.pem", RSA_KID);
    let t = rsa.sign(None, &claims()).unwrap();

    // The other key alone, under the right kid: the signature fails.
    let alone = JwkSet::from_keys(vec![Jwk::new(other_vk.clone(), Some(RSA_KID.into()))]).unwrap();
    assert!(matches!(
        verifier(alone).verify(&t, NOW),
        Err(Error::Jws(JwsError::BadSignature))
    ));
    // The other key alone, under its own kid: the token's kid is unknown.
    let alone =
        JwkSet::from_keys(vec![Jwk::new(other_vk.clone(), Some(OTHER_KID.into()))]).unwrap();
    assert!(matches!(
        verifier(alone).verify(&t, NOW),
        Err(Error::Jws(JwsError::KidUnknown(_)))
    ));
    // The set {other, right}: passes.
    let mut keys = vec![Jwk::new(other_vk, Some(OTHER_KID.into()))];
    keys.extend(jwks().keys().iter().cloned());
    let both = JwkSet::from_keys(keys).unwrap();
    assert!(verifier(both).verify(&t, NOW).is_ok());
}

#[test]
fn kubernetes_foreign_issuer_and_junk() {
    let mut c: Value = serde_json::from_slice(&claims()).unwrap();
    c["iss"] = "kubernetes/serviceaccount".into();
    let t = key(Algorithm::Rs256, "rsa-private-key.pem", RSA_KID)
        .sign(None, &serde_json::to_vec(&c).unwrap())
        .unwrap();
    assert!(matches!(
        verifier(jwks()).verify(&t, NOW),
        Err(Error::Claims(ClaimsError::Issuer(_)))
    ));
    assert!(matches!(
        verifier(jwks()).verify("invalid token", NOW),
        Err(Error::Jws(JwsError::Malformed))
    ));
}

#[test]
fn pem_keys_of_the_wrong_kind_are_refused() {
    let rsa = read("kubernetes/rsa-private-key.pem");
    assert!(SigningKey::from_pem(Algorithm::Es256, &rsa).is_err());
    let ec = read("kubernetes/ecdsa-p256-private-key.pem");
    assert!(SigningKey::from_pem(Algorithm::Rs256, &ec).is_err());
    assert!(SigningKey::from_pem(Algorithm::Es256, b"not pem").is_err());
}

#[test]
fn every_rsa_algorithm_round_trips_with_the_kubernetes_key() {
    for alg in [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
    ] {
        let k = key(alg, "rsa-private-key.pem", RSA_KID);
        let keys = JwkSet::from_keys(vec![k.public_jwk().unwrap()]).unwrap();
        assert_eq!(keys.keys()[0].algorithm(), alg);
        let v = JwtVerifier::new(keys, &[alg], Validation::new(ISSUER, AUDIENCE));
        let t = k.sign(Some("JWT"), &claims()).unwrap();
        assert!(v.verify(&t, NOW).is_ok(), "{alg}");
        // The same key published for another RSA algorithm refuses it.
        let other = if alg == Algorithm::Rs256 {
            Algorithm::Ps256
        } else {
            Algorithm::Rs256
        };
        let mut jwk = k.public_jwk().unwrap().to_json();
        jwk["alg"] = other.name().into();
        let keys =
            JwkSet::from_keys(vec![Jwk::from_map(jwk.as_object().unwrap()).unwrap()]).unwrap();
        let v = JwtVerifier::new(keys, &Algorithm::ALL, Validation::new(ISSUER, AUDIENCE));
        assert!(matches!(
            v.verify(&t, NOW),
            Err(Error::Jws(JwsError::AlgMismatch { .. }))
        ));
    }
}

#[test]
fn pkcs8_pem_keys_sign_too() {
    // PKCS#8 keys from the SPIFFE test data (the Kubernetes keys are PKCS#1
    // and SEC1), and a PEM whose key follows a certificate.
    for (alg, file) in [
        (Algorithm::Rs256, "spiffe/x509svid/key-pkcs8-rsa.pem"),
        (Algorithm::Es256, "spiffe/x509svid/key-pkcs8-ecdsa.pem"),
        (Algorithm::Es256, "spiffe/x509svid/good-cert-and-key.pem"),
    ] {
        let k = SigningKey::from_pem(alg, &read(file))
            .unwrap()
            .with_kid("k");
        let keys = JwkSet::from_keys(vec![k.public_jwk().unwrap()]).unwrap();
        let v = JwtVerifier::new(keys, &[alg], Validation::new(ISSUER, AUDIENCE));
        assert!(
            v.verify(&k.sign(None, &claims()).unwrap(), NOW).is_ok(),
            "{file}"
        );
    }
    assert!(
        SigningKey::from_pem(Algorithm::Es256, &read("spiffe/x509svid/corrupt-key.pem")).is_err()
    );
}
