//! The segment opener stage: on the blocking pool (never on the async reactor), at most one
//! segment per core at a time, authenticates and decrypts one segment in its pooled buffer,
//! writes the plaintext to the sink at its offset and hashes it right there
//! ([`super::digest`]), while it is still in cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use super::digest::FileCheck;
use super::phases::StageClock;
use super::pool::PooledBuf;
use super::sink::PlaintextSink;
use super::LoadError;
use crate::crypto::opening::SegmentOpener;
use crate::crypto::streaming::{StreamParams, HEADER_LEN};
use crate::verify::{UnlockedManifest, VerifiedFile};

/// Permits for CPU-bound work (segment decryption and hashing): one per available core. More
/// only adds context switches.
pub(crate) fn cpu_permits() -> Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    Arc::clone(PERMITS.get_or_init(|| Arc::new(Semaphore::new(cpus()))))
}

/// Available cores.
pub(crate) fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// Everything the segments of one file share.
pub(crate) struct FileOpener<S> {
    /// The file.
    pub(crate) file: VerifiedFile,
    /// Its segment opener, once the header (in the first range) was read.
    pub(crate) opener: OnceLock<SegmentOpener>,
    /// Streaming parameters.
    pub(crate) params: StreamParams,
    /// Where its plaintext goes.
    pub(crate) sink: S,
    /// Its signed digests and the hashing state.
    pub(crate) check: FileCheck,
    /// Plaintext bytes opened so far.
    pub(crate) opened: AtomicU64,
    /// Where the busy time goes.
    pub(crate) clock: Arc<StageClock>,
}

impl<S: PlaintextSink> FileOpener<S> {
    fn failed(&self) -> LoadError {
        LoadError::DecryptionFailed {
            path: self.file.path().to_string(),
        }
    }

    /// Builds the segment opener from segment 0's ciphertext (its first 40 bytes are the
    /// header).
    ///
    /// # Errors
    /// [`LoadError::DecryptionFailed`] for a malformed header.
    pub(crate) fn open_header(
        &self,
        unlocked: &UnlockedManifest,
        segment0: &[u8],
    ) -> Result<(), LoadError> {
        let opener = segment0
            .get(..HEADER_LEN)
            .and_then(|h| unlocked.file_opener(&self.file, h).ok())
            .ok_or_else(|| self.failed())?;
        // Only the task of the first range sets it, once.
        let _ = self.opener.set(opener);
        Ok(())
    }

    /// Opens segment `index` in `buf`, writes and hashes its plaintext; returns its length.
    fn open_blocking(&self, index: u64, buf: &mut [u8]) -> Result<u64, LoadError> {
        let opener = self.opener.get().ok_or(LoadError::Internal {
            what: "segment before its file's header",
        })?;
        let pt = opener
            .open_segment_in(index, self.file.segments(), buf)
            .map_err(|_| self.failed())?;
        let plaintext = buf.get(pt).ok_or_else(|| self.failed())?;
        let offset = self.params.plaintext_offset(index);
        self.sink.write_at(offset, plaintext)?;
        self.check.absorb(offset, plaintext, &self.sink)?;
        let n = plaintext.len() as u64;
        self.opened.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens segment `index` (ciphertext in `buf`) of `file` on the blocking pool, after a CPU
/// permit; returns the plaintext length. The buffer goes back to its pool afterwards.
///
/// # Errors
/// [`LoadError::DecryptionFailed`] (opaque) when the segment does not authenticate; digest
/// mismatches; sink errors.
pub(crate) async fn open_segment<S: PlaintextSink>(
    file: Arc<FileOpener<S>>,
    index: u64,
    mut buf: PooledBuf,
) -> Result<u64, LoadError> {
    let permit = cpu_permits().acquire_owned().await.ok();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let n = file.open_blocking(index, &mut buf);
        drop(buf);
        drop(permit);
        file.clock.add_cpu(started);
        n
    })
    .await
    .map_err(|_| LoadError::Internal {
        what: "decryption task panicked or was cancelled",
    })?
}
