//! What the gateway asks of the engine for each forwarded call: the
//! decision (Cedar `http:request` or an MCP action, with the verified
//! token's agent, chain, user, scopes and the call itself in context) and
//! the audit event, written before the answer leaves.

use std::net::IpAddr;

use mandate_core::AuditDraft;
use mandate_policy::{
    Action, Decision, Delegation, EntityRef, HttpRequest, McpMessage, Request, RequestContext,
    RequestTime, RiskScore, ToolEntity,
};

use crate::oauth::AccessToken;
use crate::{Engine, Result};

/// One call the gateway is about to forward.
#[derive(Debug, Clone)]
pub struct GatewayCall<'a> {
    /// The caller's verified token.
    pub token: &'a AccessToken,
    /// The route (resource name).
    pub resource: &'a str,
    /// `http:request`, `mcp:tools/call`, `mcp:resources/read` or
    /// `mcp:prompts/get`.
    pub action: Action,
    /// The tool name for `mcp:tools/call` (the resource is then
    /// `Tool::"<resource>/<tool>"`).
    pub tool: Option<&'a str>,
    /// Tool arguments (only the schema's declared ones reach policies).
    pub args: serde_json::Map<String, serde_json::Value>,
    /// The HTTP request, for HTTP routes.
    pub http: Option<HttpRequest>,
    /// The MCP message, for MCP routes.
    pub mcp: Option<McpMessage>,
    /// The client's address.
    pub client_ip: Option<IpAddr>,
}

/// The decision on a call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallDecision {
    /// Whether the call may go on.
    pub allowed: bool,
    /// The policies that determined it.
    pub policies: Vec<String>,
    /// Evaluation errors (each one denies).
    pub errors: Vec<String>,
    /// The policy version it was made under.
    pub policy_version: Option<i64>,
}

impl Engine {
    /// Decides `call` against the loaded policies. Reads only memory, and
    /// writes nothing: the gateway audits the call with its outcome.
    pub fn authorize_call(&self, call: &GatewayCall<'_>) -> CallDecision {
        let t = call.token;
        let mut chain = t.record.chain.clone();
        chain.pop();
        let on_behalf_of = t.on_behalf_of().map(str::to_owned);
        let context = RequestContext {
            attestation: None,
            delegation: Delegation { chain },
            on_behalf_of,
            env: t.env.clone(),
            time: RequestTime::from_unix(self.now().unix_timestamp()).unwrap_or_default(),
            scopes: t.scopes.iter().cloned().collect(),
            args: call.args.clone(),
            client_ip: call.client_ip,
            risk: RiskScore::new(self.agent_risk(&t.record.agent)).unwrap_or(RiskScore::MAX),
            http: call.http.clone(),
            mcp: call.mcp.clone(),
        };
        let resource = match call.tool {
            Some(tool) => EntityRef::Tool(format!("{}/{tool}", call.resource)),
            None => EntityRef::Resource(call.resource.to_owned()),
        };
        let request = Request {
            principal: EntityRef::Agent(t.record.agent.clone()),
            action: call.action,
            resource,
            context,
        };
        let user = t.user_entity();
        let (decision, version) = match call.tool {
            Some(tool) => self.evaluate_with_tool(
                &request,
                ToolEntity {
                    id: format!("{}/{tool}", call.resource),
                    resource: Some(call.resource.to_owned()),
                    sensitivity: None,
                },
                user.as_ref(),
            ),
            None => self.evaluate_policy_for(&request, user.as_ref()),
        };
        call_decision(decision, version)
    }

    /// Writes one gateway audit event; the caller answers only after this
    /// returns `Ok`. `durable`: answered once its group commit is on disk.
    /// Otherwise answered once it is queued in order for the next commit
    /// (a crash before that commit loses it), and refused while the audit
    /// log cannot be written, so the gateway still fails closed.
    pub async fn audit_gateway(&self, draft: AuditDraft, durable: bool) -> Result<()> {
        if durable {
            self.store.append_audit(draft, self.now()).await?;
        } else {
            self.store.append_audit_buffered(draft, self.now()).await?;
        }
        Ok(())
    }
}

fn call_decision(d: Decision, version: Option<i64>) -> CallDecision {
    CallDecision {
        allowed: d.is_allowed(),
        policies: d.determining_policies,
        errors: d.errors,
        policy_version: version,
    }
}

/// A resource exposed through the gateway.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GatewayRoute {
    /// The resource's name (`/gw/<name>`).
    pub name: String,
    /// Its audience: the `aud` tokens for it carry.
    pub audience: String,
    /// `http` or `mcp`.
    pub kind: String,
    /// Upstream, credential and options.
    pub route: mandate_store::RouteRecord,
}

impl Engine {
    /// The route of resource `name`, when it is exposed through the gateway.
    /// Read from the short-lived copy of the resources (no database read on
    /// the hot path).
    pub async fn gateway_route(&self, name: &str) -> Result<Option<GatewayRoute>> {
        let resources = self.hot_resources().await?;
        Ok(resources.iter().find(|r| r.name == name).and_then(|r| {
            r.route.as_ref().map(|route| GatewayRoute {
                name: r.name.clone(),
                audience: r.audience.clone(),
                kind: r.kind.clone(),
                route: route.clone(),
            })
        }))
    }
}

impl Engine {
    /// Whether a route injects credential `name` (only those are handed to
    /// standalone gateways).
    pub async fn credential_in_use(&self, name: &str) -> Result<bool> {
        let resources = self.hot_resources().await?;
        Ok(resources.iter().any(|r| {
            r.route
                .as_ref()
                .is_some_and(|route| route.credential.as_deref() == Some(name))
        }))
    }
}
