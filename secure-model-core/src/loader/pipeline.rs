//! Per-file fetch → decrypt → hash → write. Ranges of whole segments are fetched ahead
//! (bounded), opened on the blocking pool (never on the async reactor), hashed in order and
//! written with positional writes into a preallocated staging file.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use zeroize::Zeroizing;

use super::{LoadError, LoadOptions, Progress};
use crate::crypto::streaming::HEADER_LEN;
use crate::crypto::Sha256;
use crate::storage::StorageBackend;
use crate::verify::{UnlockedManifest, VerifiedFile};

/// Checks the object's size in the store against the signed ciphertext size.
pub(crate) async fn check_object_size(
    store: &dyn StorageBackend,
    file: &VerifiedFile,
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

/// `(first segment, segment count)` of each range of a file.
fn ranges(file: &VerifiedFile, opts: &LoadOptions) -> Vec<(u64, u64)> {
    let per = u64::from(opts.range_segments.max(1));
    let total = file.segments();
    let mut out = Vec::new();
    let mut first = 0;
    while first < total {
        let count = per.min(total - first);
        out.push((first, count));
        first += count;
    }
    out
}

/// A ranged GET retried on transient failures (connection reset, timeout, body cut short)
/// with exponential backoff and jitter, without restarting the file. Permanent failures
/// (not found, access denied, authentication) return at once. The object store client
/// already retries 429/5xx and resumes interrupted bodies; this layer covers what is left.
pub(crate) async fn get_range_retrying(
    store: &dyn StorageBackend,
    key: &str,
    range: std::ops::Range<u64>,
    attempts: u32,
) -> Result<Bytes, LoadError> {
    let mut attempt = 0u32;
    loop {
        match store.get_range(key, range.clone()).await {
            Ok(b) => return Ok(b),
            Err(e) if e.is_transient() && attempt + 1 < attempts.max(1) => {
                attempt += 1;
                let base = 100u64 << attempt.min(6);
                let mut jitter = [0u8; 1];
                let _ = crate::crypto::random_fill(&mut jitter);
                let delay =
                    std::time::Duration::from_millis(base + u64::from(jitter[0]) * base / 256);
                tracing::warn!(
                    object = key,
                    start = range.start,
                    end = range.end,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    error = %crate::error::chain(&e),
                    "transient storage failure, retrying this range"
                );
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Permits for CPU-bound work (segment decryption): one per available core.
fn cpu_permits() -> Arc<tokio::sync::Semaphore> {
    static PERMITS: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    Arc::clone(PERMITS.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Arc::new(tokio::sync::Semaphore::new(n))
    }))
}

/// Aborts a spawned task when dropped (a failed file stops its in-flight ranges).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

fn into_mut(b: Bytes) -> BytesMut {
    match b.try_into_mut() {
        Ok(m) => m,
        Err(b) => BytesMut::from(&b[..]),
    }
}

/// Where decrypted plaintext goes.
pub(crate) enum Sink {
    /// Nowhere: decrypt and hash only (verification).
    Discard,
    /// Positional writes into a preallocated staging file.
    File(File),
    /// Appended to a buffer in memory, allocated once at the signed plaintext size.
    Memory,
}

/// What [`decrypt_file`] produced.
pub(crate) struct Decrypted {
    /// Plaintext bytes.
    pub(crate) bytes: u64,
    /// The plaintext, for [`Sink::Memory`].
    pub(crate) memory: Option<Zeroizing<Vec<u8>>>,
}

/// Allocates a zeroizing buffer of exactly `size` bytes of capacity, failing (not aborting)
/// when the allocation is refused. Appending up to `size` bytes never reallocates, so no
/// unzeroized copy of the plaintext is left behind.
fn memory_buffer(size: u64, path: &str) -> Result<Zeroizing<Vec<u8>>, LoadError> {
    let too_large = || LoadError::TooLargeForMemory {
        what: path.to_string(),
        bytes: size,
    };
    let n = usize::try_from(size).map_err(|_| too_large())?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| too_large())?;
    Ok(Zeroizing::new(v))
}

/// Decrypts `file` and verifies its plaintext SHA-256; writes into `sink`.
///
/// Up to `read_ahead` ranges of a file are in flight at once, each fetched (with retries)
/// and then opened and written at its offset on the blocking pool; plaintext is hashed in
/// order as ranges complete. In-flight memory is bounded by `read_ahead` ranges per file.
pub(crate) async fn decrypt_file(
    store: Arc<dyn StorageBackend>,
    unlocked: Arc<UnlockedManifest>,
    index: usize,
    sink: Sink,
    opts: LoadOptions,
    progress: Option<Arc<dyn Progress>>,
) -> Result<Decrypted, LoadError> {
    let file = unlocked
        .manifest()
        .files()
        .get(index)
        .ok_or(LoadError::Internal {
            what: "file index out of range",
        })?
        .clone();
    check_object_size(store.as_ref(), &file).await?;
    let params = unlocked.manifest().params();
    let seg_size = u64::from(params.segment_size());
    let total = file.segments();
    let ct_len = file.ciphertext_size();
    let (sink, mut memory) = match sink {
        Sink::Discard => (None, None),
        Sink::File(f) => (Some(Arc::new(f)), None),
        Sink::Memory => (
            None,
            Some(memory_buffer(file.plaintext_size(), file.path())?),
        ),
    };
    let path = file.path().to_string();
    let key = file.object().to_string();
    let attempts = opts.range_attempts;

    // The header is in the first range; fetch it first so every range task gets the cipher.
    let mut plan = ranges(&file, &opts).into_iter();
    let Some((first0, count0)) = plan.next() else {
        return Err(LoadError::DecryptionFailed { path });
    };
    let head = get_range_retrying(
        store.as_ref(),
        &key,
        0..((first0 + count0) * seg_size).min(ct_len),
        attempts,
    )
    .await?;
    let header = head
        .get(..HEADER_LEN)
        .ok_or_else(|| LoadError::DecryptionFailed { path: path.clone() })?;
    let cipher = Arc::new(
        unlocked
            .file_cipher(&file, header)
            .map_err(|_| LoadError::DecryptionFailed { path: path.clone() })?,
    );

    let open_range = {
        let cipher = Arc::clone(&cipher);
        let sink = sink.clone();
        let path = path.clone();
        move |first: u64, bytes: Bytes| {
            let c = Arc::clone(&cipher);
            let sink = sink.clone();
            let p = path.clone();
            let offset = params.plaintext_offset(first);
            async move {
                // At most one decryption per core at a time: more only adds context switches.
                let _permit = cpu_permits().acquire_owned().await.ok();
                tokio::task::spawn_blocking(move || -> Result<Bytes, LoadError> {
                    let mut buf = into_mut(bytes);
                    let n = c
                        .open_segments(first, total, &mut buf)
                        .map_err(|_| LoadError::DecryptionFailed { path: p.clone() })?;
                    buf.truncate(n);
                    if let Some(f) = &sink {
                        f.write_all_at(&buf, offset)
                            .map_err(|e| LoadError::Destination {
                                path: p.clone(),
                                reason: "cannot write staging file",
                                source: Some(e),
                            })?;
                    }
                    Ok(buf.freeze())
                })
                .await
            }
        }
    };

    let first_task = {
        let t = open_range(first0, head);
        AbortOnDrop(tokio::spawn(async move {
            t.await.map_err(|_| LoadError::Internal {
                what: "decryption task panicked or was cancelled",
            })?
        }))
    };
    let rest = plan.map(|(first, count)| {
        let store = Arc::clone(&store);
        let key = key.clone();
        let open_range = open_range.clone();
        AbortOnDrop(tokio::spawn(async move {
            let start = first * seg_size;
            let end = ((first + count) * seg_size).min(ct_len);
            let bytes = get_range_retrying(store.as_ref(), &key, start..end, attempts).await?;
            open_range(first, bytes)
                .await
                .map_err(|_| LoadError::Internal {
                    what: "decryption task panicked or was cancelled",
                })?
        }))
    });
    let mut results = std::pin::pin!(futures::stream::iter(std::iter::once(first_task))
        .chain(futures::stream::iter(rest))
        .map(|task| async move {
            task.await.map_err(|_| LoadError::Internal {
                what: "range task panicked or was cancelled",
            })?
        })
        .buffered(opts.read_ahead.max(1)));

    let mut hasher = Sha256::new();
    let mut written = 0u64;
    while let Some(pt) = results.try_next().await? {
        let n = pt.len() as u64;
        let mut mem = memory.take();
        let p = path.clone();
        let (h, m) = tokio::task::spawn_blocking(move || -> Result<_, LoadError> {
            hasher.update(&pt);
            if let Some(m) = mem.as_mut() {
                // Ranges arrive in order; the buffer was sized from the signed plaintext size,
                // so an append past it is a broken invariant, never a reallocation.
                if pt.len() > m.capacity() - m.len() {
                    return Err(LoadError::DecryptionFailed { path: p });
                }
                m.extend_from_slice(&pt);
            }
            Ok((hasher, mem))
        })
        .await
        .map_err(|_| LoadError::Internal {
            what: "hash task panicked or was cancelled",
        })??;
        hasher = h;
        memory = m;
        written += n;
        if let Some(p) = &progress {
            p.advance(n);
        }
    }
    if written != file.plaintext_size() {
        return Err(LoadError::DecryptionFailed { path });
    }
    if hasher.finish() != *file.plaintext_sha256() {
        return Err(LoadError::PlaintextDigestMismatch { path });
    }
    Ok(Decrypted {
        bytes: written,
        memory,
    })
}

/// Hashes a file's ciphertext object and compares size and SHA-256 with the signed values.
pub(crate) async fn check_ciphertext(
    store: Arc<dyn StorageBackend>,
    file: VerifiedFile,
    opts: LoadOptions,
    progress: Option<Arc<dyn Progress>>,
) -> Result<(), LoadError> {
    check_object_size(store.as_ref(), &file).await?;
    let seg_size = 1u64 << 20;
    let mut hasher = Sha256::new();
    let ct_len = file.ciphertext_size();
    let step = u64::from(opts.range_segments.max(1)) * seg_size.max(1);
    let starts: Vec<u64> = (0..ct_len.div_ceil(step)).map(|i| i * step).collect();
    let mut chunks = std::pin::pin!(futures::stream::iter(starts)
        .map(|start| {
            let store = Arc::clone(&store);
            let key = file.object().to_string();
            async move {
                get_range_retrying(
                    store.as_ref(),
                    &key,
                    start..(start + step).min(ct_len),
                    opts.range_attempts,
                )
                .await
            }
        })
        .buffered(opts.read_ahead.max(1)));
    while let Some(b) = chunks.try_next().await? {
        let n = b.len() as u64;
        hasher = tokio::task::spawn_blocking(move || {
            hasher.update(&b);
            hasher
        })
        .await
        .map_err(|_| LoadError::Internal {
            what: "hash task panicked or was cancelled",
        })?;
        if let Some(p) = &progress {
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
