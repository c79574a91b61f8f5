//! Resources: the upstreams tokens can be issued for. Each has a unique name
//! and a unique audience (an absolute URI, the `aud` of its tokens), the
//! scopes it understands and the longest token lifetime it accepts. They are
//! also `Resource` entities for policies.

use std::collections::BTreeMap;

use mandate_core::{AuditDraft, Email, Outcome, ValidationError};
use mandate_policy::ResourceEntity;
use mandate_store::{EmptySegments, ResourceRecord, RouteRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Actor, Engine, Error, Result};

/// Resource kinds Mandate knows.
pub const RESOURCE_KINDS: &[&str] = &["http", "mcp"];
/// Sensitivity levels, least to most sensitive.
pub const SENSITIVITIES: &[&str] = &["public", "internal", "confidential", "restricted"];
/// Upstream timeout of a gateway route when none is given.
pub const DEFAULT_ROUTE_TIMEOUT_SECS: u64 = 30;
/// Longest upstream timeout of a gateway route.
const MAX_ROUTE_TIMEOUT_SECS: u64 = 3_600;

/// What an admin gives to add a resource.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResource {
    /// Unique name: 1 to 63 characters from `[a-z0-9._-]`, starting with a
    /// letter or digit.
    pub name: String,
    /// Unique absolute URI without fragment, the `aud` of its tokens. May
    /// be empty when `upstream` is given: it is then the gateway route's
    /// public URL, `<public url>/gw/<name>`.
    #[serde(default)]
    pub audience: String,
    /// Scopes the resource understands (at least one).
    pub scopes: Vec<String>,
    /// Longest token lifetime in seconds; the configured maximum when absent.
    #[serde(default)]
    pub max_ttl_secs: Option<i64>,
    /// `http` (default) or `mcp`.
    #[serde(default)]
    pub kind: Option<String>,
    /// `public`, `internal` (default), `confidential` or `restricted`.
    #[serde(default)]
    pub sensitivity: Option<String>,
    /// The accountable human's email address.
    #[serde(default)]
    pub owner: Option<String>,
    /// Labels, seen by policies as entity tags.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Absolute `http`/`https` URL the gateway forwards `/gw/<name>/...`
    /// to. The resource is exposed through the gateway only when set.
    #[serde(default)]
    pub upstream: Option<String>,
    /// The stored secret the gateway injects into upstream requests.
    #[serde(default)]
    pub credential: Option<String>,
    /// MCP: record tool arguments in the audit log instead of a digest.
    #[serde(default)]
    pub record_arguments: bool,
    /// Scopes a token must carry at the gateway (each one of `scopes`).
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Upstream timeout in seconds (default 30, at most 3600).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// What the gateway does with an empty path segment (`//`): `merge`
    /// (default) or `refuse`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub empty_segments: Option<EmptySegments>,
    /// Whether upstream answers are scrubbed of the injected secret
    /// (default true; turn off only for binary bodies).
    #[serde(default)]
    pub scrub_responses: Option<bool>,
}

/// A registered resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Resource {
    /// Unique name.
    pub name: String,
    /// Unique absolute URI, the `aud` of its tokens.
    pub audience: String,
    /// Scopes it understands.
    pub scopes: Vec<String>,
    /// Longest token lifetime in seconds.
    pub max_ttl_secs: i64,
    /// `http` or `mcp`.
    pub kind: String,
    /// Sensitivity level.
    pub sensitivity: String,
    /// The accountable human.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// When it was added (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    /// The URL the gateway forwards `/gw/<name>/...` to; absent when the
    /// resource is not exposed through the gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The stored secret the gateway injects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// MCP: whether tool arguments are recorded in the audit log.
    pub record_arguments: bool,
    /// Scopes a token must carry at the gateway.
    pub required_scopes: Vec<String>,
    /// Upstream timeout in seconds, when exposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// What the gateway does with an empty path segment: `merge` or
    /// `refuse`, when exposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub empty_segments: Option<EmptySegments>,
    /// Whether upstream answers are scrubbed of the injected secret, when
    /// exposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrub_responses: Option<bool>,
}

impl From<ResourceRecord> for Resource {
    fn from(r: ResourceRecord) -> Self {
        let route = r.route;
        Self {
            name: r.name,
            audience: r.audience,
            scopes: r.scopes,
            max_ttl_secs: r.max_ttl_secs,
            kind: r.kind,
            sensitivity: r.sensitivity,
            owner: r.owner,
            labels: r.labels,
            created_at: r.created_at,
            upstream: route.as_ref().map(|x| x.upstream.clone()),
            credential: route.as_ref().and_then(|x| x.credential.clone()),
            record_arguments: route.as_ref().is_some_and(|x| x.record_arguments),
            required_scopes: route
                .as_ref()
                .map(|x| x.required_scopes.clone())
                .unwrap_or_default(),
            timeout_secs: route.as_ref().map(|x| x.timeout_ms / 1000),
            empty_segments: route.as_ref().map(|x| x.empty_segments),
            scrub_responses: route.as_ref().map(|x| x.scrub_responses),
        }
    }
}

/// The policy entity of a resource.
pub(crate) fn resource_entity(r: &ResourceRecord) -> ResourceEntity {
    ResourceEntity {
        id: r.name.clone(),
        kind: r.kind.clone(),
        owner: r.owner.clone().unwrap_or_default(),
        sensitivity: r.sensitivity.clone(),
        labels: r.labels.clone(),
    }
}

/// Changes when a resource is added or removed (resources are immutable),
/// so replicas notice each other's changes.
pub(crate) fn resources_signature(resources: &[ResourceRecord]) -> String {
    let mut s = String::new();
    for r in resources {
        s.push_str(&r.name);
        s.push('@');
        s.push_str(&mandate_core::clock::unix_millis(r.created_at).to_string());
        s.push(';');
    }
    mandate_jose::digest::sha256_hex(s.as_bytes())
}

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid(ValidationError::new(field, message))
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            format!(
                "`{name}` is not 1-63 characters from [a-z0-9._-] starting with a letter or digit"
            ),
        ))
    }
}

/// An absolute URI (RFC 3986 `scheme ":" hier-part`) without fragment, as
/// RFC 8707 requires of resource indicators.
pub(crate) fn check_audience(aud: &str) -> Result<()> {
    let bad = |why: &str| invalid("audience", format!("`{aud}` {why}"));
    let Some((scheme, rest)) = aud.split_once(':') else {
        return Err(bad("is not an absolute uri"));
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b));
    if !scheme_ok || rest.is_empty() || rest == "//" {
        return Err(bad("is not an absolute uri"));
    }
    if aud.contains('#') {
        return Err(bad("must not have a fragment"));
    }
    if aud.len() > 2048 || aud.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(bad("holds characters an uri cannot"));
    }
    Ok(())
}

/// An absolute `http`/`https` URL with a host, without credentials, query
/// or fragment.
fn check_upstream(s: &str) -> Result<()> {
    let bad = |why: &str| invalid("upstream", format!("`{s}` {why}"));
    let u = url::Url::parse(s).map_err(|_| bad("is not an absolute url"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(bad("is not an absolute http(s) url"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad(
            "must not carry credentials: store them with `mandate secret set`",
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(())
}

/// RFC 6749 `scope-token`: `%x21 / %x23-5B / %x5D-7E`, one or more.
pub(crate) fn check_scope(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

impl Engine {
    /// Adds a resource and makes it a policy entity.
    pub async fn add_resource(&self, actor: &Actor, mut new: NewResource) -> Result<Resource> {
        check_name(&new.name)?;
        let route = self.route(&new).await?;
        if new.audience.is_empty() && route.is_some() {
            let public = self.issuer().ok_or_else(|| {
                invalid("audience", "the public url is unknown: give the audience")
            })?;
            new.audience = format!("{}/gw/{}", public.trim_end_matches('/'), new.name);
        }
        check_audience(&new.audience)?;
        if new.scopes.is_empty() {
            return Err(invalid("scopes", "at least one scope is required"));
        }
        if let Some(s) = new.required_scopes.iter().find(|s| !new.scopes.contains(s)) {
            return Err(invalid(
                "required_scopes",
                format!("`{s}` is not one of the resource's scopes"),
            ));
        }
        let mut scopes: Vec<String> = Vec::new();
        for s in &new.scopes {
            if !check_scope(s) {
                return Err(invalid("scopes", format!("`{s}` is not a valid scope")));
            }
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let max = self.token_config().max_ttl.whole_seconds();
        let max_ttl = new.max_ttl_secs.unwrap_or(max);
        if max_ttl < 1 || max_ttl > max {
            return Err(invalid(
                "max_ttl",
                format!("{max_ttl}s is not between 1s and the configured maximum of {max}s"),
            ));
        }
        let kind = new.kind.unwrap_or_else(|| "http".into());
        if !RESOURCE_KINDS.contains(&kind.as_str()) {
            return Err(invalid("kind", format!("`{kind}` is not one of http, mcp")));
        }
        let sensitivity = new.sensitivity.unwrap_or_else(|| "internal".into());
        if !SENSITIVITIES.contains(&sensitivity.as_str()) {
            return Err(invalid(
                "sensitivity",
                format!("`{sensitivity}` is not one of {}", SENSITIVITIES.join(", ")),
            ));
        }
        let owner = match new.owner {
            Some(o) => Some(
                o.parse::<Email>()
                    .map_err(|_| invalid("owner", format!("`{o}` is not an email address")))?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        };
        let now = self.now();
        let record = ResourceRecord {
            name: new.name,
            audience: new.audience,
            scopes,
            max_ttl_secs: max_ttl,
            kind,
            sensitivity,
            owner,
            labels: new.labels,
            created_at: now,
            route,
        };
        let draft = AuditDraft::new(mandate_core::EventKind::ResourceAdded, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("resource:{}", record.name))
            .detail(serde_json::json!({
                "audience": record.audience,
                "scopes": record.scopes,
                "max_ttl_secs": record.max_ttl_secs,
                "kind": record.kind,
                "sensitivity": record.sensitivity,
                "upstream": record.route.as_ref().map(|r| &r.upstream),
                "credential": record.route.as_ref().and_then(|r| r.credential.as_ref()),
            }));
        match self.store.insert_resource(&record, draft, now).await {
            Ok(_) => {}
            Err(mandate_store::Error::Duplicate { kind, id }) => {
                return Err(Error::AlreadyExists {
                    kind: if kind == "resource" {
                        "resource"
                    } else {
                        "resource_audience"
                    },
                    id,
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.hot_changed();
        self.reload_policy().await?;
        Ok(record.into())
    }

    /// The gateway route `new` asks for: `None` without `upstream` (and
    /// then no route field may be given).
    async fn route(&self, new: &NewResource) -> Result<Option<RouteRecord>> {
        let Some(upstream) = &new.upstream else {
            let stray = [
                ("credential", new.credential.is_some()),
                ("record_arguments", new.record_arguments),
                ("required_scopes", !new.required_scopes.is_empty()),
                ("timeout", new.timeout_secs.is_some()),
                ("empty_segments", new.empty_segments.is_some()),
                ("scrub_responses", new.scrub_responses.is_some()),
            ];
            if let Some((f, _)) = stray.iter().find(|(_, on)| *on) {
                return Err(invalid(f, format!("`{f}` needs `upstream`")));
            }
            return Ok(None);
        };
        check_upstream(upstream)?;
        if let Some(c) = &new.credential
            && self.store.credential(c).await?.is_none()
        {
            return Err(invalid(
                "credential",
                format!("secret `{c}` does not exist: store it with `mandate secret set {c}`"),
            ));
        }
        let timeout = new.timeout_secs.unwrap_or(DEFAULT_ROUTE_TIMEOUT_SECS);
        if !(1..=MAX_ROUTE_TIMEOUT_SECS).contains(&timeout) {
            return Err(invalid(
                "timeout",
                format!("{timeout}s is not between 1s and {MAX_ROUTE_TIMEOUT_SECS}s"),
            ));
        }
        Ok(Some(RouteRecord {
            upstream: upstream.clone(),
            credential: new.credential.clone(),
            record_arguments: new.record_arguments,
            required_scopes: new.required_scopes.clone(),
            timeout_ms: timeout * 1000,
            empty_segments: new.empty_segments.unwrap_or_default(),
            scrub_responses: new.scrub_responses.unwrap_or(true),
        }))
    }

    /// Every resource, by name.
    pub async fn list_resources(&self) -> Result<Vec<Resource>> {
        Ok(self
            .store
            .list_resources()
            .await?
            .into_iter()
            .map(Resource::from)
            .collect())
    }

    /// One resource by name.
    pub async fn resource(&self, name: &str) -> Result<Resource> {
        self.store
            .resource(name)
            .await?
            .map(Resource::from)
            .ok_or_else(|| Error::NotFound {
                kind: "resource",
                id: name.to_owned(),
            })
    }

    /// The resource whose audience is exactly `audience`.
    pub async fn resource_by_audience(&self, audience: &str) -> Result<Option<Resource>> {
        Ok(self
            .hot_resources()
            .await?
            .iter()
            .find(|r| r.audience == audience)
            .cloned()
            .map(Resource::from))
    }

    /// Removes a resource. Tokens already issued for it stay valid until
    /// they expire or are revoked.
    pub async fn remove_resource(&self, actor: &Actor, name: &str) -> Result<()> {
        let now = self.now();
        let draft = AuditDraft::new(mandate_core::EventKind::ResourceRemoved, Outcome::Success)
            .actor(actor.token_id.clone())
            .target(format!("resource:{name}"));
        let deleted = self.store.delete_resource(name, draft, now).await?;
        self.hot_changed();
        if !deleted {
            return Err(Error::NotFound {
                kind: "resource",
                id: name.to_owned(),
            });
        }
        self.reload_policy().await?;
        Ok(())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn audiences_must_be_absolute_uris() {
        assert!(check_audience("https://api.example.com").is_ok());
        assert!(check_audience("urn:example:billing").is_ok());
        for bad in [
            "api.example.com",
            "/relative",
            "https://a#frag",
            "https:",
            "1http://x",
            "https://a b",
        ] {
            assert!(check_audience(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resources_build_valid_policy_entities() {
        let schema = mandate_policy::Schema::mandate().unwrap();
        let r = ResourceRecord {
            name: "billing".into(),
            audience: "https://billing.example.com".into(),
            scopes: vec!["read".into()],
            max_ttl_secs: 300,
            kind: "mcp".into(),
            sensitivity: "restricted".into(),
            owner: None,
            labels: [("team".to_owned(), "fin".to_owned())].into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            route: None,
        };
        let data = mandate_policy::EntityData {
            resources: vec![resource_entity(&r)],
            ..Default::default()
        };
        mandate_policy::Entities::build(&schema, &data).unwrap();
    }

    #[test]
    fn upstreams_are_absolute_http_urls_without_secrets() {
        assert!(check_upstream("https://api.example.com/v1").is_ok());
        assert!(check_upstream("http://127.0.0.1:8080").is_ok());
        for bad in [
            "api.example.com",
            "ftp://files.example.com",
            "https://user:pw@api.example.com",
            "https://api.example.com/?key=1",
            "https://api.example.com/#x",
            "urn:example:x",
        ] {
            assert!(check_upstream(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_follow_rfc_6749() {
        assert!(check_scope("invoices:read"));
        assert!(!check_scope(""));
        assert!(!check_scope("a b"));
        assert!(!check_scope("a\"b"));
        assert!(!check_scope("a\\b"));
    }
}
