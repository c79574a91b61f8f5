//! What the gateway asks of its control plane: routes, token checks,
//! decisions, audit events, credentials and minted JWTs. In the server
//! the control plane is the engine in the same process; a standalone
//! gateway (`mandate gateway`) asks a remote Mandate over the internal API
//! ([`crate::remote`]). One closed enum, so every request path is the same
//! code whichever it is.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;
use mandate_core::AuditDraft;
use mandate_engine::gateway::{CallDecision, GatewayCall, GatewayRoute};
use mandate_engine::oauth::AccessToken;
use mandate_engine::{Engine, OpenedSecret, UpstreamJwt};
use time::OffsetDateTime;

use crate::remote::Remote;
use crate::verify::{Cache, Refusal};
use crate::wire::CallSpec;

/// A request as the gateway received it, for the token check.
#[derive(Clone, Copy)]
pub(crate) struct Presented<'a> {
    pub(crate) method: &'a str,
    /// Its public URL.
    pub(crate) url: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) client_ip: Option<IpAddr>,
}

#[derive(Clone)]
pub(crate) enum Plane {
    /// The engine of this process.
    Local(Engine),
    /// A remote Mandate, over the internal API.
    Remote(Arc<Remote>),
}

/// A decision that denies because none could be made.
pub(crate) fn undecided(why: String) -> CallDecision {
    CallDecision {
        allowed: false,
        policies: Vec::new(),
        errors: vec![why],
        policy_version: None,
    }
}

impl Plane {
    /// The control plane's clock (the system clock for a remote one).
    pub(crate) fn now(&self) -> OffsetDateTime {
        match self {
            Plane::Local(e) => e.now(),
            Plane::Remote(_) => OffsetDateTime::now_utc(),
        }
    }

    /// The route of resource `name`, when it is exposed.
    pub(crate) async fn route(&self, name: &str) -> Result<Option<GatewayRoute>, String> {
        match self {
            Plane::Local(e) => e.gateway_route(name).await.map_err(|e| e.to_string()),
            Plane::Remote(r) => Ok(r.route(name).await?.route),
        }
    }

    /// The scopes of resource `name` (for its protected resource metadata).
    pub(crate) async fn scopes(&self, name: &str) -> Vec<String> {
        match self {
            Plane::Local(e) => e.resource(name).await.map(|r| r.scopes).unwrap_or_default(),
            Plane::Remote(r) => r.route(name).await.map(|a| a.scopes).unwrap_or_default(),
        }
    }

    /// The verified token of a request to `route` at public `url`, or why
    /// it is refused. A remote control plane also decides `calls` in the
    /// same round trip (their decisions come back in order); locally they
    /// are left to [`Plane::decide`], which costs no trip.
    pub(crate) async fn authenticate(
        &self,
        cache: &Cache,
        route: &GatewayRoute,
        request: Presented<'_>,
        calls: Vec<CallSpec>,
    ) -> Result<(Arc<AccessToken>, Vec<CallDecision>), Refusal> {
        match self {
            Plane::Local(e) => cache
                .authenticate(e, route, request.method, request.url, request.headers)
                .await
                .map(|t| (t, Vec::new())),
            Plane::Remote(r) => r.authenticate(route, request, calls).await,
        }
    }

    /// Decisions on `calls` by the holder of `token` (presented as
    /// `token_text`) at route `resource`, in order. A call that cannot be
    /// decided is denied.
    pub(crate) async fn decide(
        &self,
        token_text: &str,
        token: &AccessToken,
        resource: &str,
        client_ip: Option<IpAddr>,
        calls: Vec<CallSpec>,
    ) -> Vec<CallDecision> {
        match self {
            Plane::Local(e) => calls
                .into_iter()
                .map(|c| decide_locally(e, token, resource, client_ip, c))
                .collect(),
            Plane::Remote(r) => {
                let n = calls.len();
                match r.decide(token_text, resource, client_ip, calls).await {
                    Ok(d) if d.len() == n => d,
                    Ok(_) => vec![undecided("the control plane's answer is incomplete".into()); n],
                    Err(e) => vec![undecided(format!("the control plane cannot decide: {e}")); n],
                }
            }
        }
    }

    /// Writes one audit event; see [`Engine::audit_gateway`].
    pub(crate) async fn audit(&self, draft: AuditDraft, durable: bool) -> Result<(), String> {
        match self {
            Plane::Local(e) => e
                .audit_gateway(draft, durable)
                .await
                .map_err(|e| e.to_string()),
            Plane::Remote(r) => r.audit(draft, durable).await,
        }
    }

    /// Credential `name` opened with its version, or `None` when its
    /// version is still `known`.
    pub(crate) async fn credential(
        &self,
        name: &str,
        known: Option<OffsetDateTime>,
    ) -> Result<Option<(OpenedSecret, OffsetDateTime)>, String> {
        match self {
            Plane::Local(e) => {
                let info = e.secret_info(name).await.map_err(|e| e.to_string())?;
                if known == Some(info.updated_at) {
                    return Ok(None);
                }
                let opened = e.open_secret(name).await.map_err(|e| e.to_string())?;
                Ok(Some((opened, info.updated_at)))
            }
            Plane::Remote(r) => r.credential(name, known).await,
        }
    }

    /// A Mandate-signed JWT for `audience` about the holder of `token`.
    pub(crate) async fn upstream_jwt(
        &self,
        token_text: &str,
        token: &AccessToken,
        resource: &str,
        audience: String,
        ttl: time::Duration,
    ) -> Result<(String, i64), String> {
        match self {
            Plane::Local(e) => e
                .mint_upstream_jwt(upstream_jwt_for(token, audience, ttl))
                .await
                .map_err(|e| e.to_string()),
            Plane::Remote(r) => r.upstream_jwt(token_text, resource, audience, ttl).await,
        }
    }
}

/// What a Mandate JWT for an upstream says about the holder of `token`.
pub(crate) fn upstream_jwt_for(
    token: &AccessToken,
    audience: String,
    ttl: time::Duration,
) -> UpstreamJwt {
    UpstreamJwt {
        audience,
        subject: token.subject.clone(),
        agent: token.record.agent.clone(),
        act: token.act().cloned(),
        txn: token.record.txn.clone(),
        ttl,
    }
}

/// One decision by the engine of this process.
pub(crate) fn decide_locally(
    engine: &Engine,
    token: &AccessToken,
    resource: &str,
    client_ip: Option<IpAddr>,
    c: CallSpec,
) -> CallDecision {
    engine.authorize_call(&GatewayCall {
        token,
        resource,
        action: c.action,
        tool: c.tool.as_deref(),
        args: c.args,
        http: c.http,
        mcp: c.mcp,
        client_ip,
    })
}
