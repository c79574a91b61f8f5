//! The one canonical form of a request's path below its route: the policy
//! decides on it, the audit records it and the upstream receives it, byte
//! for byte. A path that has no single meaning is refused instead of being
//! guessed at (the proxy path-confusion family: Envoy CVE-2019-9901,
//! "Breaking Parser Logic").
//!
//! Refused: an encoded slash or backslash (`%2F`, `%5C`), a raw backslash,
//! NUL and other control characters (raw or encoded), a `%` not followed by
//! two hex digits, bytes that are not UTF-8 once decoded, `..` that climbs
//! above the route's root, path parameters (`;`), and a segment ending in a
//! dot (`/admin.`, which some servers read as `/admin`).
//!
//! Normalised (RFC 3986 §6.2.2): percent-encoded unreserved characters are
//! decoded (`%61` → `a`, `%2E` → `.`), every other percent-encoding is
//! written with upper-case hex, characters a path may not carry literally
//! are percent-encoded, `.` and `..` segments are removed (§5.2.4), and
//! repeated slashes are merged, or refused, as the route says.

use std::fmt;

pub use mandate_store::EmptySegments;

/// Why a path has no single meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRefusal {
    /// `%2F` or `%5C`: a separator the upstream may or may not decode.
    EncodedSeparator,
    /// A raw `\`, which some servers read as `/`.
    Backslash,
    /// NUL or another control character, raw or encoded.
    ControlCharacter,
    /// `%` not followed by two hex digits.
    InvalidPercentEncoding,
    /// The decoded bytes are not UTF-8.
    InvalidUtf8,
    /// `..` above the route's root.
    AboveRoot,
    /// `;`: a path parameter, which some servers drop from the segment.
    PathParameter,
    /// A segment ending in `.`, which some servers drop.
    TrailingDot,
    /// `//` on a route that refuses empty segments.
    EmptySegment,
}

impl PathRefusal {
    /// A stable name for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EncodedSeparator => "encoded_separator",
            Self::Backslash => "backslash",
            Self::ControlCharacter => "control_character",
            Self::InvalidPercentEncoding => "invalid_percent_encoding",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::AboveRoot => "above_root",
            Self::PathParameter => "path_parameter",
            Self::TrailingDot => "trailing_dot",
            Self::EmptySegment => "empty_segment",
        }
    }
}

impl fmt::Display for PathRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EncodedSeparator => "the path has an encoded slash or backslash (`%2F`, `%5C`)",
            Self::Backslash => "the path has a backslash",
            Self::ControlCharacter => "the path has a control character (raw or encoded)",
            Self::InvalidPercentEncoding => {
                "the path has a `%` that is not followed by two hex digits"
            }
            Self::InvalidUtf8 => "the path is not UTF-8 once percent-decoded",
            Self::AboveRoot => "the path's `..` segments climb above the route",
            Self::PathParameter => "the path has a path parameter (`;`)",
            Self::TrailingDot => "a path segment ends with a dot",
            Self::EmptySegment => "the path has an empty segment (`//`), which this route refuses",
        })
    }
}

/// Whether `b` is an RFC 3986 unreserved character.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Whether `b` may stand literally in a canonical path segment: RFC 3986
/// `pchar` less the `%` of encodings and `;` (refused before this).
fn literal(b: u8) -> bool {
    unreserved(b)
        || matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@'
        )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_encoded(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

/// One segment in canonical form (no `/` in it), checked.
fn segment(raw: &[u8], decoded: &mut Vec<u8>) -> Result<String, PathRefusal> {
    let mut out = String::with_capacity(raw.len());
    decoded.clear();
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        let value = if b == b'%' {
            let (Some(hi), Some(lo)) = (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(PathRefusal::InvalidPercentEncoding);
            };
            i += 3;
            let v = (hi << 4) | lo;
            if v == b'/' || v == b'\\' {
                return Err(PathRefusal::EncodedSeparator);
            }
            v
        } else {
            i += 1;
            if b == b'\\' {
                return Err(PathRefusal::Backslash);
            }
            if b == b';' {
                return Err(PathRefusal::PathParameter);
            }
            b
        };
        if value < 0x20 || value == 0x7f {
            return Err(PathRefusal::ControlCharacter);
        }
        decoded.push(value);
        if literal(value) && (unreserved(value) || b != b'%') {
            // Unreserved characters are decoded; reserved ones stay as they
            // came (`=` and `%3D` may mean different things upstream).
            out.push(char::from(value));
        } else {
            push_encoded(&mut out, value);
        }
    }
    if std::str::from_utf8(decoded).is_err() {
        return Err(PathRefusal::InvalidUtf8);
    }
    if out.ends_with('.') && out != "." && out != ".." {
        return Err(PathRefusal::TrailingDot);
    }
    Ok(out)
}

/// The canonical form of `raw`, the path below a route exactly as the
/// request line carries it: empty (the route itself) or starting with `/`.
/// The result is empty for the route itself, else starts with `/`; it keeps
/// a trailing slash.
pub fn canonical(raw: &str, empty: EmptySegments) -> Result<String, PathRefusal> {
    if raw.is_empty() {
        return Ok(String::new());
    }
    let body = raw.strip_prefix('/').unwrap_or(raw);
    let mut stack: Vec<String> = Vec::new();
    let mut decoded = Vec::new();
    let mut parts = body.split('/').peekable();
    // Whether the result ends with a slash: after a final empty, `.` or
    // `..` segment (RFC 3986 §5.2.4 keeps `/a/.` as `/a/`).
    let mut trailing = false;
    while let Some(raw_seg) = parts.next() {
        let last = parts.peek().is_none();
        let seg = segment(raw_seg.as_bytes(), &mut decoded)?;
        match seg.as_str() {
            "" if last => trailing = true,
            "" => {
                if empty == EmptySegments::Refuse {
                    return Err(PathRefusal::EmptySegment);
                }
            }
            "." => trailing = last,
            ".." => {
                if stack.pop().is_none() {
                    return Err(PathRefusal::AboveRoot);
                }
                trailing = last;
            }
            _ => {
                stack.push(seg);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(raw.len());
    for s in &stack {
        out.push('/');
        out.push_str(s);
    }
    if trailing || stack.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn c(raw: &str) -> Result<String, PathRefusal> {
        canonical(raw, EmptySegments::Merge)
    }

    #[test]
    fn dot_segments_are_removed_and_may_not_climb_above_the_route() {
        assert_eq!(c("/reports/../admin/reset").unwrap(), "/admin/reset");
        assert_eq!(c("/./admin/reset").unwrap(), "/admin/reset");
        assert_eq!(c("/a/b/..").unwrap(), "/a/");
        assert_eq!(c("/a/.").unwrap(), "/a/");
        assert_eq!(c("/%2e%2E/x"), Err(PathRefusal::AboveRoot));
        assert_eq!(c("/a/%2e%2e/b").unwrap(), "/b");
        assert_eq!(c("/../x"), Err(PathRefusal::AboveRoot));
        assert_eq!(c("/a/../../x"), Err(PathRefusal::AboveRoot));
    }

    #[test]
    fn encodings_are_checked_and_normalised() {
        assert_eq!(c("/%61dmin").unwrap(), "/admin");
        assert_eq!(c("/a%2fb"), Err(PathRefusal::EncodedSeparator));
        assert_eq!(c("/a%5Cb"), Err(PathRefusal::EncodedSeparator));
        assert_eq!(c("/a\\b"), Err(PathRefusal::Backslash));
        assert_eq!(c("/a%00b"), Err(PathRefusal::ControlCharacter));
        assert_eq!(c("/a%zz"), Err(PathRefusal::InvalidPercentEncoding));
        assert_eq!(c("/a%4"), Err(PathRefusal::InvalidPercentEncoding));
        assert_eq!(c("/%ff"), Err(PathRefusal::InvalidUtf8));
        assert_eq!(c("/caf%c3%a9").unwrap(), "/caf%C3%A9");
        assert_eq!(c("/a%3Db=c").unwrap(), "/a%3Db=c");
        assert_eq!(c("/a b\"{}").unwrap(), "/a%20b%22%7B%7D");
    }

    #[test]
    fn slashes_params_and_dots() {
        assert_eq!(c("//admin//reset").unwrap(), "/admin/reset");
        assert_eq!(
            canonical("//admin", EmptySegments::Refuse),
            Err(PathRefusal::EmptySegment)
        );
        assert_eq!(canonical("/a/", EmptySegments::Refuse).unwrap(), "/a/");
        assert_eq!(c("/admin;x=1/reset"), Err(PathRefusal::PathParameter));
        assert_eq!(c("/admin./reset"), Err(PathRefusal::TrailingDot));
        assert_eq!(c("/admin%2E"), Err(PathRefusal::TrailingDot));
        assert_eq!(c("/v1.2/x").unwrap(), "/v1.2/x");
        assert_eq!(c("").unwrap(), "");
        assert_eq!(c("/").unwrap(), "/");
    }

    proptest::proptest! {
        #[test]
        fn canonical_is_a_fixed_point(raw in "(/[a-z.%2EeF5Cc;/ ]{0,6}){0,5}") {
            if let Ok(once) = c(&raw) {
                proptest::prop_assert_eq!(c(&once), Ok(once.clone()));
                proptest::prop_assert!(!once.contains("/./") && !once.contains("/../"));
            }
        }
    }
}
