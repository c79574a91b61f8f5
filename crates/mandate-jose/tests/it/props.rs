//! Property tests: a token verifies iff a trusted key signed it and every
//! claim holds; the parsers never panic on arbitrary input.

use std::sync::OnceLock;

use mandate_jose::claims::{Claims, Validation};
use mandate_jose::jws::{self, Algorithm, SigningKey};
use mandate_jose::jwt::JwtVerifier;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::support::{AUDIENCE, ISSUER, Issuer, NOW};

struct Keys {
    issuer: Issuer,
    stranger: SigningKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        issuer: Issuer::new(),
        // Untrusted, but claims the trusted kid.
        stranger: SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("es-1"),
    })
}

#[derive(Debug, Clone)]
enum Signer {
    TrustedEs,
    TrustedRs,
    Stranger,
}

#[derive(Debug, Clone)]
enum TimeRepr {
    Int,
    Float,
    Text,
    Absent,
}

#[derive(Debug, Clone)]
struct Case {
    signer: Signer,
    skew: i64,
    exp: i64,
    exp_repr: TimeRepr,
    nbf: Option<i64>,
    iat: Option<i64>,
    iss_ok: bool,
    aud: u8,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            4 => Just(Signer::TrustedEs),
            1 => Just(Signer::TrustedRs),
            2 => Just(Signer::Stranger)
        ],
        0i64..=60,
        -120i64..120,
        prop_oneof![
            6 => Just(TimeRepr::Int),
            1 => Just(TimeRepr::Float),
            1 => Just(TimeRepr::Text),
            1 => Just(TimeRepr::Absent)
        ],
        proptest::option::of(-120i64..120),
        proptest::option::of(-120i64..120),
        proptest::bool::weighted(0.8),
        0u8..5,
    )
        .prop_map(
            |(signer, skew, exp, exp_repr, nbf, iat, iss_ok, aud)| Case {
                signer,
                skew,
                exp,
                exp_repr,
                nbf,
                iat,
                iss_ok,
                aud,
            },
        )
}

impl Case {
    fn claims(&self) -> Value {
        let mut c = Map::new();
        let exp = NOW + self.exp;
        match self.exp_repr {
            TimeRepr::Int => c.insert("exp".into(), exp.into()),
            TimeRepr::Float => c.insert("exp".into(), json!(exp as f64 + 0.5)),
            TimeRepr::Text => c.insert("exp".into(), exp.to_string().into()),
            TimeRepr::Absent => None,
        };
        if let Some(nbf) = self.nbf {
            c.insert("nbf".into(), (NOW + nbf).into());
        }
        if let Some(iat) = self.iat {
            c.insert("iat".into(), (NOW + iat).into());
        }
        let iss = if self.iss_ok {
            ISSUER
        } else {
            "https://other.example.com"
        };
        c.insert("iss".into(), iss.into());
        match self.aud {
            0 => c.insert("aud".into(), AUDIENCE.into()),
            1 => c.insert("aud".into(), json!(["x", AUDIENCE])),
            2 => c.insert("aud".into(), json!(["x"])),
            3 => c.insert("aud".into(), "https://other.example.com".into()),
            _ => None,
        };
        Value::Object(c)
    }

    fn should_verify(&self) -> bool {
        let trusted = !matches!(self.signer, Signer::Stranger);
        let exp_ok = matches!(self.exp_repr, TimeRepr::Int) && self.exp + self.skew > 0;
        let nbf_ok = self.nbf.is_none_or(|n| n <= self.skew);
        let iat_ok = self.iat.is_none_or(|i| i <= self.skew);
        trusted && exp_ok && nbf_ok && iat_ok && self.iss_ok && self.aud <= 1
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verifies_iff_trusted_signer_and_claims_hold(case in case()) {
        let k = keys();
        let signer = match case.signer {
            Signer::TrustedEs => &k.issuer.es,
            Signer::TrustedRs => &k.issuer.rs,
            Signer::Stranger => &k.stranger,
        };
        let token = signer
            .sign(None, &serde_json::to_vec(&case.claims()).unwrap())
            .unwrap();
        let verifier = JwtVerifier::new(
            k.issuer.keys.clone(),
            &[Algorithm::Es256, Algorithm::Rs256],
            Validation::new(ISSUER, AUDIENCE).with_skew(case.skew).unwrap(),
        );
        let got = verifier.verify(&token, NOW);
        prop_assert_eq!(got.is_ok(), case.should_verify(), "{:?}: {:?}", case, got);
    }

    #[test]
    fn jws_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = jws::fuzz_decode(&bytes);
    }

    #[test]
    fn jws_decode_never_panics_on_token_shaped_input(s in "[A-Za-z0-9_=+/.-]{0,300}") {
        let _ = jws::decode(&s, jws::DEFAULT_MAX_TOKEN_LEN);
    }

    #[test]
    fn claims_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(c) = Claims::from_json(&bytes) {
            let _ = Validation::new(ISSUER, AUDIENCE).validate(&c, NOW);
        }
    }
}
