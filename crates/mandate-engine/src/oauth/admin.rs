//! Admin operations of the token service: the keys agents sign client
//! assertions with, the list of issued tokens, and revocation by `jti`.

use mandate_core::{AgentName, AuditDraft, Outcome, ValidationError};
use mandate_jose::jwk::JwkSet;
use mandate_store::{TokenFilter, TokenRecord};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{Actor, Engine, Error, Result};

/// An issued token as admins see it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Its `jti`.
    pub jti: String,
    /// The token it was exchanged from.
    pub parent_jti: Option<String>,
    /// The agent holding it.
    pub agent: String,
    /// The delegation chain, first caller first, the holder last.
    pub chain: Vec<String>,
    /// The transaction id shared by the chain.
    pub txn: String,
    /// Its `aud`.
    pub audience: String,
    /// Its `scope`.
    pub scope: String,
    /// `iat`.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub issued_at: OffsetDateTime,
    /// `exp`.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub expires_at: OffsetDateTime,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub revoked_at: Option<OffsetDateTime>,
    /// `live`, `expired` or `revoked`, now.
    pub state: &'static str,
}

fn info(t: TokenRecord, now: OffsetDateTime) -> TokenInfo {
    let state = if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at <= now {
        "expired"
    } else {
        "live"
    };
    TokenInfo {
        jti: t.jti,
        parent_jti: t.parent_jti,
        agent: t.agent,
        chain: t.chain,
        txn: t.txn,
        audience: t.audience,
        scope: t.scope,
        issued_at: t.issued_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
        state,
    }
}

impl Engine {
    /// Registers the public keys `agent` signs `private_key_jwt` client
    /// assertions with (replacing any before). Private key material, keys
    /// that are not for signatures and empty sets are refused.
    pub async fn set_agent_jwks(
        &self,
        actor: &Actor,
        agent: &AgentName,
        jwks: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        self.agent(agent).await?;
        let text = jwks.to_string();
        let set = JwkSet::from_json(text.as_bytes())
            .map_err(|e| Error::Invalid(ValidationError::new("jwks", e.to_string())))?;
        if set.is_empty() {
            return Err(Error::Invalid(ValidationError::new(
                "jwks",
                "the key set has no keys",
            )));
        }
        let thumbprints: Vec<String> = set.keys().iter().map(|k| k.thumbprint()).collect();
        let draft = AuditDraft::new(mandate_core::EventKind::AgentKeysSet, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("agent/{agent}"))
            .detail(serde_json::json!({ "thumbprints": thumbprints }));
        self.store
            .set_agent_jwks(
                agent.as_str(),
                &set.to_json().to_string(),
                draft,
                self.now(),
            )
            .await?;
        Ok(set.to_json())
    }

    /// The public keys registered on `agent` (an empty set when none).
    pub async fn agent_jwks(&self, agent: &AgentName) -> Result<serde_json::Value> {
        self.agent(agent).await?;
        match self.store.agent_jwks(agent.as_str()).await? {
            Some(text) => serde_json::from_str(&text).map_err(|_| Error::Internal("stored jwks")),
            None => Ok(serde_json::json!({ "keys": [] })),
        }
    }

    /// Issued tokens, newest first.
    pub async fn list_tokens(
        &self,
        agent: Option<&str>,
        live_only: bool,
        limit: u32,
    ) -> Result<Vec<TokenInfo>> {
        let now = self.now();
        let rows = self
            .store
            .list_tokens(&TokenFilter {
                agent: agent.map(str::to_owned),
                live_at: live_only.then_some(now),
                limit,
            })
            .await?;
        Ok(rows.into_iter().map(|t| info(t, now)).collect())
    }

    /// Revokes the token `jti` and every token derived from it: how many
    /// were revoked now. [`Error::NotFound`] for an unknown `jti`.
    pub async fn admin_revoke_token(&self, actor: &Actor, jti: &str) -> Result<u64> {
        if self.store.token(jti).await?.is_none() {
            return Err(Error::NotFound {
                kind: "token",
                id: jti.to_owned(),
            });
        }
        self.revoke_jti(&actor.token_id, Some(jti), "admin").await
    }
}

impl Engine {
    /// Forgets one-time `jti`s (client assertions, DPoP proofs) that can no
    /// longer be replayed because they expired.
    pub async fn purge_replay_cache(&self) -> Result<u64> {
        Ok(self.store.purge_seen_jti(self.now()).await?)
    }
}
