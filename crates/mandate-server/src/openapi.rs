//! The admin API's OpenAPI document, generated from the handlers and types.
//! `docs/openapi.json` is a checked-in copy; a test fails when it drifts.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{admin, attest_api, authzen, policy_api, tokens_api};

#[derive(OpenApi)]
#[openapi(
    info(title = "Mandate admin API", description = "Manage Mandate's agent inventory, admin tokens and audit log. Errors are RFC 9457 problem documents with a stable `code`."),
    paths(
        admin::register_agent, admin::list_agents, admin::get_agent, admin::update_agent,
        admin::suspend_agent, admin::resume_agent, admin::decommission_agent,
        admin::create_admin_token, admin::list_admin_tokens, admin::revoke_admin_token,
        admin::list_audit,
        policy_api::push_policies, policy_api::validate_policies, policy_api::list_policies,
        policy_api::active_policy, policy_api::get_policy, policy_api::activate_policy,
        authzen::evaluation, authzen::evaluations,
        attest_api::add_provider, attest_api::list_providers, attest_api::get_provider,
        attest_api::remove_provider, attest_api::add_binding, attest_api::list_bindings,
        attest_api::remove_binding, attest_api::list_shadows, attest_api::create_join_token,
        attest_api::attest,
        tokens_api::list_keys, tokens_api::rotate_key,
        tokens_api::add_resource, tokens_api::list_resources, tokens_api::get_resource, tokens_api::remove_resource,
    ),
    modifiers(&AdminTokenScheme),
    tags(
        (name = "agents", description = "The agent inventory"),
        (name = "admin-tokens", description = "Bearer tokens for this API"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "policies", description = "Versioned Cedar policy sets"),
        (name = "authzen", description = "OpenID AuthZEN 1.0 decision API"),
        (name = "attestation", description = "Trust providers, binding rules, shadow agents, join tokens and dry-run attestation"),
        (name = "keys", description = "Token signing keys and their rotation"),
        (name = "resources", description = "Upstreams tokens can be issued for"),
    )
)]
struct ApiDoc;

struct AdminTokenScheme;

impl Modify for AdminTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An admin token, `mdt_<id>_<secret>`"))
                    .build(),
            ),
        );
    }
}

/// The document as pretty-printed JSON with a final newline.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::governance_api::ApiDoc::openapi());
    doc.merge(crate::grants_admin::ApiDoc::openapi());
    doc.merge(crate::secrets_api::ApiDoc::openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut s = doc.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}
