//! SARIF output against the SARIF 2.1.0 JSON schema vendored in
//! `tests/fixtures/discovery` (see the NOTICE there).

use mandate_discover::{RULES, to_sarif};
use serde_json::Value;

use crate::support::{fixtures, report};

#[test]
fn sarif_output_validates_against_the_2_1_0_schema() {
    let mut schema: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    // The 2.1.0 schema's two `language` patterns have a stray `]`, not a
    // valid ECMA 262 regex, so the draft-07 meta-schema rejects the schema.
    // Use the pattern SARIF 2.1.0 Errata 01 gives instead; nothing we emit
    // has a `language`.
    assert_eq!(fix_language_patterns(&mut schema), 2);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let sarif = to_sarif(report());
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The schema is strict enough to catch a broken document.
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        Value::from(0);
    assert!(!validator.is_valid(&broken));
}

fn fix_language_patterns(v: &mut Value) -> usize {
    const BAD: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
    match v {
        Value::Object(map) => {
            let mut n = 0;
            for (k, child) in map.iter_mut() {
                if k == "pattern" && child.as_str() == Some(BAD) {
                    *child = Value::from("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$");
                    n += 1;
                } else {
                    n += fix_language_patterns(child);
                }
            }
            n
        }
        Value::Array(items) => items.iter_mut().map(fix_language_patterns).sum(),
        _ => 0,
    }
}

#[test]
fn sarif_has_rules_locations_and_fingerprints() {
    let sarif = to_sarif(report());
    let run = &sarif["runs"][0];
    let ids: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, RULES.iter().map(|r| r.id).collect::<Vec<_>>());
    assert!(ids.contains(&"mandate/hardcoded-credential/github"));
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), report().findings.len());
    for r in results {
        let line = &r["locations"][0]["physicalLocation"]["region"]["startLine"];
        assert!(line.as_u64().unwrap() >= 1);
        assert!(r["partialFingerprints"].as_object().unwrap().len() == 1);
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(ids[idx], r["ruleId"].as_str().unwrap());
    }
}
