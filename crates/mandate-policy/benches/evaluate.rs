//! One decision with 10, 100 and 1,000 policies over 5 and 50 entities (see
//! `support/fixture.rs` for the policy mix).
//!
//! `cargo bench -p mandate-policy --bench evaluate -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

#[path = "support/fixture.rs"]
mod fixture;

#[expect(
    clippy::expect_used,
    reason = "a benchmark without its fixture cannot run"
)]
fn evaluate(c: &mut Criterion) {
    let mut group = c.benchmark_group("evaluate");
    for policies in [10, 100, 1_000] {
        for entities in [5, 50] {
            let (engine, request) = fixture::setup(policies, entities, fixture::Scopes::InScope)
                .expect("fixture builds");
            assert!(
                engine.evaluate(&request).is_allowed(),
                "fixture request is allowed"
            );
            group.bench_with_input(
                BenchmarkId::new(
                    format!("policies-{policies}"),
                    format!("entities-{entities}"),
                ),
                &request,
                |b, request| b.iter(|| engine.evaluate(black_box(request))),
            );
        }
    }
    group.finish();

    // The worst case: the same constraints written in conditions, so every policy is
    // evaluated.
    let mut group = c.benchmark_group("evaluate-unscoped");
    for policies in [10, 100] {
        let (engine, request) =
            fixture::setup(policies, 50, fixture::Scopes::InConditions).expect("fixture builds");
        assert!(
            engine.evaluate(&request).is_allowed(),
            "fixture request is allowed"
        );
        group.bench_with_input(
            BenchmarkId::new(format!("policies-{policies}"), "entities-50"),
            &request,
            |b, request| b.iter(|| engine.evaluate(black_box(request))),
        );
    }
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
