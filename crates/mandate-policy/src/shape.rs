//! The declared types of the free-form maps in the context — tool arguments
//! (`context.args`, type `ToolArgs`) and attestation claims
//! (`context.attestation.claims`, type `Claims`) — read from the schema, and the
//! conversion of JSON values to Cedar values checked against them.
//!
//! The engine builds every other part of the context from typed Rust fields, so it
//! has the schema's shape by construction (checked once per schema, when it is
//! parsed); only these maps carry values of unknown type. Checking them here, rather
//! than having Cedar check each whole request against the schema, is what keeps a
//! request cheap to build.

use std::collections::HashMap;
use std::fmt;

use cedar_policy_core::ast::Value as CedarValue;
use serde_json::Value;

/// A type a tool argument or claim may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueType {
    String,
    Long,
    Bool,
    Set(Box<ValueType>),
    Record(RecordType),
}

/// A record type: attribute name → (type, required).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RecordType {
    attrs: HashMap<String, (ValueType, bool)>,
}

impl RecordType {
    /// Whether the record declares attribute `name`.
    #[cfg(test)]
    pub(crate) fn declares(&self, name: &str) -> bool {
        self.attrs.contains_key(name)
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String => f.write_str("a string"),
            Self::Long => f.write_str("a 64-bit integer"),
            Self::Bool => f.write_str("a boolean"),
            Self::Set(e) => write!(f, "an array of which each element is {e}"),
            Self::Record(_) => f.write_str("an object"),
        }
    }
}

/// The declared types of `args` and `attestation.claims` in the context of one
/// action.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenRecords {
    pub(crate) args: RecordType,
    pub(crate) claims: RecordType,
}

/// Reads the open records of `action`'s context from the schema's JSON form.
/// Anything not found declares nothing; a type other than `String`, `Long`, `Bool`,
/// sets and records, or a required top-level attribute, is an error.
pub(crate) fn open_records(json: &Value, action: &str) -> Result<OpenRecords, String> {
    let ns = &json["Mandate"];
    let context = resolve_record(ns, &ns["actions"][action]["appliesTo"]["context"]);
    let top = |record: Option<&Value>, what: &str| -> Result<RecordType, String> {
        let Some(record) = record else {
            return Ok(RecordType::default());
        };
        let ty = record_type(ns, record, 0)?;
        match ty.attrs.iter().find(|(_, (_, required))| *required) {
            Some((name, _)) => Err(format!("{what} `{name}` must be optional (`{name}?`)")),
            None => Ok(ty),
        }
    };
    Ok(OpenRecords {
        args: top(attr(ns, context, "args"), "tool argument")?,
        claims: top(
            attr(ns, attr(ns, context, "attestation"), "claims"),
            "claim",
        )?,
    })
}

/// The type of attribute `name` of a record type, resolved to a record.
fn attr<'a>(ns: &'a Value, record: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    record.and_then(|r| resolve_record(ns, &r["attributes"][name]))
}

/// Nesting deeper than this is refused (common types cannot be recursive, so this
/// only bounds silly schemas).
const MAX_DEPTH: usize = 32;

fn record_type(ns: &Value, record: &Value, depth: usize) -> Result<RecordType, String> {
    let mut attrs = HashMap::new();
    for (name, ty) in record["attributes"].as_object().into_iter().flatten() {
        let required = ty["required"].as_bool().unwrap_or(true);
        attrs.insert(name.clone(), (value_type(ns, ty, depth + 1)?, required));
    }
    Ok(RecordType { attrs })
}

fn value_type(ns: &Value, ty: &Value, depth: usize) -> Result<ValueType, String> {
    if depth > MAX_DEPTH {
        return Err("types nest too deeply".to_owned());
    }
    let name = match ty["type"].as_str() {
        Some("Set") => {
            return Ok(ValueType::Set(Box::new(value_type(
                ns,
                &ty["element"],
                depth + 1,
            )?)));
        }
        Some("Record") => return Ok(ValueType::Record(record_type(ns, ty, depth)?)),
        Some("EntityOrCommon") => ty["name"].as_str().unwrap_or_default(),
        Some(other) => other,
        None => "",
    };
    match name.trim_start_matches("__cedar::") {
        "String" => Ok(ValueType::String),
        "Long" => Ok(ValueType::Long),
        "Bool" | "Boolean" => Ok(ValueType::Bool),
        other => match ns["commonTypes"].get(other.trim_start_matches("Mandate::")) {
            Some(common) => value_type(ns, common, depth + 1),
            None => Err(format!(
                "type `{other}` is not supported in tool arguments or claims (use String, Long, Bool, sets and records)"
            )),
        },
    }
}

/// Follows common-type references until a record type; `None` for anything else.
fn resolve_record<'a>(ns: &'a Value, ty: &'a Value) -> Option<&'a Value> {
    let mut ty = ty;
    for _ in 0..MAX_DEPTH {
        let name = match ty["type"].as_str()? {
            "Record" => return Some(ty),
            "EntityOrCommon" => ty["name"].as_str()?,
            other => other,
        };
        ty = ns["commonTypes"].get(name.trim_start_matches("Mandate::"))?;
    }
    None
}

/// The entries of `map` that `ty` declares, as a Cedar record value. `null` counts
/// as absent; undeclared keys are dropped; a declared key of the wrong type, or a
/// missing required one (in nested records), is an error naming `what` and the key.
pub(crate) fn record(
    map: &serde_json::Map<String, Value>,
    ty: &RecordType,
    what: &dyn Fn() -> String,
) -> Result<CedarValue, String> {
    let mut pairs = Vec::with_capacity(map.len().min(ty.attrs.len()));
    for (key, value) in map {
        let Some((attr_type, _)) = ty.attrs.get(key) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let path = || format!("{}.{key}", what());
        pairs.push((key.as_str(), convert(value, attr_type, &path)?));
    }
    for (key, (_, required)) in &ty.attrs {
        if *required && map.get(key).is_none_or(Value::is_null) {
            return Err(format!("`{}.{key}` is required", what()));
        }
    }
    Ok(CedarValue::record(pairs, None))
}

fn convert(value: &Value, ty: &ValueType, path: &dyn Fn() -> String) -> Result<CedarValue, String> {
    Ok(match (ty, value) {
        (ValueType::String, Value::String(s)) => CedarValue::from(s.as_str()),
        (ValueType::Bool, Value::Bool(b)) => CedarValue::from(*b),
        (ValueType::Long, Value::Number(n)) if n.is_i64() => {
            CedarValue::from(n.as_i64().unwrap_or_default())
        }
        (ValueType::Set(element), Value::Array(items)) => {
            let mut set = Vec::with_capacity(items.len());
            for item in items {
                let item = convert(item, element, path)
                    .map_err(|_| format!("`{}` must be {ty}", path()))?;
                set.push(item);
            }
            CedarValue::set(set, None)
        }
        (ValueType::Record(record_type), Value::Object(map)) => record(map, record_type, path)?,
        _ => return Err(format!("`{}` must be {ty}", path())),
    })
}

/// Every attribute the schema's JSON form declares, as dotted paths: the
/// context of `action` (`context.attestation.claims.namespace`; an
/// entity-typed attribute is a leaf), each entity type's attributes
/// (`Agent.kind`), its tags (`Agent[tag]`) and the types it is in
/// (`User in Group`).
pub(crate) fn declared_attributes(json: &Value, action: &str) -> Vec<String> {
    fn walk(ns: &Value, prefix: &str, record: &Value, out: &mut Vec<String>, depth: usize) {
        for (name, ty) in record["attributes"].as_object().into_iter().flatten() {
            let path = format!("{prefix}.{name}");
            match resolve_record(ns, ty) {
                Some(inner) if depth < MAX_DEPTH => walk(ns, &path, inner, out, depth + 1),
                _ => out.push(path),
            }
        }
    }
    let ns = &json["Mandate"];
    let mut out = Vec::new();
    if let Some(context) = resolve_record(ns, &ns["actions"][action]["appliesTo"]["context"]) {
        walk(ns, "context", context, &mut out, 0);
    }
    for (entity, def) in ns["entityTypes"].as_object().into_iter().flatten() {
        if let Some(shape) = resolve_record(ns, &def["shape"]) {
            walk(ns, entity, shape, &mut out, 0);
        }
        if def.get("tags").is_some() {
            out.push(format!("{entity}[tag]"));
        }
        for parent in def["memberOfTypes"].as_array().into_iter().flatten() {
            if let Some(p) = parent.as_str() {
                out.push(format!("{entity} in {}", p.trim_start_matches("Mandate::")));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema_json(args: &str) -> Value {
        let text = format!(
            "namespace Mandate {{ type Nested = {{ a: Long, b?: String }}; \
             type Context = {{ args: {{ {args} }} }}; entity A; \
             action \"x\" appliesTo {{ principal: A, resource: A, context: Context }}; }}"
        );
        let (fragment, _) = cedar_policy::SchemaFragment::from_cedarschema_str(&text).unwrap();
        fragment.to_json_value().unwrap()
    }

    fn args(decl: &str) -> Result<RecordType, String> {
        open_records(&schema_json(decl), "x").map(|o| o.args)
    }

    fn check(ty: &RecordType, value: Value) -> Result<(), String> {
        let Value::Object(map) = value else { panic!() };
        record(&map, ty, &|| "args".to_owned()).map(|_| ())
    }

    #[test]
    fn values_are_checked_against_declared_types() {
        let ty = args("s?: String, n?: Long, b?: Bool, set?: Set<String>, rec?: Nested").unwrap();
        assert!(
            check(
                &ty,
                json!({"s": "x", "n": -3, "b": true, "set": ["a"], "rec": {"a": 1}})
            )
            .is_ok()
        );
        assert!(check(&ty, json!({"undeclared": 1.5, "s": null})).is_ok());
        assert_eq!(
            check(&ty, json!({"s": 1})).unwrap_err(),
            "`args.s` must be a string"
        );
        assert_eq!(
            check(&ty, json!({"n": 1.5})).unwrap_err(),
            "`args.n` must be a 64-bit integer"
        );
        assert_eq!(
            check(&ty, json!({"n": u64::MAX})).unwrap_err(),
            "`args.n` must be a 64-bit integer"
        );
        assert_eq!(
            check(&ty, json!({"set": ["a", 2]})).unwrap_err(),
            "`args.set` must be an array of which each element is a string"
        );
        assert_eq!(
            check(&ty, json!({"rec": {"b": "x"}})).unwrap_err(),
            "`args.rec.a` is required"
        );
        assert_eq!(
            check(&ty, json!({"rec": {"a": "1"}})).unwrap_err(),
            "`args.rec.a` must be a 64-bit integer"
        );
    }

    #[test]
    fn unsupported_declarations_are_errors() {
        assert_eq!(
            args("s: String").unwrap_err(),
            "tool argument `s` must be optional (`s?`)"
        );
        assert!(
            args("e?: A")
                .unwrap_err()
                .contains("type `A` is not supported")
        );
        assert!(args("ip?: ipaddr").unwrap_err().contains("`ipaddr`"));
    }
}
