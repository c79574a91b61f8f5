use super::*;
use crate::KeyError;

fn token(header: &str, payload: &str, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

#[test]
fn header_alg_classification() {
    for (alg, want) in [
        ("none", JwsError::AlgNone),
        ("NoNe", JwsError::AlgNone),
        ("HS256", JwsError::AlgHmac("HS256".into())),
        ("hs512", JwsError::AlgHmac("hs512".into())),
        ("es256", JwsError::AlgUnknown("es256".into())),
        ("ES512", JwsError::AlgUnknown("ES512".into())),
    ] {
        let t = token(&format!(r#"{{"alg":"{alg}"}}"#), "{}", b"x");
        assert_eq!(decode(&t, 1000).unwrap_err(), want, "{alg}");
    }
}

#[test]
fn structure_is_strict() {
    assert_eq!(decode("a.b", 100).unwrap_err(), JwsError::Malformed);
    assert_eq!(decode("a.b.c.d", 100).unwrap_err(), JwsError::Malformed);
    let good = token(r#"{"alg":"ES256"}"#, "{}", b"sig");
    assert!(decode(&good, 1000).is_ok());
    assert_eq!(
        decode(&good, good.len() - 1).unwrap_err(),
        JwsError::TooLarge {
            len: good.len(),
            max: good.len() - 1
        }
    );
    let padded = format!("{good}=");
    assert_eq!(
        decode(&padded, 1000).unwrap_err(),
        JwsError::Base64("signature")
    );
    let std_alphabet = good.replacen('.', "+.", 1);
    assert_eq!(
        decode(&std_alphabet, 1000).unwrap_err(),
        JwsError::Base64("header")
    );
    let crit = token(r#"{"alg":"ES256","crit":["exp"],"exp":1}"#, "{}", b"s");
    assert_eq!(decode(&crit, 1000).unwrap_err(), JwsError::CritUnsupported);
    let kid_num = token(r#"{"alg":"ES256","kid":1}"#, "{}", b"s");
    assert!(matches!(decode(&kid_num, 1000), Err(JwsError::Header(_))));
}

#[test]
fn typ_check() {
    let t = token(r#"{"alg":"ES256","typ":"application/AT+JWT"}"#, "{}", b"s");
    let jws = decode(&t, 1000).unwrap();
    assert!(jws.header().check_typ("at+jwt").is_ok());
    assert!(jws.header().check_typ("application/at+jwt").is_ok());
    assert!(matches!(
        jws.header().check_typ("JWT"),
        Err(JwsError::Typ { found: Some(_), .. })
    ));
    let t = token(r#"{"alg":"ES256"}"#, "{}", b"s");
    assert!(matches!(
        decode(&t, 1000).unwrap().header().check_typ("JWT"),
        Err(JwsError::Typ { found: None, .. })
    ));
}

#[test]
fn sign_and_verify_every_generated_algorithm() {
    for alg in [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa] {
        let key = SigningKey::generate(alg).unwrap().with_kid("k1");
        let set = JwkSet::from_keys(vec![key.public_jwk().unwrap()]).unwrap();
        let t = key.sign(Some("JWT"), br#"{"a":1}"#).unwrap();
        let v = decode(&t, 1000).unwrap().verify(&set, &[alg]).unwrap();
        assert_eq!(v.payload(), br#"{"a":1}"#);
        assert_eq!(v.header().kid(), Some("k1"));
        assert_eq!(
            decode(&t, 1000).unwrap().verify(&set, &[]).unwrap_err(),
            JwsError::AlgNotAllowed(alg)
        );
    }
    assert!(matches!(
        SigningKey::generate(Algorithm::Rs256),
        Err(crate::Error::Key(KeyError::CannotSign(Algorithm::Rs256)))
    ));
}

#[test]
fn pkcs8_export_round_trips() {
    for alg in [Algorithm::Es256, Algorithm::EdDsa] {
        let key = SigningKey::generate(alg).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let again = SigningKey::from_pkcs8_der(alg, &der).unwrap();
        assert_eq!(
            again.verifying_key().unwrap().public_key(),
            key.verifying_key().unwrap().public_key()
        );
    }
}

#[test]
fn fuzz_entry_point_survives_junk() {
    assert!(!fuzz_decode(b"\xff\xfe"));
    assert!(!fuzz_decode(b"..."));
    assert!(fuzz_decode(
        token(r#"{"alg":"EdDSA"}"#, "x", b"").as_bytes()
    ));
}
