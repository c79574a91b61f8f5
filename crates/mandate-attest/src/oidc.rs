//! OIDC issuers: JWTs verified against the issuer's JWKS, taken from
//! discovery, a fixed URL, or given inline (air-gapped clusters). The
//! Kubernetes, GitHub Actions and GitLab CI presets ([`crate::presets`]) and
//! SPIFFE JWT-SVIDs ([`crate::spiffe`]) share this verifier.
//!
//! The verification core is `mandate-jose`'s: the algorithm comes from the
//! key and must be on the provider's list (default RS256, ES256, EdDSA);
//! `none` and HMAC are refused; `jku`, `x5u`, `jwk` and `x5c` are never used;
//! `kid` is a map lookup; `exp` is required; `exp`, `nbf`, `iat` are
//! integers; the skew is at most 60 s; `iss` and `aud` match exactly. Here:
//! an unknown `kid` refreshes the key set once (rate-limited), and the
//! provider's required claims must hold on the flattened claims.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mandate_jose::claims::{MAX_SKEW_SECS, Validation};
use mandate_jose::digest::sha256;
use mandate_jose::jwk::JwkSet;
use mandate_jose::jws::Algorithm;
use mandate_jose::jwt::{JwtVerifier, VerifiedJwt};
use mandate_jose::{Error as JoseError, JwsError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::fetch::{Fetcher, check_url};
use crate::jwks_cache::{CacheSettings, CacheStatus, JwksCache, KeyFormat, KeySource};
use crate::{Error, presets, spiffe};

/// Algorithms accepted when a provider names none.
pub const DEFAULT_ALGORITHMS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

/// Where a provider's keys come from, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeysSpec {
    /// The issuer's discovery document names the JWKS URL.
    Discovery,
    /// A fixed JWKS (or SPIFFE bundle) URL.
    Url {
        /// The URL (https).
        url: String,
    },
    /// The key set itself (a file's contents, for air-gapped clusters).
    Inline {
        /// The JWKS or SPIFFE bundle document.
        #[schema(value_type = Object)]
        document: Value,
    },
}

/// Configuration of an OIDC-style provider (also the presets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcSpec {
    /// The exact `iss` (presets fill in their well-known issuer).
    #[serde(default)]
    pub issuer: Option<String>,
    /// The audience tokens must carry (exact match).
    pub audience: String,
    /// Where the keys come from (default: discovery).
    #[serde(default = "discovery")]
    pub keys: KeysSpec,
    /// Accepted algorithms (default RS256, ES256, EdDSA).
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Claims that must have exactly these values (flattened names).
    #[serde(default)]
    pub required_claims: BTreeMap<String, String>,
    /// Clock skew in seconds, at most 60 (the default).
    #[serde(default)]
    pub skew_secs: Option<i64>,
    /// Refetch the key set once it is this old (seconds, default 3600).
    #[serde(default)]
    pub jwks_max_age_secs: Option<i64>,
    /// At most one fetch per this many seconds (default 30).
    #[serde(default)]
    pub jwks_min_refresh_secs: Option<i64>,
}

fn discovery() -> KeysSpec {
    KeysSpec::Discovery
}

/// Which JWT-based kind a provider is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// Any OIDC issuer.
    Oidc,
    /// Kubernetes projected service-account tokens.
    Kubernetes,
    /// GitHub Actions OIDC tokens.
    GithubActions,
    /// GitLab CI ID tokens.
    GitlabCi,
    /// SPIFFE JWT-SVIDs of this trust domain.
    Spiffe(String),
}

/// A verified JWT: subject and flattened claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The subject the provider names the workload by.
    pub subject: String,
    /// Claims flattened to `a.b.c` names (objects nested, scalars as text).
    pub claims: BTreeMap<String, String>,
}

/// A JWT-based provider with its warm key cache.
#[derive(Debug)]
pub struct JwtProvider {
    flavor: Flavor,
    required: BTreeMap<String, String>,
    cache: JwksCache,
    memo: Memo,
}

/// Most remembered verifications per provider.
const MEMO_MAX: usize = 4096;

/// Signatures already verified, by SHA-256 of the token: a workload
/// presents the same projected token many times within its lifetime, and
/// the signature check is most of what its verification costs. An entry
/// holds only while the key set that verified it is the current one (a
/// refresh that drops the key drops the entry), and its claims are checked
/// again at every use, exactly as on first sight, so a remembered token
/// expires, or fails its audience, when a fresh one would.
#[derive(Debug, Default)]
struct Memo(std::sync::Mutex<HashMap<[u8; 32], Remembered>>);

/// A verified token and the key set (verifier) that verified it.
type Remembered = (Arc<JwtVerifier>, VerifiedJwt);

impl Memo {
    fn get(&self, key: &[u8; 32], current: &Arc<JwtVerifier>, now: i64) -> Option<VerifiedJwt> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (verifier, jwt) = map.get(key)?;
        if Arc::ptr_eq(verifier, current) && current.check_claims(jwt.claims(), now).is_ok() {
            return Some(jwt.clone());
        }
        map.remove(key);
        None
    }

    fn put(&self, key: [u8; 32], verifier: Arc<JwtVerifier>, jwt: VerifiedJwt, now: i64) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MEMO_MAX {
            map.retain(|_, (v, j)| v.check_claims(j.claims(), now).is_ok());
            if map.len() >= MEMO_MAX {
                map.clear();
            }
        }
        map.insert(key, (verifier, jwt));
    }
}

pub(crate) fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, Error> {
    let names: Vec<&str> = if names.is_empty() {
        DEFAULT_ALGORITHMS.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    names
        .iter()
        .map(|n| {
            Algorithm::from_name(n)
                .ok_or_else(|| Error::Config(format!("algorithm `{n}` is not supported")))
        })
        .collect()
}

impl JwtProvider {
    /// Builds the provider; checks the configuration, fetches nothing yet.
    pub fn new(
        flavor: Flavor,
        spec: &OidcSpec,
        allow_private: bool,
        fetcher: Fetcher,
    ) -> Result<Self, Error> {
        if spec.audience.is_empty() {
            return Err(Error::Config("an audience is required".to_owned()));
        }
        let algorithms = parse_algorithms(&spec.algorithms)?;
        let issuer = match &flavor {
            Flavor::Spiffe(_) => spec.issuer.clone(),
            _ => Some(
                spec.issuer
                    .clone()
                    .or_else(|| presets::default_issuer(&flavor).map(str::to_owned))
                    .ok_or_else(|| Error::Config("an issuer is required".to_owned()))?,
            ),
        };
        if let Some(iss) = &issuer {
            presets::check_issuer(iss, allow_private)?;
        }
        let mut validation = match &issuer {
            Some(iss) => Validation::new(iss.clone(), spec.audience.clone()),
            None => Validation::without_issuer(spec.audience.clone()),
        };
        let skew = spec.skew_secs.unwrap_or(MAX_SKEW_SECS);
        validation = validation
            .with_skew(skew)
            .map_err(|e| Error::Config(e.to_string()))?;
        let format = match flavor {
            Flavor::Spiffe(_) => KeyFormat::SpiffeBundle,
            _ => KeyFormat::Jwks,
        };
        let settings = CacheSettings {
            max_age_secs: spec
                .jwks_max_age_secs
                .unwrap_or(CacheSettings::default().max_age_secs)
                .max(1),
            min_refresh_secs: spec
                .jwks_min_refresh_secs
                .unwrap_or(CacheSettings::default().min_refresh_secs)
                .max(0),
        };
        let empty = JwkSet::from_keys(Vec::new()).map_err(|e| Error::Config(e.to_string()))?;
        let template = JwtVerifier::new(empty, &algorithms, validation);
        let cache = match &spec.keys {
            KeysSpec::Inline { document } => {
                let bytes =
                    serde_json::to_vec(document).map_err(|e| Error::Config(e.to_string()))?;
                let keys = match format {
                    KeyFormat::Jwks => JwkSet::from_json(&bytes)
                        .map_err(|e| Error::Config(format!("inline key set: {e}")))?,
                    KeyFormat::SpiffeBundle => {
                        spiffe::parse_bundle(&bytes)
                            .map_err(|e| Error::Config(e.to_string()))?
                            .keys
                    }
                };
                let mut t = template;
                t.set_keys(keys);
                JwksCache::fixed(t, fetcher)
            }
            KeysSpec::Url { url } => {
                check_url(url, allow_private).map_err(|e| Error::Keys(e.into()))?;
                JwksCache::remote(
                    KeySource::Url(url.clone()),
                    format,
                    allow_private,
                    template,
                    settings,
                    fetcher,
                )
            }
            KeysSpec::Discovery => {
                let iss = issuer.clone().ok_or_else(|| {
                    Error::Config("discovery needs an issuer; give a bundle url instead".to_owned())
                })?;
                check_url(&crate::jwks_cache::discovery_url(&iss), allow_private)
                    .map_err(|e| Error::Keys(e.into()))?;
                JwksCache::remote(
                    KeySource::Discovery { issuer: iss },
                    format,
                    allow_private,
                    template,
                    settings,
                    fetcher,
                )
            }
        };
        Ok(Self {
            flavor,
            required: spec.required_claims.clone(),
            cache,
            memo: Memo::default(),
        })
    }

    /// The key cache's state.
    pub fn cache_status(&self) -> CacheStatus {
        self.cache.status()
    }

    /// Verifies `token` at unix time `now`.
    pub async fn verify(&self, token: &str, now: i64) -> Result<VerifiedToken, Error> {
        let verifier = self.cache.current(now).await?;
        let key = sha256(&[token.as_bytes()]);
        if let Some(jwt) = self.memo.get(&key, &verifier, now) {
            return self.finish(jwt);
        }
        let verified = match verifier.verify(token, now) {
            Err(JoseError::Jws(JwsError::KidUnknown(kid))) => {
                match self.cache.after_unknown_kid(now).await {
                    Some(fresh) => fresh.verify(token, now).map(|j| (fresh, j)),
                    None => Err(JoseError::Jws(JwsError::KidUnknown(kid))),
                }
            }
            other => other.map(|j| (verifier, j)),
        };
        let (by, jwt) = verified.map_err(|e| presets::explain(&self.flavor, e, token))?;
        let token = self.finish(jwt.clone())?;
        self.memo.put(key, by, jwt, now);
        Ok(token)
    }

    /// The current verifier (fetching if needed).
    pub async fn verifier(&self, now: i64) -> Result<Arc<JwtVerifier>, Error> {
        Ok(self.cache.current(now).await?)
    }

    fn finish(&self, jwt: VerifiedJwt) -> Result<VerifiedToken, Error> {
        let subject = match &self.flavor {
            Flavor::Spiffe(td) => {
                spiffe::check_svid(jwt.header(), jwt.claims().sub(), td)?.to_string()
            }
            _ => jwt
                .claims()
                .sub()
                .filter(|s| !s.is_empty())
                .ok_or(Error::MissingClaim("sub".to_owned()))?
                .to_owned(),
        };
        let mut claims = flatten(jwt.claims().as_map());
        if let Flavor::Spiffe(_) = self.flavor {
            claims.insert("spiffe_id".to_owned(), subject.clone());
        }
        presets::check_claims(&self.flavor, &claims)?;
        for (name, want) in &self.required {
            match claims.get(name) {
                None => return Err(Error::MissingClaim(name.clone())),
                Some(got) if got != want => {
                    return Err(Error::ClaimMismatch {
                        claim: name.clone(),
                        expected: want.clone(),
                        found: got.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(VerifiedToken { subject, claims })
    }
}

/// Flattens a claim set: nested objects become dotted names
/// (`kubernetes.io` → `namespace` is `kubernetes.io.namespace`), strings stay,
/// integers and booleans become text, arrays of strings are joined with `,`
/// (so `aud` is visible), other arrays and nulls are left out.
pub fn flatten(map: &Map<String, Value>) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>, depth: usize) {
        match v {
            Value::String(s) => {
                out.insert(prefix.to_owned(), s.clone());
            }
            Value::Number(n) => {
                out.insert(prefix.to_owned(), n.to_string());
            }
            Value::Bool(b) => {
                out.insert(prefix.to_owned(), b.to_string());
            }
            Value::Array(items) => {
                let strs: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                if let Some(strs) = strs {
                    out.insert(prefix.to_owned(), strs.join(","));
                }
            }
            Value::Object(m) if depth < 8 => {
                for (k, v) in m {
                    walk(&format!("{prefix}.{k}"), v, out, depth + 1);
                }
            }
            Value::Object(_) | Value::Null => {}
        }
    }
    let mut out = BTreeMap::new();
    for (k, v) in map {
        walk(k, v, &mut out, 0);
    }
    out
}
