//! The token service's keys and minting. Signing keys are generated here,
//! sealed under the master key, published in the JWKS before they sign, and
//! kept published after they stop signing for the longest token lifetime
//! plus the JWKS cache time. [`Engine::mint_token`] signs RFC 9068 access
//! tokens with the key that is active now and records each one.
//!
//! Key states are derived from times, so every replica agrees without a
//! background job: a key signs from `activate_after` until a newer key's
//! `activate_after`, and is published until its `retire_after`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use mandate_core::clock::unix_millis;
use mandate_core::{AuditDraft, Outcome, ValidationError};
use mandate_jose::envelope::MasterKey;
use mandate_jose::jwk::JwkSet;
use mandate_jose::jws::{Algorithm, SigningKey};
use mandate_store::{GrantWrite, KeyStateChange, SigningKeyRecord, TokenRecord};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::{Actor, Engine, Error, Result};

/// The JWS `typ` of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Settings of the token service.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// Lifetime when the client asks for none (5 minutes).
    pub default_ttl: Duration,
    /// Longest lifetime of any token (1 hour).
    pub max_ttl: Duration,
    /// How long verifiers may cache the JWKS (`Cache-Control: max-age`, 300 s).
    pub jwks_cache: Duration,
    /// Algorithm of new keys: `ES256` (default) or `EdDSA`.
    pub algorithm: Algorithm,
    /// Most delegation hops in a chain (4).
    pub max_delegation_depth: usize,
    /// Whether DPoP proofs at the token endpoint need a server nonce (yes).
    pub dpop_require_nonce: bool,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            default_ttl: Duration::minutes(5),
            max_ttl: Duration::hours(1),
            jwks_cache: Duration::seconds(300),
            algorithm: Algorithm::Es256,
            max_delegation_depth: 4,
            dpop_require_nonce: true,
        }
    }
}

pub(crate) struct TokenState {
    pub(crate) master: MasterKey,
    pub(crate) issuer: String,
    pub(crate) config: TokenConfig,
    /// Decrypted keys by `kid`.
    keys: Mutex<HashMap<String, Arc<SigningKey>>>,
    /// HMAC key of DPoP nonces, derived from the master key.
    pub(crate) nonce_key: [u8; 32],
}

/// Holds the token service once started (the master key arrives after the
/// engine is built).
#[derive(Default)]
pub(crate) struct TokenSlot(OnceLock<TokenState>);

impl std::fmt::Debug for TokenSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSlot")
    }
}

/// Where a signing key is in its life, at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Published, not yet signing.
    Next,
    /// Published and signing.
    Active,
    /// Published, no longer signing (until `retire_after`).
    Retired,
    /// No longer published.
    Expired,
}

impl KeyState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired | KeyState::Expired => "retired",
        }
    }
}

/// A signing key as admins see it (never key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SigningKeyInfo {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// `ES256` or `EdDSA`.
    pub alg: String,
    /// State now.
    pub state: KeyState,
    /// When it was generated.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    /// When it starts (started) signing.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub activate_after: OffsetDateTime,
    /// When it stops being published, once a successor exists.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub retire_after: Option<OffsetDateTime>,
}

/// States of `keys` (sorted by activation) at `now`.
fn states(keys: &[SigningKeyRecord], now: OffsetDateTime) -> Vec<KeyState> {
    let gone = |k: &SigningKeyRecord| k.retire_after.is_some_and(|r| r <= now);
    let signing = keys
        .iter()
        .rposition(|k| k.activate_after <= now && !gone(k));
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            if gone(k) {
                KeyState::Expired
            } else if Some(i) == signing {
                KeyState::Active
            } else if k.activate_after > now {
                KeyState::Next
            } else {
                KeyState::Retired
            }
        })
        .collect()
}

fn info(k: &SigningKeyRecord, state: KeyState) -> SigningKeyInfo {
    SigningKeyInfo {
        kid: k.kid.clone(),
        alg: k.alg.clone(),
        state,
        created_at: k.created_at,
        activate_after: k.activate_after,
        retire_after: k.retire_after,
    }
}

/// What a grant asks to be minted. The grant has already authenticated the
/// client and decided that the token may be issued.
#[derive(Debug, Clone, Default)]
pub struct MintRequest {
    /// `sub`: the agent's SPIFFE ID, or the user on whose behalf it acts.
    pub subject: String,
    /// The agent's name, recorded with the token.
    pub agent: String,
    /// `client_id`.
    pub client_id: String,
    /// `agent_kind`: `autonomous` or `on_behalf_of`.
    pub agent_kind: String,
    /// The resource's audience (RFC 8707 `resource`, or `audience`).
    pub audience: String,
    /// Requested scopes, each one the resource's; empty for all of them.
    pub scopes: Vec<String>,
    /// Requested lifetime; the default when absent.
    pub ttl: Option<Duration>,
    /// The transaction id of the chain; a new one when absent.
    pub txn: Option<String>,
    /// The `jti` of the token this one was exchanged from.
    pub parent_jti: Option<String>,
    /// `act` claim when delegated.
    pub act: Option<serde_json::Value>,
    /// `cnf.jkt` when DPoP-bound.
    pub cnf_jkt: Option<String>,
    /// `may_act` (RFC 8693 §4.4): the one actor this token may be
    /// exchanged by.
    pub may_act: Option<serde_json::Value>,
    /// The agents of the delegation chain, first caller first, the holder
    /// last (recorded with the token; empty means just `agent`).
    pub chain: Vec<String>,
    /// Whether the grant's attestation moves the agent's `last_seen_at`.
    pub touch_agent: bool,
    /// The user on whose behalf: their `email` and `groups` (RFC 9068
    /// §2.2.3.1) go into the token, so a later exchange and the gateway
    /// decide on the same user.
    pub user: Option<mandate_policy::UserEntity>,
    /// More members for the `token.issued` event's detail (the grant, the
    /// decision, the attestation).
    pub audit: serde_json::Map<String, serde_json::Value>,
}

/// A minted access token.
#[derive(Debug, Clone)]
pub struct MintedToken {
    /// The compact JWT. A bearer credential: never log it.
    pub access_token: mandate_jose::SecretString,
    /// Its `jti`.
    pub jti: String,
    /// Its `txn`.
    pub txn: String,
    /// Its `aud`.
    pub audience: String,
    /// Its space-separated `scope`.
    pub scope: String,
    /// Seconds until `exp`.
    pub expires_in: i64,
    /// The signing key's `kid`.
    pub kid: String,
}

pub(crate) fn internal(what: &'static str) -> impl FnOnce(mandate_jose::Error) -> Error {
    move |e| {
        tracing::error!(error = %e, "{what}");
        Error::Internal(what)
    }
}

impl Engine {
    pub(crate) fn token_state(&self) -> Result<&TokenState> {
        self.tokens
            .0
            .get()
            .ok_or(Error::Internal("token service not started"))
    }

    /// The token settings (the defaults until the service is started).
    pub fn token_config(&self) -> TokenConfig {
        self.token_state()
            .map(|s| s.config.clone())
            .unwrap_or_default()
    }

    /// The issuer (`iss`), once the service is started.
    pub fn issuer(&self) -> Option<&str> {
        self.token_state().ok().map(|s| s.issuer.as_str())
    }

    /// Starts the token service with the master key and the issuer URL, and
    /// creates the first signing key if there is none (active at once:
    /// nothing was published before it). Calling it again does nothing.
    pub async fn start_token_service(
        &self,
        master_key: [u8; 32],
        issuer: String,
        config: TokenConfig,
    ) -> Result<()> {
        let nonce_key =
            mandate_jose::digest::sha256(&[b"mandate/dpop-nonce/v1\0", master_key.as_slice()]);
        let _ = self.tokens.0.set(TokenState {
            master: MasterKey::new(master_key),
            issuer,
            config,
            keys: Mutex::new(HashMap::new()),
            nonce_key,
        });
        let state = self.token_state()?;
        let now = self.now();
        let (record, key) = self.new_key(state, state.config.algorithm, now, now, "active")?;
        let draft = AuditDraft::new(mandate_core::EventKind::KeyCreated, Outcome::Success)
            .actor("mandate")
            .target(format!("key:{}", record.kid))
            .detail(serde_json::json!({ "alg": record.alg, "state": "active" }));
        if self
            .store
            .create_first_signing_key(&record, draft, now)
            .await?
        {
            tracing::info!(kid = %record.kid, alg = %record.alg, "created the first signing key");
            self.hot_changed();
            self.cache_key(state, record.kid, key);
        }
        Ok(())
    }

    fn new_key(
        &self,
        state: &TokenState,
        alg: Algorithm,
        now: OffsetDateTime,
        activate_after: OffsetDateTime,
        stored_state: &str,
    ) -> Result<(SigningKeyRecord, SigningKey)> {
        let key = SigningKey::generate(alg).map_err(internal("cannot generate a signing key"))?;
        let kid = key
            .public_jwk()
            .map_err(|e| internal("cannot derive a public key")(e.into()))?
            .thumbprint();
        let der = key
            .to_pkcs8_der()
            .map_err(|e| internal("cannot export a signing key")(e.into()))?;
        let sealed = state
            .master
            .seal(&kid, &der)
            .map_err(internal("cannot seal a signing key"))?;
        let record = SigningKeyRecord {
            kid: kid.clone(),
            alg: alg.name().to_owned(),
            sealed_pkcs8: sealed,
            state: stored_state.to_owned(),
            created_at: now,
            activate_after,
            retire_after: None,
        };
        Ok((record, key.with_kid(kid)))
    }

    fn cache_key(&self, state: &TokenState, kid: String, key: SigningKey) -> Arc<SigningKey> {
        let key = Arc::new(key);
        if let Ok(mut map) = state.keys.lock() {
            map.insert(kid, key.clone());
        }
        key
    }

    /// Opens a stored key (cached after the first time).
    fn open_key(&self, state: &TokenState, rec: &SigningKeyRecord) -> Result<Arc<SigningKey>> {
        if let Some(k) = state
            .keys
            .lock()
            .ok()
            .and_then(|m| m.get(&rec.kid).cloned())
        {
            return Ok(k);
        }
        let alg = Algorithm::from_name(&rec.alg).ok_or(Error::Internal("stored key algorithm"))?;
        let der = state
            .master
            .open(&rec.kid, &rec.sealed_pkcs8)
            .map_err(internal(
                "a stored signing key does not decrypt under the master key",
            ))?;
        let key = SigningKey::from_pkcs8_der(alg, &der)
            .map_err(|e| internal("a stored signing key is unusable")(e.into()))?
            .with_kid(rec.kid.clone());
        Ok(self.cache_key(state, rec.kid.clone(), key))
    }

    /// Every signing key with its state now, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyInfo>> {
        let keys = self.store.list_signing_keys().await?;
        let st = states(&keys, self.now());
        Ok(keys.iter().zip(st).map(|(k, s)| info(k, s)).collect())
    }

    /// The published key set: every key that is next, active or retired but
    /// still kept.
    pub async fn published_jwks(&self) -> Result<JwkSet> {
        let state = self.token_state()?;
        let keys = self.hot_keys().await?;
        let st = states(&keys, self.now());
        let mut jwks = Vec::new();
        for (k, s) in keys.iter().zip(st) {
            if s != KeyState::Expired {
                let key = self.open_key(state, k)?;
                jwks.push(
                    key.public_jwk()
                        .map_err(|e| internal("cannot derive a public key")(e.into()))?,
                );
            }
        }
        JwkSet::from_keys(jwks).map_err(|e| internal("cannot build the key set")(e.into()))
    }

    /// Publishes a new key (of `alg`, or the configured algorithm) that starts
    /// signing after the JWKS cache time, and schedules the current key to be
    /// unpublished the longest token lifetime plus the cache time after that.
    pub async fn rotate_signing_key(
        &self,
        actor: &Actor,
        alg: Option<Algorithm>,
    ) -> Result<SigningKeyInfo> {
        let state = self.token_state()?;
        let alg = alg.unwrap_or(state.config.algorithm);
        if !matches!(alg, Algorithm::Es256 | Algorithm::EdDsa) {
            return Err(Error::Invalid(ValidationError::new(
                "alg",
                format!("`{alg}` is not one of ES256, EdDSA"),
            )));
        }
        let now = self.now();
        let keys = self.store.list_signing_keys().await?;
        let st = states(&keys, now);
        if let Some((k, _)) = keys.iter().zip(&st).find(|(_, s)| **s == KeyState::Next) {
            return Err(Error::InvalidState(format!(
                "key `{}` is already waiting to become active; rotate again after it does",
                k.kid
            )));
        }
        let activate_after = now + state.config.jwks_cache;
        let unpublish = activate_after + state.config.max_ttl + state.config.jwks_cache;
        let changes: Vec<KeyStateChange> = keys
            .iter()
            .zip(&st)
            .filter_map(|(k, s)| match s {
                KeyState::Active => Some(KeyStateChange {
                    kid: k.kid.clone(),
                    state: "active".into(),
                    retire_after: Some(unpublish),
                }),
                KeyState::Retired | KeyState::Expired if k.state != "retired" => {
                    Some(KeyStateChange {
                        kid: k.kid.clone(),
                        state: "retired".into(),
                        retire_after: k.retire_after,
                    })
                }
                _ => None,
            })
            .collect();
        let (record, key) = self.new_key(state, alg, now, activate_after, "next")?;
        let draft = AuditDraft::new(mandate_core::EventKind::KeyRotated, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("key:{}", record.kid))
            .detail(serde_json::json!({
                "alg": record.alg,
                "activate_after": mandate_core::clock::unix_millis(activate_after),
                "previous": changes.iter().filter(|c| c.state == "active").map(|c| c.kid.clone()).collect::<Vec<_>>(),
                "previous_retire_after": mandate_core::clock::unix_millis(unpublish),
            }));
        self.store
            .rotate_signing_keys(&record, &changes, draft, now)
            .await?;
        self.hot_changed();
        let info = info(&record, KeyState::Next);
        self.cache_key(state, record.kid, key);
        Ok(info)
    }

    /// The key that signs now, with its `kid`.
    pub(crate) async fn active_signing_key(
        &self,
        state: &TokenState,
    ) -> Result<(String, Arc<SigningKey>)> {
        let keys = self.hot_keys().await?;
        let st = states(&keys, self.now());
        let rec = keys
            .iter()
            .zip(st)
            .find(|(_, s)| *s == KeyState::Active)
            .map(|(k, _)| k)
            .ok_or(Error::Internal("no active signing key"))?;
        Ok((rec.kid.clone(), self.open_key(state, rec)?))
    }

    /// Signs an RFC 9068 access token for one resource with the active key
    /// and records it (`jti`, parent, agent, `txn`, expiry) with a
    /// `token.issued` audit event. The lifetime is the smallest of the
    /// requested (or default) one, the resource's maximum and the configured
    /// maximum. An unknown audience is [`Error::NotFound`] of kind
    /// `resource`; a scope the resource does not have is invalid.
    pub async fn mint_token(&self, req: MintRequest) -> Result<MintedToken> {
        let state = self.token_state()?;
        let resource = self
            .resource_by_audience(&req.audience)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "resource",
                id: req.audience.clone(),
            })?;
        let scopes = if req.scopes.is_empty() {
            resource.scopes.clone()
        } else {
            if let Some(s) = req.scopes.iter().find(|s| !resource.scopes.contains(s)) {
                return Err(Error::Invalid(ValidationError::new(
                    "scope",
                    format!("`{s}` is not a scope of resource `{}`", resource.name),
                )));
            }
            req.scopes.clone()
        };
        let ttl = req
            .ttl
            .unwrap_or(state.config.default_ttl)
            .min(Duration::seconds(resource.max_ttl_secs))
            .min(state.config.max_ttl);
        if ttl <= Duration::ZERO {
            return Err(Error::Invalid(ValidationError::new(
                "ttl",
                "the lifetime must be positive",
            )));
        }
        let now = self.now();
        let (kid, key) = self.active_signing_key(state).await?;
        let id = || {
            mandate_jose::random::time_ordered_id(unix_millis(now))
                .map_err(internal("no randomness"))
        };
        let jti = id()?;
        let txn = match req.txn {
            Some(t) => t,
            None => id()?,
        };
        let iat = now.unix_timestamp();
        let exp = iat + ttl.whole_seconds();
        let scope = scopes.join(" ");
        let mut claims = serde_json::json!({
            "iss": state.issuer,
            "sub": req.subject,
            "aud": resource.audience,
            "exp": exp,
            "iat": iat,
            "nbf": iat,
            "jti": jti,
            "client_id": req.client_id,
            "scope": scope,
            "agent_kind": req.agent_kind,
            "txn": txn,
        });
        if let Some(map) = claims.as_object_mut() {
            if let Some(act) = req.act {
                map.insert("act".into(), act);
            }
            if let Some(jkt) = &req.cnf_jkt {
                map.insert("cnf".into(), serde_json::json!({ "jkt": jkt }));
            }
            if let Some(may_act) = &req.may_act {
                map.insert("may_act".into(), may_act.clone());
            }
            if let Some(u) = &req.user {
                if !u.email.is_empty() {
                    map.insert("email".into(), u.email.clone().into());
                }
                if !u.groups.is_empty() {
                    map.insert("groups".into(), serde_json::json!(u.groups));
                }
            }
        }
        let payload = serde_json::to_vec(&claims).map_err(|_| Error::Internal("claims"))?;
        let token = key
            .sign(Some(ACCESS_TOKEN_TYP), &payload)
            .map_err(internal("cannot sign a token"))?;
        let chain = if req.chain.is_empty() {
            vec![req.agent.clone()]
        } else {
            req.chain.clone()
        };
        let record = TokenRecord {
            jti: jti.clone(),
            parent_jti: req.parent_jti.clone(),
            agent: req.agent.clone(),
            txn: txn.clone(),
            audience: resource.audience.clone(),
            issued_at: now,
            expires_at: OffsetDateTime::from_unix_timestamp(exp)
                .map_err(|_| Error::Internal("token expiry"))?,
            revoked_at: None,
            scope: scope.clone(),
            chain: chain.clone(),
        };
        // The grant's facts first, the minted token's over them: the event
        // says what the token carries (its scope, its whole chain with the
        // holder), whatever the grant recorded while deciding.
        let mut detail = serde_json::Value::Object(req.audit);
        let minted = serde_json::json!({
            "jti": jti,
            "parent_jti": req.parent_jti,
            "txn": txn,
            "agent": req.agent,
            "sub": req.subject,
            "chain": chain,
            "resource": resource.name,
            "aud": resource.audience,
            "scope": scope,
            "exp": exp,
            "kid": kid,
            "dpop_bound": req.cnf_jkt.is_some(),
        });
        if let (Some(map), serde_json::Value::Object(facts)) = (detail.as_object_mut(), minted) {
            map.extend(facts);
        }
        let draft = AuditDraft::new(mandate_core::EventKind::TokenIssued, Outcome::Success)
            .actor(req.agent.clone())
            .target(format!("resource:{}", resource.name))
            .detail(detail);
        let write = GrantWrite {
            token: Some(record),
            touch_agent: req.touch_agent.then(|| req.agent.clone()),
        };
        self.store.record_grant(write, draft, now).await?;
        Ok(MintedToken {
            access_token: token.into(),
            jti,
            txn,
            audience: resource.audience,
            scope,
            expires_in: exp - iat,
            kid,
        })
    }
}

#[cfg(test)]
#[path = "tokens/tests.rs"]
pub(crate) mod tests;
