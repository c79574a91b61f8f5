//! Envelope encryption of secrets at rest: AES-256-GCM under the 32-byte
//! master key, a fresh random 96-bit nonce per message, and the caller's
//! label (for signing keys, the key id) as associated data, so a sealed value
//! cannot be moved to another row unnoticed. A wrong key, a wrong label or any
//! changed byte fails closed with [`Error::Unseal`].
//!
//! Sealed layout: `nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::Error;

/// Length of the master key in bytes.
pub const KEY_LEN: usize = 32;

/// The master key. Its bytes are zeroized on drop and never printed.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    /// Wraps 32 key bytes.
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    fn aead(&self) -> Result<LessSafeKey, Error> {
        let key = UnboundKey::new(&AES_256_GCM, self.0.as_ref()).map_err(|_| Error::Seal)?;
        Ok(LessSafeKey::new(key))
    }

    /// Encrypts `plaintext`, binding it to `label`.
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let nonce_bytes = crate::random::bytes::<NONCE_LEN>()?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce_bytes);
        let mut body = plaintext.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(label.as_bytes()),
                &mut body,
            )
            .map_err(|_| Error::Seal)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts what [`MasterKey::seal`] produced under the same `label`.
    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(Error::Unseal);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Unseal)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let plain_len = self
            .aead()?
            .open_in_place(nonce, Aad::from(label.as_bytes()), buf.as_mut_slice())
            .map_err(|_| Error::Unseal)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MasterKey {
        MasterKey::new([b; KEY_LEN])
    }

    #[test]
    fn round_trip() -> Result<(), Error> {
        let k = key(7);
        let sealed = k.seal("kid-1", b"private key bytes")?;
        assert_eq!(sealed.len(), NONCE_LEN + 17 + 16);
        assert_eq!(k.open("kid-1", &sealed)?.as_slice(), b"private key bytes");
        // Fresh nonce each time.
        assert_ne!(sealed, k.seal("kid-1", b"private key bytes")?);
        Ok(())
    }

    #[test]
    fn wrong_key_fails_closed() -> Result<(), Error> {
        let sealed = key(7).seal("kid-1", b"secret")?;
        assert!(matches!(key(8).open("kid-1", &sealed), Err(Error::Unseal)));
        Ok(())
    }

    #[test]
    fn any_flipped_byte_fails_closed() -> Result<(), Error> {
        let k = key(7);
        let sealed = k.seal("kid-1", b"secret")?;
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                matches!(k.open("kid-1", &bad), Err(Error::Unseal)),
                "byte {i}"
            );
        }
        assert!(matches!(k.open("kid-1", &sealed[..20]), Err(Error::Unseal)));
        Ok(())
    }

    #[test]
    fn wrong_key_id_fails_closed() -> Result<(), Error> {
        let k = key(7);
        let sealed = k.seal("kid-1", b"secret")?;
        assert!(matches!(k.open("kid-2", &sealed), Err(Error::Unseal)));
        Ok(())
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", key(7)), "MasterKey(<redacted>)");
    }
}
