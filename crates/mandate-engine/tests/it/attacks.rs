//! Named attacks, each through the engine's real attestation path: each
//! must be refused with its reason code and leave an `attestation.refused`
//! audit event (checked in `Env::refused`), never holding the evidence.

use mandate_attest::ProviderSpec;
use mandate_attest::oidc::KeysSpec;
use mandate_engine::Error;
use mandate_jose::jws::{Algorithm, SigningKey};
use mandate_store::ProviderRecord;
use serde_json::json;

use crate::support::*;

async fn k8s_env() -> Env {
    let env = env().await;
    env.agent("invoice-bot").await;
    env.k8s_provider().await;
    env.bind(
        "k8s",
        "invoice-bot",
        &[
            "kubernetes.io.namespace=billing",
            "kubernetes.io.serviceaccount.name=invoice-bot",
        ],
    )
    .await;
    // The good token maps, so every refusal below is the attack's doing.
    let good = sign(&rs_key(), &k8s_claims("billing", "invoice-bot"));
    let ok = env.engine.attest("k8s", good.as_bytes()).await.unwrap();
    assert_eq!(ok.agent.as_str(), "invoice-bot");
    env
}

fn good() -> serde_json::Value {
    k8s_claims("billing", "invoice-bot")
}

#[tokio::test]
async fn jwt_01_alg_none() {
    let env = k8s_env().await;
    for alg in ["none", "None", "NONE"] {
        for sig in [&b""[..], b"sig"] {
            let t = forge(&json!({"alg": alg, "kid": RS_KID}), &good(), sig);
            env.refused("k8s", &t, "alg_none").await;
        }
    }
}

#[tokio::test]
async fn jwt_02_hs256_with_public_key() {
    let env = k8s_env().await;
    // Whatever the MAC key (the public key PEM, the kid), HS* never verifies.
    for alg in ["HS256", "HS384", "HS512"] {
        let t = forge(
            &json!({"alg": alg, "kid": RS_KID}),
            &good(),
            b"mac-with-the-public-key",
        );
        env.refused("k8s", &t, "alg_hmac").await;
    }
}

#[tokio::test]
async fn jwt_03_kid_injection() {
    let env = k8s_env().await;
    for kid in [
        "../../../../dev/null",
        "' OR '1'='1",
        "JHJe\u{0}",
        "",
        "https://evil.example/jwks",
    ] {
        let header = json!({"alg": "RS256", "kid": kid}).to_string();
        let t = sign_raw(&rs_key(), &header, &good());
        env.refused("k8s", &t, "unknown_key").await;
    }
    // The EC key's kid on an RS256 token: the key's algorithm wins.
    let t = sign_raw(
        &rs_key(),
        &json!({"alg": "RS256", "kid": ES_KID}).to_string(),
        &good(),
    );
    env.refused("k8s", &t, "alg_not_allowed").await;
}

#[tokio::test]
async fn jwt_04_jku_x5u_ignored() {
    let env = k8s_env().await;
    let attacker = SigningKey::generate(Algorithm::Es256).unwrap();
    let urls = r#""jku":"https://evil.example/jwks.json","x5u":"https://evil.example/cert.pem""#;
    let t = sign_raw(
        &attacker,
        &format!(r#"{{"alg":"ES256","kid":"attacker",{urls}}}"#),
        &good(),
    );
    env.refused("k8s", &t, "unknown_key").await;
    let t = sign_raw(
        &attacker,
        &format!(r#"{{"alg":"ES256","kid":"{ES_KID}",{urls}}}"#),
        &good(),
    );
    env.refused("k8s", &t, "bad_signature").await;
}

#[tokio::test]
async fn jwt_05_embedded_jwk_ignored() {
    let env = k8s_env().await;
    let attacker = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwk = attacker.public_jwk().unwrap().to_json();
    let header = json!({"alg": "ES256", "kid": ES_KID, "jwk": jwk}).to_string();
    env.refused(
        "k8s",
        &sign_raw(&attacker, &header, &good()),
        "bad_signature",
    )
    .await;
    let header = json!({"alg": "ES256", "jwk": jwk}).to_string();
    env.refused("k8s", &sign_raw(&attacker, &header, &good()), "unknown_key")
        .await;
    let header = json!({"alg": "ES256", "kid": ES_KID, "x5c": ["MIIBattacker"]}).to_string();
    env.refused(
        "k8s",
        &sign_raw(&attacker, &header, &good()),
        "bad_signature",
    )
    .await;
}

#[tokio::test]
async fn jwt_06_bad_signature_encodings() {
    let env = k8s_env().await;
    let t = sign(&es_key(), &good());
    let (input, sig) = t.rsplit_once('.').unwrap();
    // Padded, standard-alphabet and truncated encodings are malformed.
    env.refused("k8s", &format!("{input}.{sig}="), "malformed_token")
        .await;
    env.refused(
        "k8s",
        &format!("{input}.{}", sig.replace('-', "+").replace('_', "/") + "+/"),
        "malformed_token",
    )
    .await;
    env.refused("k8s", &format!("{input}."), "bad_signature")
        .await;
    env.refused(
        "k8s",
        &format!("{input}.{}", &sig[..sig.len() - 6]),
        "bad_signature",
    )
    .await;
    // A DER-encoded ECDSA signature where JWS wants raw r||s.
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
    let mut der = vec![0x30, 0x44, 0x02, 0x20];
    der.extend_from_slice(&raw[..32]);
    der.extend_from_slice(&[0x02, 0x20]);
    der.extend_from_slice(&raw[32..]);
    env.refused("k8s", &format!("{input}.{}", b64(&der)), "bad_signature")
        .await;
    // The payload of another token under this signature.
    let other = sign(&es_key(), &k8s_claims("billing", "other"));
    let other_payload = other.split('.').nth(1).unwrap();
    let header = input.split('.').next().unwrap();
    env.refused(
        "k8s",
        &format!("{header}.{other_payload}.{sig}"),
        "bad_signature",
    )
    .await;
}

#[tokio::test]
async fn jwt_07_non_integer_time_claims() {
    let env = k8s_env().await;
    for (claim, value) in [
        ("exp", json!(1e10)),
        ("exp", json!(format!("{}", now() + 3600))),
        ("exp", json!(18446744073709551615u64)),
        ("nbf", json!(1.5)),
        ("iat", json!("yesterday")),
    ] {
        let mut c = good();
        c[claim] = value;
        env.refused("k8s", &sign(&rs_key(), &c), "malformed_claims")
            .await;
    }
}

#[tokio::test]
async fn jwt_09_oversized_and_duplicate_keys() {
    let env = k8s_env().await;
    let mut c = good();
    c["padding"] = json!("x".repeat(20_000));
    env.refused("k8s", &sign(&rs_key(), &c), "too_large").await;
    // Duplicate claim: a second `sub` must not override the first.
    let body = serde_json::to_string(&good()).unwrap();
    let dup = format!(
        "{},\"sub\":\"system:serviceaccount:kube-system:admin\"}}",
        &body[..body.len() - 1]
    );
    let t = rs_key()
        .sign_with_header(
            format!(r#"{{"alg":"RS256","kid":"{RS_KID}"}}"#).as_bytes(),
            dup.as_bytes(),
        )
        .unwrap();
    env.refused("k8s", &t, "malformed_claims").await;
    // Duplicate header member.
    let header = format!(r#"{{"alg":"RS256","kid":"{RS_KID}","alg":"none"}}"#);
    env.refused(
        "k8s",
        &sign_raw(&rs_key(), &header, &good()),
        "malformed_token",
    )
    .await;
}

#[tokio::test]
async fn time_01_expired() {
    let env = k8s_env().await;
    let mut c = good();
    c["exp"] = json!(now() - 61);
    env.refused("k8s", &sign(&rs_key(), &c), "expired").await;
    // A token valid now expires as the clock moves past exp + skew.
    let t = sign(&rs_key(), &good());
    env.clock.advance(time::Duration::seconds(3600 + 60));
    env.refused("k8s", &t, "expired").await;
    // No exp at all.
    let mut c = good();
    c.as_object_mut().unwrap().remove("exp");
    env.refused("k8s", &sign(&rs_key(), &c), "missing_claim")
        .await;
}

#[tokio::test]
async fn time_02_not_yet_valid() {
    let env = k8s_env().await;
    let mut c = good();
    c["nbf"] = json!(now() + 61);
    c["iat"] = json!(now());
    env.refused("k8s", &sign(&rs_key(), &c), "not_yet_valid")
        .await;
}

#[tokio::test]
async fn time_03_iat_future() {
    let env = k8s_env().await;
    let mut c = good();
    c["iat"] = json!(now() + 3600);
    c.as_object_mut().unwrap().remove("nbf");
    env.refused("k8s", &sign(&rs_key(), &c), "issued_in_future")
        .await;
}

#[tokio::test]
async fn aud_01_wrong_or_missing_audience() {
    let env = k8s_env().await;
    for aud in [
        json!("https://other.example"),
        json!(["x", "y"]),
        json!([]),
        json!("MANDATE"),
    ] {
        let mut c = good();
        c["aud"] = aud;
        env.refused("k8s", &sign(&rs_key(), &c), "wrong_audience")
            .await;
    }
    let mut c = good();
    c.as_object_mut().unwrap().remove("aud");
    env.refused("k8s", &sign(&rs_key(), &c), "wrong_audience")
        .await;
}

#[tokio::test]
async fn iss_01_key_of_other_issuer() {
    let env = k8s_env().await;
    let other = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid("other-1");
    let other_jwks = json!({"keys": [other.public_jwk().unwrap().to_json()]});
    let spec = ProviderSpec::Oidc(oidc_spec(
        Some("https://other.example.com"),
        KeysSpec::Inline {
            document: other_jwks,
        },
    ));
    env.engine
        .add_provider(&env.admin, "other", spec, false)
        .await
        .unwrap();
    // The other issuer's token, claiming our issuer, at our provider.
    env.refused("k8s", &sign(&other, &good()), "unknown_key")
        .await;
    let header = json!({"alg": "ES256", "kid": ES_KID}).to_string();
    env.refused("k8s", &sign_raw(&other, &header, &good()), "bad_signature")
        .await;
    // Our key, but the other issuer's name: wrong issuer either way.
    let mut c = good();
    c["iss"] = json!("https://other.example.com");
    env.refused("k8s", &sign(&rs_key(), &c), "wrong_issuer")
        .await;
    env.refused("other", &sign(&rs_key(), &good()), "unknown_key")
        .await;
}

async fn aws_env() -> Env {
    let env = env().await;
    env.agent("builder").await;
    env.agent("intruder").await;
    let spec: ProviderSpec = serde_json::from_value(json!({
        "kind": "aws-iid",
        "config": {"accounts": ["692406183521"], "regions": ["us-west-2"], "max_age_secs": 315_360_000}
    }))
    .unwrap();
    env.engine
        .add_provider(&env.admin, "aws", spec, false)
        .await
        .unwrap();
    env
}

#[tokio::test]
async fn att_01_iid_replay() {
    let env = aws_env().await;
    let rule = env
        .bind(
            "aws",
            "builder",
            &["account_id=692406183521", "instance_id=i-0a30e04d85e6f8793"],
        )
        .await;
    let doc = String::from_utf8(read("aws-iid/rsa2048")).unwrap();
    let ok = env.engine.attest("aws", doc.as_bytes()).await.unwrap();
    assert_eq!(ok.agent.as_str(), "builder");
    assert_eq!(ok.subject, "i-0a30e04d85e6f8793");
    // The same instance now mapped to another agent: refused.
    env.engine.remove_binding(&env.admin, &rule).await.unwrap();
    env.bind(
        "aws",
        "intruder",
        &["account_id=692406183521", "instance_id=i-0a30e04d85e6f8793"],
    )
    .await;
    let ev = env.refused("aws", &doc, "instance_replay").await;
    assert_eq!(ev.detail["subject"], "i-0a30e04d85e6f8793");
    // The signature form of the same instance too.
    let pair = json!({
        "document": String::from_utf8(read("aws-iid/document")).unwrap(),
        "signature": String::from_utf8(read("aws-iid/signature")).unwrap(),
    })
    .to_string();
    env.refused("aws", &pair, "instance_replay").await;
}

#[tokio::test]
async fn att_02_iid_tampered() {
    let env = aws_env().await;
    env.bind("aws", "builder", &["account_id=692406183521"])
        .await;
    let document = String::from_utf8(read("aws-iid/document")).unwrap();
    let signature = String::from_utf8(read("aws-iid/signature")).unwrap();
    let tampered =
        json!({"document": document.replace("t2.nano", "t2.large"), "signature": signature})
            .to_string();
    env.refused("aws", &tampered, "bad_signature").await;
    let other_account = json!({"document": document.replace("692406183521", "111111111111"), "signature": signature}).to_string();
    env.refused("aws", &other_account, "bad_signature").await;
    env.refused(
        "aws",
        &String::from_utf8(read("aws-iid/not-valid-datastructure")).unwrap(),
        "malformed_evidence",
    )
    .await;
    env.refused(
        "aws",
        &String::from_utf8(read("aws-iid/pkcs7")).unwrap(),
        "malformed_evidence",
    )
    .await;
    let mut p7 = read("aws-iid/rsa2048");
    let i = p7.len() / 2;
    p7[i] = if p7[i] == b'A' { b'B' } else { b'A' };
    let ev = env.engine.attest("aws", &p7).await;
    assert!(
        matches!(ev, Err(Error::AttestationRefused { .. })),
        "{ev:?}"
    );
    assert_eq!(env.last_event().await.event_type, "attestation.refused");
}

#[tokio::test]
async fn att_04_trusted_issuer_wrong_subject() {
    let env = k8s_env().await;
    // A genuine token of the trusted cluster, for another service account.
    for (ns, sa) in [("billing", "other-bot"), ("kube-system", "invoice-bot")] {
        let t = sign(&rs_key(), &k8s_claims(ns, sa));
        match env.engine.attest("k8s", t.as_bytes()).await {
            Err(Error::AttestationRefused { code, .. }) => assert_eq!(code, "no_binding"),
            other => panic!("expected a shadow refusal, got {other:?}"),
        }
        let ev = env.last_event().await;
        assert_eq!(ev.event_type, "attestation.shadow");
        assert_eq!(ev.outcome, mandate_core::Outcome::Denied);
        assert_eq!(
            ev.detail["subject"],
            format!("system:serviceaccount:{ns}:{sa}")
        );
        assert!(ev.detail["shadow_id"].as_str().unwrap().starts_with("shd_"));
    }
    let shadows = env.engine.list_shadows(None).await.unwrap();
    assert_eq!(shadows.len(), 2);
}

#[tokio::test]
async fn ssrf_01_private_targets() {
    let env = env().await;
    let private = [
        "https://127.0.0.1/jwks",
        "https://169.254.169.254/latest/meta-data/iam",
        "https://10.0.0.7/jwks",
        "https://172.16.5.4/jwks",
        "https://192.168.1.1/jwks",
        "https://[::1]/jwks",
        "https://[fe80::1]/jwks",
        "https://[fd12:3456::1]/jwks",
        "http://issuer.example.com/jwks",
    ];
    for (i, url) in private.iter().enumerate() {
        // The admin API refuses such a provider up front ...
        let spec = ProviderSpec::Oidc(oidc_spec(
            Some("https://issuer.example.com"),
            KeysSpec::Url { url: (*url).into() },
        ));
        let err = env
            .engine
            .add_provider(&env.admin, "p", spec.clone(), false)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{url}: {err:?}");
        // ... and one stored anyway (an older version, a direct edit) never fetches.
        let name = format!("stored-{i}");
        store_provider(&env, &name, &spec).await;
        env.refused(&name, &sign(&rs_key(), &good()), "ssrf_refused")
            .await;
    }
    // A name that resolves to loopback is refused at connection time.
    let spec = ProviderSpec::Oidc(oidc_spec(Some("https://localhost"), KeysSpec::Discovery));
    env.engine
        .add_provider(&env.admin, "by-name", spec, false)
        .await
        .unwrap();
    let ev = env
        .refused("by-name", &sign(&rs_key(), &good()), "ssrf_refused")
        .await;
    assert!(
        ev.detail["reason"].as_str().unwrap().contains("127.0.0.1")
            || ev.detail["reason"].as_str().unwrap().contains("::1")
    );
}

#[tokio::test]
async fn ssrf_02_encoded_ips() {
    let env = env().await;
    for (i, url) in [
        "https://0x7f000001/jwks",
        "https://2130706433/jwks",
        "https://0177.0.0.1/jwks",
        "https://127.1/jwks",
        "https://0x7f.0x0.0x0.0x1/jwks",
        "https://[::ffff:127.0.0.1]/jwks",
        "https://[::ffff:7f00:1]/jwks",
        "https://[::ffff:a9fe:a9fe]/jwks",
        "https://[64:ff9b::a9fe:a9fe]/jwks",
        "https://[::127.0.0.1]/jwks",
    ]
    .iter()
    .enumerate()
    {
        let spec = ProviderSpec::Oidc(oidc_spec(
            Some("https://issuer.example.com"),
            KeysSpec::Url { url: (*url).into() },
        ));
        assert!(
            env.engine
                .add_provider(&env.admin, "p", spec.clone(), false)
                .await
                .is_err(),
            "{url}"
        );
        let name = format!("enc-{i}");
        store_provider(&env, &name, &spec).await;
        env.refused(&name, &sign(&rs_key(), &good()), "ssrf_refused")
            .await;
    }
}

/// Stores a provider record bypassing the engine's checks.
async fn store_provider(env: &Env, name: &str, spec: &ProviderSpec) {
    let rec = ProviderRecord {
        name: name.into(),
        kind: spec.kind().as_str().into(),
        spec: serde_json::to_string(spec).unwrap(),
        allow_private_network: false,
        created_at: T0,
        created_by: None,
    };
    let draft = mandate_core::AuditDraft::new(
        mandate_core::EventKind::ProviderAdded,
        mandate_core::Outcome::Success,
    );
    env.engine
        .store()
        .create_provider(&rec, draft, T0)
        .await
        .unwrap();
}
