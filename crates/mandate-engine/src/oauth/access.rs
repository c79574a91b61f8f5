//! Verifying Mandate's own access tokens: as subject and actor tokens of an
//! exchange, at introspection, and at the resources Mandate serves itself
//! (AuthZEN). Signature with a published key (the algorithm from the key),
//! `typ: at+jwt` (so an ID token, a DPoP proof, a client assertion or an
//! attestation JWT is never taken for one), `iss` this issuer, the time
//! claims, and then the record: known, not revoked, its holder active.

use mandate_core::{AgentName, AgentStatus};
use mandate_jose::claims::{Claims, Validation};
use mandate_jose::jws::{self, Algorithm};
use mandate_store::TokenRecord;
use serde_json::Value;

use super::split_scope;
use crate::tokens::ACCESS_TOKEN_TYP;
use crate::{Engine, Result};

/// The algorithms Mandate signs its access tokens with.
pub const ACCESS_TOKEN_ALGORITHMS: [Algorithm; 2] = [Algorithm::Es256, Algorithm::EdDsa];

/// A valid Mandate access token (serialised for standalone gateways).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AccessToken {
    /// All its claims.
    pub claims: serde_json::Map<String, Value>,
    /// `sub`.
    pub subject: String,
    /// `aud` (one resource's audience).
    pub audience: String,
    /// `scope`, split.
    pub scopes: Vec<String>,
    /// `exp`.
    pub exp: i64,
    /// `cnf.jkt`, when DPoP-bound.
    pub cnf_jkt: Option<String>,
    /// The stored record (holder, chain, `txn`, parent).
    pub record: TokenRecord,
    /// The holder's `env` label (empty when unset), for policies.
    pub env: String,
}

impl AccessToken {
    /// The `act` claim, when delegated.
    pub fn act(&self) -> Option<&Value> {
        self.claims.get("act")
    }

    /// Its `agent_kind` claim, when it names a kind.
    pub fn agent_kind(&self) -> Option<mandate_core::AgentKind> {
        self.claims
            .get("agent_kind")
            .and_then(Value::as_str)
            .and_then(mandate_core::AgentKind::from_claim)
    }

    /// The user on whose behalf it was issued, as a policy entity: the id
    /// (`sub`), and the `email` and `groups` claims the token carries.
    pub fn user_entity(&self) -> Option<mandate_policy::UserEntity> {
        let id = self.on_behalf_of()?;
        Some(mandate_policy::UserEntity {
            id: id.to_owned(),
            email: self
                .claims
                .get("email")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            groups: self
                .claims
                .get("groups")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
        })
    }

    /// The user the token acts for: its subject, when it is an
    /// on-behalf-of token whose subject is a person (not a workload's
    /// SPIFFE ID).
    pub fn on_behalf_of(&self) -> Option<&str> {
        (self.agent_kind() == Some(mandate_core::AgentKind::OnBehalfOf)
            && !self.subject.starts_with("spiffe://"))
        .then_some(self.subject.as_str())
    }
}

impl Engine {
    /// Verifies a Mandate access token. `Ok(Err(reason))` when it is not a
    /// valid one (the reason is for audit and logs, not for callers).
    pub async fn verify_access_token(
        &self,
        token: &str,
    ) -> Result<std::result::Result<AccessToken, String>> {
        let jws = match jws::decode(token, jws::DEFAULT_MAX_TOKEN_LEN) {
            Ok(j) => j,
            Err(e) => return Ok(Err(format!("not a JWT: {e}"))),
        };
        if let Err(e) = jws.header().check_typ(ACCESS_TOKEN_TYP) {
            return Ok(Err(format!("not an access token: {e}")));
        }
        let jwks = self.hot_jwks().await?;
        let payload = match jws.verify(&jwks, &ACCESS_TOKEN_ALGORITHMS) {
            Ok(v) => v.into_parts().1,
            Err(e) => return Ok(Err(format!("signature: {e}"))),
        };
        let claims = match Claims::from_json(&payload) {
            Ok(c) => c,
            Err(e) => return Ok(Err(format!("claims: {e}"))),
        };
        let Some(issuer) = self.issuer() else {
            return Ok(Err("the token service is not started".into()));
        };
        let Some(Value::String(aud)) = claims.get("aud").cloned() else {
            return Ok(Err("`aud` is not one string".into()));
        };
        let now = self.now().unix_timestamp();
        if let Err(e) = Validation::new(issuer, aud.clone())
            .with_skew(0)
            .map_err(|e| e.to_string())
            .and_then(|v| v.validate(&claims, now).map_err(|e| e.to_string()))
        {
            return Ok(Err(e));
        }
        let Some(jti) = claims.jti() else {
            return Ok(Err("no `jti`".into()));
        };
        let Some(record) = self.store.token(jti).await? else {
            return Ok(Err("unknown token".into()));
        };
        if record.revoked_at.is_some() {
            return Ok(Err("revoked".into()));
        }
        let holder = match record.agent.parse::<AgentName>() {
            Ok(name) => self.store.agent(&name).await?,
            Err(_) => None,
        };
        let Some(holder) = holder.filter(|a| a.status == AgentStatus::Active) else {
            return Ok(Err(format!("agent `{}` is not active", record.agent)));
        };
        let env = holder.labels.get("env").unwrap_or_default().to_owned();
        let exp = claims.exp().ok().flatten().unwrap_or(0);
        let cnf_jkt = claims
            .get("cnf")
            .and_then(|c| c.get("jkt"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let subject = claims.sub().unwrap_or_default().to_owned();
        let scopes = split_scope(claims.get("scope").and_then(Value::as_str).unwrap_or(""));
        Ok(Ok(AccessToken {
            claims: claims.into_map(),
            subject,
            audience: aud,
            scopes,
            exp,
            cnf_jkt,
            record,
            env,
        }))
    }
}

/// Why a token presented to a resource Mandate serves was refused: the
/// RFC 6750 / RFC 9449 error code and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedRefusal {
    /// `invalid_token`, `invalid_dpop_proof`, `insufficient_scope` or
    /// `invalid_request`.
    pub error: &'static str,
    /// Why.
    pub description: String,
}

/// A token as presented in `Authorization`, with its `DPoP` proof.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// `Bearer` or `DPoP`.
    pub scheme: &'a str,
    /// The token.
    pub token: &'a str,
    /// The `DPoP` header.
    pub proof: Option<&'a str>,
    /// The request's method.
    pub method: &'a str,
    /// The request's public URL.
    pub url: &'a str,
}

impl Engine {
    /// Checks a Mandate access token presented to a resource Mandate serves
    /// itself: valid, for `audience`, holding `scope`, and when DPoP-bound,
    /// presented with the `DPoP` scheme and a proof of its key with `ath`
    /// (RFC 9449 §7). A bound token presented as `Bearer` is refused.
    pub async fn check_presented(
        &self,
        p: Presented<'_>,
        audience: &str,
        scope: &str,
    ) -> Result<std::result::Result<AccessToken, PresentedRefusal>> {
        let t = match self.verify_access_token(p.token).await? {
            Ok(t) => t,
            Err(why) => {
                return Ok(Err(PresentedRefusal {
                    error: "invalid_token",
                    description: why,
                }));
            }
        };
        self.check_verified_presented(t, p, audience, scope).await
    }

    /// [`Engine::check_presented`] for a token already verified (`t`, a
    /// copy kept by its hash, say): for `audience`, bound as presented,
    /// holding `scope`.
    pub async fn check_verified_presented<T: std::borrow::Borrow<AccessToken>>(
        &self,
        t: T,
        p: Presented<'_>,
        audience: &str,
        scope: &str,
    ) -> Result<std::result::Result<T, PresentedRefusal>> {
        let refuse = |error, description: String| Ok(Err(PresentedRefusal { error, description }));
        let token: &AccessToken = t.borrow();
        if token.audience != audience {
            return refuse(
                "invalid_token",
                format!("the token is for `{}`", token.audience),
            );
        }
        if let Err(refusal) = self.check_binding(token, p).await? {
            return Ok(Err(refusal));
        }
        if !token.scopes.iter().any(|s| s == scope) {
            return refuse(
                "insufficient_scope",
                format!("the token lacks scope `{scope}`"),
            );
        }
        Ok(Ok(t))
    }
}

impl Engine {
    /// Checks how a verified token was presented: a DPoP-bound token only
    /// with the `DPoP` scheme and a fresh proof of its key for this request
    /// with `ath` (RFC 9449 §7), a Bearer token only as `Bearer`. Done on
    /// every request, also when the token's verification is cached.
    pub async fn check_binding(
        &self,
        t: &AccessToken,
        p: Presented<'_>,
    ) -> Result<std::result::Result<(), PresentedRefusal>> {
        let refuse = |error, description: String| Ok(Err(PresentedRefusal { error, description }));
        let dpop = p.scheme.eq_ignore_ascii_case("dpop");
        match (&t.cnf_jkt, dpop, p.proof) {
            (Some(_), false, _) => refuse(
                "invalid_token",
                "a DPoP-bound token must be presented with the DPoP scheme".into(),
            ),
            (None, true, _) => refuse("invalid_token", "the token is not DPoP-bound".into()),
            (Some(_), true, None) => {
                refuse("invalid_dpop_proof", "the DPoP proof is missing".into())
            }
            (Some(jkt), true, Some(proof)) => {
                let check = super::dpop::DpopCheck {
                    method: p.method,
                    url: p.url,
                    access_token: Some(p.token),
                    require_nonce: false,
                };
                match self.verify_dpop(proof, check).await {
                    Ok(proven) if &proven.jkt == jkt => Ok(Ok(())),
                    Ok(_) => refuse(
                        "invalid_dpop_proof",
                        "the proof key is not the token's key".into(),
                    ),
                    Err(super::dpop::DpopFailure::Internal(e)) => Err(e),
                    Err(super::dpop::DpopFailure::Invalid(why)) => {
                        refuse("invalid_dpop_proof", why)
                    }
                    Err(super::dpop::DpopFailure::UseNonce(_)) => {
                        refuse("use_dpop_nonce", "a DPoP nonce is required".into())
                    }
                }
            }
            (None, false, _) => Ok(Ok(())),
        }
    }
}
