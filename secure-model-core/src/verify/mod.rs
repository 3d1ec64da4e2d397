//! Signatures and the checks a reader performs on a manifest. Owns ECDSA P-256 keys (PEM),
//! DSSE signing and verification, and the proof types [`VerifiedManifest`] and
//! [`UnlockedManifest`]: nothing can be decrypted without them. No I/O, no key providers.

mod keys;
mod manifest;
mod statement;

pub use keys::{SigningKey, TrustedKeys, VerifyingKey};
pub use manifest::{
    parse_unverified, sign_statement, verify_manifest, verify_model_signature, ManifestInfo,
    UnlockedManifest, UnverifiedManifest, VerifiedFile, VerifiedManifest, VerifiedModelSignature,
};
pub use statement::{FileDigests, FileEntry, SignedFile};

/// Signature and manifest verification errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No signature on the manifest verifies under any trusted key (or the signature is
    /// malformed). Deliberately does not say which check failed; it names the key hint the
    /// bundle claims and the hints of the trusted keys, so an operator sees a key mix-up.
    #[error("manifest signature is not valid under any trusted key (the bundle names signer {signer_hint}; trusted: {trusted})")]
    SignatureInvalid {
        /// The key hint the bundle claims (untrusted text, sanitized; `(none)` when absent).
        signer_hint: String,
        /// The trusted keys' hints, comma-separated.
        trusted: String,
    },
    /// No trusted key was configured: verification fails closed.
    #[error("no trusted public key configured")]
    NoTrustedKeys,
    /// A PEM key could not be read.
    #[error("invalid {what}: {reason}")]
    InvalidKey {
        /// Which key kind.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The signed statement is structurally wrong.
    #[error("signed statement rejected")]
    Format(#[from] crate::format::FormatError),
    /// The subject digest does not match the resources.
    #[error("subject digest does not match the resource digests")]
    SubjectDigestMismatch,
    /// The manifest bytes do not match the pinned digest (rollback or substitution).
    #[error("manifest digest {actual} does not match the pinned digest {expected}")]
    ManifestDigestMismatch {
        /// Pinned value (hex).
        expected: String,
        /// Actual value (hex).
        actual: String,
    },
    /// The key a provider returned does not match the signed DEK commitment.
    #[error("data key does not match the manifest's DEK commitment")]
    DekCommitmentMismatch,
}

impl VerifyError {
    /// The failure class: missing or unreadable trusted keys are configuration, a key that does
    /// not match the commitment a key failure, anything else an integrity failure.
    pub fn class(&self) -> crate::ErrorClass {
        use crate::ErrorClass;
        match self {
            VerifyError::InvalidKey { .. } | VerifyError::NoTrustedKeys => ErrorClass::Config,
            VerifyError::DekCommitmentMismatch => ErrorClass::Key,
            _ => ErrorClass::Integrity,
        }
    }
}
