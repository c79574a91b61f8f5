//! The token endpoint (RFC 6749 §3.2) with its grants, introspection
//! (RFC 7662) and revocation (RFC 7009).
//!
//! Grants:
//! - `urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523): a workload JWT
//!   (Kubernetes, GitHub Actions, GitLab CI, OIDC, JWT-SVID) as `assertion`,
//!   verified by the trust provider whose issuer and audience it carries and
//!   mapped to an agent by the binding rules.
//! - `client_credentials` with client authentication by assertion: a
//!   `private_key_jwt` signed by a key registered on the agent, a platform
//!   JWT (`...:client-assertion-type:jwt-bearer`), a JWT-SVID
//!   (`...:jwt-spiffe`) or an AWS instance identity document
//!   ([`AWS_IID_ASSERTION_TYPE`]).
//! - `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693) for
//!   delegation: the parent's token as subject, the child's own proof as
//!   actor; authority only narrows down the chain.
//!
//! Every grant evaluates Cedar `token:issue` (and an exchange `delegate`)
//! and ends in exactly one audit event, `token.issued` (written with the
//! token's record in one group commit) or `token.denied`, before the
//! answer. If the event cannot be written, nothing is issued.

mod access;
mod admin;
mod client;
pub mod dpop;
mod grants;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use mandate_core::{Agent, AgentName, AgentStatus, AuditDraft, Outcome};
use mandate_policy::{
    Action, EntityRef, Request, RequestContext, RequestTime, RiskScore, UserEntity,
};
use serde::Serialize;
use serde_json::{Value, json};
use time::Duration;

pub use access::{ACCESS_TOKEN_ALGORITHMS, AccessToken, Presented, PresentedRefusal};
pub use admin::TokenInfo;
pub use client::{AWS_IID_ASSERTION_TYPE, JWT_BEARER_ASSERTION_TYPE, JWT_SPIFFE_ASSERTION_TYPE};
use dpop::{DpopCheck, DpopFailure};
pub use grants::GrantType;

use crate::{Engine, Error, MintRequest, Resource};

/// `grant_type` of the JWT bearer grant (RFC 7523).
pub const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// `grant_type` of token exchange (RFC 8693).
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Token type of an access token (RFC 8693 §3).
pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Token type of a JWT (RFC 8693 §3).
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// Token type of an ID token (RFC 8693 §3).
pub const TOKEN_TYPE_ID: &str = "urn:ietf:params:oauth:token-type:id_token";

/// An OAuth error response (RFC 6749 §5.2, RFC 9449 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The `error` code.
    pub error: &'static str,
    /// `error_description`.
    pub description: String,
    /// HTTP status.
    pub status: u16,
    /// A `DPoP-Nonce` to send.
    pub dpop_nonce: Option<String>,
}

impl OAuthError {
    /// An error with the status RFC 6749 gives it.
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = match error {
            "invalid_client" => 401,
            "temporarily_unavailable" => 503,
            "server_error" => 500,
            _ => 400,
        };
        Self {
            error,
            description: description.into(),
            status,
            dpop_nonce: None,
        }
    }
    fn request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    fn grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }
    fn client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", d)
    }
    fn scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", d)
    }
    fn target(d: impl Into<String>) -> Self {
        Self::new("invalid_target", d)
    }
    fn denied(d: impl Into<String>) -> Self {
        Self::new("access_denied", d)
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        match e {
            Error::Unavailable(_) => {
                tracing::error!(error = %e, "token endpoint: storage failed");
                Self::new(
                    "temporarily_unavailable",
                    "the audit log or the store cannot be written; nothing was issued",
                )
            }
            other => {
                tracing::error!(error = %other, "token endpoint failed");
                Self::new("server_error", "internal error")
            }
        }
    }
}

impl From<DpopFailure> for OAuthError {
    fn from(f: DpopFailure) -> Self {
        match f {
            DpopFailure::Invalid(why) => Self::new("invalid_dpop_proof", why),
            DpopFailure::UseNonce(nonce) => Self {
                dpop_nonce: Some(nonce),
                ..Self::new("use_dpop_nonce", "a DPoP nonce from the server is required")
            },
            DpopFailure::Internal(e) => e.into(),
        }
    }
}

/// A token request as received.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// The form parameters, in order, duplicates kept (they are refused).
    pub params: Vec<(String, String)>,
    /// The `DPoP` header, when present.
    pub dpop: Option<String>,
    /// The token endpoint's public URL (the proof's `htu`).
    pub endpoint_url: String,
    /// The client's address.
    pub client_ip: Option<IpAddr>,
}

/// A successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// `Bearer`, or `DPoP` when bound.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: String,
    /// For token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// A fresh `DPoP-Nonce` (header, not body).
    #[serde(skip)]
    pub dpop_nonce: Option<String>,
}

/// Form parameters, each at most once (RFC 6749 §3.2).
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    fn parse(pairs: &[(String, String)]) -> Result<Self, OAuthError> {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            if map.insert(k.clone(), v.clone()).is_some() {
                return Err(if k == "resource" {
                    OAuthError::target("one `resource` per token request")
                } else {
                    OAuthError::request(format!("parameter `{k}` is repeated"))
                });
            }
        }
        Ok(Self(map))
    }
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        let v = self.0.get(k).map(String::as_str)?;
        // A JWT read from a file keeps the file's final newline (what
        // `kubectl create token > token.jwt` writes, and what curl's
        // `--data-urlencode assertion@token.jwt` sends): JWTs never end in
        // white space, so it is trimmed rather than refused.
        let v = if JWT_PARAMS.contains(&k) {
            v.trim_end_matches(['\n', '\r', ' ', '\t'])
        } else {
            v
        };
        Some(v).filter(|v| !v.is_empty())
    }
    fn require(&self, k: &str) -> Result<&str, OAuthError> {
        self.get(k)
            .ok_or_else(|| OAuthError::request(format!("`{k}` is required")))
    }
}

/// The parameters that carry a JWT (or an instance identity document).
const JWT_PARAMS: [&str; 4] = [
    "assertion",
    "client_assertion",
    "subject_token",
    "actor_token",
];

/// Splits a `scope` value.
pub(crate) fn split_scope(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in s.split(' ').filter(|x| !x.is_empty()) {
        if !out.iter().any(|o| o == x) {
            out.push(x.to_owned());
        }
    }
    out
}

/// The agent a grant is for, with how it proved itself.
#[derive(Debug, Clone)]
pub(crate) struct Proven {
    pub(crate) agent: Agent,
    /// The provider and its verified claims, when a platform attested it.
    pub(crate) attestation: Option<ProvenAttestation>,
    /// How: `jwt-bearer`, `private_key_jwt`, `jwt-spiffe`, `aws-iid`,
    /// `access_token`.
    pub(crate) method: &'static str,
    /// Whether a platform attestation (not a stored key) proved it.
    pub(crate) attested: bool,
}

/// The attestation that proved an agent: which provider, of which kind,
/// with which verified claims (native names).
#[derive(Debug, Clone)]
pub(crate) struct ProvenAttestation {
    pub(crate) provider: String,
    pub(crate) kind: mandate_core::ProviderKind,
    pub(crate) claims: BTreeMap<String, String>,
}

impl ProvenAttestation {
    /// What policies see: the vocabulary in `claims`, every verified claim
    /// in `evidence`.
    fn policy_view(&self) -> mandate_policy::Attestation {
        mandate_policy::Attestation::verified(&self.provider, self.kind, &self.claims)
    }
}

/// The facts the audit event of a grant records, filled in as they are
/// established.
#[derive(Debug, Default)]
struct GrantAudit {
    detail: serde_json::Map<String, Value>,
    agent: Option<String>,
    target: Option<String>,
}

impl GrantAudit {
    fn set(&mut self, k: &str, v: impl Into<Value>) {
        self.detail.insert(k.to_owned(), v.into());
    }
}

/// What the subject token of an exchange says.
struct Subject {
    /// The parent's token, when the subject is a Mandate token.
    token: Option<AccessToken>,
    /// The chain so far (agents, first caller first); empty for a user.
    chain: Vec<String>,
    /// `sub` to keep.
    sub: String,
    /// The user on whose behalf (id, email, groups), when the subject is a
    /// user's token or a token issued on a user's behalf.
    user: Option<UserEntity>,
}

impl Engine {
    /// Handles a token request: one grant, one audit event, one answer.
    pub async fn token_grant(&self, req: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let mut audit = GrantAudit::default();
        match self.grant(&req, &mut audit).await {
            Ok(r) => Ok(r),
            Err(e) if e.error == "use_dpop_nonce" => Err(e),
            Err(e) if matches!(e.error, "temporarily_unavailable" | "server_error") => Err(e),
            Err(e) => {
                audit.set("error", e.error);
                audit.set("error_description", e.description.clone());
                if let Some(ip) = req.client_ip {
                    audit.set("client_ip", ip.to_string());
                }
                let draft = AuditDraft::new(mandate_core::EventKind::TokenDenied, Outcome::Denied)
                    .actor_opt(audit.agent.clone())
                    .target_opt(audit.target.clone())
                    .detail(Value::Object(audit.detail));
                match self.store.append_audit(draft, self.now()).await {
                    Ok(_) => Err(e),
                    Err(err) => Err(Error::from(err).into()),
                }
            }
        }
    }

    async fn grant(
        &self,
        req: &TokenRequest,
        audit: &mut GrantAudit,
    ) -> Result<TokenResponse, OAuthError> {
        let p = Params::parse(&req.params)?;
        let grant_type = p.require("grant_type")?.to_owned();
        audit.set("grant_type", grant_type.clone());
        let grant_type = GrantType::parse(&grant_type)?;
        // DPoP first: a nonce challenge costs the client nothing else.
        let jkt = match &req.dpop {
            None => None,
            Some(proof) => {
                let check = DpopCheck {
                    method: "POST",
                    url: &req.endpoint_url,
                    access_token: None,
                    require_nonce: self.token_config().dpop_require_nonce,
                };
                Some(self.verify_dpop(proof, check).await?.jkt)
            }
        };
        let client = self.authenticate_client(&p).await?;
        if let Some(c) = &client {
            audit.set("client_auth", c.method);
            audit.agent = Some(c.agent.name.to_string());
        }
        let (actor, subject) = match grant_type {
            GrantType::ClientCredentials => self.plan_client_credentials(client)?,
            GrantType::JwtBearer => self.plan_jwt_bearer(&p, client).await?,
            GrantType::TokenExchange => self.plan_token_exchange(&p, client, audit).await?,
        };
        self.issue(req, &p, actor, subject, jkt, audit).await
    }

    /// What every grant shares once its own part has established who acts
    /// (and, for an exchange, for whom): the agent's state, the resource
    /// and scopes, the delegation's limits, the policy, and the token.
    async fn issue(
        &self,
        req: &TokenRequest,
        p: &Params,
        actor: Proven,
        subject: Option<Subject>,
        jkt: Option<String>,
        audit: &mut GrantAudit,
    ) -> Result<TokenResponse, OAuthError> {
        audit.agent = Some(actor.agent.name.to_string());
        audit.set("agent", actor.agent.name.to_string());
        audit.set("spiffe_id", actor.agent.spiffe_id.to_string());
        audit.set("proof", actor.method);
        if let Some(a) = &actor.attestation {
            audit.set("provider", a.provider.clone());
            audit.set("claims_digest", crate::claims_digest(&a.claims));
        }
        if actor.agent.status != AgentStatus::Active {
            return Err(OAuthError::grant(format!(
                "agent `{}` is {}",
                actor.agent.name,
                actor.agent.status.as_str()
            )));
        }

        let resource = self.grant_resource(p).await?;
        audit.target = Some(format!("resource:{}", resource.name));
        audit.set("resource", resource.name.clone());

        let requested = p.get("scope").map(split_scope).unwrap_or_default();
        audit.set("requested_scope", requested.join(" "));
        if let Some(s) = requested.iter().find(|s| !resource.scopes.contains(s)) {
            return Err(OAuthError::scope(format!(
                "`{s}` is not a scope of resource `{}`",
                resource.name
            )));
        }
        let cfg = self.token_config();
        let now = self.now().unix_timestamp();

        // Delegation: the chain, its limits, and what narrows.
        let mut chain: Vec<String> = Vec::new();
        let mut scopes = requested.clone();
        let mut ttl = cfg.default_ttl;
        let mut act = None;
        let mut user = None;
        let mut sub = actor.agent.spiffe_id.to_string();
        let mut txn = None;
        let mut parent_jti = None;
        if let Some(subject) = &subject {
            chain.clone_from(&subject.chain);
            user.clone_from(&subject.user);
            sub.clone_from(&subject.sub);
            audit.set("chain", chain.clone());
            if chain.iter().any(|a| a == actor.agent.name.as_str()) {
                return Err(OAuthError::grant(format!(
                    "agent `{}` is already in the delegation chain (loop)",
                    actor.agent.name
                )));
            }
            if chain.len() > cfg.max_delegation_depth {
                return Err(OAuthError::grant(format!(
                    "the delegation chain would exceed the maximum depth of {}",
                    cfg.max_delegation_depth
                )));
            }
            if let Some(parent) = &subject.token {
                if let Some(may_act) = parent.claims.get("may_act") {
                    let named = may_act.get("sub").and_then(Value::as_str);
                    if named != Some(actor.agent.spiffe_id.as_str()) {
                        return Err(OAuthError::grant(format!(
                            "the subject token's `may_act` does not name agent `{}`",
                            actor.agent.name
                        )));
                    }
                }
                if scopes.is_empty() {
                    scopes = parent
                        .scopes
                        .iter()
                        .filter(|s| resource.scopes.contains(s))
                        .cloned()
                        .collect();
                    if scopes.is_empty() {
                        return Err(OAuthError::scope(format!(
                            "the subject token holds no scope of resource `{}`",
                            resource.name
                        )));
                    }
                } else if let Some(s) = scopes.iter().find(|s| !parent.scopes.contains(s)) {
                    return Err(OAuthError::scope(format!(
                        "`{s}` is not among the subject token's scopes (delegation only narrows)"
                    )));
                }
                let left = parent.exp - now;
                if left <= 0 {
                    return Err(OAuthError::grant("the subject token has expired"));
                }
                ttl = ttl.min(Duration::seconds(left));
                txn = Some(parent.record.txn.clone());
                parent_jti = Some(parent.record.jti.clone());
                act = Some(self.act_claim(&actor.agent, parent).await?);
            } else {
                act = Some(json!({ "sub": actor.agent.spiffe_id.to_string() }));
            }
        }
        audit.set("scope", scopes.join(" "));

        // Policy: `delegate` at each exchange, `token:issue` always.
        let mut context = RequestContext {
            attestation: actor
                .attestation
                .as_ref()
                .map(ProvenAttestation::policy_view),
            delegation: mandate_policy::Delegation {
                chain: chain.clone(),
            },
            on_behalf_of: user.as_ref().map(|u| u.id.clone()),
            env: actor.agent.labels.get("env").unwrap_or_default().to_owned(),
            time: RequestTime::from_unix(now).unwrap_or_default(),
            scopes: scopes.iter().cloned().collect::<BTreeSet<_>>(),
            args: serde_json::Map::new(),
            client_ip: req.client_ip,
            risk: RiskScore::new(self.agent_risk(actor.agent.name.as_str()))
                .unwrap_or(RiskScore::MAX),
            http: None,
            mcp: None,
        };
        let mut policies: Vec<String> = Vec::new();
        if subject.is_some()
            && let Some(parent_agent) = chain.last()
        {
            let mut ctx = context.clone();
            ctx.delegation.chain.pop();
            ctx.attestation = None;
            let request = Request {
                principal: EntityRef::Agent(parent_agent.clone()),
                action: Action::Delegate,
                resource: EntityRef::Agent(actor.agent.name.to_string()),
                context: ctx,
            };
            let (decision, _) = self.evaluate_policy_for(&request, user.as_ref());
            policies.extend(decision.determining_policies.iter().cloned());
            audit.set("delegate_policies", decision.determining_policies.clone());
            if !decision.is_allowed() {
                audit.set("decision", "deny");
                audit.set("denied_action", "delegate");
                return Err(OAuthError::denied(format!(
                    "policy does not allow `{parent_agent}` to delegate to `{}`",
                    actor.agent.name
                )));
            }
        }
        if context.scopes.is_empty() {
            context.scopes = resource.scopes.iter().cloned().collect();
        }
        let request = Request {
            principal: EntityRef::Agent(actor.agent.name.to_string()),
            action: Action::TokenIssue,
            resource: EntityRef::Resource(resource.name.clone()),
            context,
        };
        let (decision, version) = self.evaluate_policy_for(&request, user.as_ref());
        audit.set("policies", decision.determining_policies.clone());
        audit.set("policy_version", version);
        if !decision.is_allowed() {
            audit.set("decision", "deny");
            audit.set("denied_action", "token:issue");
            if !decision.errors.is_empty() {
                audit.set("policy_errors", decision.errors.clone());
            }
            return Err(OAuthError::denied(format!(
                "policy does not allow agent `{}` a token for resource `{}`",
                actor.agent.name, resource.name
            )));
        }
        audit.set("decision", "allow");
        policies.extend(decision.determining_policies.iter().cloned());

        let may_act = match p.get("may_act") {
            None => None,
            Some(name) => {
                let child = self.active_agent(name).await?.ok_or_else(|| {
                    OAuthError::request(format!(
                        "`may_act` names `{name}`, which is not an active agent"
                    ))
                })?;
                Some(json!({ "sub": child.spiffe_id.to_string() }))
            }
        };
        chain.push(actor.agent.name.to_string());
        let kind = if user.is_some() {
            mandate_core::AgentKind::OnBehalfOf
        } else {
            actor.agent.kind
        }
        .claim_value();
        // `last_seen_at` moves at most once a minute: one write less per
        // token for busy agents.
        let touch_agent = actor.attested
            && actor
                .agent
                .last_seen_at
                .is_none_or(|t| self.now() - t >= Duration::minutes(1));
        if touch_agent {
            self.hot_agent_seen(&actor.agent.name, self.now());
        }
        let mut extra = std::mem::take(&mut audit.detail);
        extra.insert("user".into(), json!(user.as_ref().map(|u| &u.id)));
        extra.insert("policies".into(), json!(policies));
        let minted = self
            .mint_token(MintRequest {
                subject: sub,
                agent: actor.agent.name.to_string(),
                client_id: actor.agent.name.to_string(),
                agent_kind: kind.to_owned(),
                audience: resource.audience.clone(),
                scopes,
                ttl: Some(ttl),
                txn,
                parent_jti,
                act,
                cnf_jkt: jkt.clone(),
                user: user.clone(),
                may_act,
                chain,
                touch_agent,
                audit: extra,
            })
            .await
            .map_err(|e| match e {
                Error::Invalid(v) if v.field == "ttl" => {
                    OAuthError::grant("the subject token has (almost) expired")
                }
                Error::Invalid(v) => OAuthError::scope(v.message),
                Error::Unavailable(mandate_store::Error::AgentInactive(name)) => {
                    OAuthError::grant(format!("agent `{name}` is no longer active"))
                }
                other => other.into(),
            })?;
        Ok(TokenResponse {
            access_token: mandate_jose::ExposeSecret::expose_secret(&minted.access_token)
                .to_owned(),
            token_type: if jkt.is_some() { "DPoP" } else { "Bearer" },
            expires_in: minted.expires_in,
            scope: minted.scope,
            issued_token_type: subject.is_some().then_some(TOKEN_TYPE_ACCESS),
            dpop_nonce: jkt.and_then(|_| self.dpop_nonce()),
        })
    }

    async fn active_agent(&self, name: &str) -> Result<Option<Agent>, OAuthError> {
        let Ok(n) = name.parse::<AgentName>() else {
            return Ok(None);
        };
        Ok(self
            .store
            .agent(&n)
            .await
            .map_err(Error::from)?
            .filter(|a| a.status == AgentStatus::Active))
    }

    /// The resource a grant targets: `resource` (RFC 8707) or `audience`
    /// (RFC 8693), as an audience URI or a resource name.
    async fn grant_resource(&self, p: &Params) -> Result<Resource, OAuthError> {
        let wanted = match (p.get("resource"), p.get("audience")) {
            (Some(r), Some(a)) if r != a => {
                return Err(OAuthError::target("`resource` and `audience` disagree"));
            }
            (Some(r), _) => r,
            (None, Some(a)) => a,
            (None, None) => {
                return Err(OAuthError::target(
                    "name the resource with `resource` (RFC 8707) or `audience`",
                ));
            }
        };
        if let Some(r) = self.resource_by_audience(wanted).await? {
            return Ok(r);
        }
        if !wanted.contains(':')
            && let Some(r) = self
                .hot_resources()
                .await?
                .iter()
                .find(|r| r.name == wanted)
        {
            return Ok(r.clone().into());
        }
        Err(OAuthError::target(format!(
            "`{wanted}` is not a registered resource"
        )))
    }

    /// The `act` claim of a token the actor gets by exchanging `parent`:
    /// the actor outermost, the parent's own `act` (or the parent as the
    /// first actor) nested inside.
    async fn act_claim(&self, actor: &Agent, parent: &AccessToken) -> Result<Value, OAuthError> {
        let inner = match parent.act() {
            Some(a) => a.clone(),
            None => {
                let holder = self.agent_spiffe(&parent.record.agent).await?;
                json!({ "sub": holder })
            }
        };
        Ok(json!({ "sub": actor.spiffe_id.to_string(), "act": inner }))
    }

    async fn agent_spiffe(&self, name: &str) -> Result<String, OAuthError> {
        let n = name
            .parse::<AgentName>()
            .map_err(|_| OAuthError::grant("the subject token's agent is invalid"))?;
        let a = self
            .store
            .agent(&n)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| OAuthError::grant("the subject token's agent no longer exists"))?;
        Ok(a.spiffe_id.to_string())
    }

    /// Verifies the subject token of an exchange.
    async fn exchange_subject(
        &self,
        p: &Params,
        audit: &mut GrantAudit,
    ) -> Result<Subject, OAuthError> {
        let token = p.require("subject_token")?;
        let kind = p.require("subject_token_type")?;
        match kind {
            TOKEN_TYPE_ACCESS => {
                let parent = self
                    .verify_access_token(token)
                    .await?
                    .map_err(|why| OAuthError::grant(format!("subject_token: {why}")))?;
                audit.set("subject_jti", parent.record.jti.clone());
                audit.set("txn", parent.record.txn.clone());
                Ok(Subject {
                    chain: parent.record.chain.clone(),
                    sub: parent.subject.clone(),
                    user: parent.user_entity(),
                    token: Some(parent),
                })
            }
            TOKEN_TYPE_ID | TOKEN_TYPE_JWT => {
                let (provider, subject, claims) = self.verify_user_token(token).await?;
                let email = claims.get("email").cloned();
                let user = email
                    .clone()
                    .unwrap_or_else(|| format!("{provider}:{subject}"));
                audit.set("user", user.clone());
                // `groups`: an array of names, flattened with `,`.
                let groups = claims
                    .get("groups")
                    .map(|g| {
                        g.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Subject {
                    token: None,
                    chain: Vec::new(),
                    sub: user.clone(),
                    user: Some(UserEntity {
                        id: user,
                        email: email.unwrap_or_default(),
                        groups,
                    }),
                })
            }
            other => Err(OAuthError::request(format!(
                "subject_token_type `{other}` is not supported"
            ))),
        }
    }

    /// Verifies the actor token of an exchange: the child's own Mandate
    /// token, or its workload JWT.
    async fn exchange_actor(&self, p: &Params) -> Result<Proven, OAuthError> {
        let Some(token) = p.get("actor_token") else {
            return Err(OAuthError::request(
                "`actor_token` is required: delegation needs the actor's own proof (impersonation is off)",
            ));
        };
        match p.require("actor_token_type")? {
            TOKEN_TYPE_ACCESS => {
                let t = self
                    .verify_access_token(token)
                    .await?
                    .map_err(|why| OAuthError::grant(format!("actor_token: {why}")))?;
                if t.record.chain.len() > 1 {
                    return Err(OAuthError::grant(
                        "actor_token: a delegated token does not prove the actor's own identity",
                    ));
                }
                let agent = self
                    .active_agent(&t.record.agent)
                    .await?
                    .ok_or_else(|| OAuthError::grant("actor_token: its agent is not active"))?;
                Ok(Proven {
                    agent,
                    attestation: None,
                    method: "access_token",
                    attested: false,
                })
            }
            TOKEN_TYPE_JWT | TOKEN_TYPE_ID => self.attest_jwt(token, "jwt-bearer").await,
            other => Err(OAuthError::request(format!(
                "actor_token_type `{other}` is not supported"
            ))),
        }
    }

    /// Introspects a token (RFC 7662) for an authenticated caller, and
    /// audits it. Inactive tokens answer `{"active": false}` only.
    pub async fn introspect(&self, caller: &str, token: &str) -> crate::Result<Value> {
        let verified = self.verify_access_token(token).await?;
        let (response, jti, reason) = match verified {
            Ok(t) => {
                let mut out = serde_json::Map::new();
                out.insert("active".into(), Value::Bool(true));
                for k in [
                    "scope",
                    "client_id",
                    "sub",
                    "aud",
                    "iss",
                    "exp",
                    "iat",
                    "nbf",
                    "jti",
                    "act",
                    "may_act",
                    "cnf",
                    "txn",
                    "agent_kind",
                ] {
                    if let Some(v) = t.claims.get(k) {
                        out.insert(k.into(), v.clone());
                    }
                }
                out.insert(
                    "token_type".into(),
                    Value::from(if t.cnf_jkt.is_some() {
                        "DPoP"
                    } else {
                        "Bearer"
                    }),
                );
                out.insert("username".into(), Value::from(t.record.agent.clone()));
                (Value::Object(out), Some(t.record.jti), None)
            }
            Err(why) => (json!({ "active": false }), None, Some(why)),
        };
        let draft = AuditDraft::new(mandate_core::EventKind::TokenIntrospected, Outcome::Success)
            .actor(caller.to_owned())
            .target_opt(jti.as_ref().map(|j| format!("token:{j}")))
            .detail(json!({
                "active": reason.is_none(),
                "jti": jti,
                "reason": reason,
            }));
        self.store.append_audit(draft, self.now()).await?;
        Ok(response)
    }

    /// Revokes a token and every token derived from it (RFC 7009). Unknown
    /// and invalid tokens are not an error (RFC 7009 §2.2) but are audited.
    /// Returns how many tokens were revoked.
    pub async fn revoke_token(&self, caller: &str, token: &str) -> crate::Result<u64> {
        let jti = match mandate_jose::jws::decode(token, mandate_jose::jws::DEFAULT_MAX_TOKEN_LEN) {
            Ok(j) => serde_json::from_slice::<Value>(j.payload_unverified())
                .ok()
                .and_then(|c| c.get("jti").and_then(Value::as_str).map(str::to_owned)),
            Err(_) => None,
        };
        // Only a token that verifies as ours names a family to revoke (a
        // forged `jti` must not revoke someone else's token); an expired
        // or already revoked one has nothing left to revoke.
        let verified = self.verify_access_token(token).await?.ok();
        self.revoke_jti(
            caller,
            jti.filter(|_| verified.is_some()).as_deref(),
            "revocation endpoint",
        )
        .await
    }

    /// Revokes the token `jti` and its descendants (admin path: by id).
    pub async fn revoke_jti(
        &self,
        caller: &str,
        jti: Option<&str>,
        via: &str,
    ) -> crate::Result<u64> {
        let now = self.now();
        let draft = |j: Option<&str>| {
            AuditDraft::new(mandate_core::EventKind::TokenRevoked, Outcome::Success)
                .actor(caller.to_owned())
                .target_opt(j.map(|j| format!("token:{j}")))
                .detail(json!({ "jti": j, "via": via }))
        };
        if let Some(j) = jti
            && let Some(n) = self
                .store
                .revoke_token_family(j, draft(Some(j)), now)
                .await?
        {
            self.revocations_changed();
            return Ok(n);
        }
        let ev = draft(jti).detail(json!({ "jti": jti, "via": via, "revoked": 0, "known": false }));
        self.store.append_audit(ev, now).await?;
        Ok(0)
    }
}

impl Engine {
    /// Authenticates a client at introspection or revocation by its client
    /// assertion: the agent's name, or `None` without an assertion.
    pub async fn authenticate_client_form(
        &self,
        params: &[(String, String)],
    ) -> Result<Option<String>, OAuthError> {
        let p = Params::parse(params)?;
        Ok(self
            .authenticate_client(&p)
            .await?
            .map(|c| c.agent.name.to_string()))
    }
}

#[cfg(test)]
#[path = "oauth/tests.rs"]
mod tests;
