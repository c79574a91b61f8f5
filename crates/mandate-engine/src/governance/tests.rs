#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use mandate_core::{AgentKind, AgentStatus, Clock as _};
use mandate_policy::{Action, EntityData, EntityRef, Request};
use mandate_testkit::{Backend, FakeClock, TestDb};
use time::Duration;
use time::macros::datetime;

use super::*;
use crate::{EngineConfig, NewAgent, NewResource, PolicyFile};

fn admin() -> Actor {
    Actor {
        token_id: "tok-admin".into(),
    }
}

async fn engine(backend: Backend) -> Option<(TestDb, Engine, Arc<FakeClock>)> {
    let db = TestDb::new(backend).await?;
    let store = db.open().await;
    // A Monday, 09:00 UTC.
    let clock = Arc::new(FakeClock::at(datetime!(2026-11-02 09:00:00 UTC)));
    let cfg = EngineConfig {
        trust_domain: "mandate.local".parse().unwrap(),
        review_period: Duration::days(90),
    };
    let engine = Engine::new(store, clock.clone(), cfg).await.unwrap();
    Some((db, engine, clock))
}

async fn register(engine: &Engine, name: &str) {
    engine
        .register_agent(
            &admin(),
            NewAgent {
                name: name.parse().unwrap(),
                kind: AgentKind::Autonomous,
                owner: "alice@example.com".parse().unwrap(),
                description: String::new(),
                provenance: Default::default(),
                labels: Default::default(),
                envelope: String::new(),
                review_by: None,
            },
        )
        .await
        .unwrap();
}

const TRIAGE_POLICY: &str = r#"@id("triage-github")
permit (principal == Mandate::Agent::"triage", action == Mandate::Action::"token:issue", resource == Mandate::Resource::"github");
@id("triage-tools")
permit (principal == Mandate::Agent::"triage", action == Mandate::Action::"mcp:tools/call", resource in Mandate::Resource::"github");
@id("risky-deny")
forbid (principal, action, resource) when { context.risk > 70 };
"#;

/// `triage` may obtain tokens for `github` and call its three tools.
async fn github_with_three_tools(engine: &Engine) {
    register(engine, "triage").await;
    engine
        .add_resource(
            &admin(),
            NewResource {
                name: "github".into(),
                audience: "https://mcp.github.example".into(),
                scopes: vec!["repo".into()],
                kind: Some("mcp".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let tools = ["create_issue", "list_issues", "close_issue"].map(String::from);
    engine
        .set_resource_tools(&admin(), "github", &tools)
        .await
        .unwrap();
    engine
        .push_policies(
            &admin(),
            vec![PolicyFile {
                name: "triage.cedar".into(),
                text: TRIAGE_POLICY.into(),
            }],
            "triage".into(),
        )
        .await
        .unwrap();
}

fn tool_call(tool: &str) -> Request {
    Request {
        principal: EntityRef::Agent("triage".into()),
        action: Action::McpToolsCall,
        resource: EntityRef::Tool(format!("github/{tool}")),
        context: Default::default(),
    }
}

fn token_issue() -> Request {
    Request {
        principal: EntityRef::Agent("triage".into()),
        action: Action::TokenIssue,
        resource: EntityRef::Resource("github".into()),
        context: Default::default(),
    }
}

async fn call(engine: &Engine, r: &Request) -> bool {
    engine
        .decide("tok-pep", r, &EntityData::default())
        .await
        .unwrap()
        .is_allowed()
}

async fn access_review_names_the_two_unused_tools(backend: Backend) {
    let Some((_db, engine, clock)) = engine(backend).await else {
        return;
    };
    github_with_three_tools(&engine).await;
    assert!(call(&engine, &token_issue()).await);
    clock.advance(Duration::minutes(1));
    assert!(call(&engine, &tool_call("list_issues")).await);
    let report = engine.access_report(Some("triage"), 90).await.unwrap();
    let access = &report.agents[0];
    assert_eq!(access.grants.len(), 4, "{access:?}");
    let unused: Vec<(&str, &Vec<String>)> = (access.grants.iter())
        .filter(|g| !g.used)
        .map(|g| (g.tool.as_deref().unwrap_or("-"), &g.policies))
        .collect();
    assert_eq!(access.unused, 2);
    assert_eq!(
        unused,
        [
            ("close_issue", &vec!["triage-tools".to_owned()]),
            ("create_issue", &vec!["triage-tools".to_owned()]),
        ]
    );
    // Past the window, the used grants count as unused too.
    clock.advance(Duration::days(91));
    let later = engine.access_report(Some("triage"), 90).await.unwrap();
    assert_eq!(later.agents[0].unused, 4);
    // The inventory shows what it may reach.
    let inv = engine.inventory_report().await.unwrap();
    assert_eq!(inv.agents[0].resources, ["github"]);
}

#[tokio::test]
async fn access_review_names_the_two_unused_tools_sqlite() {
    access_review_names_the_two_unused_tools(Backend::Sqlite).await;
}

#[tokio::test]
async fn access_review_names_the_two_unused_tools_postgres() {
    access_review_names_the_two_unused_tools(Backend::Postgres).await;
}

/// One working day: `per_hour` calls to `list_issues` (±2, varying by
/// hour) in each hour from 09:00 to 16:00 UTC, plus a token each morning.
async fn working_day(engine: &Engine, clock: &FakeClock, day: OffsetDateTime, per_hour: u32) {
    clock.set(day + Duration::hours(9));
    assert!(call(engine, &token_issue()).await);
    for h in 9..17u32 {
        let n = per_hour + (h % 5) - 2;
        for i in 0..n {
            clock.set(day + Duration::hours(h.into()) + Duration::seconds(i64::from(i * 3600 / n)));
            call(engine, &tool_call("list_issues")).await;
        }
    }
}

async fn drift_scenario(backend: Backend) {
    let Some((_db, engine, clock)) = engine(backend).await else {
        return;
    };
    github_with_three_tools(&engine).await;
    let monday = datetime!(2026-11-02 00:00:00 UTC);
    // A baseline week, then a normal day: no findings.
    for d in 0..8 {
        working_day(&engine, &clock, monday + Duration::days(d), 10).await;
        engine.run_drift_detector().await.unwrap();
    }
    let none = engine.list_findings(Some("triage"), true).await.unwrap();
    assert!(none.is_empty(), "a normal day raised {none:#?}");
    assert_eq!(engine.agent_risk("triage"), 0);

    // Day 9: a tool never used before, then a 10x burst.
    let day = monday + Duration::days(8);
    clock.set(day + Duration::hours(10));
    assert!(call(&engine, &tool_call("close_issue")).await);
    engine.run_drift_detector().await.unwrap();
    let first = engine.agent_risk("triage");
    assert_eq!(first, 40);
    for i in 0..100 {
        clock.set(day + Duration::hours(11) + Duration::seconds(i * 30));
        call(&engine, &tool_call("list_issues")).await;
    }
    engine.run_drift_detector().await.unwrap();
    let findings = engine.list_findings(Some("triage"), false).await.unwrap();
    let kinds: Vec<&str> = findings.iter().rev().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["new_tool", "rate_burst"], "{findings:#?}");
    let risks: Vec<i64> = findings.iter().rev().map(|f| f.risk).collect();
    assert!(risks[1] > risks[0] && risks[1] > 70, "{risks:?}");
    assert!(engine.agent_risk("triage") > 70);
    // The risk-aware policy now denies the next request, naming itself.
    let d = engine
        .decide("tok-pep", &tool_call("list_issues"), &EntityData::default())
        .await
        .unwrap();
    assert!(!d.is_allowed());
    assert_eq!(d.determining_policies, ["risky-deny"]);
    // Acknowledging the burst brings the risk back under the threshold.
    let burst = findings.iter().find(|f| f.kind == "rate_burst").unwrap();
    engine
        .ack_finding(&admin(), &burst.id, "load test")
        .await
        .unwrap();
    assert_eq!(engine.agent_risk("triage"), 40);
    assert!(call(&engine, &tool_call("list_issues")).await);
    // Findings are in the audit log.
    let events = engine
        .list_audit(&mandate_store::AuditFilter {
            event_type: Some("drift.finding".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.items.len(), 2);
}

#[tokio::test]
async fn drift_raises_rising_risk_and_a_risk_aware_policy_denies_sqlite() {
    drift_scenario(Backend::Sqlite).await;
}

#[tokio::test]
async fn drift_raises_rising_risk_and_a_risk_aware_policy_denies_postgres() {
    drift_scenario(Backend::Postgres).await;
}

#[tokio::test]
async fn stale_agents_are_suspended_with_a_reason_and_reviews_move_the_date() {
    let (_db, engine, clock) = engine(Backend::Sqlite).await.unwrap();
    github_with_three_tools(&engine).await;
    register(&engine, "idle").await;
    assert!(call(&engine, &token_issue()).await);
    clock.advance(Duration::days(60));
    assert!(call(&engine, &token_issue()).await);
    clock.advance(Duration::days(40));
    let stale = engine.stale_agents(None).await.unwrap();
    let names: Vec<&str> = stale.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["idle"]);
    assert_eq!(stale[0].idle_days, 100);
    let done = engine.suspend_stale_agents(&admin(), None).await.unwrap();
    assert_eq!(done.len(), 1);
    let idle = engine.agent(&"idle".parse().unwrap()).await.unwrap();
    assert_eq!(idle.status, AgentStatus::Suspended);
    let reasons = engine
        .list_audit(&mandate_store::AuditFilter {
            event_type: Some("agent.stale".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        reasons.items[0].detail["reason"]
            .as_str()
            .unwrap()
            .contains("100 days")
    );

    // Registered 100 days ago with a 90-day period: both are due.
    let due = engine.reviews_due().await.unwrap();
    assert_eq!(due.len(), 2);
    let reviewed = engine
        .review_agent(
            &admin(),
            &"triage".parse().unwrap(),
            "scopes still needed",
            None,
        )
        .await
        .unwrap();
    assert_eq!(reviewed.review_by, clock.now() + Duration::days(90));
    let due = engine.reviews_due().await.unwrap();
    assert_eq!(
        due.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["idle"]
    );
}
