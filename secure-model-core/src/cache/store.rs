//! The read-through cache as a [`StorageBackend`] in front of the origin, for the objects of
//! one verified manifest: a ranged read of a data object is served from the cache when a
//! copy hashes to the signed digest, else read from the origin and written into a fill on
//! the way (the pull is never slowed by waiting for the whole object). Everything else (the
//! manifest, the keys file, writes) goes to the origin.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use super::{CacheReport, Check, Counters, Fill, Lookup, NodeCache};
use crate::storage::{
    ByteStream, ObjectInfo, ObjectWriter, Pressure, StorageBackend, StorageError,
};
use crate::verify::VerifiedFile;

/// Where one object's bytes come from, decided at its first read.
#[derive(Debug)]
enum Source {
    /// A verified cached copy.
    Cached(Arc<File>),
    /// The origin, teed into a fill.
    Filling(Arc<Fill>),
    /// The origin alone.
    Origin,
}

#[derive(Debug)]
struct Entry {
    sha: [u8; 32],
    size: u64,
    source: OnceCell<Source>,
    /// Reading the cached copy failed after its check (truncated or removed meanwhile): the
    /// rest comes from the origin.
    failed: Arc<AtomicBool>,
}

/// Bytes read from a cached copy at a time: a ranged read streams from the file as the
/// loader consumes it, so memory stays bounded by the loader's buffers, not the range size.
const CACHE_CHUNK: u64 = 1 << 20;

/// The origin behind a node cache.
#[derive(Debug)]
pub(crate) struct CachedStore {
    origin: Arc<dyn StorageBackend>,
    cache: Arc<NodeCache>,
    check: Check,
    objects: HashMap<String, Entry>,
    finishing: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl CachedStore {
    /// The cache in front of `origin` for the data objects of `files`.
    pub(crate) fn new(
        origin: Arc<dyn StorageBackend>,
        cache: Arc<NodeCache>,
        files: &[VerifiedFile],
        check: Check,
    ) -> Self {
        let objects = files
            .iter()
            .map(|f| {
                let entry = Entry {
                    sha: *f.ciphertext_sha256(),
                    size: f.ciphertext_size(),
                    source: OnceCell::new(),
                    failed: Arc::default(),
                };
                (f.object().to_string(), entry)
            })
            .collect();
        Self {
            origin,
            cache,
            check,
            objects,
            finishing: Arc::default(),
        }
    }

    /// Waits for the fills being renamed into place, applies the size limit and returns what
    /// the cache did.
    pub(crate) async fn settle(&self) -> CacheReport {
        let handles = self
            .finishing
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        for h in handles {
            let _ = h.await;
        }
        let cache = Arc::clone(&self.cache);
        let _ = tokio::task::spawn_blocking(move || cache.enforce_limit()).await;
        self.cache.report()
    }

    /// Whether any object was read from the cache.
    pub(crate) fn had_hits(&self) -> bool {
        self.objects
            .values()
            .any(|e| matches!(e.source.get(), Some(Source::Cached(_))))
    }

    /// The source of a data object, deciding it at the first read; `None` for other keys.
    async fn source(&self, key: &str) -> Option<(&Entry, &Source)> {
        let entry = self.objects.get(key)?;
        let source = entry
            .source
            .get_or_init(|| {
                let cache = Arc::clone(&self.cache);
                let (sha, size, check) = (entry.sha, entry.size, self.check);
                async move {
                    tokio::task::spawn_blocking(move || decide(&cache, &sha, size, check))
                        .await
                        .unwrap_or(Source::Origin)
                }
            })
            .await;
        Some((entry, source))
    }

    async fn read_cached(
        &self,
        key: &str,
        file: &Arc<File>,
        range: Range<u64>,
    ) -> Result<Bytes, StorageError> {
        let file = Arc::clone(file);
        let len = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(usize::MAX);
        let start = range.start;
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, start)
                .map(|()| Bytes::from(buf))
        })
        .await;
        match read {
            Ok(Ok(b)) => {
                Counters::add(&self.cache.counters.bytes_from_cache, b.len() as u64);
                Ok(b)
            }
            // Truncated or removed after its check: the origin still has it.
            _ => {
                tracing::warn!(cache = %self.cache.dir().display(), object = key, "reading a cached object failed; reading the origin");
                self.origin.get_range(key, range).await
            }
        }
    }

    /// Bytes `range` of the cached copy `file`, read chunk by chunk as the stream is polled.
    /// A failed read ends the stream with a transient [`StorageError::ShortRead`] and marks
    /// the object: the loader's retry then resumes from the origin.
    fn cached_stream(
        &self,
        key: &str,
        entry: &Entry,
        file: &Arc<File>,
        range: Range<u64>,
    ) -> ByteStream {
        let (file, cache, failed) = (
            Arc::clone(file),
            Arc::clone(&self.cache),
            Arc::clone(&entry.failed),
        );
        let (key, location) = (key.to_string(), self.origin.location().to_string());
        let steps = (range.start..range.end)
            .step_by(usize::try_from(CACHE_CHUNK).unwrap_or(1 << 20))
            .map(move |s| (s, s.saturating_add(CACHE_CHUNK).min(range.end)));
        let whole = (range.start, range.end);
        Box::pin(futures::stream::iter(steps).then(move |(s, e)| {
            let (file, cache, failed) = (Arc::clone(&file), Arc::clone(&cache), Arc::clone(&failed));
            let (key, location) = (key.clone(), location.clone());
            async move {
                let read = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; usize::try_from(e - s).unwrap_or(0)];
                    file.read_exact_at(&mut buf, s).map(|()| Bytes::from(buf))
                })
                .await;
                match read {
                    Ok(Ok(b)) => {
                        Counters::add(&cache.counters.bytes_from_cache, b.len() as u64);
                        Ok(b)
                    }
                    _ => {
                        failed.store(true, Ordering::Relaxed);
                        tracing::warn!(cache = %cache.dir().display(), object = %key, "reading a cached object failed; the rest comes from the origin");
                        Err(StorageError::ShortRead {
                            key,
                            location,
                            start: whole.0,
                            end: whole.1,
                            got: s - whole.0,
                        })
                    }
                }
            }
        }))
    }

    /// The origin's body, each chunk also written into `fill`; the fill is finished (hashed
    /// and renamed in the background) once every byte is in.
    async fn teed(
        &self,
        key: &str,
        fill: &Arc<Fill>,
        range: Range<u64>,
    ) -> Result<ByteStream, StorageError> {
        let body = self.origin.get_range_stream(key, range.clone()).await?;
        let (fill, cache, finishing) = (
            Arc::clone(fill),
            Arc::clone(&self.cache),
            Arc::clone(&self.finishing),
        );
        let mut offset = range.start;
        let end = range.end;
        Ok(Box::pin(body.map(move |chunk| {
            if let Ok(b) = &chunk {
                let complete = fill.write_at(offset, b);
                offset += b.len() as u64;
                if offset == end && !complete {
                    // A range is in: hash on past the watermark, off the reactor.
                    let fill = Arc::clone(&fill);
                    tokio::task::spawn_blocking(move || fill.advance_hash());
                }
                if complete {
                    let (fill, cache) = (Arc::clone(&fill), Arc::clone(&cache));
                    let h = tokio::task::spawn_blocking(move || {
                        if fill.finish() {
                            Counters::add(&cache.counters.filled, 1);
                        }
                    });
                    if let Ok(mut v) = finishing.lock() {
                        v.push(h);
                    }
                }
            }
            chunk
        })))
    }
}

/// Looks `sha` up; on a miss starts a fill, or reads the origin alone.
fn decide(cache: &NodeCache, sha: &[u8; 32], size: u64, check: Check) -> Source {
    match cache.lookup(sha, size, check) {
        Lookup::Hit(f) => {
            Counters::add(&cache.counters.hits, 1);
            Source::Cached(Arc::new(f))
        }
        Lookup::Miss { corrupt } => {
            if corrupt {
                Counters::add(&cache.counters.repaired, 1);
            }
            match cache.begin_fill(sha, size) {
                Some(f) => Source::Filling(Arc::new(f)),
                None => {
                    Counters::add(&cache.counters.bypassed, 1);
                    Source::Origin
                }
            }
        }
    }
}

#[async_trait]
impl StorageBackend for CachedStore {
    fn location(&self) -> &str {
        self.origin.location()
    }

    async fn head(&self, key: &str) -> Result<u64, StorageError> {
        match self.source(key).await {
            Some((e, Source::Cached(_))) => Ok(e.size),
            _ => self.origin.head(key).await,
        }
    }

    async fn get(&self, key: &str, max_len: u64) -> Result<Bytes, StorageError> {
        match self.source(key).await {
            Some((e, Source::Cached(f))) if e.size <= max_len => {
                self.read_cached(key, f, 0..e.size).await
            }
            _ => self.origin.get(key, max_len).await,
        }
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        match self.source(key).await {
            Some((_, Source::Cached(f))) => self.read_cached(key, f, range).await,
            Some((_, Source::Filling(_))) => {
                let mut body = self.get_range_stream(key, range).await?;
                let mut out = bytes::BytesMut::new();
                while let Some(chunk) = body.next().await {
                    out.extend_from_slice(&chunk?);
                }
                Ok(out.freeze())
            }
            _ => self.origin.get_range(key, range).await,
        }
    }

    async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<ByteStream, StorageError> {
        match self.source(key).await {
            Some((e, Source::Cached(f))) if !e.failed.load(Ordering::Relaxed) => {
                Ok(self.cached_stream(key, e, f, range))
            }
            Some((_, Source::Filling(fill))) if !fill.is_broken() => {
                self.teed(key, fill, range).await
            }
            _ => self.origin.get_range_stream(key, range).await,
        }
    }

    fn pressure(&self) -> Pressure {
        self.origin.pressure()
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        self.origin.put(key, data).await
    }

    async fn put_multipart(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        self.origin.put_multipart(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.origin.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        self.origin.list(prefix).await
    }
}
