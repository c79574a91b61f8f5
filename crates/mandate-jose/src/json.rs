//! Strict JSON for untrusted token parts: a member name that appears twice in
//! one object, at any depth, is an error rather than "last one wins".
//!
//! Parsers disagree on duplicate members (first wins, last wins, error), so a
//! token whose header or claims repeat `alg`, `exp` or `aud` can mean one
//! thing to the verifier and another to whoever reads the claims next.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};

/// Why a strict parse failed.
#[derive(Debug)]
pub(crate) enum StrictJsonError {
    /// A member name appeared twice in one object.
    Duplicate(String),
    /// Not JSON, or trailing bytes after the value.
    Syntax(String),
}

/// Parses `bytes` as one JSON object, refusing duplicate member names at any
/// depth.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut de).map_err(|e| classify(&e))?;
    de.end()
        .map_err(|e| StrictJsonError::Syntax(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::Syntax("not a JSON object".to_owned())),
    }
}

const DUPLICATE_PREFIX: &str = "duplicate member ";

fn classify(e: &serde_json::Error) -> StrictJsonError {
    let msg = e.to_string();
    match msg.strip_prefix(DUPLICATE_PREFIX) {
        Some(rest) => {
            // serde_json appends " at line L column C" to custom errors.
            let name = rest.rsplit_once(" at line ").map_or(rest, |(n, _)| n);
            StrictJsonError::Duplicate(name.trim_matches('`').to_owned())
        }
        None => StrictJsonError::Syntax(msg),
    }
}

/// A `DeserializeSeed` producing a [`Value`] with duplicate member names refused.
#[derive(Clone, Copy)]
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match out.entry(key) {
                Entry::Occupied(e) => {
                    return Err(de::Error::custom(format_args!(
                        "{DUPLICATE_PREFIX}`{}`",
                        e.key()
                    )));
                }
                Entry::Vacant(e) => {
                    e.insert(map.next_value_seed(StrictValue)?);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_plain_object() {
        let map = parse_object(br#"{"a":1,"b":{"c":[1,2.5,"x",null,true]}}"#).unwrap();
        assert_eq!(map.len(), 2);
        assert!(map["b"]["c"][1].is_f64());
    }

    #[test]
    fn refuses_a_top_level_duplicate() {
        match parse_object(br#"{"alg":"ES256","alg":"none"}"#) {
            Err(StrictJsonError::Duplicate(name)) => assert_eq!(name, "alg"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn refuses_a_nested_duplicate() {
        assert!(matches!(
            parse_object(br#"{"a":[{"x":1,"x":2}]}"#),
            Err(StrictJsonError::Duplicate(name)) if name == "x"
        ));
    }

    #[test]
    fn refuses_non_objects_and_trailing_bytes() {
        assert!(matches!(
            parse_object(b"[1]"),
            Err(StrictJsonError::Syntax(_))
        ));
        assert!(matches!(
            parse_object(b"{} {}"),
            Err(StrictJsonError::Syntax(_))
        ));
        assert!(matches!(parse_object(b""), Err(StrictJsonError::Syntax(_))));
    }
}
