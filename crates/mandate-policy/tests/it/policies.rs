//! Compiling policy sources: ids, and diagnostics with file, line and column.

use mandate_policy::{Error, PolicyEffect, SourceDiagnostic};

use crate::support::compile;

fn diagnostics(sources: &[(&str, &str)]) -> Vec<SourceDiagnostic> {
    match compile(sources) {
        Err(Error::Policies { diagnostics }) => diagnostics,
        other => panic!("expected policy diagnostics, got {other:?}"),
    }
}

#[test]
fn ids_come_from_annotations_else_file_and_index() {
    let text = r#"
permit (principal, action == Mandate::Action::"token:issue", resource);

@id("named")
forbid (principal, action, resource) when { context.risk > 70 };

permit (principal, action == Mandate::Action::"db:connect", resource);
"#;
    let set = compile(&[("a.cedar", text)]).unwrap();
    let ids: Vec<_> = set.policies().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["a.cedar:0", "named", "a.cedar:2"]);
    let named = &set.policies()[1];
    assert_eq!((named.line, named.column), (4, 1), "{named:?}");
    assert_eq!(named.effect, PolicyEffect::Forbid);
    assert_eq!(set.policies()[2].line, 7);
}

#[test]
fn parse_errors_have_file_line_and_column() {
    let good = "permit (principal, action, resource);\n";
    let bad = "// comment\npermit (principal, action, resource)\nwhen { context.env == };\n";
    let d = diagnostics(&[("good.cedar", good), ("bad.cedar", bad)]);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].file.as_str(), d[0].line, d[0].column),
        ("bad.cedar", 3, 23)
    );
    assert!(d[0].message.contains("unexpected token"), "{}", d[0]);
    assert!(d[0].to_string().starts_with("bad.cedar:3:23: "), "{}", d[0]);
}

#[test]
fn validation_errors_have_file_line_and_column() {
    let text = "@id(\"typo\")\npermit (principal, action == Mandate::Action::\"token:issue\", resource)\n  when { principal.statuz == \"active\" };\n";
    let d = diagnostics(&[("typo.cedar", text)]);
    assert_eq!(
        (d[0].file.as_str(), d[0].line, d[0].column),
        ("typo.cedar", 3, 10)
    );
    assert!(d[0].message.contains("statuz"), "{}", d[0]);
    assert!(d[0].message.contains("did you mean `status`?"), "{}", d[0]);
}

#[test]
fn unguarded_optional_attribute_is_rejected() {
    let text = "permit (principal, action, resource) when { context.on_behalf_of in Mandate::Group::\"finance\" };";
    let d = diagnostics(&[("opt.cedar", text)]);
    assert!(
        d.iter().all(|d| d.message.contains("on_behalf_of")),
        "{d:?}"
    );
}

#[test]
fn undeclared_tool_argument_is_rejected() {
    let text = "permit (principal, action, resource) when { context.args has colour && context.args.colour == \"red\" };";
    let d = diagnostics(&[("args.cedar", text)]);
    assert!(d[0].message.contains("policy is impossible"), "{}", d[0]);
    assert_eq!((d[0].line, d[0].column), (1, 1));
}

#[test]
fn every_problem_of_every_file_is_reported() {
    let a = "permit (principal, action, resource) when { context.nope };\n";
    let b = "permit (principal, action, resource) when { true &&& };\n";
    let d = diagnostics(&[("a.cedar", a), ("b.cedar", b)]);
    let files: std::collections::BTreeSet<_> = d.iter().map(|d| d.file.as_str()).collect();
    assert_eq!(files, ["a.cedar", "b.cedar"].into());
}

#[test]
fn duplicate_ids_are_rejected_with_both_places() {
    let a = "@id(\"same\")\npermit (principal, action, resource);\n";
    let b = "\n\n@id(\"same\")\nforbid (principal, action, resource);\n";
    let d = diagnostics(&[("a.cedar", a), ("b.cedar", b)]);
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].to_string(),
        "b.cedar:3:1: duplicate policy id `same`, first used at a.cedar:1:1"
    );
}

#[test]
fn templates_and_empty_ids_are_rejected() {
    let text = "permit (principal == ?principal, action, resource);\n@id(\"\") permit (principal, action, resource);\n";
    let d = diagnostics(&[("t.cedar", text)]);
    let messages: Vec<_> = d.iter().map(ToString::to_string).collect();
    assert!(
        messages.contains(
            &"t.cedar:1:22: templates are not supported: write a static policy".to_owned()
        ),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"t.cedar:2:1: `@id` annotation is empty".to_owned()),
        "{messages:?}"
    );
}

#[test]
fn invalid_set_never_compiles_partially() {
    let good = "@id(\"ok\") permit (principal, action, resource);";
    let bad = "@id(\"bad\") permit (principal, action, resource) when { context.nope };";
    assert!(compile(&[("good.cedar", good), ("bad.cedar", bad)]).is_err());
}
