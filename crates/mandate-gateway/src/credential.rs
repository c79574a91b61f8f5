//! Credential providers: how the gateway puts a route's upstream
//! credential into a request the agent sent without one. One closed enum,
//! built from a stored secret the engine decrypted ([`Credential::from_opened`]);
//! its `Debug` and `Serialize` never show a secret.
//!
//! - `static`: a stored value sent as a bearer token, in a named header, in
//!   a query parameter or as the password of HTTP basic auth.
//! - `oauth-client-credentials`: an upstream access token fetched with
//!   Mandate's client credentials (`client_secret_basic`), cached until 30 s
//!   before it expires, sent as a bearer token.
//! - `aws-sigv4`: the request signed with stored AWS keys (the payload's
//!   SHA-256 is part of the signature, so the proxy buffers the body).
//! - `mandate-jwt`: a fresh short-lived JWT signed with Mandate's active key,
//!   for upstreams that trust Mandate's JWKS, sent as a bearer token.
//!
//! Each injection is a lease: [`Injected`] says when it ends and which
//! values to scrub from what the upstream answers, never the value itself
//! in a form meant to be shown.

mod aws;
mod oauth;

use std::fmt;

use base64::Engine as _;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use mandate_jose::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::ser::SerializeStruct;

pub use aws::AwsSigV4;
pub use oauth::OAuthClientCredentials;

/// Why a credential could not be built or injected. Messages never hold a
/// secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The stored secret is not usable for its kind (a missing setting, an
    /// unknown kind, no value).
    #[error("credential `{name}` is misconfigured: {reason}")]
    Config {
        /// The secret's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The upstream token endpoint could not be reached or refused.
    #[error("the token endpoint failed: {0}")]
    TokenEndpoint(String),
    /// The request could not be signed.
    #[error("cannot sign the request: {0}")]
    Sign(String),
    /// Mandate could not mint its own token.
    #[error("cannot mint a Mandate token: {0}")]
    Mint(String),
}

/// The request on its way upstream, for a provider to add its credential.
#[derive(Debug)]
pub struct Outbound<'a> {
    /// Its method.
    pub method: &'a http::Method,
    /// The full upstream URL.
    pub url: &'a mut url::Url,
    /// The headers that will be sent.
    pub headers: &'a mut http::HeaderMap,
    /// The whole body, when buffered (always for [`Credential::needs_body`]).
    pub body: Option<&'a [u8]>,
}

/// Who the request is for, for providers that say so upstream.
#[derive(Clone, Copy)]
pub struct InjectContext<'a> {
    /// The control plane (its clock, its signing key).
    pub(crate) plane: &'a crate::plane::Plane,
    /// The agent's verified token.
    pub(crate) token: &'a mandate_engine::oauth::AccessToken,
    /// That token as presented.
    pub(crate) token_text: &'a str,
    /// The resource (route) name.
    pub(crate) resource: &'a str,
    /// The route's upstream URL.
    pub(crate) upstream: &'a str,
}

impl std::fmt::Debug for InjectContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InjectContext")
            .field("agent", &self.token.record.agent)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// What one injection leased.
#[derive(Debug, Default)]
pub struct Injected {
    /// When the injected credential stops working (unix seconds), when known.
    pub expires_at: Option<i64>,
    /// Values to scrub from upstream error bodies: the static secret, the
    /// fetched or minted token.
    pub scrub: Vec<SecretString>,
}

/// How a `static` secret goes into the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticInjection {
    /// `Authorization: Bearer <value>`.
    Bearer,
    /// `<header>: <value>`.
    Header(HeaderName),
    /// `?<name>=<value>`.
    Query(String),
    /// `Authorization: Basic base64(<user>:<value>)`.
    Basic {
        /// The user name.
        user: String,
    },
}

/// A stored value sent as is.
pub struct StaticSecret {
    name: String,
    inject: StaticInjection,
    value: SecretString,
}

/// A Mandate-signed JWT per request.
#[derive(Debug)]
pub struct MandateJwt {
    name: String,
    audience: Option<String>,
    ttl: time::Duration,
}

/// A route's upstream credential. Closed: each kind is one variant.
pub enum Credential {
    /// A stored value.
    Static(StaticSecret),
    /// An upstream OAuth client-credentials grant.
    OAuthClientCredentials(OAuthClientCredentials),
    /// AWS Signature Version 4.
    AwsSigV4(AwsSigV4),
    /// A Mandate-minted JWT.
    MandateJwt(MandateJwt),
}

/// The string setting `key` of a secret's settings.
fn setting(config: &serde_json::Value, key: &str) -> Option<String> {
    config
        .get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

impl Credential {
    /// Builds the provider of a decrypted secret. `http` is used for token
    /// fetches; it must not follow redirects (the gateway's client does not).
    pub fn from_opened(
        opened: mandate_engine::OpenedSecret,
        http: reqwest::Client,
    ) -> Result<Self, CredentialError> {
        let name = opened.name;
        let bad = |reason: &str| CredentialError::Config {
            name: name.clone(),
            reason: reason.to_owned(),
        };
        let c = &opened.config;
        let need = |key: &str| setting(c, key).ok_or_else(|| bad(&format!("no `{key}`")));
        let value = || opened.value.clone().ok_or_else(|| bad("no stored value"));
        Ok(match opened.kind.as_str() {
            "static" => {
                let inject = match setting(c, "inject").as_deref().unwrap_or("bearer") {
                    "bearer" => StaticInjection::Bearer,
                    "header" => StaticInjection::Header(
                        HeaderName::from_bytes(need("header")?.as_bytes())
                            .map_err(|_| bad("`header` is not a header name"))?,
                    ),
                    "query" => StaticInjection::Query(need("query")?),
                    "basic" => StaticInjection::Basic {
                        user: need("basic_user")?,
                    },
                    other => return Err(bad(&format!("unknown injection `{other}`"))),
                };
                let value = value()?;
                // Checked here so injection cannot fail on a bad value later.
                if value.expose_secret().chars().any(char::is_control) {
                    return Err(bad("the value holds control characters"));
                }
                Credential::Static(StaticSecret {
                    name: name.clone(),
                    inject,
                    value,
                })
            }
            "oauth-client-credentials" => {
                let token_url = url::Url::parse(&need("token_url")?)
                    .map_err(|_| bad("`token_url` is not a url"))?;
                Credential::OAuthClientCredentials(OAuthClientCredentials {
                    name: name.clone(),
                    token_url,
                    client_id: need("client_id")?,
                    client_secret: value()?,
                    scope: setting(c, "scope"),
                    audience: setting(c, "audience"),
                    http,
                    cache: Default::default(),
                })
            }
            "aws-sigv4" => Credential::AwsSigV4(AwsSigV4::new(
                name.clone(),
                need("access_key_id")?,
                &value()?,
                need("region")?,
                need("service")?,
            )),
            "mandate-jwt" => {
                let ttl = c
                    .get("ttl_secs")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(mandate_engine::DEFAULT_UPSTREAM_JWT_TTL_SECS);
                Credential::MandateJwt(MandateJwt {
                    name: name.clone(),
                    audience: setting(c, "audience"),
                    ttl: time::Duration::seconds(ttl),
                })
            }
            other => return Err(bad(&format!("unknown kind `{other}`"))),
        })
    }

    /// The provider kind, as stored: `static`, `oauth-client-credentials`,
    /// `aws-sigv4` or `mandate-jwt`.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Static(_) => "static",
            Credential::OAuthClientCredentials(_) => "oauth-client-credentials",
            Credential::AwsSigV4(_) => "aws-sigv4",
            Credential::MandateJwt(_) => "mandate-jwt",
        }
    }

    /// The stored secret's name.
    pub fn name(&self) -> &str {
        match self {
            Credential::Static(s) => &s.name,
            Credential::OAuthClientCredentials(o) => o.name(),
            Credential::AwsSigV4(a) => a.name(),
            Credential::MandateJwt(j) => &j.name,
        }
    }

    /// Whether [`Credential::inject`] needs the whole body (it signs it).
    pub fn needs_body(&self) -> bool {
        matches!(self, Credential::AwsSigV4(_))
    }

    /// The headers it sets: the proxy removes inbound copies first, so an
    /// agent cannot add its own.
    pub fn injected_headers(&self) -> Vec<HeaderName> {
        match self {
            Credential::Static(StaticSecret {
                inject: StaticInjection::Header(h),
                ..
            }) => vec![h.clone()],
            Credential::Static(StaticSecret {
                inject: StaticInjection::Query(_),
                ..
            }) => vec![],
            Credential::AwsSigV4(_) => aws::INJECTED_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect(),
            _ => vec![AUTHORIZATION],
        }
    }

    /// The query parameter it sets, if any (the proxy removes inbound ones).
    pub fn injected_query(&self) -> Option<&str> {
        match self {
            Credential::Static(StaticSecret {
                inject: StaticInjection::Query(q),
                ..
            }) => Some(q),
            _ => None,
        }
    }

    /// Puts the credential into `out`. Call it last: for `aws-sigv4`, any
    /// header changed afterwards breaks the signature.
    pub async fn inject(
        &self,
        out: Outbound<'_>,
        ctx: &InjectContext<'_>,
    ) -> Result<Injected, CredentialError> {
        match self {
            Credential::Static(s) => Ok(s.inject(out)),
            Credential::OAuthClientCredentials(o) => {
                let (token, expires_at) = o.token(ctx.plane.now().unix_timestamp()).await?;
                set_bearer(out.headers, &token)?;
                Ok(Injected {
                    expires_at: Some(expires_at),
                    scrub: vec![token],
                })
            }
            Credential::AwsSigV4(a) => a.sign_at(out, ctx.plane.now().into()),
            Credential::MandateJwt(j) => j.inject(out, ctx).await,
        }
    }
}

/// A header value that is never logged by `http`'s `Debug`.
fn sensitive(v: &str) -> Result<HeaderValue, CredentialError> {
    let mut hv = HeaderValue::from_str(v)
        .map_err(|_| CredentialError::Sign("the credential is not a valid header value".into()))?;
    hv.set_sensitive(true);
    Ok(hv)
}

fn set_bearer(headers: &mut http::HeaderMap, token: &SecretString) -> Result<(), CredentialError> {
    headers.insert(
        AUTHORIZATION,
        sensitive(&format!("Bearer {}", token.expose_secret()))?,
    );
    Ok(())
}

impl StaticSecret {
    fn inject(&self, out: Outbound<'_>) -> Injected {
        let v = self.value.expose_secret();
        // The value was checked for control characters when built, so the
        // header values below are valid.
        let header = |s: String| sensitive(&s).ok();
        match &self.inject {
            StaticInjection::Bearer => {
                if let Some(h) = header(format!("Bearer {v}")) {
                    out.headers.insert(AUTHORIZATION, h);
                }
            }
            StaticInjection::Header(name) => {
                if let Some(h) = header(v.to_owned()) {
                    out.headers.insert(name.clone(), h);
                }
            }
            StaticInjection::Query(q) => {
                out.url.query_pairs_mut().append_pair(q, v);
            }
            StaticInjection::Basic { user } => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{v}"));
                if let Some(h) = header(format!("Basic {b64}")) {
                    out.headers.insert(AUTHORIZATION, h);
                }
            }
        }
        Injected {
            expires_at: None,
            scrub: vec![self.value.clone()],
        }
    }
}

impl MandateJwt {
    async fn inject(
        &self,
        out: Outbound<'_>,
        ctx: &InjectContext<'_>,
    ) -> Result<Injected, CredentialError> {
        let audience = match &self.audience {
            Some(a) => a.clone(),
            None => ctx.upstream.to_owned(),
        };
        let (jwt, exp) = ctx
            .plane
            .upstream_jwt(ctx.token_text, ctx.token, ctx.resource, audience, self.ttl)
            .await
            .map_err(CredentialError::Mint)?;
        let jwt = SecretString::from(jwt);
        set_bearer(out.headers, &jwt)?;
        Ok(Injected {
            expires_at: Some(exp),
            scrub: vec![jwt],
        })
    }
}

/// What `Debug` and `Serialize` show: the kind, the name and non-secret
/// settings.
fn describe(c: &Credential) -> Vec<(&'static str, String)> {
    let mut v = vec![("kind", c.kind().to_owned()), ("name", c.name().to_owned())];
    match c {
        Credential::Static(s) => {
            let how = match &s.inject {
                StaticInjection::Bearer => "bearer".to_owned(),
                StaticInjection::Header(h) => format!("header {h}"),
                StaticInjection::Query(q) => format!("query {q}"),
                StaticInjection::Basic { user } => format!("basic {user}"),
            };
            v.push(("inject", how));
        }
        Credential::OAuthClientCredentials(o) => v.extend(o.describe()),
        Credential::AwsSigV4(a) => v.extend(a.describe()),
        Credential::MandateJwt(j) => {
            v.push((
                "audience",
                j.audience.clone().unwrap_or_else(|| "<upstream>".into()),
            ));
            v.push(("ttl_secs", j.ttl.whole_seconds().to_string()));
        }
    }
    v.push(("secret", "<redacted>".to_owned()));
    v
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Credential");
        for (k, v) in describe(self) {
            d.field(k, &v);
        }
        d.finish()
    }
}

impl fmt::Debug for StaticSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticSecret")
            .field("name", &self.name)
            .field("inject", &self.inject)
            .finish_non_exhaustive()
    }
}

impl Serialize for Credential {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = describe(self);
        let mut s = serializer.serialize_struct("Credential", fields.len())?;
        for (k, v) in fields {
            s.serialize_field(k, &v)?;
        }
        s.end()
    }
}

#[cfg(test)]
#[path = "credential/tests.rs"]
mod tests;
