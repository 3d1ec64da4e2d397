//! The range fetcher: ranged GETs streamed segment by segment into pooled buffers, resumed
//! where they stopped after transient failures; the size check of a ciphertext object against
//! the signed size; whole-range reads for the ciphertext-only check. Knows nothing of keys or
//! plaintext.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures::StreamExt;

use super::phases::StageClock;
use super::pool::{BufferPool, PooledBuf};
use super::ranges::SegmentRange;
use super::LoadError;
use crate::storage::{ByteStream, StorageBackend, StorageError};
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

/// Logs and waits before retry `attempt` of bytes `range` of `key` after `e`.
async fn wait_to_retry(key: &str, range: &Range<u64>, attempt: u32, e: &StorageError) {
    let delay = backoff(attempt);
    tracing::warn!(
        object = key,
        start = range.start,
        end = range.end,
        attempt,
        delay_ms = delay.as_millis() as u64,
        error = %crate::class::chain_message(e),
        "transient storage failure, retrying this range"
    );
    tokio::time::sleep(delay).await;
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
        match collect_range(store, key, range.clone()).await {
            Ok(b) => return Ok(b),
            Err(e) if e.is_transient() && attempt + 1 < attempts.max(1) => {
                attempt += 1;
                wait_to_retry(key, &range, attempt, &e).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Bytes `range` of `key` read through the streamed body, so a body that stops arriving fails
/// after the stall timeout ([`StorageError::Stalled`], transient) instead of the client's
/// whole-request timeout.
async fn collect_range(
    store: &dyn StorageBackend,
    key: &str,
    range: Range<u64>,
) -> Result<Bytes, StorageError> {
    let mut body = store.get_range_stream(key, range.clone()).await?;
    let first = match body.next().await {
        Some(chunk) => chunk?,
        None => Bytes::new(),
    };
    if first.len() as u64 == range.end - range.start {
        return Ok(first);
    }
    let mut all = bytes::BytesMut::from(first);
    while let Some(chunk) = body.next().await {
        all.extend_from_slice(&chunk?);
    }
    Ok(all.freeze())
}

/// Reads the ciphertext segments of one range, each into a pooled buffer as its bytes arrive
/// (one copy, from the network buffers into the segment buffer that is then decrypted in
/// place). After a transient failure the GET is resumed at the first byte not yet received.
pub(crate) struct SegmentReader {
    store: Arc<dyn StorageBackend>,
    key: String,
    range: SegmentRange,
    segment_size: u64,
    received: u64,
    next: u64,
    body: Option<ByteStream>,
    pending: Bytes,
    attempts: u32,
    failures: u32,
    /// The body stalled once already: a stall has its own budget of one resume.
    stalled: bool,
    clock: Arc<StageClock>,
}

impl SegmentReader {
    /// A reader of `range` of object `key`, in segments of `segment_size` ciphertext bytes,
    /// allowing `attempts` tries per failure streak.
    pub(crate) fn new(
        store: Arc<dyn StorageBackend>,
        key: &str,
        range: SegmentRange,
        segment_size: u64,
        attempts: u32,
        clock: Arc<StageClock>,
    ) -> Self {
        Self {
            store,
            key: key.to_string(),
            received: range.ciphertext.start,
            next: range.first,
            range,
            segment_size,
            body: None,
            pending: Bytes::new(),
            attempts: attempts.max(1),
            failures: 0,
            stalled: false,
            clock,
        }
    }

    /// The next segment: its index and its ciphertext (for segment 0 with the header), or
    /// `None` after the last. The buffer is taken from `pool` when its first bytes arrive.
    ///
    /// # Errors
    /// Storage failures after the retries.
    pub(crate) async fn next_segment(
        &mut self,
        pool: &Arc<BufferPool>,
    ) -> Result<Option<(u64, PooledBuf)>, LoadError> {
        let next = self.next;
        let start = next * self.segment_size;
        if start >= self.range.ciphertext.end || next >= self.range.first + self.range.count {
            return Ok(None);
        }
        let end = (start + self.segment_size).min(self.range.ciphertext.end);
        let want = usize::try_from(end - start).map_err(|_| LoadError::Internal {
            what: "segment larger than memory",
        })?;
        let mut buf: Option<PooledBuf> = None;
        while buf.as_ref().map_or(0, |b| b.len()) < want {
            if self.pending.is_empty() {
                self.pending = self.next_chunk().await?;
            }
            let b = match &mut buf {
                Some(b) => b,
                None => buf.insert(pool.take().await.ok_or(LoadError::Internal {
                    what: "buffer pool closed",
                })?),
            };
            let take = (want - b.len()).min(self.pending.len());
            b.extend_from_slice(self.pending.get(..take).unwrap_or_default());
            self.pending.advance(take);
        }
        self.next += 1;
        Ok(buf.map(|b| (next, b)))
    }

    /// Whether to retry after `e`: transient failures up to the attempts; a stalled body
    /// once (then a second stall, or no response to the resumed GET, fails at once: a store
    /// that froze mid-transfer fails in about the stall plus the first-byte timeout).
    fn may_retry(&mut self, e: &StorageError) -> bool {
        let stall = matches!(e, StorageError::Stalled { .. });
        if self.stalled && (stall || matches!(e, StorageError::NoResponse { .. })) {
            return false;
        }
        if stall {
            self.stalled = true;
            return true;
        }
        e.is_transient() && self.failures + 1 < self.attempts
    }

    /// The next chunk of the body, (re)opening the GET at the first byte not received.
    async fn next_chunk(&mut self) -> Result<Bytes, LoadError> {
        loop {
            let rest = self.received..self.range.ciphertext.end;
            let got = match &mut self.body {
                Some(body) => match body.next().await {
                    Some(r) => r,
                    None => Err(StorageError::ShortRead {
                        key: self.key.clone(),
                        location: self.store.location().to_string(),
                        start: rest.start,
                        end: rest.end,
                        got: 0,
                    }),
                },
                None => match self.store.get_range_stream(&self.key, rest.clone()).await {
                    Ok(body) => {
                        self.body = Some(body);
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            match got {
                Ok(chunk) if !chunk.is_empty() => {
                    self.received += chunk.len() as u64;
                    self.clock.add_received(chunk.len() as u64);
                    self.failures = 0;
                    return Ok(chunk);
                }
                Ok(_) => {}
                Err(e) if self.may_retry(&e) => {
                    self.body = None;
                    self.failures += 1;
                    self.clock.add_retry();
                    wait_to_retry(&self.key, &rest, self.failures, &e).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
