//! Turning a [`Request`] into a Cedar request checked against the schema.

use std::collections::HashSet;

use cedar_policy::{Context, EntityId, EntityUid, RestrictedExpression};
use serde_json::Value;

use crate::{Request, RequestContext, Schema};

/// The Cedar request for `request`, or why there is none. The request is checked
/// against the schema: principal and resource types must suit the action, and the
/// context must have the declared shape (so a tool argument of the wrong type fails).
pub(crate) fn cedar_request(
    schema: &Schema,
    request: &Request,
) -> Result<cedar_policy::Request, String> {
    let context = context(schema, request)?;
    cedar_policy::Request::new(
        schema.uid(&request.principal),
        schema.action_uid(request.action).clone(),
        schema.uid(&request.resource),
        context,
        Some(schema.cedar()),
    )
    .map_err(|e| format!("request does not match the schema: {e}"))
}

fn context(schema: &Schema, request: &Request) -> Result<Context, String> {
    let c: &RequestContext = &request.context;
    let open = schema.open_records(request.action);
    let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
    let long = |n: i64| RestrictedExpression::new_long(n);
    let record = |pairs: Vec<(String, RestrictedExpression)>| {
        RestrictedExpression::new_record(pairs).map_err(|e| e.to_string())
    };

    let mut pairs: Vec<(String, RestrictedExpression)> = Vec::with_capacity(9);
    if let Some(a) = &c.attestation {
        let claims = open_record(&a.claims, &open.claims, "attestation claim")?;
        let attestation = record(vec![
            ("provider".into(), string(&a.provider)),
            ("claims".into(), claims),
        ])?;
        pairs.push(("attestation".into(), attestation));
    }
    let depth = i64::try_from(c.delegation.depth()).unwrap_or(i64::MAX);
    let delegation = record(vec![
        (
            "chain".into(),
            RestrictedExpression::new_set(c.delegation.chain.iter().map(|s| string(s))),
        ),
        ("depth".into(), long(depth)),
    ])?;
    pairs.push(("delegation".into(), delegation));
    if let Some(user) = &c.on_behalf_of {
        let uid =
            EntityUid::from_type_name_and_id(schema.types().user.clone(), EntityId::new(user));
        pairs.push((
            "on_behalf_of".into(),
            RestrictedExpression::new_entity_uid(uid),
        ));
    }
    pairs.push(("env".into(), string(&c.env)));
    let time = record(vec![
        ("hour".into(), long(c.time.hour().into())),
        ("weekday".into(), long(c.time.weekday().into())),
        ("unix".into(), long(c.time.unix())),
    ])?;
    pairs.push(("time".into(), time));
    pairs.push((
        "scopes".into(),
        RestrictedExpression::new_set(c.scopes.iter().map(|s| string(s))),
    ));
    pairs.push((
        "args".into(),
        open_record(&c.args, &open.args, "tool argument")?,
    ));
    if let Some(ip) = c.client_ip {
        pairs.push((
            "client_ip".into(),
            RestrictedExpression::new_ip(ip.to_string()),
        ));
    }
    pairs.push(("risk".into(), long(c.risk.value().into())));

    Context::from_pairs(pairs).map_err(|e| format!("invalid context: {e}"))
}

/// A record of the entries of `map` whose keys are `declared`; `null` entries count
/// as absent.
fn open_record(
    map: &serde_json::Map<String, Value>,
    declared: &HashSet<String>,
    what: &str,
) -> Result<RestrictedExpression, String> {
    let mut pairs = Vec::new();
    for (key, value) in map {
        if !declared.contains(key) {
            continue;
        }
        if let Some(v) = json(value, &|| format!("{what} `{key}`"))? {
            pairs.push((key.clone(), v));
        }
    }
    RestrictedExpression::new_record(pairs).map_err(|e| e.to_string())
}

/// A JSON value as a Cedar value; `None` for `null`. Cedar has no floating point.
fn json(value: &Value, path: &dyn Fn() -> String) -> Result<Option<RestrictedExpression>, String> {
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(n) => RestrictedExpression::new_long(n),
            None => return Err(format!("{} is not a 64-bit integer", path())),
        },
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Array(items) => {
            let mut set = Vec::with_capacity(items.len());
            for item in items {
                match json(item, path)? {
                    Some(v) => set.push(v),
                    None => return Err(format!("{} contains `null`", path())),
                }
            }
            RestrictedExpression::new_set(set)
        }
        Value::Object(map) => {
            let mut pairs = Vec::with_capacity(map.len());
            for (key, value) in map {
                let inner = || format!("{}.{key}", path());
                if let Some(v) = json(value, &inner)? {
                    pairs.push((key.clone(), v));
                }
            }
            RestrictedExpression::new_record(pairs).map_err(|e| e.to_string())?
        }
    }))
}
