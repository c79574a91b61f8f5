#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::Arc;

use mandate_core::{AgentKind, AgentStatus, StatusChange};
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
    (db, Engine::new(store, clock.clone(), cfg), clock)
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
