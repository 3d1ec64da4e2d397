//! The private driver of every pull: for each file, the range fetcher feeds the segment opener,
//! which feeds a [`PlaintextSink`]; plaintext is hashed in order as ranges complete and checked
//! against the signed SHA-256 before the sink's output is released. Files run
//! `file_concurrency` at a time, ranges `read_ahead` at a time per file. Also the
//! ciphertext-only check of `verify`.

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

use super::fetch::{check_object_size, get_range_retrying};
use super::open::{open_range, FileOpener};
use super::phases::StageClock;
use super::ranges::{chunks, plan, SegmentRange};
use super::sink::PlaintextSink;
use super::{LoadError, LoadOptions, Progress};
use crate::crypto::streaming::HEADER_LEN;
use crate::crypto::Sha256;
use crate::storage::StorageBackend;
use crate::verify::{FileEntry, UnlockedManifest, VerifiedFile};

/// Aborts a spawned task when dropped (a failed file stops its in-flight ranges).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, LoadError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| {
            r.map_err(|_| LoadError::Internal {
                what: "range task panicked or was cancelled",
            })
        })
    }
}

/// One package's pull: where it is read from, its unlocked manifest, tuning, progress and the
/// stages' clock.
#[derive(Clone)]
pub(crate) struct Driver {
    pub(crate) store: Arc<dyn StorageBackend>,
    pub(crate) opts: LoadOptions,
    pub(crate) progress: Option<Arc<dyn Progress>>,
    pub(crate) clock: Arc<StageClock>,
}

impl Driver {
    fn advance(&self, n: u64) {
        if let Some(p) = &self.progress {
            p.advance(n);
        }
    }

    /// Decrypts every file of `unlocked` into its sink (`sinks[i]` for file `i`) and returns the
    /// sinks' outputs in file order, once every file verified. On failure the outputs built so
    /// far are dropped (zeroized for memory sinks).
    pub(crate) async fn decrypt_all<S: PlaintextSink>(
        &self,
        unlocked: &Arc<UnlockedManifest>,
        sinks: Vec<S>,
    ) -> Result<Vec<S::Output>, LoadError> {
        let files = unlocked.manifest().files();
        if sinks.len() != files.len() {
            return Err(LoadError::Internal {
                what: "one sink per file",
            });
        }
        let mut done: Vec<(usize, S::Output)> =
            futures::stream::iter(sinks.into_iter().enumerate())
                .map(|(i, sink)| async move {
                    let file = files.get(i).ok_or(LoadError::Internal {
                        what: "file index out of range",
                    })?;
                    Ok::<_, LoadError>((i, self.decrypt_file(unlocked, file, sink).await?))
                })
                .buffer_unordered(self.opts.file_concurrency.max(1))
                .try_collect()
                .await?;
        done.sort_by_key(|(i, _)| *i);
        Ok(done.into_iter().map(|(_, o)| o).collect())
    }

    /// Decrypts one file into `sink` and verifies its plaintext SHA-256.
    async fn decrypt_file<S: PlaintextSink>(
        &self,
        unlocked: &UnlockedManifest,
        file: &VerifiedFile,
        sink: S,
    ) -> Result<S::Output, LoadError> {
        check_object_size(self.store.as_ref(), file).await?;
        let params = unlocked.manifest().params();
        let mut ranges = plan(
            params,
            file.segments(),
            file.ciphertext_size(),
            self.opts.range_segments,
        )
        .into_iter();
        // The header is in the first range: fetch it first, so every range gets the opener.
        let first = ranges.next().ok_or_else(|| LoadError::DecryptionFailed {
            path: file.path().to_string(),
        })?;
        let head = self.fetch(file.object(), &first).await?;
        let opener = head
            .get(..HEADER_LEN)
            .and_then(|h| unlocked.file_opener(file, h).ok())
            .ok_or_else(|| LoadError::DecryptionFailed {
                path: file.path().to_string(),
            })?;
        let shared = Arc::new(FileOpener {
            opener,
            segments: file.segments(),
            sink,
            path: file.path().to_string(),
            clock: Arc::clone(&self.clock),
        });
        let plaintext = self.open_ranges(&shared, first, head, ranges, file.object());
        self.hash_in_order(file, plaintext).await?;
        let shared = Arc::into_inner(shared).ok_or(LoadError::Internal {
            what: "a range task outlived its file",
        })?;
        shared.sink.finish()
    }

    async fn fetch(&self, key: &str, range: &SegmentRange) -> Result<Bytes, LoadError> {
        let started = std::time::Instant::now();
        let got = get_range_retrying(
            self.store.as_ref(),
            key,
            range.ciphertext.clone(),
            self.opts.range_attempts,
        )
        .await;
        self.clock.add_get(started);
        got
    }

    /// The plaintext of every range, in order: each range is fetched and opened in its own
    /// task, `read_ahead` at a time.
    fn open_ranges<'a, S: PlaintextSink>(
        &'a self,
        file: &'a Arc<FileOpener<S>>,
        first: SegmentRange,
        head: Bytes,
        rest: impl Iterator<Item = SegmentRange> + 'a,
        key: &'a str,
    ) -> impl Stream<Item = Result<Bytes, LoadError>> + 'a {
        let first_task = AbortOnDrop(tokio::spawn(open_range(Arc::clone(file), first, head)));
        let rest = rest.map(move |range| {
            let this = self.clone();
            let file = Arc::clone(file);
            let key = key.to_string();
            AbortOnDrop(tokio::spawn(async move {
                let bytes = this.fetch(&key, &range).await?;
                open_range(file, range, bytes).await
            }))
        });
        futures::stream::iter(std::iter::once(first_task).chain(rest))
            .map(|task| async move { task.await? })
            .buffered(self.opts.read_ahead.max(1))
    }

    /// Hashes the plaintext stream in order (on the blocking pool) and checks its length and
    /// SHA-256 against the signed values.
    async fn hash_in_order(
        &self,
        file: &FileEntry,
        plaintext: impl Stream<Item = Result<Bytes, LoadError>>,
    ) -> Result<(), LoadError> {
        let mut plaintext = std::pin::pin!(plaintext);
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        while let Some(pt) = plaintext.try_next().await? {
            let n = pt.len() as u64;
            hasher = hash_blocking(hasher, pt, &self.clock).await?;
            written += n;
            self.advance(n);
        }
        if written != file.plaintext_size() {
            return Err(LoadError::DecryptionFailed {
                path: file.path().to_string(),
            });
        }
        if hasher.finish() != *file.plaintext_sha256() {
            return Err(LoadError::PlaintextDigestMismatch {
                path: file.path().to_string(),
            });
        }
        Ok(())
    }

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
            self.advance(n);
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
