//! [`StorageBackend`] over any `object_store::ObjectStore`.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::pressure::PressureCounters;
use super::{ByteStream, ObjectInfo, ObjectWriter, Pressure, StorageBackend, StorageError};

/// A package prefix inside an `object_store` store.
#[derive(Debug, Clone)]
pub struct ObjectStoreBackend {
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
    location: String,
    read_only: bool,
    first_byte: Duration,
    stall: Duration,
    pressure: Option<Arc<PressureCounters>>,
}

/// How often a request still waiting for its first byte is logged.
const WAITING_LOG_EVERY: Duration = Duration::from_secs(5);

impl ObjectStoreBackend {
    /// A backend for `prefix` in `store`; `location` is what messages show (no credentials).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: StorePath,
        location: impl Into<String>,
    ) -> Self {
        Self {
            store,
            prefix,
            location: location.into(),
            read_only: false,
            first_byte: super::client::DEFAULT_FIRST_BYTE_TIMEOUT,
            stall: super::client::DEFAULT_STALL_TIMEOUT,
            pressure: None,
        }
    }

    /// Reports the load signals counted by the HTTP client of `store` (see
    /// [`StorageBackend::pressure`]).
    pub(crate) fn with_pressure(mut self, counters: Arc<PressureCounters>) -> Self {
        self.pressure = Some(counters);
        self
    }

    fn short_read(&self, key: &str, range: &Range<u64>, got: u64) -> StorageError {
        StorageError::ShortRead {
            key: key.to_string(),
            location: self.location.clone(),
            start: range.start,
            end: range.end,
            got,
        }
    }

    /// Fails a read whose response (status and headers) has not arrived within `timeout`,
    /// however many times the client retried inside it (default
    /// [`super::client::DEFAULT_FIRST_BYTE_TIMEOUT`]); the body then has the client's total
    /// request timeout.
    pub fn with_first_byte_timeout(mut self, timeout: Duration) -> Self {
        self.first_byte = timeout;
        self
    }

    /// Fails a streamed body that sends nothing for `timeout` with [`StorageError::Stalled`]
    /// (default [`super::client::DEFAULT_STALL_TIMEOUT`]).
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall = timeout;
        self
    }

    /// Awaits `request` until its response starts, logging while it waits and failing with
    /// [`StorageError::NoResponse`] after the first-byte timeout.
    async fn first_byte<T>(
        &self,
        operation: &'static str,
        key: &str,
        request: impl Future<Output = Result<T, object_store::Error>>,
    ) -> Result<T, StorageError> {
        let started = tokio::time::Instant::now();
        let deadline = tokio::time::sleep(self.first_byte);
        let mut ticks = tokio::time::interval_at(started + WAITING_LOG_EVERY, WAITING_LOG_EVERY);
        tokio::pin!(request, deadline);
        loop {
            tokio::select! {
                r = &mut request => return r.map_err(|e| self.map_err(operation, key, e)),
                () = &mut deadline => {
                    return Err(StorageError::NoResponse {
                        operation,
                        key: key.to_string(),
                        location: self.location.clone(),
                        seconds: self.first_byte.as_secs(),
                    })
                }
                _ = ticks.tick() => tracing::info!(
                    location = %self.location,
                    object = key,
                    operation,
                    waited_s = started.elapsed().as_secs(),
                    "still waiting for the storage's first byte"
                ),
            }
        }
    }

    /// Refuses writes (HTTP(S) mirrors).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        if self.read_only {
            return Err(StorageError::Unsupported {
                location: self.location.clone(),
                operation: "writing",
            });
        }
        Ok(())
    }

    fn path(&self, key: &str) -> Result<StorePath, StorageError> {
        let mut p = self.prefix.clone();
        for part in key.split('/') {
            let part = object_store::path::PathPart::parse(part).map_err(|_| {
                StorageError::InvalidLocation {
                    uri: format!("{}/{}", self.location, key),
                    reason: "object key component is not valid".into(),
                }
            })?;
            p = p.join(part);
        }
        Ok(p)
    }

    fn map_err(&self, operation: &'static str, key: &str, e: object_store::Error) -> StorageError {
        let key = key.to_string();
        let location = self.location.clone();
        match e {
            object_store::Error::NotFound { source, .. } => StorageError::NotFound {
                key,
                location,
                source,
            },
            object_store::Error::PermissionDenied { source, .. }
            | object_store::Error::Unauthenticated { source, .. } => {
                StorageError::PermissionDenied {
                    key,
                    location,
                    source,
                }
            }
            other => StorageError::Backend {
                operation,
                key,
                location,
                source: Box::new(other),
            },
        }
    }
}

#[async_trait]
impl StorageBackend for ObjectStoreBackend {
    fn location(&self) -> &str {
        &self.location
    }

    async fn head(&self, key: &str) -> Result<u64, StorageError> {
        let p = self.path(key)?;
        let meta = self.first_byte("head", key, self.store.head(&p)).await?;
        Ok(meta.size)
    }

    async fn get(&self, key: &str, max_len: u64) -> Result<Bytes, StorageError> {
        let p = self.path(key)?;
        let res = self.first_byte("get", key, self.store.get(&p)).await?;
        let size = res.meta.size;
        let too_large = |size| StorageError::TooLarge {
            key: key.to_string(),
            location: self.location.clone(),
            size,
            limit: max_len,
        };
        if size > max_len {
            return Err(too_large(size));
        }
        let mut buf = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
        let mut stream = res.into_stream();
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| self.map_err("get", key, e))?
        {
            if (buf.len() + chunk.len()) as u64 > max_len {
                return Err(too_large((buf.len() + chunk.len()) as u64));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let p = self.path(key)?;
        let want = range.end.saturating_sub(range.start);
        if want == 0 {
            return Ok(Bytes::new());
        }
        let options = GetOptions::new().with_range(Some(range.clone()));
        let res = self
            .first_byte("get range of", key, self.store.get_opts(&p, options))
            .await?;
        let b = res
            .bytes()
            .await
            .map_err(|e| self.map_err("get range of", key, e))?;
        if b.len() as u64 != want {
            return Err(self.short_read(key, &range, b.len() as u64));
        }
        Ok(b)
    }

    async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<ByteStream, StorageError> {
        let p = self.path(key)?;
        let want = range.end.saturating_sub(range.start);
        if want == 0 {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let options = GetOptions::new().with_range(Some(range.clone()));
        let res = self
            .first_byte("get range of", key, self.store.get_opts(&p, options))
            .await?;
        let body = LengthChecked {
            inner: res.into_stream(),
            backend: self.clone(),
            key: key.to_string(),
            range,
            got: 0,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(body, LengthChecked::next)))
    }

    fn pressure(&self) -> Pressure {
        self.pressure
            .as_ref()
            .map(|c| c.snapshot())
            .unwrap_or_default()
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        self.check_writable()?;
        let p = self.path(key)?;
        self.store
            .put(&p, PutPayload::from_bytes(data))
            .await
            .map_err(|e| self.map_err("put", key, e))?;
        Ok(())
    }

    async fn put_multipart(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        self.check_writable()?;
        let p = self.path(key)?;
        let upload = self
            .store
            .put_multipart(&p)
            .await
            .map_err(|e| self.map_err("start upload of", key, e))?;
        Ok(Box::new(MultipartWriter {
            inner: Some(WriteMultipart::new_with_chunk_size(upload, 16 << 20)),
            key: key.to_string(),
            backend: self.clone(),
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.check_writable()?;
        let p = self.path(key)?;
        match self.store.delete(&p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.map_err("delete", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let base = if prefix.is_empty() {
            self.prefix.clone()
        } else {
            self.path(prefix.trim_end_matches('/'))?
        };
        let metas: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| self.map_err("list", prefix, e))?;
        let mut out = Vec::with_capacity(metas.len());
        for m in metas {
            let rel = m
                .location
                .prefix_match(&self.prefix)
                .map(|parts| {
                    parts
                        .map(|p| p.as_ref().to_string())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_else(|| m.location.to_string());
            out.push(ObjectInfo {
                key: rel,
                size: m.size,
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// A ranged body that must add up to exactly the range's length.
struct LengthChecked {
    inner: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
    backend: ObjectStoreBackend,
    key: String,
    range: Range<u64>,
    got: u64,
    done: bool,
}

impl LengthChecked {
    async fn next(mut self) -> Option<(Result<Bytes, StorageError>, Self)> {
        if self.done {
            return None;
        }
        let want = self.range.end - self.range.start;
        let stall = self.backend.stall;
        let Ok(next) = tokio::time::timeout(stall, self.inner.try_next()).await else {
            self.done = true;
            let e = StorageError::Stalled {
                key: self.key.clone(),
                location: self.backend.location.clone(),
                got: self.got,
                want,
                seconds: stall.as_secs_f64(),
            };
            return Some((Err(e), self));
        };
        let item = match next {
            Ok(Some(chunk)) => {
                self.got += chunk.len() as u64;
                if self.got > want {
                    Err(self.backend.short_read(&self.key, &self.range, self.got))
                } else {
                    Ok(chunk)
                }
            }
            Ok(None) if self.got == want => return None,
            Ok(None) => Err(self.backend.short_read(&self.key, &self.range, self.got)),
            Err(e) => Err(self.backend.map_err("get range of", &self.key, e)),
        };
        self.done = item.is_err();
        Some((item, self))
    }
}

struct MultipartWriter {
    inner: Option<WriteMultipart>,
    key: String,
    backend: ObjectStoreBackend,
}

#[async_trait]
impl ObjectWriter for MultipartWriter {
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError> {
        let w = self
            .inner
            .as_mut()
            .ok_or_else(|| StorageError::Unsupported {
                location: self.backend.location.clone(),
                operation: "write after finish",
            })?;
        // Bounds in-flight parts so a fast producer cannot queue the whole model in memory.
        w.wait_for_capacity(4)
            .await
            .map_err(|e| self.backend.map_err("upload", &self.key, e))?;
        // `put` queues the caller's buffer as it is (`write` would copy it into the part).
        w.put(data);
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StorageError> {
        let w = self.inner.take().ok_or_else(|| StorageError::Unsupported {
            location: self.backend.location.clone(),
            operation: "finish twice",
        })?;
        w.finish()
            .await
            .map_err(|e| self.backend.map_err("complete upload of", &self.key, e))?;
        Ok(())
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StorageError> {
        if let Some(w) = self.inner.take() {
            w.abort()
                .await
                .map_err(|e| self.backend.map_err("abort upload of", &self.key, e))?;
        }
        Ok(())
    }
}
