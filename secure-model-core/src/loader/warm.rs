//! Pre-warming: every data object of a verified manifest into the cache, before any pod asks
//! (`secure-model cache warm`, a DaemonSet per node). No key is involved.

use std::sync::Arc;
use std::time::Instant;

use super::fetch::{check_object_size, get_range_retrying};
use super::ranges::chunks;
use super::{LoadError, Loader};
use crate::cache::{Check, Fill, Lookup, NodeCache};
use crate::storage::StorageBackend;
use crate::verify::VerifiedFile;

/// Bytes per ranged GET of a warm.
const WARM_RANGE: u64 = 16 << 20;

/// What a warm did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct WarmReport {
    /// Package id.
    pub model_id: String,
    /// Model name.
    pub model_name: String,
    /// Data objects of the package.
    pub objects: usize,
    /// Already cached (and hashed to their signed digests).
    pub already_cached: usize,
    /// Fetched from the origin and added.
    pub filled: usize,
    /// Being filled by another process of this node: left to it.
    pub left_to_others: usize,
    /// Ciphertext bytes fetched from the origin.
    pub bytes_fetched: u64,
    /// Wall time.
    pub seconds: f64,
}

impl Loader {
    /// Verifies the manifest at `origin`, then adds each of its data objects to `cache`,
    /// checked against its signed size and SHA-256 before it becomes visible. No key is
    /// involved.
    ///
    /// # Errors
    /// As [`Loader::fetch_manifest`]; [`LoadError::Destination`] for a read-only cache;
    /// storage failures; [`LoadError::CiphertextDigestMismatch`] /
    /// [`LoadError::CiphertextSizeMismatch`] when the origin holds something else than the
    /// manifest signs (nothing is cached for it).
    pub async fn warm_cache(
        &self,
        origin: &dyn StorageBackend,
        cache: &Arc<NodeCache>,
    ) -> Result<WarmReport, LoadError> {
        let manifest = self.fetch_manifest(origin).await?;
        let mut report =
            fill_all(cache, origin, manifest.files(), self.options.range_attempts).await?;
        report.model_id = manifest.model_id().to_string();
        report.model_name = manifest.model_name().to_string();
        Ok(report)
    }
}

/// Adds every object of `files` to `cache`.
async fn fill_all(
    cache: &Arc<NodeCache>,
    origin: &dyn StorageBackend,
    files: &[VerifiedFile],
    attempts: u32,
) -> Result<WarmReport, LoadError> {
    let started = Instant::now();
    if !cache.writable() {
        return Err(LoadError::Destination {
            path: cache.dir().display().to_string(),
            reason: "the cache directory is not writable",
            source: None,
        });
    }
    let mut report = WarmReport {
        objects: files.len(),
        ..WarmReport::default()
    };
    for f in files {
        let (c, sha, size) = (
            Arc::clone(cache),
            *f.ciphertext_sha256(),
            f.ciphertext_size(),
        );
        let fill = blocking(move || match c.lookup(&sha, size, Check::Digest) {
            Lookup::Hit(_) => None,
            Lookup::Miss { .. } => Some(c.begin_fill(&sha, size)),
        })
        .await?;
        match fill {
            None => report.already_cached += 1,
            Some(None) => report.left_to_others += 1,
            Some(Some(fill)) => {
                report.bytes_fetched += fill_one(origin, f, Arc::new(fill), attempts).await?;
                cache.count_filled();
                report.filled += 1;
            }
        }
    }
    let c = Arc::clone(cache);
    blocking(move || c.enforce_limit()).await?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Reads `f`'s object from `origin` into `fill` and renames it into the cache if it matches
/// its signed digest; returns the bytes read.
async fn fill_one(
    origin: &dyn StorageBackend,
    f: &VerifiedFile,
    fill: Arc<Fill>,
    attempts: u32,
) -> Result<u64, LoadError> {
    check_object_size(origin, f).await?;
    let mut read = 0;
    for range in chunks(f.ciphertext_size(), WARM_RANGE) {
        let start = range.start;
        let body = get_range_retrying(origin, f.object(), range, attempts).await?;
        read += body.len() as u64;
        let fill = Arc::clone(&fill);
        blocking(move || {
            fill.write_at(start, &body);
            fill.advance_hash();
        })
        .await?;
    }
    if !blocking(move || fill.finish()).await? {
        return Err(LoadError::CiphertextDigestMismatch {
            path: f.path().to_string(),
        });
    }
    Ok(read)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, LoadError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| LoadError::Internal {
            what: "cache task panicked or was cancelled",
        })
}
