//! Signatures, trust policies and the checks a reader performs on a manifest. Owns ECDSA keys
//! (PEM), the trust policy (keys, certificate chains, Sigstore identities), DSSE signing and
//! verification, and the proof type [`VerifiedManifest`] (and, crate-private, the unlocked
//! manifest the loader decrypts with): nothing can be decrypted without them. No I/O, no key providers, no environment.
//!
//! | file | concern |
//! |---|---|
//! | `keys.rs` | ECDSA P-256/P-384/P-521 signing and verifying keys, [`TrustedKeys`] |
//! | `policy.rs` | [`TrustPolicy`], its [`TrustedSigner`]s, the verified [`Signer`], refusals |
//! | `bundle.rs` | reading a bundle into checked parts (material, payload, signatures) |
//! | `chain.rs` | X.509 chains to configured roots (rustls-webpki, x509-cert) |
//! | `sigstore.rs` | Sigstore keyless bundles (sigstore-verify) and trusted roots |
//! | `provider.rs` | the ring/RustCrypto provider sigstore-verify runs on |
//! | `sign.rs` | signing statements with a key or a certificate chain |
//! | `manifest.rs` | the envelope side of a manifest and the proof types |
//! | `statement.rs` | the statement side: serialization, resources, shard tiling, files |

mod bundle;
mod chain;
mod keys;
mod manifest;
mod policy;
mod provider;
mod sign;
mod sigstore;
mod statement;

pub use chain::{ChainError, MAX_CERTIFICATE_BYTES, MAX_CHAIN_CERTIFICATES};
pub use keys::{KeyCurve, SigningKey, TrustedKeys, VerifyingKey};
pub(crate) use manifest::UnlockedManifest;
pub use manifest::{
    parse_unverified, verify_manifest, verify_model_signature, ManifestInfo, UnverifiedManifest,
    VerifiedFile, VerifiedManifest, VerifiedModelSignature,
};
pub use policy::{
    CertificateSigner, IdentityMatch, Refusal, RefusalReason, Refusals, Signer, SigstoreSigner,
    TrustPolicy, TrustedSigner,
};
pub use sign::{sign_statement, CertificateSigningKey, StatementSigner};
pub use sigstore::{KeylessClaims, KeylessError, SigstoreRoot, MAX_TRUSTED_ROOT_BYTES};
pub use statement::{FileDigests, FileEntry, SignedFile};

/// Signature and manifest verification errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No signer of the trust policy accepts the signature. Names what the bundle claims
    /// (key hint or leaf subject) and, per policy entry, why it refused (the signature does
    /// not verify, another kind of material, the chain's fault, an identity mismatch), so an
    /// operator sees a key or identity mix-up. A bad signature says only that it is bad.
    #[error("the manifest is not signed by a trusted signer (the bundle names signer {signer}): {refusals}")]
    SignatureInvalid {
        /// What the bundle claims (untrusted text, sanitized; `(none)` when absent).
        signer: String,
        /// Each policy entry's refusal, in order.
        refusals: Refusals,
    },
    /// No trusted signer was configured: verification fails closed.
    #[error("no trusted signer configured (public key, certificate roots or Sigstore identity)")]
    NoTrustedKeys,
    /// A trust policy entry is unusable (bad roots, trusted root, identity pattern).
    #[error("invalid trust policy: {reason}")]
    InvalidPolicy {
        /// What is wrong, naming the entry.
        reason: String,
    },
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
            VerifyError::InvalidKey { .. }
            | VerifyError::NoTrustedKeys
            | VerifyError::InvalidPolicy { .. } => ErrorClass::Config,
            VerifyError::DekCommitmentMismatch => ErrorClass::Key,
            _ => ErrorClass::Integrity,
        }
    }
}
