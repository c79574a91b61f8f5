//! Latency percentiles of single decisions, which criterion does not report.
//!
//! `cargo run --release -p mandate-policy --example latency [POLICIES] [ENTITIES] [N] [unscoped]`
//! (defaults: 100 policies, 50 entities, 100,000 timed evaluations, the policies'
//! `==` constraints in their scopes; `unscoped` moves them into the conditions).

use std::time::{Duration, Instant};

#[path = "../benches/support/fixture.rs"]
mod fixture;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).take(3).map(|a| a.parse::<usize>());
    let policies = args.next().transpose()?.unwrap_or(100);
    let entities = args.next().transpose()?.unwrap_or(50);
    let n = args.next().transpose()?.unwrap_or(100_000).max(1);
    let scopes = match std::env::args().nth(4).as_deref() {
        Some("unscoped") => fixture::Scopes::InConditions,
        _ => fixture::Scopes::InScope,
    };
    let (engine, request) = fixture::setup(policies, entities, scopes)?;
    if !engine.evaluate(&request).is_allowed() {
        return Err("fixture request is not allowed".into());
    }
    for _ in 0..n / 10 {
        std::hint::black_box(engine.evaluate(std::hint::black_box(&request)));
    }
    let mut times: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        std::hint::black_box(engine.evaluate(std::hint::black_box(&request)));
        times.push(start.elapsed());
    }
    times.sort_unstable();
    let at = |q: f64| {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into a non-empty vector, rounded down"
        )]
        let i = ((n as f64 * q) as usize).min(n - 1);
        times.get(i).copied().unwrap_or_default()
    };
    println!(
        "policies={policies} entities={entities} scopes={scopes:?} n={n} p50={:.2?} p90={:.2?} p99={:.2?} p99.9={:.2?} max={:.2?}",
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        at(1.0)
    );
    Ok(())
}
