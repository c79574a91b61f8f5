//! `mandate attest`: a dry-run attestation (admin only; issues nothing).

use std::path::PathBuf;

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Conn;
use crate::cli::{connect, print_json};
use crate::client::{ClientError, field};

/// Largest evidence file read.
const MAX_EVIDENCE_FILE: u64 = 64 * 1024;

#[derive(Args)]
pub struct AttestArgs {
    /// The provider.
    #[arg(long)]
    provider: String,
    /// File holding the evidence: a JWT, a join token, the AWS `rsa2048`
    /// PKCS#7, or `{"document", "signature"}` JSON.
    #[arg(long)]
    evidence_file: PathBuf,
    /// Print the report as JSON (a `mandate policy test` case takes this
    /// file as its `context.attestation`).
    #[arg(long)]
    json: bool,
}

/// Runs the dry run; `Ok(true)` when the evidence maps to an agent.
pub async fn run(a: AttestArgs, conn: Conn) -> Result<bool, ClientError> {
    let bad = |detail: String| ClientError::Problem {
        status: 400,
        title: "Invalid arguments".into(),
        detail,
    };
    let len = std::fs::metadata(&a.evidence_file)
        .map_err(|e| bad(format!("cannot read `{}`: {e}", a.evidence_file.display())))?
        .len();
    if len > MAX_EVIDENCE_FILE {
        return Err(bad(format!(
            "evidence file is larger than {MAX_EVIDENCE_FILE} bytes"
        )));
    }
    let evidence = std::fs::read_to_string(&a.evidence_file).map_err(|e| {
        bad(format!(
            "cannot read `{}` as text: {e}",
            a.evidence_file.display()
        ))
    })?;
    let c = connect(&conn)?;
    let r = c
        .call(
            Method::POST,
            "/admin/v1/attest",
            Some(&json!({"provider": a.provider, "evidence": evidence})),
        )
        .await?;
    let outcome = field(&r, "outcome");
    if a.json {
        print_json(&r);
        return Ok(outcome == "mapped");
    }
    match outcome.as_str() {
        "mapped" => {
            println!(
                "mapped: agent {} ({}) by {}",
                field(&r, "agent"),
                field(&r, "spiffe_id"),
                match field(&r, "rule").as_str() {
                    "-" => "its join token".to_owned(),
                    rule => format!("rule {rule}"),
                }
            );
        }
        "shadow" => println!(
            "denied: no binding rule matches; shadow agent {} (seen {} times)",
            field(&r, "shadow_id"),
            field(&r, "shadow_count")
        ),
        _ => println!("refused: {} [{}]", field(&r, "reason"), field(&r, "code")),
    }
    if let Some(s) = r.get("subject").filter(|s| !s.is_null()) {
        println!("subject: {}", s.as_str().unwrap_or_default());
    }
    for (key, heading) in [
        (
            "claims",
            "verified claims (binding rules; context.attestation.evidence tags):",
        ),
        (
            "policy_claims",
            "as policies see them (context.attestation.claims):",
        ),
    ] {
        if let Some(claims) = r
            .get(key)
            .and_then(Value::as_object)
            .filter(|c| !c.is_empty())
        {
            println!("{heading}");
            for (k, v) in claims {
                println!("  {k} = {}", v.as_str().unwrap_or_default());
            }
        }
    }
    Ok(outcome == "mapped")
}
