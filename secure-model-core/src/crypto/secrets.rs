//! Secret key types: zeroized on drop, no `Clone`, no `Serialize`, redacted `Debug`.

use zeroize::Zeroizing;

use super::{random_fill, CryptoError};

/// The 256-bit data encryption key of one package (the Tink streaming AEAD input key material).
///
/// Not `Clone`, not `Serialize`, not `PartialEq`; `Debug` prints `DataKey([redacted])`.
/// Every read of the bytes goes through [`DataKey::expose_secret`].
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// A fresh random key from the system CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; 32]);
        random_fill(k.as_mut())?;
        Ok(Self(k))
    }

    /// Wraps key bytes (the array is moved in; the caller's copy should be zeroized).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies a key from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(CryptoError::InvalidLength { what: "data key" });
        }
        k.copy_from_slice(bytes);
        Ok(Self(k))
    }

    /// The key bytes. Grep for this name to audit every use of the DEK.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

/// A 256-bit key encryption key (local key file, or a KEK released by a key broker).
///
/// Same rules as [`DataKey`]: no `Clone`, no `Serialize`, redacted `Debug`.
pub struct Kek(Zeroizing<[u8; 32]>);

impl Kek {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; 32]);
        random_fill(k.as_mut())?;
        Ok(Self(k))
    }

    /// Copies a key from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::InvalidLength {
                what: "key encryption key",
            });
        }
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(bytes);
        Ok(Self(k))
    }

    /// The key bytes. Grep for this name to audit every use.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let dek = DataKey::from_bytes([0xab; 32]);
        assert_eq!(format!("{dek:?}"), "DataKey([redacted])");
        assert_eq!(format!("{dek:#?}"), "DataKey([redacted])");
        let kek = Kek::from_slice(&[0xcd; 32]).unwrap();
        assert_eq!(format!("{kek:?}"), "Kek([redacted])");
    }

    #[test]
    fn wrong_lengths_refused() {
        assert!(DataKey::from_slice(&[0; 31]).is_err());
        assert!(Kek::from_slice(&[0; 33]).is_err());
    }

    #[test]
    fn generated_keys_differ() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
