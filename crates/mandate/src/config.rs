//! Server configuration: defaults, then a TOML file, then `MANDATE_*`
//! environment variables, then flags (flags win). Everything is validated
//! before any port is bound; errors name the key or file at fault.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mandate_core::TrustDomain;
use mandate_store::DatabaseUrl;
use serde::Deserialize;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8420";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "mandate-data";
/// Default trust domain.
pub const DEFAULT_TRUST_DOMAIN: &str = "mandate.local";

/// A bad configuration; the process exits with code 64.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Where environment variables come from (a map in tests).
pub trait Env {
    /// The value of `key`, if set.
    fn var(&self, key: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

/// The keys a config file may hold; anything else is refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `listen = "127.0.0.1:8420"`.
    pub listen: Option<String>,
    /// `gateway_listen = "127.0.0.1:8421"`: a listener of the gateway's own
    /// (its routes are on `listen` too).
    pub gateway_listen: Option<String>,
    /// `gateway_audit = "durable"` (default) or `"buffered"`: whether the
    /// gateway answers only once a call's audit event is on disk.
    pub gateway_audit: Option<String>,
    /// `data_dir = "mandate-data"`.
    pub data_dir: Option<PathBuf>,
    /// `database = "postgres://..."`; default: SQLite in the data directory.
    pub database: Option<String>,
    /// `public_url = "https://mandate.example.com"`: the URL clients use.
    pub public_url: Option<String>,
    /// `trust_domain = "mandate.local"`.
    pub trust_domain: Option<String>,
    /// `review_period_days = 90`: default review period of new agents.
    pub review_period_days: Option<i64>,
    /// `[governance]`: stale-agent rule and drift detector settings.
    pub governance: Option<mandate_engine::governance::GovernanceSettings>,
    /// `[tokens]`: lifetimes, signing algorithm, delegation depth, DPoP.
    pub tokens: Option<TokenSettings>,
}

/// `[tokens]` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// Lifetime of a token when the request names none (300).
    pub default_ttl_secs: i64,
    /// Longest lifetime of any token (3600).
    pub max_ttl_secs: i64,
    /// How long verifiers may cache the JWKS (300).
    pub jwks_cache_secs: i64,
    /// Algorithm of new signing keys: `ES256` or `EdDSA`.
    pub algorithm: String,
    /// Most delegation hops in a chain (4).
    pub max_delegation_depth: usize,
    /// Whether DPoP proofs at the token endpoint need a server nonce (true).
    pub dpop_require_nonce: bool,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            default_ttl_secs: 300,
            max_ttl_secs: 3600,
            jwks_cache_secs: 300,
            algorithm: "ES256".into(),
            max_delegation_depth: 4,
            dpop_require_nonce: true,
        }
    }
}

impl TokenSettings {
    /// The engine's settings, or what is wrong.
    pub fn to_config(&self) -> Result<mandate_engine::TokenConfig, ConfigError> {
        let bad = |m: String| Err(ConfigError(format!("tokens.{m}")));
        if !(1..=86_400).contains(&self.max_ttl_secs) {
            return bad(format!(
                "max_ttl_secs: {} is not between 1 and 86400",
                self.max_ttl_secs
            ));
        }
        if !(1..=self.max_ttl_secs).contains(&self.default_ttl_secs) {
            return bad(format!(
                "default_ttl_secs: {} is not between 1 and max_ttl_secs ({})",
                self.default_ttl_secs, self.max_ttl_secs
            ));
        }
        if !(0..=86_400).contains(&self.jwks_cache_secs) {
            return bad(format!(
                "jwks_cache_secs: {} is not between 0 and 86400",
                self.jwks_cache_secs
            ));
        }
        if !(1..=16).contains(&self.max_delegation_depth) {
            return bad(format!(
                "max_delegation_depth: {} is not between 1 and 16",
                self.max_delegation_depth
            ));
        }
        let algorithm = match self.algorithm.as_str() {
            "ES256" => mandate_jose::jws::Algorithm::Es256,
            "EdDSA" => mandate_jose::jws::Algorithm::EdDsa,
            other => return bad(format!("algorithm: `{other}` is not one of ES256, EdDSA")),
        };
        Ok(mandate_engine::TokenConfig {
            default_ttl: time::Duration::seconds(self.default_ttl_secs),
            max_ttl: time::Duration::seconds(self.max_ttl_secs),
            jwks_cache: time::Duration::seconds(self.jwks_cache_secs),
            algorithm,
            max_delegation_depth: self.max_delegation_depth,
            dpop_require_nonce: self.dpop_require_nonce,
        })
    }
}

impl RawConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!("cannot read config file `{}`: {e}", path.display()))
        })?;
        toml::from_str(&text)
            .map_err(|e| ConfigError(format!("config file `{}`: {}", path.display(), e.message())))
    }

    /// Reads `MANDATE_*` variables.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let review_period_days = env
            .var("MANDATE_REVIEW_PERIOD_DAYS")
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ConfigError(format!(
                        "MANDATE_REVIEW_PERIOD_DAYS: `{v}` is not a whole number"
                    ))
                })
            })
            .transpose()?;
        Ok(Self {
            listen: env.var("MANDATE_LISTEN"),
            gateway_listen: env.var("MANDATE_GATEWAY_LISTEN"),
            gateway_audit: env.var("MANDATE_GATEWAY_AUDIT"),
            data_dir: env.var("MANDATE_DATA_DIR").map(PathBuf::from),
            database: env.var("MANDATE_DATABASE"),
            public_url: env.var("MANDATE_PUBLIC_URL"),
            trust_domain: env.var("MANDATE_TRUST_DOMAIN"),
            review_period_days,
            governance: None,
            tokens: None,
        })
    }

    /// `self` with every value of `over` that is set taking precedence.
    pub fn overlay(self, over: RawConfig) -> RawConfig {
        RawConfig {
            listen: over.listen.or(self.listen),
            gateway_listen: over.gateway_listen.or(self.gateway_listen),
            gateway_audit: over.gateway_audit.or(self.gateway_audit),
            data_dir: over.data_dir.or(self.data_dir),
            database: over.database.or(self.database),
            public_url: over.public_url.or(self.public_url),
            trust_domain: over.trust_domain.or(self.trust_domain),
            review_period_days: over.review_period_days.or(self.review_period_days),
            governance: over.governance.or(self.governance),
            tokens: over.tokens.or(self.tokens),
        }
    }

    /// Validates and fills in defaults.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let listen_s = self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            ConfigError(format!(
                "listen: `{listen_s}` is not an address like `127.0.0.1:8420`"
            ))
        })?;
        let gateway_listen = self
            .gateway_listen
            .map(|g| {
                g.parse::<SocketAddr>().map_err(|_| {
                    ConfigError(format!(
                        "gateway_listen: `{g}` is not an address like `127.0.0.1:8421`"
                    ))
                })
            })
            .transpose()?;
        let gateway_durable_audit = match self.gateway_audit.as_deref() {
            None | Some("durable") => true,
            Some("buffered") => false,
            Some(other) => {
                return Err(ConfigError(format!(
                    "gateway_audit: `{other}` is not `durable` or `buffered`"
                )));
            }
        };
        let data_dir = self
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError("data_dir: must not be empty".into()));
        }
        let database = match self.database {
            Some(s) => DatabaseUrl::parse(&s).map_err(|e| ConfigError(format!("database: {e}")))?,
            None => DatabaseUrl::Sqlite(data_dir.join("mandate.db")),
        };
        let public_url = match self.public_url {
            Some(s) => {
                let u = url::Url::parse(&s)
                    .map_err(|e| ConfigError(format!("public_url: `{s}`: {e}")))?;
                if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                    return Err(ConfigError(format!(
                        "public_url: `{s}` must be an http(s) URL with a host"
                    )));
                }
                if u.query().is_some() || u.fragment().is_some() {
                    return Err(ConfigError(format!(
                        "public_url: `{s}` must not have a query or fragment"
                    )));
                }
                s.trim_end_matches('/').to_owned()
            }
            None => format!("http://{listen}"),
        };
        let td = self
            .trust_domain
            .unwrap_or_else(|| DEFAULT_TRUST_DOMAIN.to_owned());
        let trust_domain: TrustDomain =
            td.parse().map_err(|e: mandate_core::ValidationError| {
                ConfigError(format!("trust_domain: `{td}`: {}", e.message))
            })?;
        let days = self.review_period_days.unwrap_or(90);
        if !(1..=3650).contains(&days) {
            return Err(ConfigError(format!(
                "review_period_days: {days} is not between 1 and 3650"
            )));
        }
        let governance = self.governance.unwrap_or_default();
        governance.validate().map_err(ConfigError)?;
        let tokens = self.tokens.unwrap_or_default().to_config()?;
        Ok(Config {
            listen,
            gateway_listen,
            gateway_durable_audit,
            data_dir,
            database,
            public_url,
            public_url_explicit: false,
            trust_domain,
            review_period: time::Duration::days(days),
            governance,
            tokens,
        })
    }
}

/// A complete, valid configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Address of the gateway's own listener, if any.
    pub gateway_listen: Option<SocketAddr>,
    /// Whether the gateway answers only once a call's audit event is durable.
    pub gateway_durable_audit: bool,
    /// Where the master key, admin token and SQLite file live.
    pub data_dir: PathBuf,
    /// The database.
    pub database: DatabaseUrl,
    /// The URL clients use to reach this server.
    pub public_url: String,
    /// Whether `public_url` was configured (else it follows the bound port).
    pub public_url_explicit: bool,
    /// Trust domain of agents' SPIFFE IDs.
    pub trust_domain: TrustDomain,
    /// Default review period of new agents.
    pub review_period: time::Duration,
    /// Stale-agent rule and drift detector settings.
    pub governance: mandate_engine::governance::GovernanceSettings,
    /// Token service settings.
    pub tokens: mandate_engine::TokenConfig,
}

/// Builds the configuration from a file (if given), the environment and flags.
pub fn load(file: Option<&Path>, env: &dyn Env, flags: RawConfig) -> Result<Config, ConfigError> {
    let from_file = match file {
        Some(p) => RawConfig::from_file(p)?,
        None => RawConfig::default(),
    };
    let merged = from_file.overlay(RawConfig::from_env(env)?).overlay(flags);
    let explicit = merged.public_url.is_some();
    let mut cfg = merged.validate()?;
    cfg.public_url_explicit = explicit;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn gateway_audit_is_durable_unless_buffered_is_asked_for() {
        let c = load(None, &env(&[]), RawConfig::default()).unwrap();
        assert!(c.gateway_durable_audit);
        let c = load(
            None,
            &env(&[("MANDATE_GATEWAY_AUDIT", "buffered")]),
            RawConfig::default(),
        )
        .unwrap();
        assert!(!c.gateway_durable_audit);
        let e = load(
            None,
            &env(&[("MANDATE_GATEWAY_AUDIT", "later")]),
            RawConfig::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("gateway_audit"), "{e}");
    }

    #[test]
    fn defaults_are_sqlite_in_the_data_dir_on_port_8420() {
        let c = load(None, &env(&[]), RawConfig::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8420");
        assert_eq!(
            c.database,
            DatabaseUrl::Sqlite(PathBuf::from("mandate-data/mandate.db"))
        );
        assert_eq!(c.trust_domain.as_str(), "mandate.local");
        assert_eq!(c.public_url, "http://127.0.0.1:8420");
    }

    #[test]
    fn flags_beat_env_and_env_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:1\"\ntrust_domain = \"file.example\"\ndata_dir = \"d\"\n",
        )
        .unwrap();
        let e = env(&[
            ("MANDATE_LISTEN", "127.0.0.1:2"),
            ("MANDATE_TRUST_DOMAIN", "env.example"),
        ]);
        let flags = RawConfig {
            listen: Some("127.0.0.1:3".into()),
            ..Default::default()
        };
        let c = load(Some(&f), &e, flags).unwrap();
        assert_eq!(c.listen.port(), 3);
        assert_eq!(c.trust_domain.as_str(), "env.example");
        assert_eq!(c.data_dir, PathBuf::from("d"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.toml");
        std::fs::write(&f, "listne = \"x\"\n").unwrap();
        let err = load(Some(&f), &env(&[]), RawConfig::default())
            .unwrap_err()
            .0;
        assert!(err.contains("listne"), "{err}");
        assert!(err.contains("m.toml"), "{err}");
        let err = load(
            None,
            &env(&[("MANDATE_DATABASE", "mysql://x")]),
            RawConfig::default(),
        )
        .unwrap_err()
        .0;
        assert!(err.starts_with("database:"), "{err}");
        let err = load(
            Some(&dir.path().join("missing.toml")),
            &env(&[]),
            RawConfig::default(),
        )
        .unwrap_err()
        .0;
        assert!(err.contains("missing.toml"), "{err}");
        let flags = RawConfig {
            listen: Some("localhost".into()),
            ..Default::default()
        };
        assert!(
            load(None, &env(&[]), flags)
                .unwrap_err()
                .0
                .starts_with("listen:")
        );
    }
}
