//! Mandate's policy engine. This crate owns the Cedar schema
//! (`policy/mandate.cedarschema`), the plain Rust entity and request types and their
//! translation to Cedar, compiling named policy sources into a validated
//! [`PolicySet`] (errors carry file, line and column), and evaluation by an
//! [`Engine`] to a [`Decision`] value that never fails open: allow only if some
//! `permit` matches, no `forbid` matches and no policy erred. It also runs policy
//! test cases from YAML ([`cases`]). It does not own where policies and entities are
//! stored, when they are rebuilt, the CLI, the HTTP decision API, or audit writing:
//! callers hand it sources and entity data and keep the engine they build.
//!
//! ```
//! use mandate_policy::*;
//!
//! let schema = Schema::mandate()?;
//! let policies = PolicySet::compile(&schema, &[PolicySource::new(
//!     "prod.cedar",
//!     r#"@id("prod-only")
//!        permit (principal, action == Mandate::Action::"token:issue", resource)
//!        when { context.env == "prod" };"#,
//! )])?;
//! let engine = Engine::new(schema.clone(), policies, Entities::empty(&schema)?);
//!
//! let mut request = Request {
//!     principal: EntityRef::Agent("invoice-bot".into()),
//!     action: Action::TokenIssue,
//!     resource: EntityRef::Resource("github".into()),
//!     context: RequestContext::default(),
//! };
//! assert_eq!(engine.evaluate(&request).effect, Effect::Deny);
//! request.context.env = "prod".into();
//! let decision = engine.evaluate(&request);
//! assert_eq!(decision.effect, Effect::Allow);
//! assert_eq!(decision.determining_policies, ["prod-only"]);
//! # Ok::<(), mandate_policy::Error>(())
//! ```

pub mod cases;
mod convert;
mod engine;
mod entities;
mod error;
mod index;
mod policies;
mod request;
mod schema;
mod shape;

pub use engine::{Decision, Effect, Engine};
pub use entities::{AgentEntity, Entities, EntityData, ResourceEntity, ToolEntity, UserEntity};
pub use error::{Error, SourceDiagnostic};
pub use policies::{ContextPath, PolicyEffect, PolicyInfo, PolicySet, PolicySource};
pub use request::{
    Action, Attestation, Delegation, EntityRef, HttpRequest, McpMessage, Request, RequestContext,
    RequestTime, RiskScore,
};
pub use schema::{MANDATE_SCHEMA, MANDATE_SCHEMA_FILE, Schema};
