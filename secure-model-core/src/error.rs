//! The crate error: one variant per module error, each describing its own layer.

use crate::attest::AttestError;
use crate::cache::CacheError;
use crate::class::{chain_message, ErrorClass};
use crate::crypto::CryptoError;
use crate::format::FormatError;
use crate::keys::{KeyError, UnlockError};
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
    /// No configured key unlocked a package.
    #[error(transparent)]
    Unlock(#[from] UnlockError),
    /// Loading a package failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Packing or rewrapping failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// A cryptographic primitive failed outside a file context.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Producing TEE evidence failed (outside a key provider).
    #[error(transparent)]
    Attest(#[from] AttestError),
    /// The node cache directory cannot be used.
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The failure class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Storage(e) => e.class(),
            Error::Format(e) => e.class(),
            Error::Verify(e) => e.class(),
            Error::Key(e) => e.class(),
            Error::Unlock(e) => e.class(),
            Error::Load(e) => e.class(),
            Error::Pack(e) => e.class(),
            Error::Crypto(e) => e.class(),
            Error::Attest(e) => e.class(),
            Error::Cache(e) => e.class(),
        }
    }

    /// One line: this error and its causes joined with `": "`.
    pub fn chain_message(&self) -> String {
        chain_message(self)
    }
}
