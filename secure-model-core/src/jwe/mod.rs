//! JSON Web Encryption (RFC 7516), strict subset: owns parsing, decryption and encryption of
//! JWE objects with `A256GCM` content encryption and the key-management algorithms
//! `ECDH-ES+A256KW` (P-256), `RSA-OAEP-256`, `A256KW` and `dir`. Knows nothing of KBS, key
//! providers or packages.
//!
//! Both serializations are accepted: compact (`h.k.iv.ct.tag`) and flattened JSON
//! (`{"protected","encrypted_key","iv","ciphertext","tag"}`). Anything outside the subset is
//! refused with a typed error before any cryptography: another `alg` or `enc`, `zip`, `crit`,
//! a JSON `aad`, unprotected headers (`header`, `unprotected`), the general JSON serialization
//! with `recipients`. The associated data of the content encryption is the ASCII of the
//! `protected` member exactly as received, never a re-serialization.
//!
//! Every authentication or key-unwrap failure is the one opaque [`JweError::DecryptionFailed`].
//! Lengths are checked against fixed caps before anything is decoded or allocated.
//!
//! ```
//! use secure_model_core::jwe::{DecryptionKey, EncryptionKey, Jwe};
//! # fn main() -> Result<(), secure_model_core::jwe::JweError> {
//! let key = [7u8; 32];
//! let compact = Jwe::encrypt(b"hello", &EncryptionKey::a256kw(&key)?)?.to_compact();
//! let plain = Jwe::parse_compact(&compact)?.decrypt(&DecryptionKey::a256kw(&key)?)?;
//! assert_eq!(plain.as_slice(), b"hello");
//! # Ok(()) }
//! ```

mod alg;
mod keys;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::io::Write as _;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde::Deserialize;
use zeroize::Zeroizing;

pub use keys::{DecryptionKey, EncryptionKey, PublicJwk, MAX_RSA_BITS, MIN_RSA_BITS};

/// Largest serialized JWE accepted (either serialization), in bytes.
pub const MAX_SERIALIZED_LEN: usize = 64 * 1024 * 1024;
/// Largest decoded protected header accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 16 * 1024;
/// Largest decoded `encrypted_key` accepted, in bytes (an RSA-8192 OAEP block is 1024).
pub const MAX_ENCRYPTED_KEY_LEN: usize = 1024;

const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const CEK_LEN: usize = 32;

/// Errors of JWE parsing, decryption and encryption.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JweError {
    /// The serialization is not a well-formed JWE of the supported shapes.
    #[error("malformed JWE: {reason}")]
    Malformed {
        /// What is wrong (never secret material).
        reason: &'static str,
    },
    /// The input or one of its members is larger than the cap.
    #[error("JWE {what} is {len} bytes, larger than the {max}-byte limit")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The key-management algorithm (`alg`) is not supported.
    #[error("unsupported JWE key management algorithm {alg:?} (supported: ECDH-ES+A256KW, RSA-OAEP-256, A256KW, dir)")]
    UnsupportedAlgorithm {
        /// The value received (truncated to 64 characters).
        alg: String,
    },
    /// The content-encryption algorithm (`enc`) is not supported.
    #[error("unsupported JWE content encryption {enc:?} (supported: A256GCM)")]
    UnsupportedEncryption {
        /// The value received (truncated to 64 characters).
        enc: String,
    },
    /// A header parameter or serialization member this implementation refuses.
    #[error("unsupported JWE member {member:?}")]
    UnsupportedMember {
        /// `zip`, `crit`, `aad`, `header`, `unprotected`, `recipients`.
        member: &'static str,
    },
    /// The key given does not fit the object's `alg` (configuration error, not tampering).
    #[error("JWE uses {alg} but the key given is for {key}")]
    KeyMismatch {
        /// The object's `alg`.
        alg: &'static str,
        /// The key's algorithm.
        key: &'static str,
    },
    /// A key (JWK, PKCS#8, raw bytes) is invalid.
    #[error("invalid JWE key: {reason}")]
    InvalidKey {
        /// Why (never key bytes).
        reason: &'static str,
    },
    /// Decryption failed: wrong key, tampered header, key, IV, ciphertext or tag. Opaque on
    /// purpose: the reason inside the primitive is never revealed.
    #[error("JWE decryption failed")]
    DecryptionFailed,
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Rng,
}

/// Key-management algorithms of this subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDH-ES key agreement on P-256, Concat KDF, AES-256 key wrap of the CEK.
    EcdhEsA256kw,
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256.
    RsaOaep256,
    /// AES-256 key wrap (RFC 3394) under a shared key.
    A256kw,
    /// The shared key is the CEK.
    Dir,
}

impl KeyAlgorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdhEsA256kw => "ECDH-ES+A256KW",
            KeyAlgorithm::RsaOaep256 => "RSA-OAEP-256",
            KeyAlgorithm::A256kw => "A256KW",
            KeyAlgorithm::Dir => "dir",
        }
    }

    fn parse(s: &str) -> Result<Self, JweError> {
        match s {
            "ECDH-ES+A256KW" => Ok(KeyAlgorithm::EcdhEsA256kw),
            "RSA-OAEP-256" => Ok(KeyAlgorithm::RsaOaep256),
            "A256KW" => Ok(KeyAlgorithm::A256kw),
            "dir" => Ok(KeyAlgorithm::Dir),
            other => Err(JweError::UnsupportedAlgorithm {
                alg: shorten(other),
            }),
        }
    }
}

fn shorten(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The checked protected header. Duplicate known members are refused by serde; unknown
/// members other than `zip`/`crit` (`kid`, `typ`, `cty`...) are ignored.
#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: String,
    enc: String,
    #[serde(default)]
    zip: Option<serde_json::Value>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
    #[serde(default)]
    epk: Option<keys::EcPublicJwk>,
    #[serde(default)]
    apu: Option<String>,
    #[serde(default)]
    apv: Option<String>,
}

/// The parsed protected header of a [`Jwe`].
#[derive(Debug, Clone)]
pub struct ProtectedHeader {
    alg: KeyAlgorithm,
    epk: Option<p256::PublicKey>,
    apu: Vec<u8>,
    apv: Vec<u8>,
}

impl ProtectedHeader {
    /// The key-management algorithm.
    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    fn parse(json: &[u8]) -> Result<Self, JweError> {
        let raw: RawHeader = serde_json::from_slice(json).map_err(|_| JweError::Malformed {
            reason: "protected header is not a JSON object with string alg and enc",
        })?;
        if raw.zip.is_some() {
            return Err(JweError::UnsupportedMember { member: "zip" });
        }
        if raw.crit.is_some() {
            return Err(JweError::UnsupportedMember { member: "crit" });
        }
        let alg = KeyAlgorithm::parse(&raw.alg)?;
        if raw.enc != "A256GCM" {
            return Err(JweError::UnsupportedEncryption {
                enc: shorten(&raw.enc),
            });
        }
        let epk = match (alg, raw.epk) {
            (KeyAlgorithm::EcdhEsA256kw, Some(jwk)) => Some(jwk.to_public_key()?),
            (KeyAlgorithm::EcdhEsA256kw, None) => {
                return Err(JweError::Malformed {
                    reason: "ECDH-ES+A256KW header without epk",
                })
            }
            (_, Some(_)) => {
                return Err(JweError::Malformed {
                    reason: "epk in a header whose alg is not ECDH-ES",
                })
            }
            (_, None) => None,
        };
        let party = |v: Option<String>| -> Result<Vec<u8>, JweError> {
            match v {
                None => Ok(Vec::new()),
                Some(s) => URL_SAFE_NO_PAD.decode(s).map_err(|_| JweError::Malformed {
                    reason: "apu/apv is not base64url",
                }),
            }
        };
        Ok(Self {
            alg,
            epk,
            apu: party(raw.apu)?,
            apv: party(raw.apv)?,
        })
    }
}

/// A parsed JWE object (one recipient, `A256GCM`). Create with [`Jwe::parse_compact`],
/// [`Jwe::parse_flattened`] or [`Jwe::encrypt`].
#[derive(Debug, Clone)]
pub struct Jwe {
    /// The `protected` member exactly as received (base64url text); it is the AAD.
    protected_b64: String,
    header: ProtectedHeader,
    encrypted_key: Vec<u8>,
    iv: [u8; IV_LEN],
    ciphertext: Vec<u8>,
    tag: [u8; TAG_LEN],
}

/// Flattened JSON serialization. Unknown members are refused (`deny_unknown_fields`), so a
/// JSON `aad`, `header` or `recipients` cannot be silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    #[serde(default)]
    encrypted_key: Option<String>,
    iv: String,
    ciphertext: String,
    tag: String,
}

fn b64_field(s: &str, what: &'static str, max: usize) -> Result<Vec<u8>, JweError> {
    // base64 expands 3 bytes into 4 characters; check before decoding.
    let max_chars = max.div_ceil(3).saturating_mul(4);
    if s.len() > max_chars {
        return Err(JweError::TooLarge {
            what,
            len: s.len() / 4 * 3,
            max,
        });
    }
    URL_SAFE_NO_PAD.decode(s).map_err(|_| JweError::Malformed {
        reason: "a member is not unpadded base64url",
    })
}

/// [`b64_field`] decoded into a vector with `room` spare bytes of capacity (the tag appended
/// when opening in place, without reallocating).
fn b64_field_with_room(
    s: &str,
    what: &'static str,
    max: usize,
    room: usize,
) -> Result<Vec<u8>, JweError> {
    let max_chars = max.div_ceil(3).saturating_mul(4);
    if s.len() > max_chars {
        return Err(JweError::TooLarge {
            what,
            len: s.len() / 4 * 3,
            max,
        });
    }
    let mut out = Vec::new();
    out.try_reserve_exact(s.len() / 4 * 3 + 3 + room)
        .map_err(|_| JweError::TooLarge {
            what,
            len: s.len() / 4 * 3,
            max,
        })?;
    URL_SAFE_NO_PAD
        .decode_vec(s, &mut out)
        .map_err(|_| JweError::Malformed {
            reason: "a member is not unpadded base64url",
        })?;
    Ok(out)
}

impl Jwe {
    /// Parses the compact serialization `BASE64URL(header).key.iv.ciphertext.tag`.
    ///
    /// # Errors
    /// [`JweError::Malformed`], [`JweError::TooLarge`] and the unsupported-algorithm kinds.
    pub fn parse_compact(text: &str) -> Result<Self, JweError> {
        Self::parse_compact_with_limit(text, MAX_SERIALIZED_LEN)
    }

    /// [`Jwe::parse_compact`] with a caller-chosen cap on the serialization (and so the
    /// ciphertext) instead of [`MAX_SERIALIZED_LEN`]; for bulk data such as JWE-encrypted model
    /// files, whose callers bound memory themselves.
    ///
    /// # Errors
    /// As [`Jwe::parse_compact`].
    pub fn parse_compact_with_limit(text: &str, max_len: usize) -> Result<Self, JweError> {
        check_len(text.len(), max_len)?;
        let text = text.trim_end_matches(['\n', '\r']);
        let mut parts = text.split('.');
        let (Some(h), Some(k), Some(iv), Some(ct), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(JweError::Malformed {
                reason: "compact serialization must have exactly five parts",
            });
        };
        Self::from_parts(h, k, iv, ct, tag, max_len)
    }

    /// Parses the flattened JSON serialization
    /// `{"protected","encrypted_key","iv","ciphertext","tag"}`.
    ///
    /// # Errors
    /// As [`Jwe::parse_compact`]; members outside the subset (`aad`, `header`, `unprotected`,
    /// `recipients`) are [`JweError::UnsupportedMember`].
    pub fn parse_flattened(json: &[u8]) -> Result<Self, JweError> {
        check_len(json.len(), MAX_SERIALIZED_LEN)?;
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|_| JweError::Malformed {
                reason: "flattened serialization is not JSON",
            })?;
        if let Some(obj) = value.as_object() {
            for member in ["aad", "header", "unprotected", "recipients"] {
                if obj.contains_key(member) {
                    return Err(JweError::UnsupportedMember { member });
                }
            }
        }
        let f: Flattened = serde_json::from_value(value).map_err(|_| JweError::Malformed {
            reason: "flattened serialization needs string members protected, iv, ciphertext, tag and no others",
        })?;
        Self::from_parts(
            &f.protected,
            f.encrypted_key.as_deref().unwrap_or(""),
            &f.iv,
            &f.ciphertext,
            &f.tag,
            MAX_SERIALIZED_LEN,
        )
    }

    fn from_parts(
        h: &str,
        k: &str,
        iv: &str,
        ct: &str,
        tag: &str,
        max_len: usize,
    ) -> Result<Self, JweError> {
        let header_json = b64_field(h, "protected header", MAX_HEADER_LEN)?;
        let header = ProtectedHeader::parse(&header_json)?;
        let encrypted_key = b64_field(k, "encrypted key", MAX_ENCRYPTED_KEY_LEN)?;
        let iv: [u8; IV_LEN] =
            b64_field(iv, "iv", IV_LEN)?
                .try_into()
                .map_err(|_| JweError::Malformed {
                    reason: "iv must be 96 bits",
                })?;
        let tag: [u8; TAG_LEN] =
            b64_field(tag, "tag", TAG_LEN)?
                .try_into()
                .map_err(|_| JweError::Malformed {
                    reason: "tag must be 128 bits",
                })?;
        let ciphertext = b64_field_with_room(ct, "ciphertext", max_len, TAG_LEN)?;
        Ok(Self {
            protected_b64: h.to_owned(),
            header,
            encrypted_key,
            iv,
            ciphertext,
            tag,
        })
    }

    /// The parsed protected header.
    pub fn header(&self) -> &ProtectedHeader {
        &self.header
    }

    /// Decrypts with `key`, which must match the object's `alg`.
    ///
    /// # Errors
    /// [`JweError::KeyMismatch`] when the key is for another algorithm;
    /// [`JweError::DecryptionFailed`] for any authentication or unwrap failure.
    pub fn decrypt(&self, key: &DecryptionKey) -> Result<Zeroizing<Vec<u8>>, JweError> {
        let mut buf = Zeroizing::new(Vec::with_capacity(self.ciphertext.len() + TAG_LEN));
        buf.extend_from_slice(&self.ciphertext);
        self.open(key, buf)
    }

    /// [`Jwe::decrypt`], consuming the object: the ciphertext is opened in place, so no second
    /// copy of it (or of the plaintext) is made. For bulk data.
    ///
    /// # Errors
    /// As [`Jwe::decrypt`].
    pub fn decrypt_owned(mut self, key: &DecryptionKey) -> Result<Zeroizing<Vec<u8>>, JweError> {
        // The decoded ciphertext has room for the tag: no reallocation, so no plaintext copy
        // is left behind unzeroized.
        let buf = Zeroizing::new(std::mem::take(&mut self.ciphertext));
        self.open(key, buf)
    }

    /// Unwraps the CEK and opens `ciphertext || tag` in place in `buf` (which holds the
    /// ciphertext).
    fn open(
        &self,
        key: &DecryptionKey,
        mut buf: Zeroizing<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>, JweError> {
        let cek = alg::unwrap_cek(&self.header, &self.encrypted_key, key)?;
        let unbound = UnboundKey::new(&AES_256_GCM, cek.as_slice())
            .map_err(|_| JweError::DecryptionFailed)?;
        let aead = LessSafeKey::new(unbound);
        buf.extend_from_slice(&self.tag);
        let plain_len = aead
            .open_in_place(
                Nonce::assume_unique_for_key(self.iv),
                Aad::from(self.protected_b64.as_bytes()),
                buf.as_mut_slice(),
            )
            .map_err(|_| JweError::DecryptionFailed)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }

    /// Encrypts `plaintext` to `key` with `A256GCM` and a fresh random CEK (or the shared key
    /// itself for `dir`) and IV.
    ///
    /// # Errors
    /// [`JweError::Rng`]; [`JweError::InvalidKey`] for unusable keys.
    pub fn encrypt(plaintext: &[u8], key: &EncryptionKey) -> Result<Self, JweError> {
        Self::encrypt_with_limit(plaintext, key, MAX_SERIALIZED_LEN)
    }

    /// [`Jwe::encrypt`] with a caller-chosen cap on the plaintext instead of
    /// [`MAX_SERIALIZED_LEN`].
    ///
    /// # Errors
    /// As [`Jwe::encrypt`]; [`JweError::TooLarge`] over `max_len`.
    pub fn encrypt_with_limit(
        plaintext: &[u8],
        key: &EncryptionKey,
        max_len: usize,
    ) -> Result<Self, JweError> {
        check_len(plaintext.len(), max_len)?;
        Self::encrypt_owned(Zeroizing::new(plaintext.to_vec()), key, max_len)
    }

    /// [`Jwe::encrypt_with_limit`], encrypting `plaintext` in place (no second copy). For bulk
    /// data.
    ///
    /// # Errors
    /// As [`Jwe::encrypt_with_limit`].
    pub fn encrypt_owned(
        mut plaintext: Zeroizing<Vec<u8>>,
        key: &EncryptionKey,
        max_len: usize,
    ) -> Result<Self, JweError> {
        check_len(plaintext.len(), max_len)?;
        let (header_json, cek, encrypted_key) = alg::wrap_new_cek(key)?;
        let protected_b64 = URL_SAFE_NO_PAD.encode(header_json.as_bytes());
        let header = ProtectedHeader::parse(header_json.as_bytes())?;
        let mut iv = [0u8; IV_LEN];
        crate::crypto::random_fill(&mut iv).map_err(|_| JweError::Rng)?;
        let unbound =
            UnboundKey::new(&AES_256_GCM, cek.as_slice()).map_err(|_| JweError::InvalidKey {
                reason: "content encryption key must be 256 bits",
            })?;
        let aead = LessSafeKey::new(unbound);
        let tag = aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(protected_b64.as_bytes()),
                plaintext.as_mut_slice(),
            )
            .map_err(|_| JweError::Rng)?;
        let tag: [u8; TAG_LEN] = tag.as_ref().try_into().map_err(|_| JweError::Malformed {
            reason: "AES-GCM tag must be 128 bits",
        })?;
        // Sealed in place: the buffer now holds ciphertext only.
        let ciphertext = std::mem::take(&mut *plaintext);
        Ok(Self {
            protected_b64,
            header,
            encrypted_key,
            iv,
            ciphertext,
            tag,
        })
    }

    /// Writes the compact serialization to `w`, base64url-encoding the ciphertext as it goes
    /// (no copy of the whole serialization in memory); returns the bytes written.
    ///
    /// # Errors
    /// The writer's I/O errors.
    pub fn write_compact(&self, w: &mut impl std::io::Write) -> std::io::Result<u64> {
        let mut count = CountingWriter { inner: w, n: 0 };
        write!(
            count,
            "{}.{}.{}.",
            self.protected_b64,
            URL_SAFE_NO_PAD.encode(&self.encrypted_key),
            URL_SAFE_NO_PAD.encode(self.iv)
        )?;
        {
            let mut enc = base64::write::EncoderWriter::new(&mut count, &URL_SAFE_NO_PAD);
            enc.write_all(&self.ciphertext)?;
            enc.finish()?;
        }
        write!(count, ".{}", URL_SAFE_NO_PAD.encode(self.tag))?;
        Ok(count.n)
    }

    /// The compact serialization.
    pub fn to_compact(&self) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            self.protected_b64,
            URL_SAFE_NO_PAD.encode(&self.encrypted_key),
            URL_SAFE_NO_PAD.encode(self.iv),
            URL_SAFE_NO_PAD.encode(&self.ciphertext),
            URL_SAFE_NO_PAD.encode(self.tag),
        )
    }

    /// The flattened JSON serialization (the shape a Trustee KBS returns for a resource).
    pub fn to_flattened_json(&self) -> String {
        serde_json::json!({
            "protected": self.protected_b64,
            "encrypted_key": URL_SAFE_NO_PAD.encode(&self.encrypted_key),
            "iv": URL_SAFE_NO_PAD.encode(self.iv),
            "ciphertext": URL_SAFE_NO_PAD.encode(&self.ciphertext),
            "tag": URL_SAFE_NO_PAD.encode(self.tag),
        })
        .to_string()
    }
}

/// Counts the bytes written through it.
struct CountingWriter<'a, W: std::io::Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: std::io::Write> std::io::Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn check_len(len: usize, max: usize) -> Result<(), JweError> {
    if len > max {
        return Err(JweError::TooLarge {
            what: "serialization",
            len,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
