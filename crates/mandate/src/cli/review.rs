//! `mandate review`, `mandate agent review`, `mandate agent stale` and
//! `mandate resource tools`: review dates, stale agents and the tools a
//! resource offers.

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Conn;
use crate::cli::{connect, path_segment, print_json};
use crate::client::{Client, ClientError, field, print_table};

/// `mandate review`: agents past their review-by date.
#[derive(Args)]
pub struct ReviewArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `mandate agent review NAME --note ...`.
#[derive(Args)]
pub struct AgentReviewArgs {
    /// Agent name.
    name: String,
    /// What was reviewed and concluded (recorded in the audit log).
    #[arg(long)]
    note: String,
    /// Days until the next review (default: the server's review period).
    #[arg(long)]
    days: Option<i64>,
}

/// `mandate agent stale [--apply]`.
#[derive(Args)]
pub struct StaleArgs {
    /// Days without a successful attestation or token (default: the server's rule).
    #[arg(long)]
    days: Option<i64>,
    /// Suspend them (revoking their tokens); each is an audit event with its reason.
    #[arg(long)]
    apply: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `mandate resource tools NAME [--set t1,t2]`.
#[derive(Args)]
pub struct ToolsArgs {
    /// Resource name.
    name: String,
    /// Replace its tools with this comma-separated list (empty clears them).
    #[arg(long)]
    set: Option<String>,
}

fn items(v: &Value) -> &[Value] {
    crate::cli::report::items(v, "items")
}

/// Lists agents due for review.
pub async fn due(args: ReviewArgs, conn: Conn) -> Result<(), ClientError> {
    let c = connect(&conn)?;
    let v = c
        .call(Method::GET, "/admin/v1/governance/reviews", None)
        .await?;
    if args.json {
        print_json(v.get("items").unwrap_or(&Value::Null));
        return Ok(());
    }
    if items(&v).is_empty() {
        println!("no agent is past its review-by date");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items(&v)
        .iter()
        .map(|r| {
            vec![
                field(r, "name"),
                field(r, "owner"),
                field(r, "status"),
                field(r, "review_by"),
                field(r, "overdue_days"),
            ]
        })
        .collect();
    print_table(
        &["AGENT", "OWNER", "STATUS", "REVIEW BY", "DAYS OVERDUE"],
        &rows,
    );
    Ok(())
}

/// Records a review.
pub async fn agent_review(c: &Client, args: AgentReviewArgs) -> Result<(), ClientError> {
    let mut body = json!({ "note": args.note });
    if let Some(d) = args.days {
        body["days"] = json!(d);
    }
    let path = format!("/admin/v1/agents/{}/review", path_segment(&args.name));
    let a = c.call(Method::POST, &path, Some(&body)).await?;
    println!(
        "reviewed {}; next review by {}",
        field(&a, "name"),
        field(&a, "review_by")
    );
    Ok(())
}

/// Lists (and with `--apply` suspends) stale agents.
pub async fn stale(c: &Client, args: StaleArgs) -> Result<(), ClientError> {
    let (method, path) = if args.apply {
        (Method::POST, "/admin/v1/governance/stale/suspend")
    } else {
        (Method::GET, "/admin/v1/governance/stale")
    };
    let path = match args.days {
        Some(d) => format!("{path}?days={d}"),
        None => path.to_owned(),
    };
    let v = c.call(method, &path, None).await?;
    if args.json {
        print_json(v.get("items").unwrap_or(&Value::Null));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items(&v)
        .iter()
        .map(|s| {
            vec![
                field(s, "name"),
                field(s, "owner"),
                field(s, "last_activity"),
                field(s, "idle_days"),
                field(s, "reason"),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no stale agents");
        return Ok(());
    }
    print_table(
        &["AGENT", "OWNER", "LAST ACTIVITY", "IDLE DAYS", "REASON"],
        &rows,
    );
    if args.apply {
        println!(
            "suspended {} agent(s); their tokens are revoked",
            rows.len()
        );
    }
    Ok(())
}

/// Shows or sets a resource's tools.
pub async fn tools(c: &Client, args: ToolsArgs) -> Result<(), ClientError> {
    let path = format!("/admin/v1/resources/{}/tools", path_segment(&args.name));
    let v = match args.set {
        Some(list) => {
            let tools: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
            c.call(Method::PUT, &path, Some(&json!({ "tools": tools })))
                .await?
        }
        None => c.call(Method::GET, &path, None).await?,
    };
    for t in v
        .get("tools")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        println!("{}", t.as_str().unwrap_or_default());
    }
    Ok(())
}
