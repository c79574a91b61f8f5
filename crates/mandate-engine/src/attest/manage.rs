//! Managing trust providers, binding rules, shadow agents and join tokens.

use std::collections::BTreeMap;

use mandate_attest::binding::{self, ClaimMatch, MAX_MATCHES};
use mandate_attest::jwks_cache::CacheStatus;
use mandate_attest::{Provider, ProviderSpec, join_token};
use mandate_core::{AgentName, AgentStatus, AuditDraft, Outcome, ProviderKind, ValidationError};
use mandate_jose::SecretString;
use mandate_jose::random;
use mandate_store::{BindingRecord, JoinTokenRecord, ProviderRecord, ShadowRecord};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{Actor, Engine, Error, Result};

/// Longest join-token lifetime, in seconds (30 days).
pub const MAX_JOIN_TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;
const DEFAULT_JOIN_TOKEN_TTL_SECS: i64 = 3600;

/// A trust provider as shown to admins.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderInfo {
    /// Unique name.
    pub name: String,
    /// Kind and configuration.
    #[serde(flatten)]
    pub spec: ProviderSpec,
    /// Whether fetches may reach private and loopback addresses.
    pub allow_private_network: bool,
    /// Claims this kind offers to binding rules.
    pub binding_claims: Vec<String>,
    /// The key cache, for JWT kinds, once used.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub keys: Option<CacheStatus>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The admin token that created it.
    pub created_by: Option<String>,
}

/// A binding rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Binding {
    /// Public id (`bnd_...`).
    pub id: String,
    /// The provider.
    pub provider: String,
    /// The agent it maps to.
    pub agent: String,
    /// All must hold.
    pub matches: Vec<ClaimMatch>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The admin token that created it.
    pub created_by: Option<String>,
}

/// A shadow agent: a verified workload no binding rule maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Shadow {
    /// Stable id (`shd_...`).
    pub id: String,
    /// The provider that verified it.
    pub provider: String,
    /// Its subject there.
    pub subject: String,
    /// SHA-256 of its stable claims at the latest sighting.
    pub claims_digest: String,
    /// Its claims at the latest sighting.
    pub claims: BTreeMap<String, String>,
    /// First sighting.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    /// Latest sighting.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// Sightings.
    pub count: i64,
}

/// A created join token: its only appearance in clear.
#[derive(Debug)]
pub struct IssuedJoinToken {
    /// Public id.
    pub id: String,
    /// The provider.
    pub provider: String,
    /// The agent it attests as.
    pub agent: String,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// `mjt_<id>_<secret>`.
    pub token: SecretString,
}

fn invalid(field: &'static str, msg: impl Into<String>) -> Error {
    Error::Invalid(ValidationError::new(field, msg))
}

pub(crate) fn binding_from(r: BindingRecord) -> Result<Binding> {
    let matches: Vec<ClaimMatch> = serde_json::from_str(&r.matches)
        .map_err(|_| Error::Internal("stored binding rule is corrupt"))?;
    Ok(Binding {
        id: r.id,
        provider: r.provider,
        agent: r.agent,
        matches,
        created_at: r.created_at,
        created_by: r.created_by,
    })
}

pub(crate) fn shadow_from(r: ShadowRecord) -> Shadow {
    Shadow {
        claims: serde_json::from_str(&r.claims).unwrap_or_default(),
        id: r.id,
        provider: r.provider,
        subject: r.subject,
        claims_digest: r.claims_digest,
        first_seen: r.first_seen,
        last_seen: r.last_seen,
        count: r.count,
    }
}

impl Engine {
    /// Adds a trust provider after checking its configuration (nothing is
    /// fetched yet).
    pub async fn add_provider(
        &self,
        actor: &Actor,
        name: &str,
        spec: ProviderSpec,
        allow_private_network: bool,
    ) -> Result<ProviderInfo> {
        name.parse::<AgentName>()
            .map_err(|e| invalid("name", format!("invalid provider name: {}", e.message)))?;
        Provider::build(&spec, allow_private_network, &self.attest.fetcher)
            .map_err(|e| invalid("config", e.to_string()))?;
        let json = serde_json::to_string(&spec)
            .map_err(|_| Error::Internal("cannot serialize a provider"))?;
        let now = self.now();
        let rec = ProviderRecord {
            name: name.to_owned(),
            kind: spec.kind().as_str().to_owned(),
            spec: json,
            allow_private_network,
            created_at: now,
            created_by: Some(actor.token_id.clone()),
        };
        let draft = AuditDraft::new(mandate_core::EventKind::ProviderAdded, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("provider/{name}"))
            .detail(serde_json::json!({
                "kind": spec.kind(),
                "allow_private_network": allow_private_network,
            }));
        self.store
            .create_provider(&rec, draft, now)
            .await
            .map_err(|e| match e {
                mandate_store::Error::Duplicate { id, .. } => Error::AlreadyExists {
                    kind: "provider",
                    id,
                },
                other => other.into(),
            })?;
        self.attest.forget(name);
        self.hot_changed();
        self.provider(name).await
    }

    pub(crate) async fn provider_record(&self, name: &str) -> Result<ProviderRecord> {
        self.store
            .provider(name)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "provider",
                id: name.to_owned(),
            })
    }

    fn provider_info(&self, r: ProviderRecord) -> Result<ProviderInfo> {
        let spec: ProviderSpec = serde_json::from_str(&r.spec)
            .map_err(|_| Error::Internal("stored provider configuration is corrupt"))?;
        let keys = self.attest.cached(&r).and_then(|p| p.cache_status());
        Ok(ProviderInfo {
            binding_claims: spec
                .binding_claims()
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            name: r.name,
            spec,
            allow_private_network: r.allow_private_network,
            keys,
            created_at: r.created_at,
            created_by: r.created_by,
        })
    }

    /// One provider.
    pub async fn provider(&self, name: &str) -> Result<ProviderInfo> {
        let r = self.provider_record(name).await?;
        self.provider_info(r)
    }

    /// Every provider.
    pub async fn list_providers(&self) -> Result<Vec<ProviderInfo>> {
        let rows = self.store.list_providers().await?;
        rows.into_iter().map(|r| self.provider_info(r)).collect()
    }

    /// Removes a provider with its binding rules, join tokens and shadows.
    pub async fn remove_provider(&self, actor: &Actor, name: &str) -> Result<()> {
        let draft = AuditDraft::new(mandate_core::EventKind::ProviderRemoved, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("provider/{name}"));
        if !self.store.remove_provider(name, draft, self.now()).await? {
            return Err(Error::NotFound {
                kind: "provider",
                id: name.to_owned(),
            });
        }
        self.attest.forget(name);
        self.hot_changed();
        Ok(())
    }

    /// Adds a binding rule. Refused when the agent is missing or
    /// decommissioned, the provider is a join-token provider (its tokens
    /// name their agent), or the rule ties with an existing one.
    pub async fn add_binding(
        &self,
        actor: &Actor,
        provider: &str,
        agent: &AgentName,
        matches: Vec<ClaimMatch>,
    ) -> Result<Binding> {
        let p = self.provider_record(provider).await?;
        let kind: ProviderKind = p.kind.parse()?;
        if kind == ProviderKind::JoinToken {
            return Err(invalid(
                "provider",
                "join tokens name their agent; binding rules do not apply",
            ));
        }
        if matches.is_empty() || matches.len() > MAX_MATCHES {
            return Err(invalid(
                "matches",
                format!("a rule needs 1 to {MAX_MATCHES} matches"),
            ));
        }
        for m in &matches {
            m.check().map_err(|e| invalid("matches", e))?;
            mandate_attest::presets::check_claim_name(kind, &m.claim)
                .map_err(|e| invalid("matches", e))?;
        }
        let a = self.agent(agent).await?;
        if a.status == AgentStatus::Decommissioned {
            return Err(Error::InvalidState(format!(
                "agent `{agent}` is decommissioned"
            )));
        }
        for existing in self.store.list_bindings(Some(provider)).await? {
            let existing = binding_from(existing)?;
            if binding::conflicts(&matches, &existing.matches) {
                return Err(Error::BindingTie(format!(
                    "rule ties with `{}` (agent `{}`): same specificity, and both can match one attestation",
                    existing.id, existing.agent
                )));
            }
        }
        let id = format!(
            "bnd_{}",
            random::id(12).map_err(|_| Error::Internal("secure random generator unavailable"))?
        );
        let now = self.now();
        let json = serde_json::to_string(&matches)
            .map_err(|_| Error::Internal("cannot serialize a rule"))?;
        let rec = BindingRecord {
            id: id.clone(),
            provider: provider.to_owned(),
            agent: agent.to_string(),
            matches: json,
            created_at: now,
            created_by: Some(actor.token_id.clone()),
        };
        let draft = AuditDraft::new(mandate_core::EventKind::BindingAdded, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("binding/{id}"))
            .detail(serde_json::json!({
                "provider": provider,
                "agent": agent.as_str(),
                "matches": matches.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }));
        self.store.create_binding(&rec, draft, now).await?;
        self.hot_changed();
        binding_from(rec)
    }

    /// Binding rules, of one provider or all.
    pub async fn list_bindings(&self, provider: Option<&str>) -> Result<Vec<Binding>> {
        self.store
            .list_bindings(provider)
            .await?
            .into_iter()
            .map(binding_from)
            .collect()
    }

    /// Removes a binding rule.
    pub async fn remove_binding(&self, actor: &Actor, id: &str) -> Result<()> {
        let draft = AuditDraft::new(mandate_core::EventKind::BindingRemoved, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("binding/{id}"));
        let removed = self.store.remove_binding(id, draft, self.now()).await?;
        self.hot_changed();
        if !removed {
            return Err(Error::NotFound {
                kind: "binding",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Shadow agents, of one provider or all, most recently seen first.
    pub async fn list_shadows(&self, provider: Option<&str>) -> Result<Vec<Shadow>> {
        Ok(self
            .store
            .list_shadows(provider)
            .await?
            .into_iter()
            .map(shadow_from)
            .collect())
    }

    /// Creates a one-time join token for `agent` at a join-token provider.
    pub async fn create_join_token(
        &self,
        actor: &Actor,
        provider: &str,
        agent: &AgentName,
        ttl_secs: Option<i64>,
    ) -> Result<IssuedJoinToken> {
        let p = self.provider_record(provider).await?;
        let spec: ProviderSpec = serde_json::from_str(&p.spec)
            .map_err(|_| Error::Internal("stored provider configuration is corrupt"))?;
        let ProviderSpec::JoinToken(js) = spec else {
            return Err(invalid(
                "provider",
                format!("provider `{provider}` is not a join-token provider"),
            ));
        };
        let ttl = ttl_secs
            .or(js.default_ttl_secs)
            .unwrap_or(DEFAULT_JOIN_TOKEN_TTL_SECS);
        if !(1..=MAX_JOIN_TOKEN_TTL_SECS).contains(&ttl) {
            return Err(invalid(
                "expires_in",
                format!("lifetime must be 1 s to {MAX_JOIN_TOKEN_TTL_SECS} s"),
            ));
        }
        let a = self.agent(agent).await?;
        if a.status != AgentStatus::Active {
            return Err(Error::InvalidState(format!(
                "agent `{agent}` is {}",
                a.status.as_str()
            )));
        }
        let minted = join_token::mint()
            .map_err(|_| Error::Internal("secure random generator unavailable"))?;
        let now = self.now();
        let expires_at = now + time::Duration::seconds(ttl);
        let rec = JoinTokenRecord {
            id: minted.id.clone(),
            provider: provider.to_owned(),
            agent: agent.to_string(),
            secret_hash: minted.secret_hash,
            created_at: now,
            created_by: Some(actor.token_id.clone()),
            expires_at,
            consumed_at: None,
        };
        let draft = AuditDraft::new(mandate_core::EventKind::JoinTokenCreated, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("join_token/{}", minted.id))
            .detail(serde_json::json!({
                "provider": provider,
                "agent": agent.as_str(),
                "expires_in_secs": ttl,
            }));
        self.store.create_join_token(&rec, draft, now).await?;
        Ok(IssuedJoinToken {
            id: minted.id,
            provider: provider.to_owned(),
            agent: agent.to_string(),
            expires_at,
            token: minted.token,
        })
    }
}
