//! `rewrap`: add or remove recipients by rewriting only the keys file.

use std::sync::Arc;

use bytes::Bytes;

use super::PackError;
use crate::format::{KeysFile, Limits, KEYS_OBJECT, MANIFEST_OBJECT};
use crate::keys::{
    unlock_dek, Commitment, KeyProvider, Recipient, UnlockError, UnlockFailure, WrapContext,
};
use crate::storage::StorageBackend;
use crate::verify::{parse_unverified, verify_manifest, TrustPolicy};

/// The shared unlock's refusals in `rewrap`'s terms: the current key must be a recipient.
fn unlock_error(e: UnlockError, current: &[Arc<dyn KeyProvider>]) -> PackError {
    match e {
        UnlockError::ModelIdMismatch {
            keys_file,
            manifest,
        } => PackError::ModelIdMismatch {
            keys_file,
            manifest,
        },
        UnlockError::NoMatchingRecipient { .. } => PackError::RecipientNotFound {
            recipient: current
                .iter()
                .map(|p| p.recipient().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        },
        UnlockError::Format(e) => PackError::Format(e),
        UnlockError::Failed {
            source: UnlockFailure::Key(e),
        } => PackError::Key(e),
        UnlockError::Failed {
            source: UnlockFailure::CommitmentMismatch,
        } => PackError::Verify(crate::verify::VerifyError::DekCommitmentMismatch),
    }
}

/// The manifest's `model_id` and DEK commitment, and whether its signature was verified
/// (only with `trusted`).
async fn read_manifest(
    store: &dyn StorageBackend,
    trusted: Option<&TrustPolicy>,
    limits: &Limits,
) -> Result<(String, [u8; 32], bool), PackError> {
    let bytes = store
        .get(MANIFEST_OBJECT, limits.max_manifest_bytes)
        .await?;
    Ok(match trusted {
        Some(t) => {
            let m = verify_manifest(&bytes, t, limits, None)?;
            (m.model_id().to_string(), *m.dek_commitment(), true)
        }
        None => {
            tracing::warn!("rewrap without a trusted key: the manifest signature is not checked");
            let m = parse_unverified(&bytes, limits)?;
            (m.model_id().to_string(), *m.dek_commitment(), false)
        }
    })
}

/// Drops each of `remove` from `keys`; each must be present.
fn remove_recipients(keys: &mut KeysFile, remove: &[Recipient]) -> Result<Vec<String>, PackError> {
    let mut removed = Vec::new();
    for r in remove {
        let before = keys.recipients.len();
        keys.recipients.retain(|e| !r.matches(e));
        if keys.recipients.len() == before {
            return Err(PackError::RecipientNotFound {
                recipient: r.to_string(),
            });
        }
        removed.push(r.to_string());
    }
    Ok(removed)
}

/// What `rewrap` changed.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct RewrapReport {
    /// Package id.
    pub model_id: String,
    /// Recipients added.
    pub added: Vec<String>,
    /// Recipients removed.
    pub removed: Vec<String>,
    /// Recipients now in the keys file.
    pub recipients: Vec<String>,
    /// Whether the manifest signature was verified first.
    pub manifest_verified: bool,
}

/// Unwraps the DEK with the first of `current` that is a recipient, checks it against the
/// manifest's DEK commitment, wraps it for each of `add`, drops each of `remove`, and rewrites
/// `keys.json` (one atomic put). The manifest and ciphertext objects are not touched. With
/// `trusted`, the manifest signature is verified first.
pub async fn rewrap(
    store: &dyn StorageBackend,
    current: &[Arc<dyn KeyProvider>],
    add: &[Arc<dyn KeyProvider>],
    remove: &[Recipient],
    trusted: Option<&TrustPolicy>,
) -> Result<RewrapReport, PackError> {
    let limits = Limits::default();
    let (model_id, commitment, verified) = read_manifest(store, trusted, &limits).await?;
    let kbytes = store.get(KEYS_OBJECT, limits.max_keys_file_bytes).await?;
    let mut keys = KeysFile::parse(&kbytes, &limits)?;
    let package = Commitment {
        model_id: &model_id,
        dek_commitment: &commitment,
    };
    let dek = unlock_dek(&keys, current, package, &limits)
        .await
        .map_err(|e| unlock_error(e, current))?
        .dek;
    let ctx = WrapContext::new(&model_id);

    let mut added = Vec::new();
    for r in add {
        super::add_recipient(&mut keys, r.as_ref(), &dek, &ctx).await?;
        added.push(r.recipient().to_string());
    }
    let removed = remove_recipients(&mut keys, remove)?;
    if keys.recipients.is_empty() {
        return Err(PackError::LastRecipient);
    }
    store.put(KEYS_OBJECT, Bytes::from(keys.to_bytes())).await?;
    tracing::info!(model_id = %model_id, added = ?added, removed = ?removed, "keys file rewritten");
    Ok(RewrapReport {
        model_id,
        added,
        removed,
        recipients: keys
            .recipients
            .iter()
            .map(|e| crate::keys::shown_recipient(&e.provider, &e.key_ref))
            .collect(),
        manifest_verified: verified,
    })
}
