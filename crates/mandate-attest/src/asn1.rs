//! A small BER/DER walk over the `der` crate's reader: each element is read
//! whole (tag and value, indefinite lengths resolved), and callers descend
//! by reading an element's value as a new sequence of elements.
//!
//! BER rules are used throughout because AWS's PKCS#7 uses indefinite
//! lengths; DER input (certificates) is a subset and reads the same.

use der::asn1::{Any, OctetString};
use der::{Decode as _, Encode as _, EncodingRules, Reader as _, SliceReader, Tag, Tagged as _};

/// Why a structure did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asn1Error(pub(crate) String);

impl From<der::Error> for Asn1Error {
    fn from(e: der::Error) -> Self {
        Self(e.to_string())
    }
}

/// Every element in `bytes`, in order.
pub(crate) fn elements(bytes: &[u8]) -> Result<Vec<Any>, Asn1Error> {
    let mut reader = SliceReader::new_with_encoding_rules(bytes, EncodingRules::Ber)?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        out.push(Any::decode(&mut reader)?);
    }
    Ok(out)
}

/// The single element `bytes` holds; trailing bytes are an error.
pub(crate) fn single(bytes: &[u8]) -> Result<Any, Asn1Error> {
    match <[Any; 1]>::try_from(elements(bytes)?) {
        Ok([one]) => Ok(one),
        Err(v) => Err(Asn1Error(format!(
            "expected one element, found {}",
            v.len()
        ))),
    }
}

/// The children of `any`, which must carry `tag`.
pub(crate) fn children(any: &Any, tag: Tag, what: &str) -> Result<Vec<Any>, Asn1Error> {
    expect(any, tag, what)?;
    elements(any.value())
}

/// Checks that `any` carries `tag`.
pub(crate) fn expect(any: &Any, tag: Tag, what: &str) -> Result<(), Asn1Error> {
    if any.tag() == tag {
        Ok(())
    } else {
        Err(Asn1Error(format!(
            "{what}: expected {tag}, found {}",
            any.tag()
        )))
    }
}

/// Whether `tag` is context-specific `[n]`.
pub(crate) fn is_context(tag: Tag, n: u32) -> bool {
    matches!(tag, Tag::ContextSpecific { number, .. } if number.value() == n)
}

/// The OCTET STRING encoded in `bytes` (primitive, or constructed with an
/// indefinite length as BER allows), reassembled.
pub(crate) fn octet_string(bytes: &[u8]) -> Result<Vec<u8>, Asn1Error> {
    let mut reader = SliceReader::new_with_encoding_rules(bytes, EncodingRules::Ber)?;
    let s = OctetString::decode(&mut reader)?;
    reader.finish()?;
    Ok(s.into_bytes().into_vec())
}

/// `any` re-encoded whole (tag, definite length, value).
pub(crate) fn to_der(any: &Any) -> Result<Vec<u8>, Asn1Error> {
    Ok(any.to_der()?)
}

/// The DER of a SET with `any`'s value (the form CMS signs signed
/// attributes in, whatever tag they were sent under).
pub(crate) fn as_set(any: &Any) -> Result<Vec<u8>, Asn1Error> {
    Ok(Any::new(Tag::Set, any.value())?.to_der()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn indefinite_constructed_octet_strings_are_reassembled() {
        let ber = [
            0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00,
        ];
        assert_eq!(octet_string(&ber).unwrap(), b"abc");
        assert_eq!(octet_string(&[0x04, 0x01, b'x']).unwrap(), b"x");
        assert!(octet_string(&[0x04, 0x01, b'x', 0x00]).is_err());
    }

    #[test]
    fn indefinite_sequences_read_as_their_elements() {
        // SEQUENCE (indefinite) { INTEGER 1, [0] (indefinite) { NULL } }
        let ber = [
            0x30, 0x80, 0x02, 0x01, 0x01, 0xa0, 0x80, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        let top = single(&ber).unwrap();
        let kids = children(&top, Tag::Sequence, "top").unwrap();
        assert_eq!(kids.len(), 2);
        assert!(is_context(kids[1].tag(), 0));
        assert_eq!(elements(kids[1].value()).unwrap().len(), 1);
    }

    #[test]
    fn single_refuses_trailing_elements_and_truncation() {
        assert!(single(&[0x05, 0x00, 0x05, 0x00]).is_err());
        assert!(single(&[0x30, 0x80, 0x05, 0x00]).is_err());
        assert!(single(&[]).is_err());
    }

    #[test]
    fn signed_attributes_are_re_tagged_as_a_set() {
        let implicit = single(&[0xa0, 0x02, 0x05, 0x00]).unwrap();
        assert_eq!(as_set(&implicit).unwrap(), [0x31, 0x02, 0x05, 0x00]);
    }
}
