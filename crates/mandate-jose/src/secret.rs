//! Secret values: redacted when printed, compared in constant time, zeroized
//! on drop.

pub use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// Compares two byte strings in time independent of where they differ.
///
/// Lengths are not secret here (callers compare fixed-length digests).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_contents_and_lengths() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn secret_string_debug_is_redacted() {
        let s = SecretString::from("hunter2".to_owned());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose_secret(), "hunter2");
    }
}
