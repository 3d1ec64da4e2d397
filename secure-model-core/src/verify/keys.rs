//! ECDSA keys of the `model_signing sign key` form: PKCS#8 private keys and SPKI public keys in
//! PEM, on P-256, P-384 and P-521 (each with its hash: SHA-256, SHA-384, SHA-512).

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::VerifyError;
use crate::crypto::sha256;

/// A NIST curve of a key signer, with the hash `model_signing` pairs with it (SHA-256 for P-256,
/// SHA-384 for P-384, SHA-512 for P-521).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyCurve {
    /// secp256r1 with SHA-256.
    P256,
    /// secp384r1 with SHA-384.
    P384,
    /// secp521r1 with SHA-512.
    P521,
}

impl KeyCurve {
    const ALL: [KeyCurve; 3] = [KeyCurve::P256, KeyCurve::P384, KeyCurve::P521];

    /// The curve's name as reports print it (`P-256`, `P-384`, `P-521`).
    pub fn name(self) -> &'static str {
        match self {
            KeyCurve::P256 => "P-256",
            KeyCurve::P384 => "P-384",
            KeyCurve::P521 => "P-521",
        }
    }

    /// DER prefix of the curve's `SubjectPublicKeyInfo` with an uncompressed point
    /// (`SEQUENCE { SEQUENCE { id-ecPublicKey, curve OID }, BIT STRING 0x00 || point }`).
    fn spki_prefix(self) -> &'static [u8] {
        match self {
            KeyCurve::P256 => &[
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
            ],
            KeyCurve::P384 => &[
                0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
            ],
            KeyCurve::P521 => &[
                0x30, 0x81, 0x9b, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23, 0x03, 0x81, 0x86, 0x00,
            ],
        }
    }

    /// Length of an uncompressed SEC1 point (`0x04 || x || y`).
    fn point_len(self) -> usize {
        match self {
            KeyCurve::P256 => 65,
            KeyCurve::P384 => 97,
            KeyCurve::P521 => 133,
        }
    }
}

/// What a public-key file that is not an SPKI EC key of ours is, as a hint to the right file.
const NOT_SPKI: &str = "not an ECDSA P-256, P-384 or P-521 SubjectPublicKeyInfo with an \
                        uncompressed point";

/// An ECDSA signing key (publisher side): P-256 (what `keygen` writes), P-384 or P-521, signing
/// with the curve's hash. `Debug` is redacted; not `Clone`.
pub struct SigningKey {
    pair: Pair,
    curve: KeyCurve,
}

/// The key itself: ring for P-256 and P-384; RustCrypto for P-521, which ring lacks (its
/// secret scalar is zeroized on drop).
enum Pair {
    Ring(EcdsaKeyPair),
    P521(p521::ecdsa::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.curve {
            KeyCurve::P256 => f.write_str("SigningKey(ECDSA_P256_SHA256, [redacted])"),
            KeyCurve::P384 => f.write_str("SigningKey(ECDSA_P384_SHA384, [redacted])"),
            KeyCurve::P521 => f.write_str("SigningKey(ECDSA_P521_SHA512, [redacted])"),
        }
    }
}

impl SigningKey {
    /// Generates a P-256 key pair and returns it with its PKCS#8 PEM (zeroized on drop).
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
            reason: "not PEM (a signing key is the PKCS#8 'PRIVATE KEY' file `keygen` writes, \
                     signing-key.pem)",
        })?;
        match p.tag() {
            "PRIVATE KEY" => Self::from_pkcs8_der(p.contents()),
            "EC PRIVATE KEY" => Err(VerifyError::InvalidKey {
                what: "signing key",
                reason: "SEC1 'EC PRIVATE KEY' PEM; convert with `openssl pkcs8 -topk8 -nocrypt`",
            }),
            "PUBLIC KEY" => Err(VerifyError::InvalidKey {
                what: "signing key",
                reason: "this is a public key (a trusted key for readers); the signing key is \
                         the 'PRIVATE KEY' file next to it (`keygen` writes signing-key.pem)",
            }),
            _ => Err(VerifyError::InvalidKey {
                what: "signing key",
                reason: "PEM label is not 'PRIVATE KEY'",
            }),
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, VerifyError> {
        use p521::pkcs8::DecodePrivateKey as _;
        let rng = SystemRandom::new();
        let ring = [
            (KeyCurve::P256, &signature::ECDSA_P256_SHA256_ASN1_SIGNING),
            (KeyCurve::P384, &signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        ]
        .into_iter()
        .find_map(|(curve, alg)| {
            EcdsaKeyPair::from_pkcs8(alg, der, &rng)
                .ok()
                .map(|pair| Self {
                    pair: Pair::Ring(pair),
                    curve,
                })
        });
        if let Some(k) = ring {
            return Ok(k);
        }
        p521::SecretKey::from_pkcs8_der(der)
            .ok()
            .and_then(|sk| p521::ecdsa::SigningKey::from_slice(&sk.to_bytes()).ok())
            .map(|k| Self {
                pair: Pair::P521(k),
                curve: KeyCurve::P521,
            })
            .ok_or(VerifyError::InvalidKey {
                what: "signing key",
                reason: "not a PKCS#8 ECDSA P-256, P-384 or P-521 key",
            })
    }

    /// The key's curve.
    pub fn curve(&self) -> KeyCurve {
        self.curve
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        let point = match &self.pair {
            Pair::Ring(p) => p.public_key().as_ref().to_vec(),
            Pair::P521(k) => p521::ecdsa::VerifyingKey::from(k)
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        };
        VerifyingKey {
            curve: self.curve,
            point,
        }
    }

    /// DER ECDSA signature over `msg` (hashed with the curve's hash).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, VerifyError> {
        let failed = VerifyError::InvalidKey {
            what: "signing key",
            reason: "signing failed",
        };
        match &self.pair {
            Pair::Ring(p) => p
                .sign(&SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| failed),
            Pair::P521(k) => {
                // SHA-512 of msg, a nonce from the operating system's RNG.
                use p521::ecdsa::signature::Signer as _;
                let sig: p521::ecdsa::Signature = k.try_sign(msg).map_err(|_| failed)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }
}

/// An ECDSA public key of a key signer: P-256, P-384 or P-521 (an uncompressed point on the
/// curve, checked when a signature is verified).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    curve: KeyCurve,
    point: Vec<u8>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VerifyingKey({}, hint {})",
            self.curve.name(),
            self.hint()
        )
    }
}

/// The reason for a PEM label other than `PUBLIC KEY` where a trusted key is read, pointing to
/// the right file.
fn wrong_public_label(tag: &str) -> VerifyError {
    let reason = match tag {
        "PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
            "this is a private (signing) key; a trusted key is the public key next to it \
             (`keygen` writes signing-key.pub.pem; `openssl pkey -pubout` derives it)"
        }
        "CERTIFICATE" => {
            "this is a certificate; certificate signers are trusted through the root CA \
             certificates their chains lead to (the trusted certificate roots), not as a \
             trusted key"
        }
        _ => "PEM label is not 'PUBLIC KEY'",
    };
    VerifyError::InvalidKey {
        what: "public key",
        reason,
    }
}

/// The reason for a trusted-key file that is not PEM at all.
const NOT_PEM_PUBLIC: &str = "not PEM (a trusted key is a '-----BEGIN PUBLIC KEY-----' file; \
                              a 32-byte KEK such as kek.bin goes to --key local:FILE)";

impl VerifyingKey {
    /// Reads an SPKI `PUBLIC KEY` PEM holding an uncompressed P-256, P-384 or P-521 point.
    pub fn from_pem(text: &str) -> Result<Self, VerifyError> {
        let p = pem::parse(text).map_err(|_| VerifyError::InvalidKey {
            what: "public key",
            reason: NOT_PEM_PUBLIC,
        })?;
        if p.tag() != "PUBLIC KEY" {
            return Err(wrong_public_label(p.tag()));
        }
        Self::from_spki_der(p.contents())
    }

    /// Reads a DER `SubjectPublicKeyInfo` of a P-256, P-384 or P-521 key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, VerifyError> {
        KeyCurve::ALL
            .into_iter()
            .find_map(|curve| {
                let point = der.strip_prefix(curve.spki_prefix())?;
                (point.len() == curve.point_len() && point.first() == Some(&0x04)).then(|| Self {
                    curve,
                    point: point.to_vec(),
                })
            })
            .ok_or(VerifyError::InvalidKey {
                what: "public key",
                reason: NOT_SPKI,
            })
    }

    /// The key's curve.
    pub fn curve(&self) -> KeyCurve {
        self.curve
    }

    /// SPKI DER.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut v = self.curve.spki_prefix().to_vec();
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

    /// `model_signing`'s key hint: hex SHA-256 of [`VerifyingKey::to_pem`] (for every curve).
    pub fn hint(&self) -> String {
        hex::encode(sha256(self.to_pem().as_bytes()))
    }

    /// Verifies a DER ECDSA signature with the curve's hash (P-256/SHA-256, P-384/SHA-384,
    /// P-521/SHA-512, as `model_signing` signs).
    ///
    /// # Errors
    /// [`crate::crypto::CryptoError::Authentication`] (opaque) when it does not verify.
    pub fn verify(&self, msg: &[u8], sig_der: &[u8]) -> Result<(), crate::crypto::CryptoError> {
        let ok = match self.curve {
            KeyCurve::P256 => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point[..])
                    .verify(msg, sig_der)
                    .is_ok()
            }
            KeyCurve::P384 => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_ASN1, &self.point[..])
                    .verify(msg, sig_der)
                    .is_ok()
            }
            KeyCurve::P521 => {
                // ring has no P-521: RustCrypto's verifier over a SHA-512 prehash.
                use p521::ecdsa::signature::hazmat::PrehashVerifier;
                let digest = ring::digest::digest(&ring::digest::SHA512, msg);
                p521::ecdsa::VerifyingKey::from_sec1_bytes(&self.point)
                    .ok()
                    .zip(p521::ecdsa::Signature::from_der(sig_der).ok())
                    .is_some_and(|(k, s)| k.verify_prehash(digest.as_ref(), &s).is_ok())
            }
        };
        if ok {
            Ok(())
        } else {
            Err(crate::crypto::CryptoError::Authentication)
        }
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
            reason: NOT_PEM_PUBLIC,
        })?;
        let mut out = Self::new();
        for b in blocks {
            if b.tag() != "PUBLIC KEY" {
                return Err(wrong_public_label(b.tag()));
            }
            out.push(VerifyingKey::from_spki_der(b.contents())?);
        }
        if out.keys.is_empty() {
            return Err(VerifyError::InvalidKey {
                what: "public key",
                reason: NOT_PEM_PUBLIC,
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
    fn p384_signs_and_every_curve_reads_back() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/model-signing/keys");
        let sk = SigningKey::from_pem(
            &std::fs::read_to_string(dir.join("ec-p384-private.pem")).unwrap(),
        )
        .unwrap();
        assert_eq!(sk.curve(), KeyCurve::P384);
        assert_eq!(
            format!("{sk:?}"),
            "SigningKey(ECDSA_P384_SHA384, [redacted])"
        );
        let sig = sk.sign(b"hello").unwrap();
        let vk = sk.verifying_key();
        vk.verify(b"hello", &sig).unwrap();
        assert!(vk.verify(b"hellp", &sig).is_err());
        for (file, curve) in [
            ("ec-p256-public.pem", KeyCurve::P256),
            ("ec-p384-public.pem", KeyCurve::P384),
            ("ec-p521-public.pem", KeyCurve::P521),
        ] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let k = VerifyingKey::from_pem(&text).unwrap();
            assert_eq!(k.curve(), curve, "{file}");
            // The PEM is written back byte for byte, so the hint is upstream's.
            assert_eq!(k.to_pem(), text, "{file}");
        }
        let p384 = std::fs::read_to_string(dir.join("ec-p384-public.pem")).unwrap();
        assert_eq!(VerifyingKey::from_pem(&p384).unwrap(), vk);
    }

    #[test]
    fn p521_signs_with_sha512() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/model-signing/keys");
        let sk = SigningKey::from_pem(
            &std::fs::read_to_string(dir.join("ec-p521-private.pem")).unwrap(),
        )
        .unwrap();
        assert_eq!(sk.curve(), KeyCurve::P521);
        assert_eq!(
            format!("{sk:?}"),
            "SigningKey(ECDSA_P521_SHA512, [redacted])"
        );
        let vk = sk.verifying_key();
        assert_eq!(
            vk.to_pem(),
            std::fs::read_to_string(dir.join("ec-p521-public.pem")).unwrap()
        );
        let sig = sk.sign(b"hello").unwrap();
        vk.verify(b"hello", &sig).unwrap();
        assert!(vk.verify(b"hellp", &sig).is_err());
    }

    #[test]
    fn p521_signature_verifies_with_sha512() {
        // Signed by Python `cryptography` with ec-p521-private.pem over b"msg": SHA-512 as
        // `model_signing` does, then SHA-384, which must not verify.
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/model-signing/keys");
        let vk = VerifyingKey::from_pem(
            &std::fs::read_to_string(dir.join("ec-p521-public.pem")).unwrap(),
        )
        .unwrap();
        let sha512 = hex::decode("3081880242017cd0583aa70aaa775c1f6f67cfd61f7453e4056513a75d852d518134d4c3100486d4102913a2c8398115f87a301e10dad39fbea76e300faf02be37de8ac339d55d024200ca41dd1d5b6cdf6376fb0c4610bfad78c5430c389b5575ca13a2feedeaad43dd8b9177a629184ec5b7b2d100eb56adaac0b29ff4e50b7ab63da938124e1d31c817").unwrap();
        let sha384 = hex::decode("308186024150a7e92a5c122ada620c52c32872e04d210e70f37e087201b65a415a9b0884a20367d9b09f3e3890726bad15b2c8bb398e05ab13ee7a3e1a341b3857b7dca0066e02414d8b4befb1bb5767719c56bd288803697c975222a46ab54974e22de07fca8894eee55a1d3b43e8d6d2a489166d28034c86a5c723b867a4c3a78f39f66874816922").unwrap();
        vk.verify(b"msg", &sha512).unwrap();
        assert!(vk.verify(b"msh", &sha512).is_err());
        assert!(vk.verify(b"msg", &sha384).is_err());
    }

    #[test]
    fn wrong_files_point_to_the_right_one() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/model-signing/keys");
        let private = std::fs::read_to_string(dir.join("ec-p384-private.pem")).unwrap();
        assert_eq!(
            TrustedKeys::from_pem_bundle(&private)
                .unwrap_err()
                .to_string(),
            "invalid public key: this is a private (signing) key; a trusted key is the public \
             key next to it (`keygen` writes signing-key.pub.pem; `openssl pkey -pubout` \
             derives it)"
        );
        assert_eq!(
            VerifyingKey::from_pem("\u{1}\u{2}binary kek")
                .unwrap_err()
                .to_string(),
            "invalid public key: not PEM (a trusted key is a '-----BEGIN PUBLIC KEY-----' file; \
             a 32-byte KEK such as kek.bin goes to --key local:FILE)"
        );
        let public = std::fs::read_to_string(dir.join("ec-p256-public.pem")).unwrap();
        assert!(SigningKey::from_pem(&public)
            .unwrap_err()
            .to_string()
            .contains("signing-key.pem"));
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
