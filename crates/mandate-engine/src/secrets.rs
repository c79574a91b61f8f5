//! Stored upstream credentials ("secrets"): what the gateway injects into a
//! routed resource's requests so the agent never holds it. Each has a name,
//! a provider kind and non-secret settings; the secret part (a static value,
//! an OAuth client secret, an AWS secret access key) is sealed with
//! AES-256-GCM under the master key, its name as associated data.
//!
//! Secrets are write-only: no use case here returns a value except
//! [`Engine::open_secret`], which only the gateway calls. Audit events carry
//! the name and kind, never the value.

use mandate_core::{AuditDraft, Outcome, ValidationError};
use mandate_jose::{ExposeSecret, SecretString};
use mandate_store::CredentialRecord;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::tokens::internal;
use crate::{Actor, Engine, Error, Result};

/// The provider kinds, as stored and given on the command line.
pub const SECRET_KINDS: &[&str] = &[
    "static",
    "oauth-client-credentials",
    "aws-sigv4",
    "mandate-jwt",
];

/// The longest secret value accepted, in bytes.
pub const MAX_SECRET_LEN: usize = 16 * 1024;

/// Lifetime of a Mandate-minted upstream JWT when none is configured.
pub const DEFAULT_UPSTREAM_JWT_TTL_SECS: i64 = 60;

/// How a `static` secret is put into the request.
pub const STATIC_INJECTIONS: &[&str] = &["bearer", "header", "query", "basic"];

/// Non-secret settings of a secret. Which fields apply depends on the kind:
///
/// - `static`: `inject` (`bearer`, the default; `header` with `header`;
///   `query` with `query`; `basic` with `basic_user`).
/// - `oauth-client-credentials`: `token_url`, `client_id`, optional `scope`
///   and `audience`.
/// - `aws-sigv4`: `access_key_id`, `region`, `service`.
/// - `mandate-jwt`: optional `audience` (default: the route's upstream URL)
///   and `ttl_secs` (default 60).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// `static`: `bearer`, `header`, `query` or `basic` (inferred from the
    /// other fields when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject: Option<String>,
    /// `static`: the header the value is sent in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `static`: the query parameter the value is sent in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `static`: the basic-auth user name (the value is the password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_user: Option<String>,
    /// `oauth-client-credentials`: the upstream token endpoint (`https`, or
    /// `http` to a loopback address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// `oauth-client-credentials`: the client id (the value is its secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `oauth-client-credentials`: the `scope` to ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `oauth-client-credentials`: the `audience` to ask for;
    /// `mandate-jwt`: the `aud` of the minted token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// `aws-sigv4`: the access key id (the value is the secret access key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// `aws-sigv4`: the region, e.g. `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `aws-sigv4`: the signing name of the service, e.g. `execute-api`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `mandate-jwt`: lifetime of each minted token in seconds (1-3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<i64>,
}

/// What an admin gives to store a secret.
#[derive(Debug, Clone)]
pub struct NewSecret {
    /// Unique name: 1 to 63 characters from `[a-z0-9._-]`.
    pub name: String,
    /// One of [`SECRET_KINDS`].
    pub kind: String,
    /// Non-secret settings.
    pub config: SecretConfig,
    /// The secret: required for `static`, `oauth-client-credentials` and
    /// `aws-sigv4` (for the latter, `SECRET_ACCESS_KEY` or
    /// `SECRET_ACCESS_KEY\nSESSION_TOKEN`); absent for `mandate-jwt`.
    pub value: Option<SecretString>,
}

/// A stored secret as admins see it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SecretInfo {
    /// Unique name.
    pub name: String,
    /// Provider kind.
    pub kind: String,
    /// Non-secret settings.
    pub config: SecretConfig,
    /// Whether a sealed value is stored.
    pub has_value: bool,
    /// When it was first stored (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    /// When it was last set (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    /// The resources whose gateway route injects it.
    pub used_by: Vec<String>,
}

/// A decrypted secret, for the gateway only. `Debug` redacts the value.
#[derive(Debug, Clone)]
pub struct OpenedSecret {
    /// Its name.
    pub name: String,
    /// Provider kind.
    pub kind: String,
    /// Non-secret settings ([`SecretConfig`] as JSON).
    pub config: serde_json::Value,
    /// The secret, when the kind has one.
    pub value: Option<SecretString>,
}

/// What the gateway asks [`Engine::mint_upstream_jwt`] to sign.
#[derive(Debug, Clone)]
pub struct UpstreamJwt {
    /// `aud`: the upstream URL or the configured audience.
    pub audience: String,
    /// `sub`: the subject of the agent's token.
    pub subject: String,
    /// `client_id`: the agent's name.
    pub agent: String,
    /// `act` of the agent's token, when delegated.
    pub act: Option<serde_json::Value>,
    /// `txn` of the agent's token.
    pub txn: String,
    /// Lifetime (capped at the configured maximum token lifetime).
    pub ttl: Duration,
}

/// The JWS `typ` of upstream JWTs.
pub const UPSTREAM_JWT_TYP: &str = "JWT";

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid(ValidationError::new(field, message))
}

/// The associated data a secret is sealed with: it cannot be moved to
/// another name unnoticed.
fn seal_label(name: &str) -> String {
    format!("mandate/credential/v1\0{name}")
}

/// An RFC 9110 field name (token characters), not one the proxy owns.
fn check_header_name(h: &str) -> Result<()> {
    const TCHAR: &[u8] = b"!#$%&'*+-.^_`|~";
    let ok = !h.is_empty()
        && h.len() <= 128
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || TCHAR.contains(&b));
    if !ok {
        return Err(invalid("header", format!("`{h}` is not a header name")));
    }
    const RESERVED: &[&str] = &[
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "te",
        "upgrade",
        "trailer",
        "keep-alive",
        "proxy-authorization",
    ];
    if RESERVED.contains(&h.to_ascii_lowercase().as_str()) {
        return Err(invalid(
            "header",
            format!("`{h}` cannot carry a credential"),
        ));
    }
    Ok(())
}

/// An `https` URL, or `http` to a loopback address, without credentials
/// or fragment.
pub(crate) fn check_token_url(s: &str) -> Result<()> {
    let bad = |why: &str| invalid("token_url", format!("`{s}` {why}"));
    let u = url::Url::parse(s).map_err(|_| bad("is not an absolute url"))?;
    if !u.username().is_empty() || u.password().is_some() || u.fragment().is_some() {
        return Err(bad("must not carry credentials or a fragment"));
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&u) => Ok(()),
        "http" => Err(bad("must be https (http is allowed only to loopback)")),
        _ => Err(bad("is not an http(s) url")),
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Checks `config` against `kind`, fills the defaults and refuses fields
/// that do not apply.
fn normalize(kind: &str, mut c: SecretConfig) -> Result<SecretConfig> {
    let set = |name: &'static str, v: bool| (name, v);
    let fields = [
        set("inject", c.inject.is_some()),
        set("header", c.header.is_some()),
        set("query", c.query.is_some()),
        set("basic_user", c.basic_user.is_some()),
        set("token_url", c.token_url.is_some()),
        set("client_id", c.client_id.is_some()),
        set("scope", c.scope.is_some()),
        set("audience", c.audience.is_some()),
        set("access_key_id", c.access_key_id.is_some()),
        set("region", c.region.is_some()),
        set("service", c.service.is_some()),
        set("ttl_secs", c.ttl_secs.is_some()),
    ];
    let applies: &[&str] = match kind {
        "static" => &["inject", "header", "query", "basic_user"],
        "oauth-client-credentials" => &["token_url", "client_id", "scope", "audience"],
        "aws-sigv4" => &["access_key_id", "region", "service"],
        "mandate-jwt" => &["audience", "ttl_secs"],
        other => {
            return Err(invalid(
                "kind",
                format!("`{other}` is not one of {}", SECRET_KINDS.join(", ")),
            ));
        }
    };
    if let Some((f, _)) = fields.iter().find(|(f, on)| *on && !applies.contains(f)) {
        return Err(invalid(f, format!("`{f}` does not apply to kind `{kind}`")));
    }
    let required = |field: &'static str, v: &Option<String>| match v.as_deref() {
        Some(s) if !s.trim().is_empty() => Ok(()),
        _ => Err(invalid(field, format!("kind `{kind}` needs `{field}`"))),
    };
    match kind {
        "static" => {
            let inferred = match (&c.header, &c.query, &c.basic_user) {
                (None, None, None) => "bearer",
                (Some(_), None, None) => "header",
                (None, Some(_), None) => "query",
                (None, None, Some(_)) => "basic",
                _ => {
                    return Err(invalid(
                        "inject",
                        "give at most one of `header`, `query` and `basic_user`",
                    ));
                }
            };
            let inject = c.inject.take().unwrap_or_else(|| inferred.to_owned());
            if !STATIC_INJECTIONS.contains(&inject.as_str()) {
                return Err(invalid(
                    "inject",
                    format!("`{inject}` is not one of {}", STATIC_INJECTIONS.join(", ")),
                ));
            }
            if inject != inferred {
                let needs = match inject.as_str() {
                    "header" => "`header`",
                    "query" => "`query`",
                    "basic" => "`basic_user`",
                    _ => "none of `header`, `query` and `basic_user`",
                };
                return Err(invalid(
                    "inject",
                    format!("`{inject}` injection needs {needs}"),
                ));
            }
            if let Some(h) = &c.header {
                check_header_name(h)?;
            }
            if let Some(q) = &c.query
                && (q.is_empty() || q.len() > 128 || q.contains(['&', '=', '#', ' ']))
            {
                return Err(invalid(
                    "query",
                    format!("`{q}` is not a query parameter name"),
                ));
            }
            if let Some(u) = &c.basic_user
                && (u.contains(':') || u.chars().any(char::is_control))
            {
                return Err(invalid(
                    "basic_user",
                    "a basic-auth user cannot hold `:` or control characters",
                ));
            }
            c.inject = Some(inject);
        }
        "oauth-client-credentials" => {
            required("token_url", &c.token_url)?;
            required("client_id", &c.client_id)?;
            check_token_url(c.token_url.as_deref().unwrap_or_default())?;
        }
        "aws-sigv4" => {
            required("access_key_id", &c.access_key_id)?;
            required("region", &c.region)?;
            required("service", &c.service)?;
        }
        _ => {
            // mandate-jwt
            if let Some(a) = &c.audience {
                crate::resources::check_audience(a)
                    .map_err(|_| invalid("audience", format!("`{a}` is not an absolute uri")))?;
            }
            let ttl = c.ttl_secs.unwrap_or(DEFAULT_UPSTREAM_JWT_TTL_SECS);
            if !(1..=3600).contains(&ttl) {
                return Err(invalid(
                    "ttl_secs",
                    format!("{ttl}s is not between 1s and 3600s"),
                ));
            }
            c.ttl_secs = Some(ttl);
        }
    }
    Ok(c)
}

fn check_value(kind: &str, value: Option<&SecretString>) -> Result<()> {
    match (kind, value) {
        ("mandate-jwt", Some(_)) => Err(invalid(
            "value",
            "kind `mandate-jwt` takes no value: tokens are signed with Mandate's key",
        )),
        ("mandate-jwt", None) => Ok(()),
        (_, None) => Err(invalid("value", format!("kind `{kind}` needs a value"))),
        (_, Some(v)) => {
            let v = v.expose_secret();
            let mut parts = v.splitn(2, '\n');
            let controls = if kind == "aws-sigv4" {
                parts.any(|p| p.chars().any(char::is_control))
            } else {
                v.chars().any(char::is_control)
            };
            if v.trim().is_empty() {
                Err(invalid("value", "the value is empty"))
            } else if controls {
                Err(invalid("value", "the value holds control characters"))
            } else if v.len() > MAX_SECRET_LEN {
                Err(invalid(
                    "value",
                    format!("the value is longer than {MAX_SECRET_LEN} bytes"),
                ))
            } else {
                Ok(())
            }
        }
    }
}

impl Engine {
    /// Stores a secret, replacing one of the same name, with a `secret.set`
    /// event (name and kind only). Needs the token service (the master key).
    pub async fn set_secret(&self, actor: &Actor, new: NewSecret) -> Result<SecretInfo> {
        crate::resources::check_name(&new.name)?;
        let config = normalize(&new.kind, new.config)?;
        check_value(&new.kind, new.value.as_ref())?;
        let state = self.token_state()?;
        let sealed = new
            .value
            .as_ref()
            .map(|v| {
                state
                    .master
                    .seal(&seal_label(&new.name), v.expose_secret().as_bytes())
            })
            .transpose()
            .map_err(internal("cannot seal a secret"))?;
        let config_json =
            serde_json::to_string(&config).map_err(|_| Error::Internal("secret config"))?;
        let now = self.now();
        let previous = self.store.credential(&new.name).await?;
        let record = CredentialRecord {
            name: new.name.clone(),
            kind: new.kind.clone(),
            config: config_json,
            sealed,
            created_at: previous.as_ref().map_or(now, |p| p.created_at),
            updated_at: now,
        };
        let draft = AuditDraft::new(mandate_core::EventKind::SecretSet, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("secret:{}", record.name))
            .detail(serde_json::json!({
                "name": record.name,
                "kind": record.kind,
                "replaced": previous.is_some(),
            }));
        self.store.put_credential(&record, draft, now).await?;
        self.hot_changed();
        let used_by = self.secret_users(&record.name).await?;
        Ok(SecretInfo {
            name: record.name,
            kind: record.kind,
            config,
            has_value: record.sealed.is_some(),
            created_at: record.created_at,
            updated_at: record.updated_at,
            used_by,
        })
    }

    /// The resources whose route injects secret `name`.
    async fn secret_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .store
            .list_resources()
            .await?
            .into_iter()
            .filter(|r| r.route.as_ref().and_then(|x| x.credential.as_deref()) == Some(name))
            .map(|r| r.name)
            .collect())
    }

    fn info_of(
        rec: CredentialRecord,
        resources: &[mandate_store::ResourceRecord],
    ) -> Result<SecretInfo> {
        let config: SecretConfig = serde_json::from_str(&rec.config)
            .map_err(|_| Error::Internal("a stored secret's settings do not parse"))?;
        let used_by = resources
            .iter()
            .filter(|r| {
                r.route.as_ref().and_then(|x| x.credential.as_deref()) == Some(rec.name.as_str())
            })
            .map(|r| r.name.clone())
            .collect();
        Ok(SecretInfo {
            name: rec.name,
            kind: rec.kind,
            config,
            has_value: rec.sealed.is_some(),
            created_at: rec.created_at,
            updated_at: rec.updated_at,
            used_by,
        })
    }

    /// Every secret, by name (never a value).
    pub async fn list_secrets(&self) -> Result<Vec<SecretInfo>> {
        let resources = self.store.list_resources().await?;
        self.store
            .list_credentials()
            .await?
            .into_iter()
            .map(|c| Self::info_of(c, &resources))
            .collect()
    }

    /// One secret by name (never its value).
    pub async fn secret_info(&self, name: &str) -> Result<SecretInfo> {
        let rec = self.credential_record(name).await?;
        let resources = self.store.list_resources().await?;
        Self::info_of(rec, &resources)
    }

    async fn credential_record(&self, name: &str) -> Result<CredentialRecord> {
        self.store
            .credential(name)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "secret",
                id: name.to_owned(),
            })
    }

    /// Removes a secret. Refused ([`Error::InvalidState`]) while a
    /// resource's route injects it.
    pub async fn remove_secret(&self, actor: &Actor, name: &str) -> Result<()> {
        let users = self.secret_users(name).await?;
        if !users.is_empty() {
            return Err(Error::InvalidState(format!(
                "secret `{name}` is used by resource(s) {}; remove them first",
                users
                    .iter()
                    .map(|u| format!("`{u}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let draft = AuditDraft::new(mandate_core::EventKind::SecretRemoved, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("secret:{name}"))
            .detail(serde_json::json!({ "name": name }));
        if !self
            .store
            .delete_credential(name, draft, self.now())
            .await?
        {
            return Err(Error::NotFound {
                kind: "secret",
                id: name.to_owned(),
            });
        }
        self.hot_changed();
        Ok(())
    }

    /// Decrypts a secret for the gateway. Never hand the value to anyone
    /// else.
    pub async fn open_secret(&self, name: &str) -> Result<OpenedSecret> {
        let state = self.token_state()?;
        let rec = self.credential_record(name).await?;
        let config: serde_json::Value = serde_json::from_str(&rec.config)
            .map_err(|_| Error::Internal("a stored secret's settings do not parse"))?;
        let value = match &rec.sealed {
            Some(sealed) => {
                let plain = state
                    .master
                    .open(&seal_label(&rec.name), sealed)
                    .map_err(internal(
                        "a stored secret does not decrypt under the master key",
                    ))?;
                let s = std::str::from_utf8(&plain)
                    .map_err(|_| Error::Internal("a stored secret is not utf-8"))?;
                Some(SecretString::from(s.to_owned()))
            }
            None => None,
        };
        Ok(OpenedSecret {
            name: rec.name,
            kind: rec.kind,
            config,
            value,
        })
    }

    /// Signs a short-lived JWT (`typ: JWT`) for an upstream that trusts
    /// Mandate's JWKS, with the active signing key: `iss`, `sub`, `aud`,
    /// `iat`, `nbf`, `exp`, `jti`, `client_id`, `txn` and `act` when
    /// delegated. Returns the token and its `exp`.
    pub async fn mint_upstream_jwt(&self, req: UpstreamJwt) -> Result<(String, i64)> {
        let state = self.token_state()?;
        let ttl = req.ttl.min(state.config.max_ttl);
        if ttl <= Duration::ZERO {
            return Err(invalid("ttl", "the lifetime must be positive"));
        }
        let (_, key) = self.active_signing_key(state).await?;
        let iat = self.now().unix_timestamp();
        let exp = iat + ttl.whole_seconds();
        let jti = mandate_jose::random::token::<16>().map_err(internal("no randomness"))?;
        let mut claims = serde_json::json!({
            "iss": state.issuer,
            "sub": req.subject,
            "aud": req.audience,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "jti": jti,
            "client_id": req.agent,
            "txn": req.txn,
        });
        if let (Some(map), Some(act)) = (claims.as_object_mut(), req.act) {
            map.insert("act".into(), act);
        }
        let payload = serde_json::to_vec(&claims).map_err(|_| Error::Internal("claims"))?;
        let token = key
            .sign(Some(UPSTREAM_JWT_TYP), &payload)
            .map_err(internal("cannot sign a token"))?;
        Ok((token, exp))
    }
}

#[cfg(test)]
#[path = "secrets/tests.rs"]
mod tests;
