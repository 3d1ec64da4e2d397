//! The crate error and its coarse classification for exit codes.

use crate::crypto::CryptoError;
use crate::format::FormatError;
use crate::keys::KeyError;
use crate::loader::LoadError;
use crate::package::PackError;
use crate::storage::StorageError;
use crate::verify::VerifyError;

/// Any error of this crate. Each variant wraps its module's error; `Display` of a variant
/// describes its own layer, the `source()` chain the causes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Storage access failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A package document is malformed or over a limit.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Signature or manifest verification failed.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A key provider failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Loading a package failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Packing or rewrapping failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// A cryptographic primitive failed outside a file context.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// KServe confidential-mode JWE handling failed.
    #[error(transparent)]
    KserveJwe(#[from] crate::kserve_jwe::KserveJweError),
    /// Producing TEE evidence failed (outside a key provider).
    #[error(transparent)]
    Attest(#[from] crate::attest::AttestError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Coarse failure classes, stable across releases; binaries map them to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Bad arguments, configuration or input files of the operator.
    Config,
    /// The package failed a signature, integrity or structure check (possible tampering).
    Integrity,
    /// No configured key could unlock the package.
    Key,
    /// Storage could not be read or written.
    Storage,
    /// The destination is unsafe or unusable (not memory-backed, not empty...).
    Destination,
    /// Anything else (I/O on the local machine, internal faults).
    Internal,
}

impl ErrorClass {
    /// Exit code used by the `secure-model` and `secure-model-initc` binaries.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Internal => 1,
            ErrorClass::Config => 3,
            ErrorClass::Integrity => 4,
            ErrorClass::Key => 5,
            ErrorClass::Storage => 6,
            ErrorClass::Destination => 7,
        }
    }
}

impl Error {
    /// The failure class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Storage(e) => storage_class(e),
            Error::Format(_) => ErrorClass::Integrity,
            Error::Verify(e) => verify_class(e),
            Error::Key(e) => key_class(e),
            Error::Load(e) => e.class(),
            Error::Pack(e) => e.class(),
            Error::Crypto(_) => ErrorClass::Internal,
            Error::KserveJwe(e) => e.class(),
            Error::Attest(e) => attest_class(e),
        }
    }

    /// One line: this error and its causes joined with `": "`.
    pub fn chain_message(&self) -> String {
        chain(self)
    }
}

/// One line: `e` and its causes joined with `": "`.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    // `transparent` variants repeat their inner message as first source: skip duplicates.
    while let Some(e) = cur {
        let m = e.to_string();
        if !s.ends_with(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = e.source();
    }
    s
}

pub(crate) fn storage_class(e: &StorageError) -> ErrorClass {
    match e {
        StorageError::InvalidLocation { .. } => ErrorClass::Config,
        StorageError::TooLarge { .. } | StorageError::ShortRead { .. } => ErrorClass::Integrity,
        _ => ErrorClass::Storage,
    }
}

pub(crate) fn verify_class(e: &VerifyError) -> ErrorClass {
    match e {
        VerifyError::InvalidKey { .. } | VerifyError::NoTrustedKeys => ErrorClass::Config,
        VerifyError::DekCommitmentMismatch => ErrorClass::Key,
        _ => ErrorClass::Integrity,
    }
}

pub(crate) fn attest_class(e: &crate::attest::AttestError) -> ErrorClass {
    use crate::attest::AttestError as A;
    match e {
        A::NoTee { .. }
        | A::SampleNotAllowed
        | A::UnknownAttester { .. }
        | A::ReportDataTooLong { .. }
        | A::Io { step: "stat", .. } => ErrorClass::Config,
        _ => ErrorClass::Internal,
    }
}

pub(crate) fn key_class(e: &KeyError) -> ErrorClass {
    match e {
        KeyError::InvalidSpec { .. }
        | KeyError::UnknownProvider { .. }
        | KeyError::ReadKeyFile { .. }
        | KeyError::InvalidKeyFile { .. } => ErrorClass::Config,
        _ => ErrorClass::Key,
    }
}
