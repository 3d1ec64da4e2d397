//! Manifest documents: the Sigstore bundle v0.3 with a DSSE envelope around an in-toto v1
//! statement whose predicate is OpenSSF model-signing v1.0 plus our `secure_model` section.
//!
//! These are wire types. Parsing them proves nothing; `verify` turns them into a
//! `VerifiedManifest`.

use serde::{Deserialize, Serialize};

use super::Serialization;

/// `mediaType` of the bundle.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// DSSE `payloadType`.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto statement `_type`.
pub const IN_TOTO_STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of OpenSSF model signing v1.0.
pub const MODEL_SIGNING_PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// `format` of our encryption section.
pub const ENCRYPTION_FORMAT: &str = "secure-model/v1";
/// Paths `model_signing` ignores by default (relative to the model root); `pack` skips them too.
pub const DEFAULT_IGNORE_PATHS: [&str; 4] = [".gitattributes", ".gitignore", ".github", ".git"];

/// `mediaType`s a reader accepts: Sigstore bundle v0.1, v0.2 and v0.3 (both spellings).
/// Writers write [`BUNDLE_MEDIA_TYPE`].
pub const BUNDLE_MEDIA_TYPES_READ: [&str; 4] = [
    BUNDLE_MEDIA_TYPE,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
];

/// Sigstore bundle with a DSSE envelope (key, certificate-chain or keyless material).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// One of [`BUNDLE_MEDIA_TYPES_READ`].
    pub media_type: String,
    /// The signer's key hint or certificates, and any transparency log entries.
    pub verification_material: VerificationMaterial,
    /// The signed envelope.
    pub dsse_envelope: DsseEnvelope,
}

/// `verificationMaterial`: exactly one of `publicKey`, `certificate`, `x509CertificateChain`
/// (a protobuf `oneof`), plus optional log entries and timestamps (keyless bundles). None of
/// it is trusted by itself: trust comes from the reader's policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    /// Key-based signatures: the signer's key hint (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyMaterial>,
    /// One leaf certificate (v0.3 keyless bundles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateMaterial>,
    /// Leaf first, then intermediates (`model_signing sign certificate`; v0.1/v0.2 keyless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_certificate_chain: Option<CertificateChain>,
    /// Transparency log entries (keyless); empty for key and certificate-chain signatures.
    #[serde(default)]
    pub tlog_entries: Vec<serde_json::Value>,
    /// RFC 3161 timestamps (keyless, Rekor v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_verification_data: Option<serde_json::Value>,
}

/// `publicKey`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PublicKeyMaterial {
    /// Hex SHA-256 of the signer's SPKI PEM text, as `model_signing` writes it. Optional and
    /// informational; when present it must be a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// One DER certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateMaterial {
    /// Standard base64 of the DER.
    #[serde(rename = "rawBytes")]
    pub raw_bytes: String,
}

/// `x509CertificateChain`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateChain {
    /// Leaf first.
    pub certificates: Vec<CertificateMaterial>,
}

/// DSSE envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DsseEnvelope {
    /// Base64 (standard, padded) of the exact statement bytes.
    pub payload: String,
    /// Must be [`IN_TOTO_PAYLOAD_TYPE`].
    pub payload_type: String,
    /// Signatures over the PAE.
    pub signatures: Vec<DsseSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DsseSignature {
    /// Base64 of the DER ECDSA signature.
    pub sig: String,
    /// Ignored; empty when we write it. Optional; when present it must be a string.
    #[serde(default)]
    pub keyid: String,
}

/// in-toto Statement v1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement {
    /// Must be [`IN_TOTO_STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// Exactly one subject: the model.
    pub subject: Vec<Subject>,
    /// Must be [`MODEL_SIGNING_PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The model-signing predicate.
    pub predicate: Predicate,
}

/// Statement subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subject {
    /// Model name (informational).
    pub name: String,
    /// SHA-256 over the concatenated raw resource digests, in listed order.
    pub digest: SubjectDigest,
}

/// Subject digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectDigest {
    /// Lowercase hex.
    pub sha256: String,
}

/// OpenSSF model-signing v1.0 predicate with our namespaced encryption section. Unknown fields
/// are ignored, as v1.0 verifiers do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Predicate {
    /// Every plaintext file (or shard), component-wise sorted.
    pub resources: Vec<Resource>,
    /// How the model was serialised.
    pub serialization: Serialization,
    /// Our encryption section; absent in plain model-signing signatures.
    #[serde(
        rename = "secure_model",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub encryption: Option<EncryptionSection>,
}

/// One plaintext file (`files` serialization) or one shard of a file (`shards`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource {
    /// Relative POSIX path, or `path:start:end` for a shard.
    pub name: String,
    /// Lowercase hex digest of the plaintext (or of the shard).
    pub digest: String,
    /// The hash algorithm (`sha256`, `blake2b`, `blake3`), `<name>-sharded-<size>` for shards.
    pub algorithm: String,
}

/// Our encryption section (`predicate.secure_model`). Unknown fields are refused: a newer
/// format must bump `format`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionSection {
    /// Must be [`ENCRYPTION_FORMAT`].
    pub format: String,
    /// Random 128-bit package id, 32 lowercase hex characters.
    pub model_id: String,
    /// Streaming AEAD parameters.
    pub aead: Aead,
    /// Hex `HMAC-SHA256(DEK, label || 0x00 || model_id)`.
    pub dek_commitment: String,
    /// One entry per resource, same order.
    pub files: Vec<EncryptedFile>,
}

/// AEAD parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Aead {
    /// Must be `AES256_GCM_HKDF_STREAMING` (Tink `AesGcmHkdfStreamingKey`).
    pub scheme: String,
    /// Must be `SHA256`.
    pub hkdf_hash: String,
    /// Must be 32.
    pub derived_key_size: u32,
    /// Ciphertext segment size in bytes (1048576 for packages we write).
    pub ciphertext_segment_size: u32,
}

impl Aead {
    /// Name of the scheme.
    pub const SCHEME: &'static str = "AES256_GCM_HKDF_STREAMING";
}

/// One encrypted file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptedFile {
    /// Same as the resource name at the same index.
    pub path: String,
    /// Object key of the ciphertext relative to the package prefix (`data/...`).
    pub object: String,
    /// Plaintext size in bytes.
    pub plaintext_size: u64,
    /// Ciphertext size in bytes (must equal the size the AEAD parameters give).
    pub ciphertext_size: u64,
    /// Lowercase hex SHA-256 of the ciphertext object.
    pub ciphertext_sha256: String,
}
