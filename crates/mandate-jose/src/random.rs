//! Secure randomness for identifiers and secrets.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::Error;

/// `N` bytes from the system's secure random generator.
pub fn bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| Error::Random)?;
    Ok(out)
}

/// `N` random bytes encoded as unpadded base64url.
pub fn token<const N: usize>() -> Result<String, Error> {
    Ok(URL_SAFE_NO_PAD.encode(bytes::<N>()?))
}

/// A unique identifier that sorts by creation time: `unix_ms` as 12 hex
/// digits, then 80 random bits as base64url (26 characters). Identifiers
/// stored under an index (a token's `jti`, a `txn`) then land at the end of
/// that index rather than on a random page, so a commit of many of them
/// writes a few pages instead of one per identifier. 80 bits keep them
/// unguessable and, within one millisecond, unique.
pub fn time_ordered_id(unix_ms: i64) -> Result<String, Error> {
    let ms = u64::try_from(unix_ms).unwrap_or(0) & 0xffff_ffff_ffff;
    Ok(format!("{ms:012x}{}", token::<10>()?))
}

/// A random identifier of `len` characters from `[a-z0-9]`.
///
/// Uses rejection sampling so every character is uniform.
pub fn id(len: usize) -> Result<String, Error> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 32];
    while out.len() < len {
        rng.fill(&mut buf).map_err(|_| Error::Random)?;
        for b in buf {
            // 252 = 7 * 36: bytes at or above it would bias the result.
            if b < 252 && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b % 36)]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_sort_by_time_and_differ_within_a_millisecond() -> Result<(), Error> {
        let t = 1_795_000_000_000;
        let (a, b, c) = (
            time_ordered_id(t)?,
            time_ordered_id(t)?,
            time_ordered_id(t + 1)?,
        );
        assert_eq!(a.len(), 26);
        assert_ne!(a, b);
        assert!(a < c && b < c, "{a} {b} {c}");
        assert!(time_ordered_id(t + 86_400_000)? > c);
        assert!(a.starts_with(&format!("{t:012x}")));
        Ok(())
    }

    #[test]
    fn tokens_differ_and_have_the_expected_length() -> Result<(), Error> {
        let a = token::<32>()?;
        let b = token::<32>()?;
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        Ok(())
    }

    #[test]
    fn ids_use_only_the_alphabet() -> Result<(), Error> {
        let s = id(40)?;
        assert_eq!(s.len(), 40);
        assert!(
            s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        Ok(())
    }
}
