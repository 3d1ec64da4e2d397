//! The ciphertext-only check of `verify` without a key: every object's size and SHA-256
//! against the signed values, read in ranges, hashed in order on the blocking pool.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::driver::Driver;
use super::fetch::{check_object_size, get_range_retrying};
use super::phases::StageClock;
use super::ranges::chunks;
use super::LoadError;
use crate::crypto::Sha256;
use crate::verify::{FileEntry, VerifiedFile};

impl Driver {
    /// Checks every ciphertext object's size and SHA-256 against the signed values, without a
    /// key (`verify`).
    pub(crate) async fn check_ciphertexts(&self, files: &[VerifiedFile]) -> Result<(), LoadError> {
        futures::stream::iter(files)
            .map(|f| self.check_ciphertext(f))
            .buffer_unordered(self.opts.file_concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    async fn check_ciphertext(&self, file: &FileEntry) -> Result<(), LoadError> {
        check_object_size(self.store.as_ref(), file).await?;
        let step = u64::from(self.opts.range_segments.max(1)) << 20;
        let mut bodies =
            std::pin::pin!(futures::stream::iter(chunks(file.ciphertext_size(), step))
                .map(|range| get_range_retrying(
                    self.store.as_ref(),
                    file.object(),
                    range,
                    self.opts.range_attempts
                ))
                .buffered(self.opts.read_ahead.max(1)));
        let mut hasher = Sha256::new();
        while let Some(b) = bodies.try_next().await? {
            let n = b.len() as u64;
            hasher = hash_blocking(hasher, b, &self.clock).await?;
            if let Some(p) = &self.progress {
                p.advance(n);
            }
        }
        if hasher.finish() != *file.ciphertext_sha256() {
            return Err(LoadError::CiphertextDigestMismatch {
                path: file.path().to_string(),
            });
        }
        Ok(())
    }
}

/// Absorbs `data` into `hasher` on the blocking pool.
async fn hash_blocking(
    mut hasher: Sha256,
    data: Bytes,
    clock: &Arc<StageClock>,
) -> Result<Sha256, LoadError> {
    let clock = Arc::clone(clock);
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        hasher.update(&data);
        clock.add_cpu(started);
        hasher
    })
    .await
    .map_err(|_| LoadError::Internal {
        what: "hash task panicked or was cancelled",
    })
}
