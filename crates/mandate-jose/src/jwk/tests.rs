use super::*;

#[test]
fn rfc7638_thumbprint_vector() {
    // RFC 7638 section 3.1.
    let jwk = Jwk::from_json(br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#).unwrap();
    assert_eq!(
        jwk.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    assert_eq!(jwk.kid(), Some("2011-04-29"));
    assert_eq!(jwk.algorithm(), Algorithm::Rs256);
}

#[test]
fn algorithm_comes_from_the_curve_when_alg_is_absent() {
    let key = crate::jws::SigningKey::generate(Algorithm::Es256).unwrap();
    let mut json = key.public_jwk().unwrap().to_json();
    let map = json.as_object_mut().unwrap();
    map.remove("alg");
    let jwk = Jwk::from_map(map).unwrap();
    assert_eq!(jwk.algorithm(), Algorithm::Es256);
    assert_eq!(jwk.declared_algorithm(), None);
    map.insert("alg".into(), "ES384".into());
    assert!(matches!(
        Jwk::from_map(map),
        Err(KeyError::AlgorithmMismatch { .. })
    ));
    map.insert("alg".into(), "RS256".into());
    assert!(matches!(
        Jwk::from_map(map),
        Err(KeyError::AlgorithmMismatch { .. })
    ));
}

#[test]
fn unknown_types_and_curves_are_refused() {
    assert_eq!(
        Jwk::from_json(br#"{"kty":"oct","k":"AAAA"}"#).unwrap_err(),
        KeyError::PrivateMaterial
    );
    assert_eq!(
        Jwk::from_json(br#"{"kty":"XYZ"}"#).unwrap_err(),
        KeyError::UnsupportedKeyType("XYZ".into())
    );
    assert_eq!(
        Jwk::from_json(br#"{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}"#).unwrap_err(),
        KeyError::UnsupportedCurve("P-521".into())
    );
    assert_eq!(
        Jwk::from_json(br#"{"kty":"OKP","crv":"X25519","x":"AA"}"#).unwrap_err(),
        KeyError::UnsupportedCurve("X25519".into())
    );
    assert_eq!(
        Jwk::from_json(br#"{"kty":"EC","kty":"EC"}"#).unwrap_err(),
        KeyError::DuplicateMember("kty".into())
    );
}

#[test]
fn small_rsa_keys_and_exponents_are_refused() {
    let n1024 = URL_SAFE_NO_PAD.encode([0xc5u8; 128]);
    let n2048 = URL_SAFE_NO_PAD.encode([0xc5u8; 256]);
    let jwk = |n: &str, e: &str| format!(r#"{{"kty":"RSA","n":"{n}","e":"{e}"}}"#);
    assert_eq!(
        Jwk::from_json(jwk(&n1024, "AQAB").as_bytes()).unwrap_err(),
        KeyError::RsaTooSmall(1024)
    );
    assert_eq!(
        Jwk::from_json(jwk(&n2048, "Aw").as_bytes()).unwrap_err(),
        KeyError::RsaExponent
    );
    assert_eq!(
        Jwk::from_json(jwk(&n2048, "AQAA").as_bytes()).unwrap_err(),
        KeyError::RsaExponent
    );
}

#[test]
fn use_other_than_sig_and_bad_base64_are_refused() {
    let key = crate::jws::SigningKey::generate(Algorithm::EdDsa).unwrap();
    let mut json = key.public_jwk().unwrap().to_json();
    let map = json.as_object_mut().unwrap();
    map.insert("use".into(), "enc".into());
    assert_eq!(
        Jwk::from_map(map).unwrap_err(),
        KeyError::NotForSignatures("enc".into())
    );
    map.insert("use".into(), "sig".into());
    let x = map["x"].as_str().unwrap().to_owned();
    map.insert("x".into(), format!("{x}=").into());
    assert_eq!(Jwk::from_map(map).unwrap_err(), KeyError::Base64("x"));
}

#[test]
fn key_sets_need_unique_kids() {
    let a = crate::jws::SigningKey::generate(Algorithm::Es256).unwrap();
    let b = crate::jws::SigningKey::generate(Algorithm::EdDsa).unwrap();
    let ja = a.public_jwk().unwrap().to_json();
    let mut jb = b.public_jwk().unwrap().to_json();
    let set =
        |x: &Value, y: &Value| serde_json::to_vec(&serde_json::json!({"keys":[x,y]})).unwrap();

    let ok = JwkSet::from_json(&set(&ja, &jb)).unwrap();
    assert_eq!(ok.len(), 2);
    assert!(ok.get(a.public_jwk().unwrap().kid().unwrap()).is_some());
    assert_eq!(ok.find(None).unwrap_err(), JwsError::KidMissing);

    jb["kid"] = ja["kid"].clone();
    assert!(matches!(
        JwkSet::from_json(&set(&ja, &jb)),
        Err(KeyError::DuplicateKid(_))
    ));
    jb.as_object_mut().unwrap().remove("kid");
    assert_eq!(
        JwkSet::from_json(&set(&ja, &jb)).unwrap_err(),
        KeyError::MissingKid(1)
    );
    assert_eq!(JwkSet::from_json(b"{}").unwrap_err(), KeyError::NoKeys);
}

#[test]
fn a_single_key_without_kid_answers_a_header_without_kid() {
    let k = crate::jws::SigningKey::generate(Algorithm::Es256).unwrap();
    let jwk = Jwk::new(k.verifying_key().unwrap(), None);
    let set = JwkSet::from_keys(vec![jwk]).unwrap();
    assert!(set.find(None).is_ok());
    assert_eq!(
        set.find(Some("x")).unwrap_err(),
        JwsError::KidUnknown("x".into())
    );
}

#[test]
fn to_json_round_trips() {
    for alg in [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa] {
        let k = crate::jws::SigningKey::generate(alg).unwrap();
        let jwk = k.public_jwk().unwrap();
        let back = Jwk::from_map(jwk.to_json().as_object().unwrap()).unwrap();
        assert_eq!(
            back.verifying_key().public_key(),
            jwk.verifying_key().public_key()
        );
        assert_eq!(back.thumbprint(), jwk.kid().unwrap());
        assert_eq!(back.key_use(), Some("sig"));
    }
}

#[test]
fn encryption_keys_in_a_set_are_skipped_but_unknown_types_fail_it() {
    let sig = crate::jws::SigningKey::generate(Algorithm::Es256).unwrap();
    let good = sig.public_jwk().unwrap().to_json();
    let enc = serde_json::json!({"kty":"RSA","use":"enc","alg":"RSA-OAEP","kid":"e","n":"AQAB","e":"AQAB"});
    let doc = serde_json::to_vec(&serde_json::json!({"keys":[good, enc]})).unwrap();
    let set = JwkSet::from_json(&doc).unwrap();
    assert_eq!(set.len(), 1);
    let okp = serde_json::json!({"kty":"OKP","crv":"Ed448","kid":"x","x":"AA"});
    let doc = serde_json::to_vec(&serde_json::json!({"keys":[good, okp]})).unwrap();
    assert_eq!(
        JwkSet::from_json(&doc).unwrap_err(),
        KeyError::UnsupportedCurve("Ed448".into())
    );
}
