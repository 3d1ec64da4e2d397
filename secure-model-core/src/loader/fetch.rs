//! The range fetcher: ranged GETs retried on transient failures, and the size check of a
//! ciphertext object against the signed size. Knows nothing of keys or plaintext.

use std::ops::Range;

use bytes::Bytes;

use super::LoadError;
use crate::storage::StorageBackend;
use crate::verify::FileEntry;

/// Checks the object's size in the store against the signed ciphertext size.
pub(crate) async fn check_object_size(
    store: &dyn StorageBackend,
    file: &FileEntry,
) -> Result<(), LoadError> {
    let size = store.head(file.object()).await?;
    if size != file.ciphertext_size() {
        return Err(LoadError::CiphertextSizeMismatch {
            path: file.path().to_string(),
            expected: file.ciphertext_size(),
            actual: size,
        });
    }
    Ok(())
}

/// Backoff before retry `attempt` (1-based): 200 ms doubling up to 6.4 s, plus up to as much
/// again of random jitter.
fn backoff(attempt: u32) -> std::time::Duration {
    let base = 100u64 << attempt.min(6);
    let mut jitter = [0u8; 1];
    let _ = crate::crypto::random_fill(&mut jitter);
    std::time::Duration::from_millis(base + u64::from(jitter[0]) * base / 256)
}

/// A ranged GET retried on transient failures (connection reset, timeout, body cut short)
/// with exponential backoff and jitter, without restarting the file. Permanent failures
/// (not found, access denied, authentication) return at once. The object store client
/// already retries 429/5xx and resumes interrupted bodies; this layer covers what is left.
pub(crate) async fn get_range_retrying(
    store: &dyn StorageBackend,
    key: &str,
    range: Range<u64>,
    attempts: u32,
) -> Result<Bytes, LoadError> {
    let mut attempt = 0u32;
    loop {
        match store.get_range(key, range.clone()).await {
            Ok(b) => return Ok(b),
            Err(e) if e.is_transient() && attempt + 1 < attempts.max(1) => {
                attempt += 1;
                let delay = backoff(attempt);
                tracing::warn!(
                    object = key,
                    start = range.start,
                    end = range.end,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    error = %crate::class::chain_message(&e),
                    "transient storage failure, retrying this range"
                );
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
