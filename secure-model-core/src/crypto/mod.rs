//! Cryptographic primitives and secret types: Tink-compatible streaming AEAD, DEK wrapping under
//! a KEK, the DEK commitment, digests (SHA-256, BLAKE2b, BLAKE3 and BLAKE3 subtree merging). Pure functions over bytes; no I/O, no knowledge of the
//! package layout or of key providers.

mod digests;
pub(crate) mod opening;
mod secrets;
pub mod streaming;
pub mod tree;
mod wrap;

pub use digests::{Digest, HashAlgorithm, Hasher, MAX_DIGEST_LEN};
pub use secrets::{DataKey, Kek};
pub use wrap::{unwrap_with_kek, wrap_with_kek, WRAPPED_DEK_LEN};

use ring::{digest, hmac, rand::SecureRandom};

/// Errors of the primitives. Authentication failures are deliberately opaque.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authentication of ciphertext failed (wrong key, tampered, truncated, reordered...).
    /// The reason inside the primitive is never revealed.
    #[error("authentication failed")]
    Authentication,
    /// A length is not valid for the construction.
    #[error("invalid length: {what}")]
    InvalidLength {
        /// What had the wrong length.
        what: &'static str,
    },
    /// The streaming parameters are outside what this implementation accepts.
    #[error("unsupported streaming parameters: {reason}")]
    UnsupportedParameters {
        /// Why.
        reason: &'static str,
    },
    /// The operating system random number generator failed.
    #[error("system random number generator failed")]
    Rng,
    /// An I/O error from the underlying reader or writer of a stream.
    #[error("stream I/O")]
    Io(#[from] std::io::Error),
    /// The encryptor was used after an error or after `finish`.
    #[error("stream used after it failed or finished")]
    StreamPoisoned,
}

impl CryptoError {
    /// The failure class: a primitive failing outside a file context is internal (file
    /// decryption failures are reported by the loader as integrity failures).
    pub fn class(&self) -> crate::ErrorClass {
        crate::ErrorClass::Internal
    }
}

/// Length of a SHA-256 digest.
pub const SHA256_LEN: usize = 32;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; SHA256_LEN] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; SHA256_LEN];
    out.copy_from_slice(d.as_ref());
    out
}

/// An incremental SHA-256.
#[derive(Clone)]
pub struct Sha256(digest::Context);

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256")
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    /// A fresh context.
    pub fn new() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }
    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    /// The digest.
    pub fn finish(self) -> [u8; SHA256_LEN] {
        let d = self.0.finish();
        let mut out = [0u8; SHA256_LEN];
        out.copy_from_slice(d.as_ref());
        out
    }
}

/// Fills `out` from the system CSPRNG.
pub fn random_fill(out: &mut [u8]) -> Result<(), CryptoError> {
    ring::rand::SystemRandom::new()
        .fill(out)
        .map_err(|_| CryptoError::Rng)
}

/// Label of the DEK commitment (see `docs/FORMAT.md`, "DEK commitment").
pub const DEK_COMMITMENT_LABEL: &[u8] = b"secure-model/v1/dek-commitment";

/// `HMAC-SHA256(key = DEK, DEK_COMMITMENT_LABEL || 0x00 || model_id)`.
pub fn dek_commitment(dek: &DataKey, model_id: &str) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, dek.expose_secret());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(DEK_COMMITMENT_LABEL);
    ctx.update(&[0]);
    ctx.update(model_id.as_bytes());
    let tag = ctx.sign();
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Checks `commitment` against `dek` in constant time.
pub fn check_dek_commitment(
    dek: &DataKey,
    model_id: &str,
    commitment: &[u8; 32],
) -> Result<(), CryptoError> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, dek.expose_secret());
    let mut msg = Vec::with_capacity(DEK_COMMITMENT_LABEL.len() + 1 + model_id.len());
    msg.extend_from_slice(DEK_COMMITMENT_LABEL);
    msg.push(0);
    msg.extend_from_slice(model_id.as_bytes());
    hmac::verify(&key, &msg, commitment).map_err(|_| CryptoError::Authentication)
}

/// Appends `BE32(len(field)) || field`. Fields longer than `u32::MAX` cannot occur (paths and
/// ids are capped far below), but are refused rather than truncated.
pub(crate) fn push_len_prefixed(out: &mut Vec<u8>, field: &[u8]) -> Result<(), CryptoError> {
    let len = u32::try_from(field.len()).map_err(|_| CryptoError::InvalidLength {
        what: "length-prefixed field",
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
    Ok(())
}

/// Installs `ring` as the process's rustls provider unless one is installed (idempotent).
/// Every TLS client of this crate (object stores, KBS, CDH) uses rustls on `ring`; nothing
/// else is compiled in. Embedders that install their own provider first keep it.
pub fn install_rustls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error only means another thread installed one first.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_roundtrip_and_mismatch() {
        let dek = DataKey::from_bytes([7u8; 32]);
        let c = dek_commitment(&dek, "00112233445566778899aabbccddeeff");
        assert!(check_dek_commitment(&dek, "00112233445566778899aabbccddeeff", &c).is_ok());
        assert!(check_dek_commitment(&dek, "00112233445566778899aabbccddeefe", &c).is_err());
        let other = DataKey::from_bytes([8u8; 32]);
        assert!(check_dek_commitment(&other, "00112233445566778899aabbccddeeff", &c).is_err());
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Sha256::new();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish(), sha256(b"abc"));
    }
}
