//! The package format: on-store layout, manifest (OpenSSF model-signing v1.0 bundle with our
//! encryption section), how a model is serialized for hashing (files or shards), keys file,
//! path rules and limits. Types and (de)serialisation only: no
//! I/O, no signature checks (see `verify`), no key handling (see `keys`).

mod keys_file;
mod limits;
mod manifest;
mod paths;
mod serialization;

pub use keys_file::{KeysFile, RecipientEntry, KEYS_FILE_FORMAT};
pub use limits::Limits;
pub use manifest::{
    Aead, Bundle, CertificateChain, CertificateMaterial, DsseEnvelope, DsseSignature,
    EncryptedFile, EncryptionSection, Predicate, PublicKeyMaterial, Resource, Statement, Subject,
    SubjectDigest, VerificationMaterial, BUNDLE_MEDIA_TYPE, BUNDLE_MEDIA_TYPES_READ,
    DEFAULT_IGNORE_PATHS, ENCRYPTION_FORMAT, IN_TOTO_PAYLOAD_TYPE, IN_TOTO_STATEMENT_TYPE,
    MODEL_SIGNING_PREDICATE_TYPE,
};
pub use paths::{compare_paths, validate_object_key, validate_path, ModelPath};
pub use serialization::{
    parse_shard_name, shard_name, FileHasher, Hashing, Serialization, ShardSize,
    UPSTREAM_SHARD_SIZE,
};

use crate::crypto::push_len_prefixed;

/// Object key of the manifest inside a package prefix.
pub const MANIFEST_OBJECT: &str = "manifest.sig";
/// Object key of the keys file inside a package prefix.
pub const KEYS_OBJECT: &str = "keys.json";
/// Prefix of ciphertext objects inside a package prefix.
pub const DATA_PREFIX: &str = "data/";

/// Label that starts the associated data of every file's stream.
pub const AD_LABEL: &[u8] = b"secure-model/v1/file";

/// Errors in the structure of package documents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// A document is not valid JSON of the expected shape.
    #[error("{document} is malformed")]
    Malformed {
        /// Which document.
        document: &'static str,
        /// Parser error (describes position, never secret content).
        #[source]
        source: serde_json::Error,
    },
    /// A field has a value the format forbids.
    #[error("{document}: invalid {field}: {reason}")]
    InvalidField {
        /// Which document.
        document: &'static str,
        /// Which field.
        field: &'static str,
        /// Why (never contains secrets).
        reason: String,
    },
    /// A path in the manifest breaks the path rules.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path (escaped).
        path: String,
        /// Which rule.
        reason: &'static str,
    },
    /// A size or count exceeds the configured limit.
    #[error("{what} is {actual}, over the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// Value found.
        actual: u64,
        /// Limit in force.
        limit: u64,
    },
    /// The document uses a format version this build does not read.
    #[error("unsupported {document} format {found:?}")]
    UnsupportedVersion {
        /// Which document.
        document: &'static str,
        /// Version found.
        found: String,
    },
}

impl FormatError {
    /// The failure class: a package document that breaks the format is an integrity failure.
    pub fn class(&self) -> crate::ErrorClass {
        crate::ErrorClass::Integrity
    }
}

/// Associated data of a file's stream:
/// `AD_LABEL || BE32(len(model_id)) || model_id || BE32(len(path)) || path` (UTF-8 bytes).
pub fn file_associated_data(model_id: &str, path: &str) -> Vec<u8> {
    let mut ad = Vec::with_capacity(AD_LABEL.len() + 8 + model_id.len() + path.len());
    ad.extend_from_slice(AD_LABEL);
    // Both fields are capped (model_id is 32 chars, paths by Limits) far below u32::MAX.
    let _ = push_len_prefixed(&mut ad, model_id.as_bytes());
    let _ = push_len_prefixed(&mut ad, path.as_bytes());
    ad
}

/// Checks that `id` is a `model_id`: 32 lowercase hex characters (128 random bits).
pub fn validate_model_id(id: &str, document: &'static str) -> Result<(), FormatError> {
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(FormatError::InvalidField {
            document,
            field: "model_id",
            reason: "must be 32 lowercase hex characters".into(),
        })
    }
}

/// Parses a lowercase-hex SHA-256 digest.
pub fn parse_digest(
    hex_str: &str,
    document: &'static str,
    field: &'static str,
) -> Result<[u8; 32], FormatError> {
    let mut out = [0u8; 32];
    if hex_str.len() != 64 || hex_str.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(FormatError::InvalidField {
            document,
            field,
            reason: "must be 64 lowercase hex characters".into(),
        });
    }
    hex::decode_to_slice(hex_str, &mut out).map_err(|_| FormatError::InvalidField {
        document,
        field,
        reason: "must be 64 lowercase hex characters".into(),
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associated_data_layout_is_pinned() {
        let ad = file_associated_data("00112233445566778899aabbccddeeff", "a/b.bin");
        let mut expect = b"secure-model/v1/file".to_vec();
        expect.extend_from_slice(&[0, 0, 0, 32]);
        expect.extend_from_slice(b"00112233445566778899aabbccddeeff");
        expect.extend_from_slice(&[0, 0, 0, 7]);
        expect.extend_from_slice(b"a/b.bin");
        assert_eq!(ad, expect);
    }

    #[test]
    fn model_id_rules() {
        assert!(validate_model_id("00112233445566778899aabbccddeeff", "m").is_ok());
        assert!(validate_model_id("00112233445566778899AABBCCDDEEFF", "m").is_err());
        assert!(validate_model_id("0011", "m").is_err());
    }
}
