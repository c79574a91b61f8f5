#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::sync::Arc;

use mandate_core::{AgentKind, AgentStatus, StatusChange};
use mandate_policy::EntityData;
use mandate_store::AuditFilter;
use mandate_testkit::{FakeClock, TestDb};
use time::macros::datetime;

use super::*;

async fn engine() -> (TestDb, Engine, Arc<FakeClock>) {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let clock = Arc::new(FakeClock::at(datetime!(2026-11-23 12:00:00 UTC)));
    let cfg = EngineConfig {
        trust_domain: "mandate.local".parse().unwrap(),
        review_period: time::Duration::days(90),
    };
    (
        db,
        Engine::new(store, clock.clone(), cfg).await.unwrap(),
        clock,
    )
}

fn new_agent(name: &str) -> NewAgent {
    NewAgent {
        name: name.parse().unwrap(),
        kind: AgentKind::Autonomous,
        owner: "alice@example.com".parse().unwrap(),
        description: String::new(),
        provenance: Default::default(),
        labels: Default::default(),
        envelope: String::new(),
        review_by: None,
    }
}

#[tokio::test]
async fn bootstrap_token_authenticates_once_created_and_only_once() {
    let (_db, engine, _) = engine().await;
    let issued = engine
        .bootstrap_admin_token()
        .await
        .unwrap()
        .expect("first start");
    assert!(engine.bootstrap_admin_token().await.unwrap().is_none());
    use mandate_jose::secret::ExposeSecret;
    let secret = issued.secret.expose_secret();
    assert!(secret.starts_with("mdt_"));
    let actor = engine.authenticate(secret).await.unwrap();
    assert_eq!(actor.token_id, issued.token.id);
}

#[tokio::test]
async fn forged_revoked_and_expired_admin_tokens_are_refused() {
    use mandate_jose::secret::ExposeSecret;
    let (_db, engine, clock) = engine().await;
    let boot = engine.bootstrap_admin_token().await.unwrap().unwrap();
    let actor = engine
        .authenticate(boot.secret.expose_secret())
        .await
        .unwrap();
    let short = engine
        .create_admin_token(&actor, "short", Some(time::Duration::hours(1)))
        .await
        .unwrap();
    let s = short.secret.expose_secret().to_owned();
    assert!(engine.authenticate(&s).await.is_ok());
    // Same id, different secret.
    let forged = format!("{}x", &s[..s.len() - 1]);
    assert!(matches!(
        engine.authenticate(&forged).await,
        Err(Error::Unauthorized(_))
    ));
    for junk in ["", "mdt_", "Bearer x", "mdt_abc_def", "mdt_../../etc_x"] {
        assert!(
            matches!(engine.authenticate(junk).await, Err(Error::Unauthorized(_))),
            "{junk}"
        );
    }
    clock.advance(time::Duration::hours(2));
    assert!(matches!(
        engine.authenticate(&s).await,
        Err(Error::Unauthorized("admin token expired"))
    ));
    let other = engine
        .create_admin_token(&actor, "other", None)
        .await
        .unwrap();
    engine
        .revoke_admin_token(&actor, &other.token.id)
        .await
        .unwrap();
    assert!(matches!(
        engine.authenticate(other.secret.expose_secret()).await,
        Err(Error::Unauthorized("admin token revoked"))
    ));
    assert!(matches!(
        engine.revoke_admin_token(&actor, &other.token.id).await,
        Err(Error::InvalidState(_))
    ));
    assert!(matches!(
        engine.revoke_admin_token(&actor, "missing").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn agent_life_cycle_is_audited_and_decommissioning_is_final() {
    let (_db, engine, _) = engine().await;
    let actor = Actor {
        token_id: "t1".into(),
    };
    let a = engine
        .register_agent(&actor, new_agent("invoice-bot"))
        .await
        .unwrap();
    assert_eq!(
        a.spiffe_id.as_str(),
        "spiffe://mandate.local/agent/invoice-bot"
    );
    assert_eq!(a.review_by, datetime!(2027-02-21 12:00:00 UTC));
    let name = a.name.clone();
    assert_eq!(
        engine
            .change_status(&actor, &name, StatusChange::Suspend)
            .await
            .unwrap()
            .status,
        AgentStatus::Suspended
    );
    assert_eq!(
        engine
            .change_status(&actor, &name, StatusChange::Resume)
            .await
            .unwrap()
            .status,
        AgentStatus::Active
    );
    assert_eq!(
        engine
            .change_status(&actor, &name, StatusChange::Decommission)
            .await
            .unwrap()
            .status,
        AgentStatus::Decommissioned
    );
    assert!(matches!(
        engine
            .change_status(&actor, &name, StatusChange::Resume)
            .await,
        Err(Error::InvalidState(_))
    ));
    assert!(matches!(
        engine
            .register_agent(&actor, new_agent("invoice-bot"))
            .await,
        Err(Error::AlreadyExists { .. })
    ));
    let types: Vec<String> = engine
        .list_audit(&AuditFilter::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            "agent.registered",
            "agent.suspended",
            "agent.resumed",
            "agent.decommissioned"
        ]
    );
}

fn file(name: &str, text: &str) -> PolicyFile {
    PolicyFile {
        name: name.into(),
        text: text.into(),
    }
}

const PERMIT_ACTIVE: &str = r#"@id("active-may-issue")
permit (principal is Mandate::Agent, action == Mandate::Action::"token:issue", resource)
when { principal.status == "active" };"#;

fn token_request(agent: &str) -> mandate_policy::Request {
    mandate_policy::Request {
        principal: mandate_policy::EntityRef::Agent(agent.into()),
        action: mandate_policy::Action::TokenIssue,
        resource: mandate_policy::EntityRef::Resource("github".into()),
        context: Default::default(),
    }
}

#[tokio::test]
async fn invalid_policies_never_become_active_and_rollback_restores() {
    let (_db, engine, _) = engine().await;
    let actor = Actor {
        token_id: "t1".into(),
    };
    let v1 = engine
        .push_policies(&actor, vec![file("a.cedar", PERMIT_ACTIVE)], "first".into())
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    let bad = file(
        "bad.cedar",
        "permit (principal, action, resource) when { principal.no_such_attr == 1 };",
    );
    let Err(Error::InvalidPolicy(diags)) = engine
        .push_policies(&actor, vec![bad], "broken".into())
        .await
    else {
        panic!("a type error must be refused");
    };
    assert_eq!(diags[0].file, "bad.cedar");
    assert_eq!(diags[0].line, 1);
    assert_eq!(engine.loaded_policy_version(), Some(1));
    let v2 = engine
        .push_policies(
            &actor,
            vec![file("b.cedar", "forbid (principal, action, resource);")],
            "lockdown".into(),
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    engine.rollback_policy(&actor, 1).await.unwrap();
    assert_eq!(engine.loaded_policy_version(), Some(1));
    assert!(matches!(
        engine.rollback_policy(&actor, 7).await,
        Err(Error::NotFound { .. })
    ));
    let activations = engine
        .list_audit(&AuditFilter {
            event_type: Some("policy.activated".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .items;
    assert_eq!(activations.len(), 3);
}

#[tokio::test]
async fn decisions_follow_the_inventory_and_are_audited() {
    let (_db, engine, _) = engine().await;
    let actor = Actor {
        token_id: "t1".into(),
    };
    // No policy yet: default deny.
    let none = EntityData::default();
    assert!(
        !engine
            .decide("t1", &token_request("invoice-bot"), &none)
            .await
            .unwrap()
            .is_allowed()
    );
    engine
        .push_policies(&actor, vec![file("a.cedar", PERMIT_ACTIVE)], "m".into())
        .await
        .unwrap();
    let a = engine
        .register_agent(&actor, new_agent("invoice-bot"))
        .await
        .unwrap();
    let d = engine
        .decide("t1", &token_request("invoice-bot"), &none)
        .await
        .unwrap();
    assert!(d.is_allowed(), "{d:?}");
    assert_eq!(d.determining_policies, ["active-may-issue"]);
    // Suspending the agent changes the entity the policy sees at once.
    engine
        .change_status(&actor, &a.name, StatusChange::Suspend)
        .await
        .unwrap();
    assert!(
        !engine
            .decide("t1", &token_request("invoice-bot"), &none)
            .await
            .unwrap()
            .is_allowed()
    );
    // A caller cannot override a registered agent's attributes.
    let spoof = EntityData {
        agents: vec![mandate_policy::AgentEntity {
            id: "invoice-bot".into(),
            kind: "autonomous".into(),
            owner: "x@example.com".into(),
            status: "active".into(),
            env: String::new(),
            trust_provider: String::new(),
            labels: Default::default(),
        }],
        ..Default::default()
    };
    assert!(
        !engine
            .decide("t1", &token_request("invoice-bot"), &spoof)
            .await
            .unwrap()
            .is_allowed()
    );
    let decisions = engine
        .list_audit(&AuditFilter {
            event_type: Some("authz.decision".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .items;
    assert_eq!(decisions.len(), 4);
    assert_eq!(
        decisions[1].detail["policies"],
        serde_json::json!(["active-may-issue"])
    );
    assert_eq!(decisions[1].detail["decision"], "allow");
}
