//! A provider's key set, fetched through the [`Fetcher`] and kept warm.
//!
//! - The set is fetched on first use and again once older than the maximum
//!   age (for a SPIFFE bundle, its `spiffe_refresh_hint` when shorter).
//! - A token whose `kid` is not in the set triggers one refresh, but at most
//!   one fetch per minimum refresh interval, however many unknown kids arrive
//!   (an attacker sending random kids cannot make Mandate hammer the issuer).
//! - When a refresh fails, the last good set stays in use and the failure is
//!   remembered for `provider show`; with no good set yet, verification fails.
//!
//! The cache holds a ready [`JwtVerifier`] (keys plus the provider's
//! algorithms and claim rules), so a warm verification clones one `Arc`.
//! Time is passed in (unix seconds); nothing here reads the clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use mandate_jose::jwk::JwkSet;
use mandate_jose::jwt::JwtVerifier;
use serde_json::Value;

use crate::fetch::{FetchError, Fetcher, check_url};

/// Default maximum age of a fetched key set, in seconds.
pub const DEFAULT_MAX_AGE_SECS: i64 = 3600;
/// Default minimum time between two fetches, in seconds.
pub const DEFAULT_MIN_REFRESH_SECS: i64 = 30;

/// Where a provider's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Keys given in the configuration (inline JSON or a file); never fetched.
    Static,
    /// A JWKS (or SPIFFE bundle) at a fixed URL.
    Url(String),
    /// The `jwks_uri` of the issuer's `/.well-known/openid-configuration`.
    Discovery {
        /// The issuer, matched exactly against the document's `issuer`.
        issuer: String,
    },
}

/// How the fetched bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// A JWKS (RFC 7517).
    Jwks,
    /// A SPIFFE bundle: a JWKS whose `jwt-svid` entries are the JWT keys.
    SpiffeBundle,
}

/// Why no key set is available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// The fetch was refused or failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The discovery document is malformed or names another issuer.
    #[error("discovery document: {0}")]
    Discovery(String),
    /// The fetched key set does not parse.
    #[error("key set: {0}")]
    Keys(String),
}

/// Cache timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Refetch once the set is this old (seconds).
    pub max_age_secs: i64,
    /// Never fetch more often than this (seconds).
    pub min_refresh_secs: i64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_age_secs: DEFAULT_MAX_AGE_SECS,
            min_refresh_secs: DEFAULT_MIN_REFRESH_SECS,
        }
    }
}

/// What `provider show` reports about a cache.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CacheStatus {
    /// Keys in the current set.
    pub keys: usize,
    /// When the current set was fetched (unix seconds), if ever.
    pub fetched_at: Option<i64>,
    /// The last fetch error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Fetches made so far.
    pub fetches: u64,
}

#[derive(Debug, Default)]
struct State {
    verifier: Option<Arc<JwtVerifier>>,
    fetched_at: Option<i64>,
    last_attempt: Option<i64>,
    last_error: Option<String>,
    jwks_uri: Option<String>,
    refresh_hint: Option<i64>,
}

/// One provider's key set and verifier.
#[derive(Debug)]
pub struct JwksCache {
    source: KeySource,
    format: KeyFormat,
    allow_private: bool,
    fetcher: Fetcher,
    template: JwtVerifier,
    settings: CacheSettings,
    state: RwLock<State>,
    refresh: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl JwksCache {
    /// A cache over fixed keys: `template` already holds them.
    pub fn fixed(template: JwtVerifier, fetcher: Fetcher) -> Self {
        let verifier = Arc::new(template.clone());
        Self {
            source: KeySource::Static,
            format: KeyFormat::Jwks,
            allow_private: false,
            fetcher,
            template,
            settings: CacheSettings::default(),
            state: RwLock::new(State {
                verifier: Some(verifier),
                ..State::default()
            }),
            refresh: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    /// A cache fetching keys from `source`; `template` carries the
    /// algorithms and claim validation, its keys are replaced.
    pub fn remote(
        source: KeySource,
        format: KeyFormat,
        allow_private: bool,
        template: JwtVerifier,
        settings: CacheSettings,
        fetcher: Fetcher,
    ) -> Self {
        Self {
            source,
            format,
            allow_private,
            fetcher,
            template,
            settings,
            state: RwLock::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn max_age(&self, st: &State) -> i64 {
        match st.refresh_hint {
            Some(h) if h > 0 => h.min(self.settings.max_age_secs),
            _ => self.settings.max_age_secs,
        }
    }

    fn fresh(&self, st: &State, now: i64) -> Option<Arc<JwtVerifier>> {
        if self.source == KeySource::Static {
            return st.verifier.clone();
        }
        let fetched = st.fetched_at?;
        (now.saturating_sub(fetched) < self.max_age(st))
            .then(|| st.verifier.clone())
            .flatten()
    }

    fn rate_limited(&self, st: &State, now: i64) -> bool {
        st.last_attempt
            .is_some_and(|t| now.saturating_sub(t) < self.settings.min_refresh_secs)
    }

    /// The verifier to use at `now`: the cached one while fresh, else a
    /// refetch (or, when that fails or is rate-limited, the last good one).
    pub async fn current(&self, now: i64) -> Result<Arc<JwtVerifier>, KeysError> {
        if let Some(v) = self.fresh(&self.read(), now) {
            return Ok(v);
        }
        let _guard = self.refresh.lock().await;
        let (last_good, limited) = {
            let st = self.read();
            if let Some(v) = self.fresh(&st, now) {
                return Ok(v);
            }
            (st.verifier.clone(), self.rate_limited(&st, now))
        };
        if limited {
            return last_good.ok_or_else(|| self.last_error());
        }
        match self.refetch(now).await {
            Ok(v) => Ok(v),
            Err(e) => last_good.ok_or(e),
        }
    }

    /// Called when a token's `kid` is not in the set: refetches unless a
    /// fetch happened within the minimum interval. `Some` only when a new
    /// set was fetched.
    pub async fn after_unknown_kid(&self, now: i64) -> Option<Arc<JwtVerifier>> {
        if self.source == KeySource::Static {
            return None;
        }
        let _guard = self.refresh.lock().await;
        if self.rate_limited(&self.read(), now) {
            return None;
        }
        self.refetch(now).await.ok()
    }

    /// What the cache holds.
    pub fn status(&self) -> CacheStatus {
        let st = self.read();
        CacheStatus {
            keys: st.verifier.as_ref().map_or(0, |v| v.keys().len()),
            fetched_at: st.fetched_at,
            last_error: st.last_error.clone(),
            fetches: self.fetches.load(Ordering::Relaxed),
        }
    }

    fn last_error(&self) -> KeysError {
        KeysError::Keys(
            self.read()
                .last_error
                .clone()
                .unwrap_or_else(|| "no key set fetched yet".to_owned()),
        )
    }

    async fn refetch(&self, now: i64) -> Result<Arc<JwtVerifier>, KeysError> {
        self.write().last_attempt = Some(now);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch_keys().await {
            Ok((keys, hint)) => {
                let mut v = self.template.clone();
                v.set_keys(keys);
                let v = Arc::new(v);
                let mut st = self.write();
                st.verifier = Some(v.clone());
                st.fetched_at = Some(now);
                st.last_error = None;
                st.refresh_hint = hint;
                Ok(v)
            }
            Err(e) => {
                tracing::warn!(error = %e, "key set refresh failed; keeping the last good set");
                let mut st = self.write();
                st.last_error = Some(e.to_string());
                // A discovery answer may be stale too: look it up again next time.
                st.jwks_uri = None;
                Err(e)
            }
        }
    }

    async fn fetch_keys(&self) -> Result<(JwkSet, Option<i64>), KeysError> {
        let url = match &self.source {
            KeySource::Static => return Err(KeysError::Keys("fixed key set".to_owned())),
            KeySource::Url(u) => u.clone(),
            KeySource::Discovery { issuer } => {
                let known = self.read().jwks_uri.clone();
                match known {
                    Some(u) => u,
                    None => {
                        let u = self.discover(issuer).await?;
                        self.write().jwks_uri = Some(u.clone());
                        u
                    }
                }
            }
        };
        let body = self.fetcher.get(&url, self.allow_private).await?;
        match self.format {
            KeyFormat::Jwks => JwkSet::from_json(&body)
                .map(|k| (k, None))
                .map_err(|e| KeysError::Keys(e.to_string())),
            KeyFormat::SpiffeBundle => crate::spiffe::parse_bundle(&body)
                .map(|b| (b.keys, b.refresh_hint))
                .map_err(|e| KeysError::Keys(e.to_string())),
        }
    }

    async fn discover(&self, issuer: &str) -> Result<String, KeysError> {
        let url = discovery_url(issuer);
        let body = self.fetcher.get(&url, self.allow_private).await?;
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|e| KeysError::Discovery(format!("not json: {e}")))?;
        match doc.get("issuer").and_then(Value::as_str) {
            Some(i) if i == issuer => {}
            Some(i) => {
                return Err(KeysError::Discovery(format!(
                    "issuer `{i}` is not the configured `{issuer}`"
                )));
            }
            None => return Err(KeysError::Discovery("no `issuer`".to_owned())),
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| KeysError::Discovery("no `jwks_uri`".to_owned()))?;
        check_url(jwks_uri, self.allow_private)?;
        Ok(jwks_uri.to_owned())
    }
}

/// `<issuer>/.well-known/openid-configuration` (OpenID Connect Discovery §4).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}
