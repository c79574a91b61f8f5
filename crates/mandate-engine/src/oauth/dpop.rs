//! DPoP proofs (RFC 9449): a client proves possession of a key with a
//! short JWT signed by it, bound to one request (`htm`, `htu`), fresh
//! (`iat`, a server nonce), used once (`jti`, remembered in the store so
//! every replica refuses a replay) and, at a resource, to the token (`ath`).
//!
//! Nonces are stateless: `base64url(step ‖ HMAC(key, step)[..16])` where
//! `step` counts [`NONCE_STEP_SECS`] since the epoch and the key is derived
//! from the master key, so every replica issues and accepts the same ones.
//! A nonce is accepted for [`NONCE_STEPS`] steps.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mandate_jose::claims::Claims;
use mandate_jose::digest::{hmac_sha256, sha256};
use mandate_jose::jwk::Jwk;
use mandate_jose::jws::{self, Algorithm};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{Engine, Error};

/// The JWS `typ` of a DPoP proof.
pub const DPOP_TYP: &str = "dpop+jwt";
/// Algorithms a proof may use: asymmetric only.
pub const DPOP_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::EdDsa,
    Algorithm::Rs256,
    Algorithm::Ps256,
];
/// Length of one nonce step.
pub const NONCE_STEP_SECS: i64 = 60;
/// How many steps a nonce is accepted for.
pub const NONCE_STEPS: i64 = 5;
/// Largest proof accepted, in bytes.
const MAX_PROOF_LEN: usize = 8 * 1024;
/// A proof's `iat` may be at most this old ...
const MAX_AGE_SECS: i64 = 300;
/// ... or this far in the future.
const MAX_FUTURE_SECS: i64 = 60;

/// Why a proof was not accepted.
#[derive(Debug)]
pub enum DpopFailure {
    /// The proof is invalid: `invalid_dpop_proof`, with the reason.
    Invalid(String),
    /// The proof lacks a current nonce: `use_dpop_nonce`; the caller
    /// answers with this fresh one in `DPoP-Nonce`.
    UseNonce(String),
    /// The replay cache could not be reached.
    Internal(Error),
}

/// A verified proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProof {
    /// RFC 7638 thumbprint of the proof key (`cnf.jkt`).
    pub jkt: String,
}

/// What a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct DpopCheck<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The request's URL as the client addressed it (public URL + path).
    pub url: &'a str,
    /// The access token presented with it (a resource request): `ath` must
    /// be its hash.
    pub access_token: Option<&'a str>,
    /// Whether a server nonce is required.
    pub require_nonce: bool,
}

fn invalid(why: impl Into<String>) -> DpopFailure {
    DpopFailure::Invalid(why.into())
}

/// `htu` comparison form: scheme, host and port normalised, no query or
/// fragment (RFC 9449 §4.3).
fn normalise_htu(u: &str) -> Option<String> {
    let mut url = url::Url::parse(u).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

/// `base64url(SHA-256(token))`, the `ath` of a token.
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(&[token.as_bytes()]))
}

impl Engine {
    fn nonce_for_step(&self, step: i64) -> Option<String> {
        let key = self.token_state().ok()?.nonce_key;
        let step_bytes = step.to_be_bytes();
        let mac = hmac_sha256(&key, &[b"dpop-nonce", &step_bytes]);
        let mut raw = step_bytes.to_vec();
        raw.extend_from_slice(mac.get(..16)?);
        Some(URL_SAFE_NO_PAD.encode(raw))
    }

    /// A fresh server nonce for the `DPoP-Nonce` header.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.nonce_for_step(self.now().unix_timestamp().div_euclid(NONCE_STEP_SECS))
    }

    fn nonce_is_current(&self, nonce: &str) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some(step) = raw
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_be_bytes)
        else {
            return false;
        };
        let now = self.now().unix_timestamp().div_euclid(NONCE_STEP_SECS);
        if step > now || now - step >= NONCE_STEPS {
            return false;
        }
        self.nonce_for_step(step).is_some_and(|expected| {
            mandate_jose::secret::ct_eq(expected.as_bytes(), nonce.as_bytes())
        })
    }

    /// Verifies a DPoP proof for one request and records its `jti`.
    pub async fn verify_dpop(
        &self,
        proof: &str,
        check: DpopCheck<'_>,
    ) -> Result<DpopProof, DpopFailure> {
        let jws = jws::decode(proof, MAX_PROOF_LEN).map_err(|e| invalid(format!("proof: {e}")))?;
        jws.header()
            .check_typ(DPOP_TYP)
            .map_err(|e| invalid(format!("proof: {e}")))?;
        let Some(Value::Object(jwk)) = jws.header().member("jwk") else {
            return Err(invalid("proof header has no `jwk` object"));
        };
        let jwk = Jwk::from_map(jwk).map_err(|e| invalid(format!("proof `jwk`: {e}")))?;
        let (_, payload) = jws
            .verify_with(jwk.verifying_key(), &DPOP_ALGORITHMS)
            .map_err(|e| invalid(format!("proof signature: {e}")))?
            .into_parts();
        let claims =
            Claims::from_json(&payload).map_err(|e| invalid(format!("proof claims: {e}")))?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("htm") != Some(check.method) {
            return Err(invalid(format!("`htm` is not {}", check.method)));
        }
        let htu = text("htu").and_then(normalise_htu);
        if htu.is_none() || htu != normalise_htu(check.url) {
            return Err(invalid(format!("`htu` is not {}", check.url)));
        }
        let now = self.now().unix_timestamp();
        let iat = claims
            .iat()
            .ok()
            .flatten()
            .ok_or_else(|| invalid("proof has no integer `iat`"))?;
        if iat < now - MAX_AGE_SECS || iat > now + MAX_FUTURE_SECS {
            return Err(invalid("proof `iat` is outside the accepted window"));
        }
        let jti = text("jti")
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| invalid("proof has no `jti`"))?;
        if let Some(token) = check.access_token {
            let expected = access_token_hash(token);
            let ath = text("ath").ok_or_else(|| invalid("proof has no `ath`"))?;
            if !mandate_jose::secret::ct_eq(ath.as_bytes(), expected.as_bytes()) {
                return Err(invalid("proof `ath` does not match the access token"));
            }
        }
        if check.require_nonce && !text("nonce").is_some_and(|n| self.nonce_is_current(n)) {
            return Err(match self.dpop_nonce() {
                Some(n) => DpopFailure::UseNonce(n),
                None => DpopFailure::Internal(Error::Internal("token service not started")),
            });
        }
        let jkt = jwk.thumbprint();
        let key = mandate_jose::digest::sha256_hex(format!("{jkt}\u{0}{jti}").as_bytes());
        let until = OffsetDateTime::from_unix_timestamp(iat + MAX_AGE_SECS + MAX_FUTURE_SECS)
            .map_err(|_| invalid("proof `iat` is out of range"))?;
        match self.store.consume_jti("dpop", &key, until).await {
            Ok(true) => Ok(DpopProof { jkt }),
            Ok(false) => Err(invalid("proof `jti` was already used (replay)")),
            Err(e) => Err(DpopFailure::Internal(e.into())),
        }
    }
}
