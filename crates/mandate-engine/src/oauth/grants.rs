//! The part of the token endpoint that differs by grant type: who acts
//! (and, for an exchange, on whose authority). One plan per grant type;
//! everything after it (the agent's state, resource, scopes, delegation,
//! policy, the token) is shared and lives in `Engine::issue`.

use super::{
    GRANT_JWT_BEARER, GRANT_TOKEN_EXCHANGE, GrantAudit, OAuthError, Params, Proven, Subject,
};
use crate::Engine;

/// The grant types the token endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 7523 §2.1: a workload JWT as the grant.
    JwtBearer,
    /// RFC 6749 §4.4, the client authenticated by its assertion.
    ClientCredentials,
    /// RFC 8693: delegation, or acting on a user's behalf.
    TokenExchange,
}

impl GrantType {
    /// Every grant type, as the metadata lists them.
    pub const ALL: [GrantType; 3] = [
        GrantType::JwtBearer,
        GrantType::ClientCredentials,
        GrantType::TokenExchange,
    ];

    /// The `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::JwtBearer => GRANT_JWT_BEARER,
            GrantType::ClientCredentials => "client_credentials",
            GrantType::TokenExchange => GRANT_TOKEN_EXCHANGE,
        }
    }

    /// Parses `grant_type`; anything else is `unsupported_grant_type`.
    pub(super) fn parse(s: &str) -> Result<Self, OAuthError> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                OAuthError::new(
                    "unsupported_grant_type",
                    format!("grant type `{s}` is not supported"),
                )
            })
    }
}

/// Who acts, and the subject token's facts for an exchange.
pub(super) type Plan = (Proven, Option<Subject>);

impl Engine {
    /// `client_credentials`: the authenticated client is the actor.
    pub(super) fn plan_client_credentials(
        &self,
        client: Option<Proven>,
    ) -> Result<Plan, OAuthError> {
        let c = client.ok_or_else(|| {
            OAuthError::client("client_credentials needs client authentication (client_assertion)")
        })?;
        Ok((c, None))
    }

    /// `jwt-bearer`: the assertion's attested agent, which a client
    /// authentication or `client_id`, when given, must name too.
    pub(super) async fn plan_jwt_bearer(
        &self,
        p: &Params,
        client: Option<Proven>,
    ) -> Result<Plan, OAuthError> {
        let assertion = p.require("assertion")?;
        let proven = self.attest_jwt(assertion, "jwt-bearer").await?;
        if let Some(c) = &client
            && c.agent.name != proven.agent.name
        {
            return Err(OAuthError::grant(
                "the assertion and the client authentication name different agents",
            ));
        }
        if let Some(id) = p.get("client_id")
            && id != proven.agent.name.as_str()
        {
            return Err(OAuthError::grant(format!(
                "the assertion maps to agent `{}`, not `{id}`",
                proven.agent.name
            )));
        }
        Ok((proven, None))
    }

    /// Token exchange: the subject token's chain or user, and the actor
    /// token's agent, which a client authentication must name too.
    pub(super) async fn plan_token_exchange(
        &self,
        p: &Params,
        client: Option<Proven>,
        audit: &mut GrantAudit,
    ) -> Result<Plan, OAuthError> {
        let subject = self.exchange_subject(p, audit).await?;
        let actor = self.exchange_actor(p).await?;
        if let Some(c) = &client
            && c.agent.name != actor.agent.name
        {
            return Err(OAuthError::grant(
                "the actor token and the client authentication name different agents",
            ));
        }
        Ok((actor, Some(subject)))
    }
}
