//! KServe's confidential-mode model files (KServe v0.20+): owns reading and writing them, the
//! key forms KServe accepts ([`KserveKey`]), detection, strict decryption, size caps, and the
//! staging of a plain KServe-style download ([`stage_download`]) with the mixed-content rule
//! and the `VERIFICATION_DIGEST` pin. Uses the core's JWE primitives
//! ([`secure_model_core::jwe`]), its storage to list and read objects and its loader's
//! staging directory to publish atomically. Knows nothing of packages.
//!
//! A KServe JWE file is one compact JWE (`header.key.iv.ciphertext.tag`) per model file,
//! `alg` `A256KW` (the key wraps a random content key) or `dir` (the key is the content key),
//! `enc` `A256GCM`, named `<file>.jwe` or recognised by content starting with `eyJ`. Only
//! that is accepted: other `alg`/`enc` values (including ones the core's JWE module
//! supports for KBS responses), `zip`, `crit` and the JSON serializations are refused before
//! any key is used.
//!
//! What this mode does not give, unlike packages (see `docs/kserve-jwe.md`): no publisher
//! signature (whoever holds the key can encrypt a model), no binding of a file to its name or
//! to the other files (files can be swapped, dropped or replayed from an older upload; a
//! plaintext file can be slipped in, which [`stage_download`] refuses unless allowed), and
//! every file is decrypted whole in memory (compact JWE cannot be streamed).
//!
//! ```
//! use secure_model_kserve::jwe::{decrypt, encrypt, KserveAlg, KserveKey};
//! # fn main() -> Result<(), secure_model_kserve::jwe::KserveJweError> {
//! let key = KserveKey::generate()?;
//! let compact = encrypt(b"weights", &key, KserveAlg::A256kw, 1 << 20)?;
//! assert!(compact.starts_with("eyJ"));
//! let plain = decrypt("model.bin.jwe", compact.as_bytes(), &key, 1 << 20)?;
//! assert_eq!(plain.as_slice(), b"weights");
//! # Ok(()) }
//! ```

mod download;
mod files;
mod key;

use zeroize::Zeroizing;

pub use download::{
    stage_download, DownloadReport, JweDownloadOptions, ResourceKey, StagedDownload, PUBLISHED_MODE,
};
pub use files::{decrypt_file, encrypt_file, encrypt_tree, EncryptedFile, TreeReport};
pub use key::{KeyForm, KserveKey, KEY_LEN};

use secure_model_core::jwe::{DecryptionKey, EncryptionKey, Jwe, JweError, KeyAlgorithm};
use secure_model_core::ErrorClass;

/// File-name suffix of KServe's encrypted files (compared case-insensitively, as KServe does).
pub const JWE_SUFFIX: &str = ".jwe";
/// First bytes of a compact JWE (`base64url('{"')`): KServe's content detection.
pub const JWE_MAGIC: &[u8] = b"eyJ";
/// Default cap on one JWE file read into memory: 4 GiB.
pub const DEFAULT_MAX_JWE_BYTES: u64 = 4 << 30;

/// Errors of KServe JWE handling. Messages name files, never key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KserveJweError {
    /// The key material is not one of the accepted forms.
    #[error("invalid KServe JWE key: {reason}")]
    InvalidKey {
        /// Why (never key bytes).
        reason: &'static str,
    },
    /// A file did not decrypt: wrong key, or tampered header, key, IV, ciphertext or tag.
    /// Opaque on purpose.
    #[error("decryption of {path} failed: wrong key or the file is not authentic")]
    DecryptionFailed {
        /// The file.
        path: String,
    },
    /// A file is not a JWE of the accepted shape (malformed, `zip`, `crit`, other `enc`...).
    #[error("{path} is not an acceptable KServe JWE file (compact serialization, alg A256KW or dir, enc A256GCM, no zip or crit)")]
    Jwe {
        /// The file.
        path: String,
        /// What the JWE parser refused.
        #[source]
        source: JweError,
    },
    /// The JWE uses a key-management algorithm KServe's mode does not use.
    #[error("{path}: JWE alg {alg} is refused (KServe JWE files use A256KW or dir)")]
    UnsupportedAlgorithm {
        /// The file.
        path: String,
        /// The `alg`.
        alg: &'static str,
    },
    /// A JWE file is larger than the in-memory cap.
    #[error("{path} is {size} bytes, over the {max}-byte limit for a JWE file decrypted in memory (compact JWE cannot be streamed; raise SECURE_MODEL_JWE_MAX_BYTES if the pod has the memory, or publish a package instead)")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// An empty file cannot be written as a KServe JWE file.
    #[error("{path} is empty: KServe's decryptor (jwcrypto) refuses a JWE with an empty payload; leave empty files out of the encrypted upload (--skip-empty)")]
    EmptyFile {
        /// The file.
        path: String,
    },
    /// Some downloaded files are encrypted and others are not.
    #[error("download mixes {encrypted} encrypted file(s) with {plain} unencrypted file(s) (e.g. {examples}); an attacker with write access to the storage could have added them. Set SECURE_MODEL_ALLOW_MIXED_JWE=true if the model really ships unencrypted files")]
    MixedContent {
        /// Encrypted files.
        encrypted: usize,
        /// Unencrypted files.
        plain: usize,
        /// A few unencrypted paths.
        examples: String,
    },
    /// Confidential mode, but no downloaded file is encrypted.
    #[error("confidential mode: none of the {files} downloaded file(s) is a JWE file (.jwe or content starting with eyJ); refusing to serve an unencrypted model")]
    NothingEncrypted {
        /// Number of files.
        files: usize,
    },
    /// The downloaded bytes do not match `VERIFICATION_DIGEST`.
    #[error("VERIFICATION_DIGEST mismatch for {path}: expected sha256:{expected}, downloaded sha256:{actual}")]
    DigestMismatch {
        /// The file.
        path: String,
        /// Expected hex digest.
        expected: String,
        /// Digest of what was downloaded.
        actual: String,
    },
    /// `VERIFICATION_DIGEST` pins one file, but the download has several.
    #[error("VERIFICATION_DIGEST pins a single-file artifact, but the download has {files} files")]
    DigestNeedsSingleFile {
        /// Number of files.
        files: usize,
    },
    /// Two objects would produce the same output file (`a` and `a.jwe`).
    #[error("objects {first} and {second} would both be written to {output}")]
    NameCollision {
        /// First object.
        first: String,
        /// Second object.
        second: String,
        /// Output path.
        output: String,
    },
    /// An object key is not a safe relative path.
    #[error("object key {key:?} is not a safe relative path")]
    InvalidPath {
        /// The key (escaped).
        key: String,
        /// Why.
        #[source]
        source: secure_model_core::format::FormatError,
    },
    /// The download lists no object, or more than the cap.
    #[error("{location}: {reason}")]
    Listing {
        /// The location.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Storage failure.
    #[error(transparent)]
    Storage(#[from] secure_model_core::storage::StorageError),
    /// Staging or publishing failure (destination policy, conflicts, I/O).
    #[error(transparent)]
    Load(#[from] secure_model_core::loader::LoadError),
    /// Obtaining the key failed.
    #[error("obtaining the KServe JWE key")]
    Key(#[from] secure_model_core::keys::KeyError),
    /// A local file could not be read or written.
    #[error("{path}: {action}")]
    Io {
        /// The file.
        path: String,
        /// What was attempted.
        action: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Rng,
}

impl KserveJweError {
    /// The failure class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidKey { .. } => ErrorClass::Key,
            Self::DecryptionFailed { .. }
            | Self::Jwe { .. }
            | Self::UnsupportedAlgorithm { .. }
            | Self::TooLarge { .. }
            | Self::MixedContent { .. }
            | Self::NothingEncrypted { .. }
            | Self::DigestMismatch { .. }
            | Self::NameCollision { .. }
            | Self::InvalidPath { .. } => ErrorClass::Integrity,
            Self::DigestNeedsSingleFile { .. } | Self::EmptyFile { .. } => ErrorClass::Config,
            Self::Listing { .. } => ErrorClass::Storage,
            Self::Storage(e) => e.class(),
            Self::Load(e) => e.class(),
            Self::Key(e) => e.class(),
            Self::Io { .. } | Self::Rng => ErrorClass::Internal,
        }
    }
}

/// The key-management algorithms of KServe's JWE files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KserveAlg {
    /// AES-256 key wrap of a fresh random content key per file (the default; what KServe's
    /// documentation uses).
    #[default]
    A256kw,
    /// The key itself is the content key of every file.
    Dir,
}

impl KserveAlg {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A256kw => "A256KW",
            Self::Dir => "dir",
        }
    }
}

impl std::str::FromStr for KserveAlg {
    type Err = KserveJweError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "A256KW" => Ok(Self::A256kw),
            "dir" => Ok(Self::Dir),
            _ => Err(KserveJweError::UnsupportedAlgorithm {
                path: "(argument)".into(),
                alg: "other than A256KW or dir",
            }),
        }
    }
}

/// Whether the last component of `path` has KServe's `.jwe` suffix (case-insensitive, and
/// like Python's `Path.suffix` not for a name that is only `.jwe`).
pub fn has_jwe_suffix(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.len() > JWE_SUFFIX.len()
        && name
            .get(name.len() - JWE_SUFFIX.len()..)
            .is_some_and(|s| s.eq_ignore_ascii_case(JWE_SUFFIX))
}

/// Whether content starts like a compact JWE (KServe's content detection).
pub fn looks_like_jwe(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(JWE_MAGIC)
}

/// The plaintext file name: `path` without its `.jwe` suffix (unchanged without one).
pub fn output_path(path: &str) -> &str {
    if has_jwe_suffix(path) {
        path.get(..path.len() - JWE_SUFFIX.len()).unwrap_or(path)
    } else {
        path
    }
}

fn jwe_err(path: &str, e: JweError) -> KserveJweError {
    match e {
        JweError::DecryptionFailed => KserveJweError::DecryptionFailed { path: path.into() },
        source => KserveJweError::Jwe {
            path: path.into(),
            source,
        },
    }
}

fn cap(max_len: u64) -> usize {
    usize::try_from(max_len).unwrap_or(usize::MAX)
}

fn too_large(path: &str, size: u64, max_len: u64) -> Result<(), KserveJweError> {
    if size > max_len {
        return Err(KserveJweError::TooLarge {
            path: path.into(),
            size,
            max: max_len,
        });
    }
    Ok(())
}

/// Parses one KServe JWE file and picks the decryption key its `alg` needs.
fn parse_file(
    path: &str,
    serialized: &[u8],
    key: &KserveKey,
    max_len: u64,
) -> Result<(Jwe, DecryptionKey), KserveJweError> {
    too_large(path, serialized.len() as u64, max_len)?;
    let text = std::str::from_utf8(serialized).map_err(|_| KserveJweError::Jwe {
        path: path.into(),
        source: JweError::Malformed {
            reason: "a compact JWE is ASCII text",
        },
    })?;
    let jwe = Jwe::parse_compact_with_limit(text, cap(max_len)).map_err(|e| jwe_err(path, e))?;
    let dk = match jwe.header().alg() {
        KeyAlgorithm::A256kw => DecryptionKey::a256kw(key.expose_secret()),
        KeyAlgorithm::Dir => DecryptionKey::dir(key.expose_secret()),
        other => {
            return Err(KserveJweError::UnsupportedAlgorithm {
                path: path.into(),
                alg: other.as_str(),
            })
        }
    }
    .map_err(|e| jwe_err(path, e))?;
    Ok((jwe, dk))
}

/// Decrypts one KServe JWE file (`path` is only used in messages): compact serialization,
/// `alg` `A256KW` or `dir`, `enc` `A256GCM`, no `zip`, no `crit`; a trailing newline is
/// tolerated. The whole file and its plaintext are in memory: `serialized` must not exceed
/// `max_len` bytes.
///
/// # Errors
/// [`KserveJweError::TooLarge`], [`KserveJweError::Jwe`] (malformed or refused member),
/// [`KserveJweError::UnsupportedAlgorithm`], and the opaque
/// [`KserveJweError::DecryptionFailed`].
pub fn decrypt(
    path: &str,
    serialized: &[u8],
    key: &KserveKey,
    max_len: u64,
) -> Result<Zeroizing<Vec<u8>>, KserveJweError> {
    let (jwe, dk) = parse_file(path, serialized, key, max_len)?;
    jwe.decrypt_owned(&dk).map_err(|e| jwe_err(path, e))
}

/// [`decrypt`] taking the serialization by value: it is freed as soon as it is parsed, and
/// the ciphertext is opened in place, so memory peaks at about 2.4 times the file (the
/// base64 text and its decoded ciphertext), not more.
///
/// # Errors
/// As [`decrypt`].
pub fn decrypt_vec(
    path: &str,
    serialized: Vec<u8>,
    key: &KserveKey,
    max_len: u64,
) -> Result<Zeroizing<Vec<u8>>, KserveJweError> {
    let (jwe, dk) = parse_file(path, &serialized, key, max_len)?;
    drop(serialized);
    jwe.decrypt_owned(&dk).map_err(|e| jwe_err(path, e))
}

fn encryption_key(key: &KserveKey, alg: KserveAlg) -> Result<EncryptionKey, KserveJweError> {
    match alg {
        KserveAlg::A256kw => EncryptionKey::a256kw(key.expose_secret()),
        KserveAlg::Dir => EncryptionKey::dir(key.expose_secret()),
    }
    .map_err(|e| jwe_err("(key)", e))
}

fn seal(
    plaintext: Zeroizing<Vec<u8>>,
    key: &KserveKey,
    alg: KserveAlg,
    max_len: u64,
) -> Result<Jwe, KserveJweError> {
    too_large("(plaintext)", plaintext.len() as u64, max_len)?;
    Jwe::encrypt_owned(plaintext, &encryption_key(key, alg)?, cap(max_len)).map_err(|e| match e {
        JweError::Rng => KserveJweError::Rng,
        other => jwe_err("(plaintext)", other),
    })
}

/// Encrypts `plaintext` into a KServe JWE file (compact serialization, `enc` `A256GCM`, fresh
/// random IV, and for `A256KW` a fresh random content key) that KServe's `JWEDecryptor`
/// decrypts. The plaintext must not exceed `max_len` bytes. Returns the serialization in
/// memory; [`encrypt_to`] streams it instead.
///
/// # Errors
/// [`KserveJweError::TooLarge`], [`KserveJweError::Rng`].
pub fn encrypt(
    plaintext: &[u8],
    key: &KserveKey,
    alg: KserveAlg,
    max_len: u64,
) -> Result<String, KserveJweError> {
    too_large("(plaintext)", plaintext.len() as u64, max_len)?;
    Ok(seal(Zeroizing::new(plaintext.to_vec()), key, alg, max_len)?.to_compact())
}

/// [`encrypt`] of a buffer the caller gives up, encrypted in place and written to `out` as it
/// is base64url-encoded: memory stays at about the plaintext size. Returns the bytes written.
///
/// # Errors
/// As [`encrypt`]; [`KserveJweError::Io`] naming `out_name` when writing fails.
pub fn encrypt_to(
    plaintext: Zeroizing<Vec<u8>>,
    key: &KserveKey,
    alg: KserveAlg,
    max_len: u64,
    out: &mut impl std::io::Write,
    out_name: &str,
) -> Result<u64, KserveJweError> {
    let jwe = seal(plaintext, key, alg, max_len)?;
    jwe.write_compact(out).map_err(|source| KserveJweError::Io {
        path: out_name.into(),
        action: "cannot write",
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn names() {
        assert!(has_jwe_suffix("model.bin.jwe"));
        assert!(has_jwe_suffix("dir/model.JWE"));
        assert!(!has_jwe_suffix(".jwe"));
        assert!(!has_jwe_suffix("dir/.jwe"));
        assert!(!has_jwe_suffix("model.jwe.bak"));
        assert_eq!(output_path("a/b.safetensors.jwe"), "a/b.safetensors");
        assert_eq!(output_path("a/b.Jwe"), "a/b");
        assert_eq!(output_path("config.json"), "config.json");
        assert!(looks_like_jwe(b"eyJhbGciOi"));
        assert!(!looks_like_jwe(b"eyj"));
    }

    #[test]
    fn round_trip_and_algorithm_refusal() {
        let key = KserveKey::generate().unwrap();
        for alg in [KserveAlg::A256kw, KserveAlg::Dir] {
            let c = encrypt(b"x", &key, alg, 10).unwrap();
            assert_eq!(
                decrypt("f", c.as_bytes(), &key, 1000).unwrap().as_slice(),
                b"x"
            );
            assert!(matches!(
                decrypt("f", c.as_bytes(), &key, 10),
                Err(KserveJweError::TooLarge { .. })
            ));
        }
        // ECDH-ES+A256KW is fine for KBS responses but not a KServe JWE file.
        let sk = DecryptionKey::generate_p256().unwrap();
        let pk = EncryptionKey::from_jwk(&sk.public_jwk().unwrap().to_json()).unwrap();
        let c = Jwe::encrypt(b"x", &pk).unwrap().to_compact();
        assert!(matches!(
            decrypt("f", c.as_bytes(), &key, 1 << 20),
            Err(KserveJweError::UnsupportedAlgorithm {
                alg: "ECDH-ES+A256KW",
                ..
            })
        ));
        assert!(matches!(
            encrypt(&[0u8; 11], &key, KserveAlg::Dir, 10),
            Err(KserveJweError::TooLarge { .. })
        ));
    }
}
