//! The publisher side: building a package from a model directory ([`pack`]), rotating its
//! recipients ([`rewrap`]), and checking a plain model directory against its OpenSSF model
//! signature ([`check_model_dir`]). Uses `crypto`, `format`, `verify`, `keys` and `storage`; reads only
//! the model directory given and writes only to the package location.

mod check;
mod mirror;
mod pack;
mod rotate;

pub use check::{check_model_dir, ModelDirCheck};
pub use mirror::{mirror, MirrorOptions, MirrorReport};
pub use pack::{ignored_paths, pack, scan_model_dir, PackOptions, PackReport};
pub use rotate::{rewrap, RewrapReport};

use base64::Engine as _;

use crate::crypto::DataKey;
use crate::format::{KeysFile, RecipientEntry};
use crate::keys::{KeyProvider, WrapContext};
use crate::ErrorClass;

/// Wraps `dek` for `provider` and appends the entry to `keys`; refuses a recipient that is
/// already present.
async fn add_recipient(
    keys: &mut KeysFile,
    provider: &dyn KeyProvider,
    dek: &DataKey,
    ctx: &WrapContext<'_>,
) -> Result<(), PackError> {
    let r = provider.recipient();
    if keys.recipients.iter().any(|e| r.matches(e)) {
        return Err(PackError::RecipientExists {
            recipient: r.to_string(),
        });
    }
    let wrapped = provider.wrap_dek(dek, ctx).await?;
    keys.recipients.push(RecipientEntry {
        provider: r.provider().into(),
        key_ref: r.key_ref().into(),
        wrapped_dek: base64::engine::general_purpose::STANDARD.encode(wrapped),
    });
    Ok(())
}

/// Errors of packing and rotation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// The model directory cannot be used.
    #[error("model directory {path}: {reason}")]
    ModelDir {
        /// Path.
        path: String,
        /// What is wrong.
        reason: String,
        /// I/O cause.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The destination already holds a package (`manifest.sig` or `keys.json` exists).
    #[error("{location} already holds a package; choose an empty destination")]
    PackageExists {
        /// Destination.
        location: String,
    },
    /// No recipient was given: the package could never be opened.
    #[error("at least one recipient is required")]
    NoRecipients,
    /// The recipient is already in the keys file.
    #[error("recipient {recipient} is already in the keys file")]
    RecipientExists {
        /// `provider:key_ref`.
        recipient: String,
    },
    /// The recipient to remove is not in the keys file.
    #[error("recipient {recipient} is not in the keys file")]
    RecipientNotFound {
        /// `provider:key_ref`.
        recipient: String,
    },
    /// Removing would leave no recipient.
    #[error("refusing to remove every recipient: the package could never be opened again")]
    LastRecipient,
    /// A plain model directory does not match its signature.
    #[error("model file {path}: {reason}")]
    ModelMismatch {
        /// Relative path (escaped).
        path: String,
        /// What differs.
        reason: &'static str,
    },
    /// The keys file belongs to another package.
    #[error("keys file is for model {keys_file}, the manifest is for {manifest}")]
    ModelIdMismatch {
        /// keys file id.
        keys_file: String,
        /// manifest id.
        manifest: String,
    },
    /// The store kept something else than was uploaded (a lost or truncated upload), after
    /// the retries: the package was not written.
    #[error("the store kept {object} in {location} as {actual}, not the {expected} uploaded (checked after {attempts} uploads); the package was not written")]
    UploadMismatch {
        /// Object key.
        object: String,
        /// Location.
        location: String,
        /// What was uploaded (`N bytes`, `SHA-256 …`).
        expected: String,
        /// What the store holds.
        actual: String,
        /// Uploads tried.
        attempts: u32,
    },
    /// The mirror's destination holds another package.
    #[error("{location} already holds another package (manifest SHA-256 {existing}); mirror into an empty location or remove it first")]
    MirrorConflict {
        /// Destination.
        location: String,
        /// Hex SHA-256 of the manifest there.
        existing: String,
    },
    /// A source object is not what the signed manifest names: it was not copied.
    #[error("{object} in {location} is not what the signed manifest names: expected {expected}, found {actual}; nothing was written for it")]
    SourceMismatch {
        /// Object key.
        object: String,
        /// Source location.
        location: String,
        /// What the manifest signs.
        expected: String,
        /// What the source holds.
        actual: String,
    },
    /// Storage failure.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// Reading the source failed.
    #[error(transparent)]
    Load(#[from] crate::loader::LoadError),
    /// Key provider failure.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// Signing or verification failure.
    #[error(transparent)]
    Verify(#[from] crate::verify::VerifyError),
    /// Format failure.
    #[error(transparent)]
    Format(#[from] crate::format::FormatError),
    /// A primitive failed.
    #[error("cryptographic failure")]
    Crypto(#[from] crate::crypto::CryptoError),
    /// An internal invariant failed.
    #[error("internal error: {what}")]
    Internal {
        /// What.
        what: &'static str,
    },
}

impl PackError {
    /// The failure class.
    pub fn class(&self) -> ErrorClass {
        match self {
            PackError::ModelDir { .. }
            | PackError::NoRecipients
            | PackError::RecipientExists { .. }
            | PackError::RecipientNotFound { .. }
            | PackError::LastRecipient
            | PackError::PackageExists { .. }
            | PackError::MirrorConflict { .. } => ErrorClass::Config,
            PackError::ModelIdMismatch { .. }
            | PackError::SourceMismatch { .. }
            | PackError::ModelMismatch { .. }
            | PackError::Format(_) => ErrorClass::Integrity,
            PackError::Storage(e) => e.class(),
            PackError::Load(e) => e.class(),
            PackError::UploadMismatch { .. } => ErrorClass::Storage,
            PackError::Key(e) => e.class(),
            PackError::Verify(e) => e.class(),
            PackError::Crypto(_) | PackError::Internal { .. } => ErrorClass::Internal,
        }
    }
}
