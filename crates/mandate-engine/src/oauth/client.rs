//! Client authentication at the token endpoint and the attestation of
//! workload JWTs presented as assertions.
//!
//! `client_assertion_type`:
//! - `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (RFC 7523):
//!   a `private_key_jwt` (`iss` = `sub` = `client_id`, an agent with
//!   registered keys; `aud` the issuer or the token endpoint; `exp` within
//!   [`MAX_ASSERTION_LIFETIME_SECS`]; a `jti` used once), or else a platform
//!   JWT verified by a trust provider;
//! - `urn:ietf:params:oauth:client-assertion-type:jwt-spiffe`: a JWT-SVID;
//! - [`AWS_IID_ASSERTION_TYPE`]: an AWS instance identity document, the
//!   `rsa2048` PKCS#7 as the metadata service serves it, or the base64url of
//!   `{"document": ..., "signature": ...}`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mandate_jose::claims::{Claims, Validation};
use mandate_jose::jwk::JwkSet;
use mandate_jose::jws::{self, Algorithm};
use serde_json::Value;
use time::OffsetDateTime;

use mandate_core::ProviderKind;
use mandate_store::ProviderRecord;

use super::{OAuthError, Params, Proven, ProvenAttestation};
use crate::{Engine, Error};

/// RFC 7523 client assertion type.
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// SPIFFE JWT-SVID client assertion type.
pub const JWT_SPIFFE_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";
/// Mandate's assertion type for AWS instance identity documents.
pub const AWS_IID_ASSERTION_TYPE: &str = "urn:mandate:params:oauth:client-assertion-type:aws-iid";
/// Longest accepted `exp - now` of a `private_key_jwt`.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;

const CLIENT_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::EdDsa,
    Algorithm::Rs256,
    Algorithm::Ps256,
];

/// What routing reads of a JWT before anything is verified.
struct Peeked {
    iss: Option<String>,
    sub: Option<String>,
    aud: Vec<String>,
    typ: Option<String>,
}

/// Unverified `typ`, `iss`, `sub`, `aud` of a JWT, to route it.
fn peek(token: &str) -> Option<Peeked> {
    let jws = jws::decode(token, jws::DEFAULT_MAX_TOKEN_LEN).ok()?;
    let v: Value = serde_json::from_slice(jws.payload_unverified()).ok()?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let aud = match v.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(xs)) => xs
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Some(Peeked {
        iss: s("iss"),
        sub: s("sub"),
        aud,
        typ: jws.header().typ().map(str::to_owned),
    })
}

impl Engine {
    /// Authenticates the client when the request carries a client
    /// assertion; `None` when it carries none. A `client_secret` or HTTP
    /// Basic credentials are never accepted: agents hold no secrets here.
    pub(crate) async fn authenticate_client(
        &self,
        p: &Params,
    ) -> Result<Option<Proven>, OAuthError> {
        if p.get("client_secret").is_some() {
            return Err(OAuthError::client(
                "client secrets are not accepted; authenticate with private_key_jwt or a workload assertion",
            ));
        }
        let Some(assertion) = p.get("client_assertion") else {
            if p.get("client_assertion_type").is_some() {
                return Err(OAuthError::client("`client_assertion` is missing"));
            }
            return Ok(None);
        };
        let kind = p
            .get("client_assertion_type")
            .ok_or_else(|| OAuthError::client("`client_assertion_type` is missing"))?;
        let proven = match kind {
            JWT_BEARER_ASSERTION_TYPE => {
                let Peeked { iss, sub, .. } = peek(assertion)
                    .ok_or_else(|| OAuthError::client("`client_assertion` is not a JWT"))?;
                let client_id = p.get("client_id");
                let self_signed = iss.is_some()
                    && iss == sub
                    && client_id.is_none_or(|c| Some(c) == iss.as_deref());
                let keys = match iss.as_deref().filter(|_| self_signed) {
                    Some(name) => self.store.agent_jwks(name).await.map_err(Error::from)?,
                    None => None,
                };
                match (iss, keys) {
                    (Some(name), Some(jwks)) => {
                        self.private_key_jwt(&name, &jwks, assertion).await?
                    }
                    _ => self
                        .attest_jwt(assertion, "jwt-bearer")
                        .await
                        .map_err(|e| OAuthError::client(e.description))?,
                }
            }
            JWT_SPIFFE_ASSERTION_TYPE => self
                .attest_jwt(assertion, "jwt-spiffe")
                .await
                .map_err(|e| OAuthError::client(e.description))?,
            AWS_IID_ASSERTION_TYPE => self
                .attest_aws(assertion)
                .await
                .map_err(|e| OAuthError::client(e.description))?,
            other => {
                return Err(OAuthError::client(format!(
                    "client_assertion_type `{other}` is not supported"
                )));
            }
        };
        if let Some(id) = p.get("client_id")
            && id != proven.agent.name.as_str()
        {
            return Err(OAuthError::client(format!(
                "the client assertion proves agent `{}`, not client_id `{id}`",
                proven.agent.name
            )));
        }
        Ok(Some(proven))
    }

    /// A `private_key_jwt` of agent `name`, whose registered keys are `jwks`.
    async fn private_key_jwt(
        &self,
        name: &str,
        jwks: &str,
        assertion: &str,
    ) -> Result<Proven, OAuthError> {
        let bad = |why: String| OAuthError::client(format!("private_key_jwt: {why}"));
        let keys = JwkSet::from_json(jwks.as_bytes())
            .map_err(|e| bad(format!("the agent's registered keys are unusable: {e}")))?;
        let jws =
            jws::decode(assertion, jws::DEFAULT_MAX_TOKEN_LEN).map_err(|e| bad(e.to_string()))?;
        if let Some(typ) = jws.header().typ()
            && typ.eq_ignore_ascii_case("at+jwt")
        {
            return Err(bad("an access token is not a client assertion".into()));
        }
        let payload = jws
            .verify(&keys, &CLIENT_ALGORITHMS)
            .map_err(|e| bad(e.to_string()))?
            .into_parts()
            .1;
        let claims = Claims::from_json(&payload).map_err(|e| bad(e.to_string()))?;
        let issuer = self.issuer().unwrap_or_default().to_owned();
        let now = self.now().unix_timestamp();
        Validation::new(name, issuer.clone())
            .also_accept_audience(format!("{issuer}/oauth2/token"))
            .validate(&claims, now)
            .map_err(|e| bad(e.to_string()))?;
        if claims.sub() != Some(name) {
            return Err(bad("`sub` must equal `iss` and the client_id".into()));
        }
        let exp = claims.exp().ok().flatten().unwrap_or(0);
        if exp - now > MAX_ASSERTION_LIFETIME_SECS {
            return Err(bad(format!(
                "`exp` is more than {MAX_ASSERTION_LIFETIME_SECS} s away"
            )));
        }
        let jti = claims
            .jti()
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| bad("`jti` is required".into()))?;
        let until = OffsetDateTime::from_unix_timestamp(exp + 60)
            .map_err(|_| bad("`exp` out of range".into()))?;
        let key = format!("{name}\u{0}{jti}");
        if !self
            .store
            .consume_jti("client_assertion", &key, until)
            .await
            .map_err(Error::from)?
        {
            return Err(bad(format!("`jti` {jti} was already used (replay)")));
        }
        let agent = self
            .active_agent(name)
            .await?
            .ok_or_else(|| bad(format!("agent `{name}` is not active")))?;
        Ok(Proven {
            agent,
            attestation: None,
            method: "private_key_jwt",
            attested: false,
        })
    }

    /// Attests a workload JWT at the provider its `iss`/`sub` and `aud`
    /// point to.
    pub(crate) async fn attest_jwt(
        &self,
        token: &str,
        method: &'static str,
    ) -> Result<Proven, OAuthError> {
        let Peeked { iss, sub, aud, typ } =
            peek(token).ok_or_else(|| OAuthError::grant("the assertion is not a JWT"))?;
        if typ
            .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("dpop+jwt"))
        {
            return Err(OAuthError::grant(
                "an access token or DPoP proof is not a workload assertion",
            ));
        }
        let providers = self.hot_providers().await?;
        let record = self
            .jwt_provider(&providers, &iss, &sub, &aud, |_| true)
            .map_err(|e| OAuthError::grant(format!("the assertion: {e}")))?;
        self.proven_by(record, token.as_bytes(), method).await
    }

    /// The one trust provider that verifies a JWT with these (unverified)
    /// `iss`, `sub` and `aud`, among those of a kind `kinds` accepts: the
    /// only rule by which Mandate picks a provider for a JWT, for workload
    /// assertions and user tokens alike. None, or more than one (which
    /// would make the answer depend on the order providers were added), is
    /// an error naming them.
    fn jwt_provider<'a>(
        &self,
        providers: &'a [ProviderRecord],
        iss: &Option<String>,
        sub: &Option<String>,
        aud: &[String],
        kinds: impl Fn(ProviderKind) -> bool,
    ) -> Result<&'a ProviderRecord, String> {
        let auds: Vec<&str> = aud.iter().map(String::as_str).collect();
        let candidates: Vec<&ProviderRecord> = providers
            .iter()
            .filter(|r| r.kind.parse().is_ok_and(&kinds))
            .filter(|r| {
                self.attest
                    .spec(r)
                    .is_some_and(|s| s.may_verify_jwt(iss.as_deref(), sub.as_deref(), &auds))
            })
            .collect();
        match candidates.as_slice() {
            [one] => Ok(one),
            [] => Err(format!(
                "no trust provider accepts tokens from issuer `{}` for audience {aud:?}",
                iss.as_deref().unwrap_or_default(),
            )),
            several => Err(format!(
                "trust providers {} all accept this token; narrow their issuers or audiences",
                several
                    .iter()
                    .map(|r| format!("`{}`", r.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    async fn proven_by(
        &self,
        record: &ProviderRecord,
        evidence: &[u8],
        method: &'static str,
    ) -> Result<Proven, OAuthError> {
        let provider = record.name.as_str();
        let kind = record
            .kind
            .parse::<ProviderKind>()
            .map_err(|e| OAuthError::grant(format!("provider `{provider}`: {e}")))?;
        match self.attest_for_grant(provider, evidence).await? {
            Ok((a, agent)) => Ok(Proven {
                agent,
                attestation: Some(ProvenAttestation {
                    provider: a.provider,
                    kind,
                    claims: a.claims,
                }),
                method,
                attested: true,
            }),
            Err((code, reason)) => Err(OAuthError::grant(format!(
                "attestation refused by provider `{provider}` ({code}): {reason}"
            ))),
        }
    }

    /// Attests an AWS instance identity document at the AWS providers.
    async fn attest_aws(&self, assertion: &str) -> Result<Proven, OAuthError> {
        let evidence = match URL_SAFE_NO_PAD.decode(assertion.trim_end_matches('=')) {
            Ok(bytes) if bytes.trim_ascii_start().starts_with(b"{") => bytes,
            _ => assertion.as_bytes().to_vec(),
        };
        let providers = self.hot_providers().await?;
        let mut last = OAuthError::grant("no aws-iid trust provider is configured");
        for r in providers
            .iter()
            .filter(|r| r.kind.parse() == Ok(ProviderKind::AwsIid))
        {
            match self.proven_by(r, &evidence, "aws-iid").await {
                Ok(p) => return Ok(p),
                Err(e) if e.error == "invalid_grant" => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Verifies a user's token (the subject of an exchange on a user's
    /// behalf) at an `oidc` provider: `(provider, subject, claims)`. No
    /// binding rule applies: a user is not an agent.
    pub(crate) async fn verify_user_token(
        &self,
        token: &str,
    ) -> Result<(String, String, std::collections::BTreeMap<String, String>), OAuthError> {
        let Peeked { iss, sub, aud, .. } =
            peek(token).ok_or_else(|| OAuthError::grant("subject_token is not a JWT"))?;
        let providers = self.hot_providers().await?;
        let record = self
            .jwt_provider(&providers, &iss, &sub, &aud, |k| k == ProviderKind::Oidc)
            .map_err(|e| OAuthError::grant(format!("subject_token (a user's ID token): {e}")))?;
        let built = self.attest.get(record).map_err(|e| {
            OAuthError::grant(format!("subject_token: provider `{}`: {e}", record.name))
        })?;
        let verified = built
            .verify(token.as_bytes(), self.now().unix_timestamp())
            .await
            .map_err(|e| OAuthError::grant(format!("subject_token: {e}")))?;
        Ok((record.name.clone(), verified.subject, verified.claims))
    }
}
