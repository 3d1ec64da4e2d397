//! Unlocking a package's data key: find a configured provider that is a recipient of the keys
//! file, unwrap with it, and accept the key only when it matches the signed DEK commitment. The
//! one implementation the loader and `rewrap` share.

use std::sync::Arc;

use super::{KeyError, KeyProvider, Recipient, WrapContext};
use crate::crypto::{check_dek_commitment, DataKey};
use crate::format::{FormatError, KeysFile, Limits};

/// Why no configured key unlocked a package.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnlockError {
    /// The keys file belongs to another package.
    #[error("keys file is for model {keys_file}, the manifest is for {manifest}")]
    ModelIdMismatch {
        /// model_id of the keys file.
        keys_file: String,
        /// model_id of the manifest.
        manifest: String,
    },
    /// None of the configured key providers is a recipient of this package.
    #[error("no configured key matches a recipient of this package (package recipients: [{available}]; configured: [{configured}])")]
    NoMatchingRecipient {
        /// Recipients in the keys file.
        available: String,
        /// Recipients configured.
        configured: String,
    },
    /// A keys-file entry is malformed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Every matching recipient failed to produce the DEK; the last failure is the source.
    #[error("no configured key could unlock this package")]
    Failed {
        /// Last failure.
        #[source]
        source: UnlockFailure,
    },
}

/// What went wrong with one matching recipient.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnlockFailure {
    /// The provider failed (unwrap, attestation, key service...).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The provider returned a key that is not the package's DEK.
    #[error("data key does not match the manifest's DEK commitment")]
    CommitmentMismatch,
}

impl UnlockError {
    /// The failure class: a keys file of another package or a malformed entry is an integrity
    /// failure; a provider that failed for a configuration reason is configuration; anything
    /// else a key failure.
    pub fn class(&self) -> crate::ErrorClass {
        use crate::ErrorClass;
        match self {
            UnlockError::ModelIdMismatch { .. } | UnlockError::Format(_) => ErrorClass::Integrity,
            UnlockError::NoMatchingRecipient { .. } => ErrorClass::Key,
            UnlockError::Failed {
                source: UnlockFailure::Key(e),
            } if e.class() == ErrorClass::Config => ErrorClass::Config,
            UnlockError::Failed { .. } => ErrorClass::Key,
        }
    }
}

/// A data key that matched the signed commitment, and the recipient that produced it.
#[derive(Debug)]
pub(crate) struct UnlockedKey {
    /// The package's DEK.
    pub(crate) dek: DataKey,
    /// The recipient whose provider unwrapped it.
    pub(crate) recipient: Recipient,
}

/// The package a keys file must belong to: its `model_id` and signed DEK commitment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Commitment<'a> {
    /// The manifest's `model_id`.
    pub(crate) model_id: &'a str,
    /// The manifest's signed DEK commitment.
    pub(crate) dek_commitment: &'a [u8; 32],
}

/// Tries each of `providers` that is a recipient of `keys`, in order, and returns the first
/// key that matches `package`'s commitment (checked in constant time).
///
/// # Errors
/// [`UnlockError::ModelIdMismatch`] for a keys file of another package,
/// [`UnlockError::NoMatchingRecipient`] when no provider is a recipient,
/// [`UnlockError::Failed`] with the last failure when every matching provider failed.
pub(crate) async fn unlock_dek(
    keys: &KeysFile,
    providers: &[Arc<dyn KeyProvider>],
    package: Commitment<'_>,
    limits: &Limits,
) -> Result<UnlockedKey, UnlockError> {
    if keys.model_id != package.model_id {
        return Err(UnlockError::ModelIdMismatch {
            keys_file: keys.model_id.clone(),
            manifest: package.model_id.to_string(),
        });
    }
    let ctx = WrapContext::new(package.model_id);
    let mut last: Option<UnlockFailure> = None;
    for provider in providers {
        let Some(entry) = keys
            .recipients
            .iter()
            .find(|e| provider.recipient().matches(e))
        else {
            continue;
        };
        let wrapped = entry.wrapped_bytes(limits)?;
        match provider.unwrap_dek(&wrapped, &ctx).await {
            Ok(dek)
                if check_dek_commitment(&dek, package.model_id, package.dek_commitment).is_ok() =>
            {
                let recipient = provider.recipient().clone();
                tracing::info!(recipient = %recipient, "data key unwrapped and matches the signed commitment");
                return Ok(UnlockedKey { dek, recipient });
            }
            Ok(_) => {
                tracing::warn!(recipient = %provider.recipient(), "key provider returned a key that does not match the DEK commitment");
                last = Some(UnlockFailure::CommitmentMismatch);
            }
            Err(e) => {
                tracing::warn!(recipient = %provider.recipient(), error = %crate::chain_message(&e), "unwrap failed");
                last = Some(e.into());
            }
        }
    }
    Err(match last {
        Some(source) => UnlockError::Failed { source },
        None => UnlockError::NoMatchingRecipient {
            available: keys
                .recipients
                .iter()
                .map(|e| super::shown_recipient(&e.provider, &e.key_ref))
                .collect::<Vec<_>>()
                .join(", "),
            configured: providers
                .iter()
                .map(|p| p.recipient().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        },
    })
}
