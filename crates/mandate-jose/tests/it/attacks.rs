//! Named attacks on JWT verification; each must be refused with its own error.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mandate_jose::claims::Validation;
use mandate_jose::jwk::JwkSet;
use mandate_jose::jws::{Algorithm, SigningKey};
use mandate_jose::jwt::{JwtVerifier, VerifiedJwt};
use mandate_jose::{ClaimsError, Error, JwsError};
use serde_json::{Value, json};

use crate::support::{AUDIENCE, ISSUER, Issuer, NOW, good_claims, mint, read};

fn jws_err(r: Result<VerifiedJwt, Error>) -> JwsError {
    match r {
        Err(Error::Jws(e)) => e,
        other => panic!("expected a JWS error, got {other:?}"),
    }
}

fn claims_err(r: Result<VerifiedJwt, Error>) -> ClaimsError {
    match r {
        Err(Error::Claims(e)) => e,
        other => panic!("expected a claims error, got {other:?}"),
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with exactly these header and payload bytes and this signature.
fn forge(header: &Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap()),
        b64(sig)
    )
}

/// Signs `claims` under a hand-written header.
fn sign_raw(key: &SigningKey, header: &str, claims: &Value) -> String {
    key.sign_with_header(header.as_bytes(), &serde_json::to_vec(claims).unwrap())
        .unwrap()
}

#[test]
fn good_tokens_verify() {
    let iss = Issuer::new();
    let v = iss.verifier();
    for key in [&iss.es, &iss.rs] {
        let ok = v.verify(&mint(key, &good_claims()), NOW).unwrap();
        assert_eq!(ok.claims().iss(), Some(ISSUER));
        assert_eq!(ok.header().kid(), key.kid());
    }
}

#[test]
fn jwt_01_alg_none() {
    let v = Issuer::new().verifier();
    for alg in ["none", "None", "NONE"] {
        for sig in [&b""[..], b"sig"] {
            let t = forge(&json!({"alg": alg, "kid": "es-1"}), &good_claims(), sig);
            assert_eq!(jws_err(v.verify(&t, NOW)), JwsError::AlgNone);
        }
    }
    // The unsecured form with an empty third part.
    let t = forge(&json!({"alg": "none"}), &good_claims(), b"");
    assert!(t.ends_with('.'));
    assert_eq!(jws_err(v.verify(&t, NOW)), JwsError::AlgNone);
}

#[test]
fn jwt_02_hs256_with_public_key() {
    let v = Issuer::new().verifier();
    // The classic confusion: HMAC keyed with the issuer's public key, as PEM
    // and as the JWK's modulus bytes.
    let pem = read("kubernetes/rsa-public-key.pem");
    for secret in [pem.as_slice(), b"rs-1"] {
        for alg in ["HS256", "HS384", "HS512"] {
            let header = json!({"alg": alg, "kid": "rs-1"});
            let unsigned = format!(
                "{}.{}",
                b64(&serde_json::to_vec(&header).unwrap()),
                b64(&serde_json::to_vec(&good_claims()).unwrap())
            );
            let tag = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, secret),
                unsigned.as_bytes(),
            );
            let t = format!("{unsigned}.{}", b64(tag.as_ref()));
            assert_eq!(jws_err(v.verify(&t, NOW)), JwsError::AlgHmac(alg.into()));
        }
    }
}

#[test]
fn jwt_03_kid_injection() {
    let iss = Issuer::new();
    let v = iss.verifier();
    for kid in [
        "../../../../dev/null",
        "' OR '1'='1",
        "es-1\u{0}",
        "es-1 ",
        "ES-1",
        "",
        "https://evil.example/jwks.json",
    ] {
        let header = json!({"alg": "ES256", "kid": kid}).to_string();
        let t = sign_raw(&iss.es, &header, &good_claims());
        assert_eq!(jws_err(v.verify(&t, NOW)), JwsError::KidUnknown(kid.into()));
    }
    // A kid of the RSA key on an ES256 token: the RSA key's algorithm wins.
    let t = sign_raw(&iss.es, r#"{"alg":"ES256","kid":"rs-1"}"#, &good_claims());
    assert_eq!(
        jws_err(v.verify(&t, NOW)),
        JwsError::AlgMismatch {
            header: Algorithm::Es256,
            key: Algorithm::Rs256
        }
    );
    // A non-string kid is malformed, not looked up.
    let t = sign_raw(&iss.es, r#"{"alg":"ES256","kid":["es-1"]}"#, &good_claims());
    assert!(matches!(jws_err(v.verify(&t, NOW)), JwsError::Header(_)));
}

#[test]
fn jwt_04_jku_x5u_ignored() {
    let iss = Issuer::new();
    let v = iss.verifier();
    let attacker = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid("attacker");
    let urls = r#""jku":"https://evil.example/jwks.json","x5u":"https://evil.example/cert.pem""#;
    // The attacker's kid: the URLs do not make it known.
    let t = sign_raw(
        &attacker,
        &format!(r#"{{"alg":"ES256","kid":"attacker",{urls}}}"#),
        &good_claims(),
    );
    assert_eq!(
        jws_err(v.verify(&t, NOW)),
        JwsError::KidUnknown("attacker".into())
    );
    // The trusted kid: the trusted key is used, and the signature fails.
    let t = sign_raw(
        &attacker,
        &format!(r#"{{"alg":"ES256","kid":"es-1",{urls}}}"#),
        &good_claims(),
    );
    assert_eq!(jws_err(v.verify(&t, NOW)), JwsError::BadSignature);
    // Pointing at the issuer's real JWKS URL changes nothing either way.
    let t = sign_raw(
        &iss.es,
        r#"{"alg":"ES256","kid":"es-1","jku":"https://issuer.example.com/openid/v1/jwks"}"#,
        &good_claims(),
    );
    assert!(v.verify(&t, NOW).is_ok());
}

#[test]
fn jwt_05_embedded_jwk_ignored() {
    let iss = Issuer::new();
    let v = iss.verifier();
    let attacker = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwk = attacker.public_jwk().unwrap().to_json();
    let x5c = b64(b"not really a certificate");
    for kid in [Some("es-1"), None] {
        let mut header = json!({"alg": "ES256", "jwk": jwk, "x5c": [x5c]});
        if let Some(kid) = kid {
            header["kid"] = kid.into();
        }
        let t = sign_raw(&attacker, &header.to_string(), &good_claims());
        let want = match kid {
            Some(_) => JwsError::BadSignature,
            None => JwsError::KidMissing,
        };
        assert_eq!(jws_err(v.verify(&t, NOW)), want);
    }
    // Even when the set holds one key (so no kid is needed), the embedded
    // key is not the one used.
    let single = JwtVerifier::new(
        JwkSet::from_keys(vec![iss.es.public_jwk().unwrap()]).unwrap(),
        &[Algorithm::Es256],
        Validation::new(ISSUER, AUDIENCE),
    );
    let t = sign_raw(
        &attacker,
        &json!({"alg": "ES256", "jwk": jwk}).to_string(),
        &good_claims(),
    );
    assert_eq!(jws_err(single.verify(&t, NOW)), JwsError::BadSignature);
}

#[test]
fn jwt_06_bad_signature_encodings() {
    let iss = Issuer::new();
    let v = iss.verifier();
    let good = mint(&iss.es, &good_claims());
    let (unsigned, sig) = good.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    assert_eq!(sig.len(), 64);

    let mut der = vec![0x30, 0x44, 0x02, 0x20];
    der.extend_from_slice(&sig[..32]);
    der.extend_from_slice(&[0x02, 0x20]);
    der.extend_from_slice(&sig[32..]);
    let mut flipped = sig.clone();
    flipped[10] ^= 1;
    let cases: [(&str, Vec<u8>); 6] = [
        ("empty", vec![]),
        ("truncated", sig[..63].to_vec()),
        ("r only", sig[..32].to_vec()),
        ("r = s = 0", vec![0u8; 64]),
        ("der instead of r||s", der),
        ("one bit flipped", flipped),
    ];
    for (what, bad) in cases {
        let t = format!("{unsigned}.{}", b64(&bad));
        assert_eq!(jws_err(v.verify(&t, NOW)), JwsError::BadSignature, "{what}");
    }
    // Padded or standard-alphabet base64 is malformed, not a signature.
    let padded = format!("{good}==");
    assert_eq!(
        jws_err(v.verify(&padded, NOW)),
        JwsError::Base64("signature")
    );
    let std_b64 = format!(
        "{unsigned}.{}",
        base64::engine::general_purpose::STANDARD.encode(&sig)
    );
    if std_b64.contains(['+', '/']) {
        assert_eq!(
            jws_err(v.verify(&std_b64, NOW)),
            JwsError::Base64("signature")
        );
    }
    // The RSA path: empty, short and all-zero signatures.
    let good = mint(&iss.rs, &good_claims());
    let (unsigned, _) = good.rsplit_once('.').unwrap();
    for bad in [vec![], vec![0u8; 255], vec![0u8; 256]] {
        let t = format!("{unsigned}.{}", b64(&bad));
        assert_eq!(jws_err(v.verify(&t, NOW)), JwsError::BadSignature);
    }
}

#[test]
fn jwt_07_non_integer_time_claims() {
    let iss = Issuer::new();
    let v = iss.verifier();
    let exp = NOW + 3500;
    for (claim, value) in [
        ("exp", json!(exp as f64 + 0.5)),
        ("exp", json!(format!("{exp}"))),
        ("exp", json!(true)),
        ("exp", json!(null)),
        ("exp", json!([exp])),
        ("nbf", json!((NOW - 100) as f64)),
        ("nbf", json!("0")),
        ("iat", json!(1e9)),
        ("iat", json!({"t": NOW})),
    ] {
        let mut c = good_claims();
        c[claim] = value.clone();
        let name = match claim {
            "exp" => "exp",
            "nbf" => "nbf",
            _ => "iat",
        };
        assert_eq!(
            claims_err(v.verify(&mint(&iss.es, &c), NOW)),
            ClaimsError::NotInteger(name),
            "{claim} = {value}"
        );
    }
    // A float written in the payload bytes as `1.7e9` style, too.
    let payload = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{}.0}}"#,
        NOW + 10
    );
    let t = iss.es.sign(None, payload.as_bytes()).unwrap();
    assert_eq!(
        claims_err(v.verify(&t, NOW)),
        ClaimsError::NotInteger("exp")
    );
}

#[test]
fn jwt_09_oversized_and_duplicate_keys() {
    let iss = Issuer::new();
    let v = iss.verifier();
    let mut big = good_claims();
    big["pad"] = "x".repeat(16 * 1024).into();
    let t = mint(&iss.es, &big);
    assert!(matches!(
        jws_err(v.verify(&t, NOW)),
        JwsError::TooLarge { max: 16384, .. }
    ));
    // A lower configured limit applies too.
    let t = mint(&iss.es, &good_claims());
    let small = v.clone().with_max_len(100);
    assert!(matches!(
        jws_err(small.verify(&t, NOW)),
        JwsError::TooLarge { max: 100, .. }
    ));

    // Duplicate header members: `alg` twice, `kid` twice.
    let t = sign_raw(
        &iss.es,
        r#"{"alg":"ES256","kid":"es-1","alg":"none"}"#,
        &good_claims(),
    );
    assert_eq!(
        jws_err(v.verify(&t, NOW)),
        JwsError::DuplicateMember("alg".into())
    );
    let t = sign_raw(
        &iss.es,
        r#"{"alg":"ES256","kid":"other","kid":"es-1"}"#,
        &good_claims(),
    );
    assert_eq!(
        jws_err(v.verify(&t, NOW)),
        JwsError::DuplicateMember("kid".into())
    );
    // Duplicate claims in a validly signed payload.
    for (name, payload) in [
        (
            "exp",
            format!(
                r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"exp":{}}}"#,
                NOW - 1000,
                NOW + 1000
            ),
        ),
        (
            "aud",
            format!(
                r#"{{"iss":"{ISSUER}","aud":"x","aud":"{AUDIENCE}","exp":{}}}"#,
                NOW + 1000
            ),
        ),
    ] {
        let t = iss.es.sign(None, payload.as_bytes()).unwrap();
        assert_eq!(
            claims_err(v.verify(&t, NOW)),
            ClaimsError::DuplicateMember(name.into())
        );
    }
}

/// Verifies `claims` at NOW under skew `skew`.
fn at_skew(skew: i64, claims: &Value) -> Result<VerifiedJwt, Error> {
    let iss = Issuer::new();
    let v = JwtVerifier::new(
        iss.keys.clone(),
        &[Algorithm::Es256],
        Validation::new(ISSUER, AUDIENCE).with_skew(skew).unwrap(),
    );
    v.verify(&mint(&iss.es, claims), NOW)
}

#[test]
fn time_01_expired() {
    for skew in [0, 30, 60] {
        let mut c = good_claims();
        c["exp"] = (NOW - skew).into();
        assert_eq!(
            claims_err(at_skew(skew, &c)),
            ClaimsError::Expired {
                exp: NOW - skew,
                now: NOW
            }
        );
        c["exp"] = (NOW - skew + 1).into();
        assert!(at_skew(skew, &c).is_ok(), "skew {skew}");
    }
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(claims_err(at_skew(60, &c)), ClaimsError::Missing("exp"));
}

#[test]
fn time_02_not_yet_valid() {
    for skew in [0, 30, 60] {
        let mut c = good_claims();
        c["nbf"] = (NOW + skew + 1).into();
        c["iat"] = NOW.into();
        assert_eq!(
            claims_err(at_skew(skew, &c)),
            ClaimsError::NotYetValid {
                nbf: NOW + skew + 1,
                now: NOW
            }
        );
        c["nbf"] = (NOW + skew).into();
        assert!(at_skew(skew, &c).is_ok(), "skew {skew}");
    }
}

#[test]
fn time_03_iat_future() {
    for skew in [0, 30, 60] {
        let mut c = good_claims();
        c["nbf"] = NOW.into();
        c["iat"] = (NOW + skew + 1).into();
        assert_eq!(
            claims_err(at_skew(skew, &c)),
            ClaimsError::IssuedInFuture {
                iat: NOW + skew + 1,
                now: NOW
            }
        );
        c["iat"] = (NOW + skew).into();
        assert!(at_skew(skew, &c).is_ok(), "skew {skew}");
    }
    assert_eq!(
        Validation::new(ISSUER, AUDIENCE).with_skew(61).unwrap_err(),
        ClaimsError::Skew(61)
    );
}

#[test]
fn aud_01_wrong_or_missing_audience() {
    let iss = Issuer::new();
    let v = iss.verifier();
    for aud in [
        json!("https://other.example.com"),
        json!(["https://other.example.com"]),
        json!(format!("{AUDIENCE}/")),
        json!(AUDIENCE.to_uppercase()),
        json!(&AUDIENCE[..AUDIENCE.len() - 1]),
        json!([]),
    ] {
        let mut c = good_claims();
        c["aud"] = aud.clone();
        assert_eq!(
            claims_err(v.verify(&mint(&iss.es, &c), NOW)),
            ClaimsError::Audience,
            "aud {aud}"
        );
    }
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        claims_err(v.verify(&mint(&iss.es, &c), NOW)),
        ClaimsError::Missing("aud")
    );
    c["aud"] = json!(7);
    assert_eq!(
        claims_err(v.verify(&mint(&iss.es, &c), NOW)),
        ClaimsError::WrongType("aud")
    );
    // A string audience and one of several array entries both match.
    c["aud"] = json!(AUDIENCE);
    assert!(v.verify(&mint(&iss.es, &c), NOW).is_ok());
    c["aud"] = json!(["x", AUDIENCE]);
    assert!(v.verify(&mint(&iss.es, &c), NOW).is_ok());
}

#[test]
fn iss_01_key_of_other_issuer() {
    let trusted = Issuer::new();
    let v = trusted.verifier();
    let other = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid("other-1");
    // The other issuer's key claiming our issuer: its kid is unknown here.
    assert_eq!(
        jws_err(v.verify(&mint(&other, &good_claims()), NOW)),
        JwsError::KidUnknown("other-1".into())
    );
    // ... and borrowing our kid does not make its signature ours.
    let spoof = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid("es-1");
    assert_eq!(
        jws_err(v.verify(&mint(&spoof, &good_claims()), NOW)),
        JwsError::BadSignature
    );
    // Our key signing for another issuer name is refused on `iss`.
    let mut c = good_claims();
    c["iss"] = "https://issuer.example.com.evil".into();
    assert_eq!(
        claims_err(v.verify(&mint(&trusted.es, &c), NOW)),
        ClaimsError::Issuer("https://issuer.example.com.evil".into())
    );
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        claims_err(v.verify(&mint(&trusted.es, &c), NOW)),
        ClaimsError::Missing("iss")
    );
}

#[test]
fn algorithm_allow_list_and_typ() {
    let iss = Issuer::new();
    let only_es = JwtVerifier::new(
        iss.keys.clone(),
        &[Algorithm::Es256],
        Validation::new(ISSUER, AUDIENCE),
    );
    assert_eq!(
        jws_err(only_es.verify(&mint(&iss.rs, &good_claims()), NOW)),
        JwsError::AlgNotAllowed(Algorithm::Rs256)
    );
    // Header says RS256 but the key (found by kid) is ES256.
    let t = sign_raw(&iss.es, r#"{"alg":"RS256","kid":"es-1"}"#, &good_claims());
    assert_eq!(
        jws_err(iss.verifier().verify(&t, NOW)),
        JwsError::AlgMismatch {
            header: Algorithm::Rs256,
            key: Algorithm::Es256
        }
    );
    let at = iss.verifier().require_typ("at+jwt");
    let t = iss
        .es
        .sign(Some("at+jwt"), &serde_json::to_vec(&good_claims()).unwrap())
        .unwrap();
    assert!(at.verify(&t, NOW).is_ok());
    let t = iss
        .es
        .sign(Some("JWT"), &serde_json::to_vec(&good_claims()).unwrap())
        .unwrap();
    assert!(matches!(jws_err(at.verify(&t, NOW)), JwsError::Typ { .. }));
}
