//! The segment opener stage: authenticates and decrypts one fetched range on the blocking pool
//! (never on the async reactor), at most one range per core at a time, and hands the plaintext
//! to the sink at its offset.

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;

use super::phases::StageClock;
use super::ranges::SegmentRange;
use super::sink::PlaintextSink;
use super::LoadError;
use crate::crypto::streaming::SegmentOpener;

/// Permits for CPU-bound work (segment decryption): one per available core. More only adds
/// context switches.
fn cpu_permits() -> Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    Arc::clone(PERMITS.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Arc::new(Semaphore::new(n))
    }))
}

/// The ranged body as a mutable buffer: no copy when the body is uniquely owned.
fn into_mut(b: Bytes) -> BytesMut {
    match b.try_into_mut() {
        Ok(m) => m,
        Err(b) => BytesMut::from(&b[..]),
    }
}

/// What one file's ranges share.
pub(crate) struct FileOpener<S> {
    /// The file's segment opener.
    pub(crate) opener: SegmentOpener,
    /// Segments in the file.
    pub(crate) segments: u64,
    /// Where its plaintext goes.
    pub(crate) sink: S,
    /// Model path, for messages.
    pub(crate) path: String,
    /// Where the busy time goes.
    pub(crate) clock: Arc<StageClock>,
}

/// Opens `ciphertext` (the segments of `range`) in place and writes the plaintext to the sink;
/// returns the plaintext for hashing.
///
/// # Errors
/// [`LoadError::DecryptionFailed`] (opaque) when the range does not authenticate; sink errors.
pub(crate) async fn open_range<S: PlaintextSink>(
    file: Arc<FileOpener<S>>,
    range: SegmentRange,
    ciphertext: Bytes,
) -> Result<Bytes, LoadError> {
    let _permit = cpu_permits().acquire_owned().await.ok();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut buf = into_mut(ciphertext);
        let n = file
            .opener
            .open_segments(range.first, file.segments, &mut buf)
            .map_err(|_| LoadError::DecryptionFailed {
                path: file.path.clone(),
            })?;
        buf.truncate(n);
        file.sink.write_at(range.plaintext_offset, &buf)?;
        file.clock.add_cpu(started);
        Ok(buf.freeze())
    })
    .await
    .map_err(|_| LoadError::Internal {
        what: "decryption task panicked or was cancelled",
    })?
}
