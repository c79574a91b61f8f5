//! JSON read the way every upstream will read it. Parsers disagree on an
//! object with a repeated member (`{"name":"a","name":"b"}`: most take the
//! last, some the first, some refuse) and Go's decoder matches member names
//! without regard to case (`"Name"` fills `name`). The gateway decides an
//! MCP message on its method, tool name and arguments, so a message whose
//! members could be read two ways is refused rather than decided on one
//! reading and forwarded to a server that takes the other.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses `bytes` as one JSON value, refusing any object that repeats a
/// member name, exactly or but for ASCII case.
pub(crate) fn parse_unambiguous(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
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
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let mut folded: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !folded.insert(key.to_ascii_lowercase()) {
                return Err(de::Error::custom(format!(
                    "the member `{key}` appears twice in one object (or twice but for case), \
                     which servers read differently"
                )));
            }
            let v = map.next_value_seed(Strict)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn repeated_members_are_refused_at_any_depth() {
        assert!(parse_unambiguous(br#"{"a":1,"a":2}"#).is_err());
        assert!(parse_unambiguous(br#"{"p":{"name":"x","Name":"y"}}"#).is_err());
        assert!(parse_unambiguous(br#"[{"n":1},{"n":{"k":1,"k":1}}]"#).is_err());
        assert!(parse_unambiguous(br#"{"na\u006de":"x","name":"y"}"#).is_err());
        let v = parse_unambiguous(br#"{"a":[1,2.5,"x",null,true],"b":{"c":{}}}"#).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a":[1,2.5,"x",null,true],"b":{"c":{}}})
        );
        assert!(parse_unambiguous(b"{} x").is_err());
    }
}
