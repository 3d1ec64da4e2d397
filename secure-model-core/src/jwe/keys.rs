//! Keys of the JWE subset: private/shared keys to decrypt with, public/shared keys to encrypt
//! to, and the JWK members this subset reads and writes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use rsa::traits::PublicKeyParts as _;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::JweError;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// A key to decrypt with. Secret material is zeroized on drop; `Debug` prints only the
/// algorithm. Not `Clone`, not `Serialize`.
#[non_exhaustive]
pub enum DecryptionKey {
    /// P-256 private key for `ECDH-ES+A256KW`.
    EcdhP256(p256::SecretKey),
    /// RSA private key for `RSA-OAEP-256`.
    RsaOaep256(Box<rsa::RsaPrivateKey>),
    /// Shared 256-bit key for `A256KW`.
    A256kw(Zeroizing<[u8; 32]>),
    /// Shared 256-bit CEK for `dir`.
    Dir(Zeroizing<[u8; 32]>),
}

impl std::fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DecryptionKey({}, [redacted])", self.alg_name())
    }
}

fn key32(bytes: &[u8]) -> Result<Zeroizing<[u8; 32]>, JweError> {
    let mut k = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(JweError::InvalidKey {
            reason: "shared key must be 32 bytes",
        });
    }
    k.copy_from_slice(bytes);
    Ok(k)
}

fn check_rsa_size(bits: usize) -> Result<(), JweError> {
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(JweError::InvalidKey {
            reason: "RSA modulus must be 2048..=8192 bits",
        });
    }
    Ok(())
}

impl DecryptionKey {
    /// A shared key for `A256KW`.
    ///
    /// # Errors
    /// [`JweError::InvalidKey`] unless `key` is 32 bytes.
    pub fn a256kw(key: &[u8]) -> Result<Self, JweError> {
        Ok(Self::A256kw(key32(key)?))
    }

    /// A shared CEK for `dir`.
    ///
    /// # Errors
    /// [`JweError::InvalidKey`] unless `key` is 32 bytes.
    pub fn dir(key: &[u8]) -> Result<Self, JweError> {
        Ok(Self::Dir(key32(key)?))
    }

    /// A P-256 or RSA private key from PKCS#8 DER.
    ///
    /// # Errors
    /// [`JweError::InvalidKey`] when the DER is neither, or the RSA size is out of range.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, JweError> {
        use rsa::pkcs8::DecodePrivateKey as _;
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(Self::EcdhP256(k));
        }
        let k = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|_| JweError::InvalidKey {
            reason: "not a PKCS#8 P-256 or RSA private key",
        })?;
        check_rsa_size(k.size() * 8)?;
        Ok(Self::RsaOaep256(Box::new(k)))
    }

    /// A P-256 or RSA private key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// # Errors
    /// As [`DecryptionKey::from_pkcs8_der`].
    pub fn from_pkcs8_pem(pem_text: &str) -> Result<Self, JweError> {
        let p = pem::parse(pem_text).map_err(|_| JweError::InvalidKey {
            reason: "not a PEM document",
        })?;
        if p.tag() != "PRIVATE KEY" {
            return Err(JweError::InvalidKey {
                reason: "PEM is not a PKCS#8 PRIVATE KEY",
            });
        }
        let der = Zeroizing::new(p.into_contents());
        Self::from_pkcs8_der(&der)
    }

    /// A fresh random P-256 key.
    ///
    /// # Errors
    /// Never in practice; the type leaves room for an RNG failure.
    pub fn generate_p256() -> Result<Self, JweError> {
        Ok(Self::EcdhP256(p256::SecretKey::random(
            &mut rsa::rand_core::OsRng,
        )))
    }

    /// A fresh random RSA key of `bits` (2048..=8192).
    ///
    /// # Errors
    /// [`JweError::InvalidKey`] for an out-of-range size, [`JweError::Rng`] when generation
    /// fails.
    pub fn generate_rsa(bits: usize) -> Result<Self, JweError> {
        check_rsa_size(bits)?;
        let k =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).map_err(|_| JweError::Rng)?;
        Ok(Self::RsaOaep256(Box::new(k)))
    }

    /// The `alg` this key decrypts.
    pub fn alg_name(&self) -> &'static str {
        match self {
            DecryptionKey::EcdhP256(_) => "ECDH-ES+A256KW",
            DecryptionKey::RsaOaep256(_) => "RSA-OAEP-256",
            DecryptionKey::A256kw(_) => "A256KW",
            DecryptionKey::Dir(_) => "dir",
        }
    }

    /// The public JWK of an asymmetric key, with exactly the members
    /// `kty, crv, alg, x, y` (EC) or `kty, alg, n, e` (RSA). `None` for shared keys.
    pub fn public_jwk(&self) -> Option<PublicJwk> {
        match self {
            DecryptionKey::EcdhP256(k) => Some(PublicJwk::from_p256(&k.public_key())),
            DecryptionKey::RsaOaep256(k) => Some(PublicJwk::from_rsa(&k.to_public_key())),
            DecryptionKey::A256kw(_) | DecryptionKey::Dir(_) => None,
        }
    }
}

/// A key to encrypt to. Shared keys are zeroized on drop; `Debug` prints only the algorithm.
#[non_exhaustive]
pub enum EncryptionKey {
    /// The recipient's P-256 public key (`ECDH-ES+A256KW`).
    EcdhP256(p256::PublicKey),
    /// The recipient's RSA public key (`RSA-OAEP-256`).
    RsaOaep256(Box<rsa::RsaPublicKey>),
    /// Shared 256-bit key (`A256KW`).
    A256kw(Zeroizing<[u8; 32]>),
    /// Shared 256-bit CEK (`dir`).
    Dir(Zeroizing<[u8; 32]>),
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let alg = match self {
            EncryptionKey::EcdhP256(_) => "ECDH-ES+A256KW",
            EncryptionKey::RsaOaep256(_) => "RSA-OAEP-256",
            EncryptionKey::A256kw(_) => "A256KW, [redacted]",
            EncryptionKey::Dir(_) => "dir, [redacted]",
        };
        write!(f, "EncryptionKey({alg})")
    }
}

impl EncryptionKey {
    /// A shared key for `A256KW`.
    ///
    /// # Errors
    /// [`JweError::InvalidKey`] unless `key` is 32 bytes.
    pub fn a256kw(key: &[u8]) -> Result<Self, JweError> {
        Ok(Self::A256kw(key32(key)?))
    }

    /// A shared CEK for `dir`.
    ///
    /// # Errors
    /// [`JweError::InvalidKey`] unless `key` is 32 bytes.
    pub fn dir(key: &[u8]) -> Result<Self, JweError> {
        Ok(Self::Dir(key32(key)?))
    }

    /// A public key from a JWK (`kty` `EC` with `crv` `P-256`, or `RSA`). Only the key members
    /// are read; the JWK's own `alg`, when present, must agree with the key type.
    ///
    /// # Errors
    /// [`JweError::InvalidKey`].
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Self, JweError> {
        let bad = |reason| JweError::InvalidKey { reason };
        let obj = jwk.as_object().ok_or(bad("JWK is not a JSON object"))?;
        let get = |name: &str| obj.get(name).and_then(|v| v.as_str());
        match get("kty") {
            Some("EC") => {
                if get("alg").is_some_and(|a| a != "ECDH-ES+A256KW") {
                    return Err(bad("EC JWK alg must be ECDH-ES+A256KW"));
                }
                let jwk = EcPublicJwk {
                    kty: "EC".into(),
                    crv: get("crv").unwrap_or_default().into(),
                    x: get("x").unwrap_or_default().into(),
                    y: get("y").unwrap_or_default().into(),
                };
                Ok(Self::EcdhP256(jwk.to_public_key()?))
            }
            Some("RSA") => {
                if get("alg").is_some_and(|a| a != "RSA-OAEP-256") {
                    return Err(bad("RSA JWK alg must be RSA-OAEP-256"));
                }
                let dec = |name: &str| -> Result<Vec<u8>, JweError> {
                    let s = get(name).ok_or(bad("RSA JWK needs n and e"))?;
                    if s.len() > MAX_RSA_BITS / 6 + 4 {
                        return Err(bad("RSA JWK member too long"));
                    }
                    URL_SAFE_NO_PAD
                        .decode(s)
                        .map_err(|_| bad("RSA JWK member is not base64url"))
                };
                let n = rsa::BigUint::from_bytes_be(&dec("n")?);
                let e = rsa::BigUint::from_bytes_be(&dec("e")?);
                check_rsa_size(n.bits())?;
                let k = rsa::RsaPublicKey::new(n, e).map_err(|_| bad("invalid RSA public key"))?;
                Ok(Self::RsaOaep256(Box::new(k)))
            }
            _ => Err(bad("JWK kty must be EC or RSA")),
        }
    }
}

/// The public JWK of a P-256 or RSA key, in the member set the KBS protocol expects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicJwk {
    /// `{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x","y"}`.
    Ec {
        /// base64url of the 32-byte x coordinate.
        x: String,
        /// base64url of the 32-byte y coordinate.
        y: String,
    },
    /// `{"kty":"RSA","alg":"RSA-OAEP-256","n","e"}`.
    Rsa {
        /// base64url of the big-endian modulus.
        n: String,
        /// base64url of the big-endian public exponent.
        e: String,
    },
}

impl PublicJwk {
    pub(super) fn from_p256(pk: &p256::PublicKey) -> Self {
        let point = pk.to_encoded_point(false);
        // An uncompressed, non-identity point always has both coordinates.
        let coord = |c: Option<&p256::FieldBytes>| c.map(|b| URL_SAFE_NO_PAD.encode(b));
        Self::Ec {
            x: coord(point.x()).unwrap_or_default(),
            y: coord(point.y()).unwrap_or_default(),
        }
    }

    pub(super) fn from_rsa(pk: &rsa::RsaPublicKey) -> Self {
        Self::Rsa {
            n: URL_SAFE_NO_PAD.encode(pk.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(pk.e().to_bytes_be()),
        }
    }

    /// The JWK as a JSON object with exactly the members listed on the variants.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            PublicJwk::Ec { x, y } => serde_json::json!({
                "kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": x, "y": y,
            }),
            PublicJwk::Rsa { n, e } => serde_json::json!({
                "kty": "RSA", "alg": "RSA-OAEP-256", "n": n, "e": e,
            }),
        }
    }
}

/// The `epk` member of an ECDH-ES header (and EC JWKs generally).
#[derive(Debug, Deserialize)]
pub(super) struct EcPublicJwk {
    kty: String,
    crv: String,
    x: String,
    y: String,
}

impl EcPublicJwk {
    /// Checks the members and that the point is on P-256.
    pub(super) fn to_public_key(&self) -> Result<p256::PublicKey, JweError> {
        let bad = |reason| JweError::InvalidKey { reason };
        if self.kty != "EC" || self.crv != "P-256" {
            return Err(bad("EC key must be kty EC, crv P-256"));
        }
        if self.x.len() != 43 || self.y.len() != 43 {
            return Err(bad("P-256 coordinates must be 32 bytes"));
        }
        let x = URL_SAFE_NO_PAD
            .decode(&self.x)
            .map_err(|_| bad("EC coordinate is not base64url"))?;
        let y = URL_SAFE_NO_PAD
            .decode(&self.y)
            .map_err(|_| bad("EC coordinate is not base64url"))?;
        let mut sec1 = Vec::with_capacity(65);
        sec1.push(0x04);
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        p256::PublicKey::from_sec1_bytes(&sec1).map_err(|_| bad("point is not on P-256"))
    }
}
