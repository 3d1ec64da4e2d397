//! ECDSA P-256 keys: PKCS#8 private keys and SPKI public keys in PEM.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::VerifyError;
use crate::crypto::sha256;

/// DER prefix of a P-256 `SubjectPublicKeyInfo` with an uncompressed point
/// (`SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING 0x00 || point }`).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// An ECDSA P-256 signing key (publisher side). `Debug` is redacted; not `Clone`.
pub struct SigningKey {
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(ECDSA_P256_SHA256, [redacted])")
    }
}

impl SigningKey {
    /// Generates a key pair and returns it with its PKCS#8 PEM (zeroized on drop).
    pub fn generate() -> Result<(Self, Zeroizing<String>), VerifyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| VerifyError::InvalidKey {
                what: "signing key",
                reason: "generation failed",
            })?;
        let pem = Zeroizing::new(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            pkcs8.as_ref().to_vec(),
        )));
        let key = Self::from_pkcs8_der(pkcs8.as_ref())?;
        Ok((key, pem))
    }

    /// Reads a PKCS#8 `PRIVATE KEY` PEM (SEC1 `EC PRIVATE KEY` is refused with a hint).
    pub fn from_pem(text: &str) -> Result<Self, VerifyError> {
        let p = pem::parse(text).map_err(|_| VerifyError::InvalidKey {
            what: "signing key",
            reason: "not PEM",
        })?;
        match p.tag() {
            "PRIVATE KEY" => Self::from_pkcs8_der(p.contents()),
            "EC PRIVATE KEY" => Err(VerifyError::InvalidKey {
                what: "signing key",
                reason: "SEC1 'EC PRIVATE KEY' PEM; convert with `openssl pkcs8 -topk8 -nocrypt`",
            }),
            _ => Err(VerifyError::InvalidKey {
                what: "signing key",
                reason: "PEM label is not 'PRIVATE KEY'",
            }),
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, VerifyError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
            .map_err(|_| VerifyError::InvalidKey {
                what: "signing key",
                reason: "not a PKCS#8 ECDSA P-256 key",
            })?;
        Ok(Self { pair })
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        let mut point = [0u8; 65];
        point.copy_from_slice(self.pair.public_key().as_ref());
        VerifyingKey { point }
    }

    /// DER ECDSA signature over `msg` (SHA-256).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, VerifyError> {
        let rng = SystemRandom::new();
        self.pair
            .sign(&rng, msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| VerifyError::InvalidKey {
                what: "signing key",
                reason: "signing failed",
            })
    }
}

/// An ECDSA P-256 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    point: [u8; 65],
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey(P-256, hint {})", self.hint())
    }
}

impl VerifyingKey {
    /// Reads an SPKI `PUBLIC KEY` PEM holding an uncompressed P-256 point.
    pub fn from_pem(text: &str) -> Result<Self, VerifyError> {
        let p = pem::parse(text).map_err(|_| VerifyError::InvalidKey {
            what: "public key",
            reason: "not PEM",
        })?;
        if p.tag() != "PUBLIC KEY" {
            return Err(VerifyError::InvalidKey {
                what: "public key",
                reason: "PEM label is not 'PUBLIC KEY'",
            });
        }
        Self::from_spki_der(p.contents())
    }

    /// Reads a DER `SubjectPublicKeyInfo` of a P-256 key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, VerifyError> {
        let bad = VerifyError::InvalidKey {
            what: "public key",
            reason: "not an ECDSA P-256 SubjectPublicKeyInfo with an uncompressed point",
        };
        let point = der.strip_prefix(&P256_SPKI_PREFIX[..]).ok_or(bad)?;
        let mut out = [0u8; 65];
        if point.len() != 65 || point.first() != Some(&0x04) {
            return Err(VerifyError::InvalidKey {
                what: "public key",
                reason: "not an ECDSA P-256 SubjectPublicKeyInfo with an uncompressed point",
            });
        }
        out.copy_from_slice(point);
        Ok(Self { point: out })
    }

    /// SPKI DER.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut v = P256_SPKI_PREFIX.to_vec();
        v.extend_from_slice(&self.point);
        v
    }

    /// SPKI PEM, formatted as OpenSSL and Python `cryptography` write it (64-column base64,
    /// `\n` line ends).
    pub fn to_pem(&self) -> String {
        pem::encode_config(
            &pem::Pem::new("PUBLIC KEY", self.to_spki_der()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    /// `model_signing`'s key hint: hex SHA-256 of [`VerifyingKey::to_pem`].
    pub fn hint(&self) -> String {
        hex::encode(sha256(self.to_pem().as_bytes()))
    }

    /// Verifies a DER ECDSA P-256/SHA-256 signature.
    ///
    /// # Errors
    /// [`crate::crypto::CryptoError::Authentication`] (opaque) when it does not verify.
    pub fn verify(&self, msg: &[u8], sig_der: &[u8]) -> Result<(), crate::crypto::CryptoError> {
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point[..])
            .verify(msg, sig_der)
            .map_err(|_| crate::crypto::CryptoError::Authentication)
    }
}

/// The set of public keys whose signatures the loader accepts. Empty fails closed.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<VerifyingKey>,
}

impl TrustedKeys {
    /// An empty set (verification with it always fails).
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a key.
    pub fn with_key(mut self, key: VerifyingKey) -> Self {
        self.keys.push(key);
        self
    }
    /// Adds a key.
    pub fn push(&mut self, key: VerifyingKey) {
        self.keys.push(key);
    }
    /// Reads every `PUBLIC KEY` block in `text`.
    pub fn from_pem_bundle(text: &str) -> Result<Self, VerifyError> {
        let blocks = pem::parse_many(text).map_err(|_| VerifyError::InvalidKey {
            what: "public key",
            reason: "not PEM",
        })?;
        let mut out = Self::new();
        for b in blocks {
            if b.tag() != "PUBLIC KEY" {
                return Err(VerifyError::InvalidKey {
                    what: "public key",
                    reason: "PEM label is not 'PUBLIC KEY'",
                });
            }
            out.push(VerifyingKey::from_spki_der(b.contents())?);
        }
        if out.keys.is_empty() {
            return Err(VerifyError::InvalidKey {
                what: "public key",
                reason: "no PEM block",
            });
        }
        Ok(out)
    }
    /// The keys.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }
    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip() {
        let (sk, pem) = SigningKey::generate().unwrap();
        let sk2 = SigningKey::from_pem(&pem).unwrap();
        let vk = sk.verifying_key();
        assert_eq!(vk, sk2.verifying_key());
        let sig = sk.sign(b"hello").unwrap();
        vk.verify(b"hello", &sig).unwrap();
        assert!(vk.verify(b"hellp", &sig).is_err());
        let vk2 = VerifyingKey::from_pem(&vk.to_pem()).unwrap();
        assert_eq!(vk, vk2);
    }

    #[test]
    fn debug_is_redacted() {
        let (sk, _) = SigningKey::generate().unwrap();
        assert_eq!(
            format!("{sk:?}"),
            "SigningKey(ECDSA_P256_SHA256, [redacted])"
        );
    }

    #[test]
    fn wrong_pem_labels() {
        assert!(VerifyingKey::from_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
        assert!(SigningKey::from_pem("garbage").is_err());
        assert!(TrustedKeys::from_pem_bundle("").is_err());
    }
}
