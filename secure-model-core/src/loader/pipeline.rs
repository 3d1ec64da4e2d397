//! Per-file fetch → decrypt → hash → write. Ranges of whole segments are fetched ahead
//! (bounded), opened on the blocking pool (never on the async reactor), hashed in order and
//! written with positional writes into a preallocated staging file, or appended to a
//! preallocated zeroizing buffer for in-memory loads.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use zeroize::Zeroizing;

use super::{LoadError, LoadOptions, Progress};
use crate::crypto::streaming::{SegmentCipher, HEADER_LEN};
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

/// Streams a file's ciphertext in ranges, in order, with bounded read-ahead.
fn fetch_ranges<'a>(
    store: &'a Arc<dyn StorageBackend>,
    file: &'a VerifiedFile,
    opts: &'a LoadOptions,
    seg_size: u64,
) -> impl futures::Stream<Item = Result<(u64, Bytes), LoadError>> + 'a {
    let ct_len = file.ciphertext_size();
    futures::stream::iter(ranges(file, opts))
        .map(move |(first, count)| {
            let store = Arc::clone(store);
            let key = file.object().to_string();
            async move {
                let start = first * seg_size;
                let end = ((first + count) * seg_size).min(ct_len);
                let b = store.get_range(&key, start..end).await?;
                Ok::<_, LoadError>((first, b))
            }
        })
        .buffered(opts.read_ahead.max(1))
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
    let (sink, mut memory) = match sink {
        Sink::Discard => (None, None),
        Sink::File(f) => (Some(Arc::new(f)), None),
        Sink::Memory => (
            None,
            Some(memory_buffer(file.plaintext_size(), file.path())?),
        ),
    };
    let mut cipher: Option<Arc<SegmentCipher>> = None;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let path = file.path().to_string();
    let mut stream = std::pin::pin!(fetch_ranges(&store, &file, &opts, seg_size));
    while let Some((first, bytes)) = stream.try_next().await? {
        if cipher.is_none() {
            let header = bytes
                .get(..HEADER_LEN)
                .ok_or_else(|| LoadError::DecryptionFailed { path: path.clone() })?;
            let c = unlocked
                .file_cipher(&file, header)
                .map_err(|_| LoadError::DecryptionFailed { path: path.clone() })?;
            cipher = Some(Arc::new(c));
        }
        let c = cipher.clone().ok_or(LoadError::Internal {
            what: "cipher missing",
        })?;
        let sink = sink.clone();
        let offset = params.plaintext_offset(first);
        let p = path.clone();
        let mut mem = memory.take();
        let (h, n, mem) = tokio::task::spawn_blocking(move || -> Result<_, LoadError> {
            let mut buf = into_mut(bytes);
            let n = c
                .open_segments(first, total, &mut buf)
                .map_err(|_| LoadError::DecryptionFailed { path: p.clone() })?;
            let pt = buf.get(..n).ok_or(LoadError::Internal {
                what: "plaintext length",
            })?;
            hasher.update(pt);
            if let Some(f) = &sink {
                f.write_all_at(pt, offset)
                    .map_err(|e| LoadError::Destination {
                        path: p.clone(),
                        reason: "cannot write staging file",
                        source: Some(e),
                    })?;
            }
            if let Some(m) = mem.as_mut() {
                // Ranges arrive in order; the buffer was sized from the signed plaintext size,
                // so an append past it (or out of order) is a broken invariant, not a realloc.
                if m.len() as u64 != offset || pt.len() > m.capacity() - m.len() {
                    return Err(LoadError::DecryptionFailed { path: p.clone() });
                }
                m.extend_from_slice(pt);
            }
            Ok((hasher, n as u64, mem))
        })
        .await
        .map_err(|_| LoadError::Internal {
            what: "decryption task panicked or was cancelled",
        })??;
        hasher = h;
        memory = mem;
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
                store
                    .get_range(&key, start..(start + step).min(ct_len))
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
