//! Where package objects live. Owns the [`StorageBackend`] trait, its `object_store`
//! implementation, package-location URIs and the typed [`StorageSettings`] (each backend's
//! configuration in `object_store`'s config keys, timeouts, TLS, the relaxations gate). Knows
//! nothing of the format, of keys, of environment variables or of any orchestrator.

mod client;
pub mod config;
mod location;
mod object;
mod pressure;

use std::fmt::Debug;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;

pub use client::{StorageSettings, DEFAULT_FIRST_BYTE_TIMEOUT, DEFAULT_STALL_TIMEOUT};
pub use config::{AzureConfig, GcsConfig, S3Config, Tls};
pub use location::{open_location, redact_uri, PackageLocation};
pub use object::ObjectStoreBackend;
pub use pressure::Pressure;

/// The body of a ranged GET, chunk by chunk.
pub type ByteStream = futures::stream::BoxStream<'static, Result<Bytes, StorageError>>;

/// Storage errors. Messages name the object and the location, never credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The object does not exist.
    #[error("object {key} not found in {location}")]
    NotFound {
        /// Object key.
        key: String,
        /// Location (redacted URI).
        location: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store refused access.
    #[error("access to {key} in {location} denied")]
    PermissionDenied {
        /// Object key.
        key: String,
        /// Location.
        location: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An object is larger than the caller allows.
    #[error("object {key} in {location} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Object key.
        key: String,
        /// Location.
        location: String,
        /// Size reported.
        size: u64,
        /// Limit.
        limit: u64,
    },
    /// A ranged read returned a different number of bytes than asked for.
    #[error("object {key} in {location}: short read for range {start}..{end} (got {got} bytes)")]
    ShortRead {
        /// Object key.
        key: String,
        /// Location.
        location: String,
        /// Range start.
        start: u64,
        /// Range end.
        end: u64,
        /// Bytes returned.
        got: u64,
    },
    /// Any other store failure. The message leads with the root cause (the deepest error
    /// of the chain: "connection refused", a server's error code), the library's chain after.
    #[error("{}: {operation} {key} in {location} failed", root_cause(source.as_ref()))]
    Backend {
        /// What was attempted.
        operation: &'static str,
        /// Object key.
        key: String,
        /// Location.
        location: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store did not start answering within the first-byte timeout (it accepted the
    /// connection, or not, but sent no response).
    #[error("no response from {location} to {operation} {key} within {seconds} s (the first-byte timeout)")]
    NoResponse {
        /// What was attempted.
        operation: &'static str,
        /// Object key.
        key: String,
        /// Location.
        location: String,
        /// The timeout.
        seconds: u64,
    },
    /// A response body stopped arriving for the stall timeout (the store froze mid-transfer).
    #[error("the store stopped sending {key} from {location}: nothing for {seconds} s after {got} of {want} bytes of a range (the stall timeout)")]
    Stalled {
        /// Object key.
        key: String,
        /// Location.
        location: String,
        /// Bytes of the range received.
        got: u64,
        /// Bytes of the range asked for.
        want: u64,
        /// The timeout.
        seconds: f64,
    },
    /// A location URI could not be understood.
    #[error("invalid package location {uri:?}: {reason}")]
    InvalidLocation {
        /// The URI (credentials stripped).
        uri: String,
        /// Why.
        reason: String,
    },
    /// A configuration value is invalid (the message names the value's role, never the value:
    /// it may be a credential).
    #[error("invalid storage configuration {name}: {reason}")]
    InvalidConfig {
        /// What is configured (the backend's CA bundle, an endpoint...).
        name: String,
        /// Why.
        reason: String,
    },
    /// The configuration needs a relaxation that is not on (plain HTTP to a store, TLS without
    /// certificate verification).
    #[error("{backend}: {detail}; refused without the {} relaxation", relaxation.name())]
    Relaxation {
        /// Which backend's client.
        backend: &'static str,
        /// The relaxation it needs.
        relaxation: crate::danger::Relaxation,
        /// What is configured (credentials redacted).
        detail: String,
    },
    /// The backend cannot do this (for example writing to a read-only HTTPS mirror).
    #[error("{location} does not support {operation}")]
    Unsupported {
        /// Location.
        location: String,
        /// Operation.
        operation: &'static str,
    },
}

/// The deepest error under `e`, short: common transport failures by name, anything else as
/// its one-line text (capped at 160 characters).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = e;
    let mut io_kind = None;
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        deepest = err;
        cur = err.source();
    }
    use std::io::ErrorKind as K;
    let named = match io_kind {
        Some(K::ConnectionRefused) => Some("connection refused"),
        Some(K::ConnectionReset) => Some("connection reset by the store"),
        Some(K::ConnectionAborted) => Some("connection aborted"),
        Some(K::TimedOut) => Some("timed out"),
        Some(K::UnexpectedEof) => Some("the store closed the connection early"),
        _ => None,
    };
    if let Some(n) = named {
        return n.to_string();
    }
    let text = crate::class::one_line(&deepest.to_string());
    match text.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", text.get(..i).unwrap_or_default()),
        None => text,
    }
}

impl StorageError {
    /// The failure class: a bad location is the operator's configuration, an over-size or
    /// short object a sign of tampering, anything else a storage failure.
    pub fn class(&self) -> crate::ErrorClass {
        use crate::ErrorClass;
        match self {
            StorageError::InvalidLocation { .. } | StorageError::Relaxation { .. } => {
                ErrorClass::Config
            }
            StorageError::TooLarge { .. } | StorageError::ShortRead { .. } => ErrorClass::Integrity,
            _ => ErrorClass::Storage,
        }
    }

    /// Whether retrying the same request may succeed: a transport failure (connection reset,
    /// timeout, body cut short) after the client's own request retries. Not found, access
    /// denied, authentication, configuration and size errors are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::ShortRead { .. } | Self::NoResponse { .. } | Self::Stalled { .. } => true,
            Self::Backend { source, .. } => {
                let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
                while let Some(e) = cur {
                    if let Some(h) = e.downcast_ref::<object_store::client::HttpError>() {
                        use object_store::client::HttpErrorKind as K;
                        return matches!(
                            h.kind(),
                            K::Connect | K::Request | K::Timeout | K::Interrupted | K::Decode
                        );
                    }
                    if let Some(io) = e.downcast_ref::<std::io::Error>() {
                        use std::io::ErrorKind as K;
                        return matches!(
                            io.kind(),
                            K::ConnectionReset
                                | K::ConnectionAborted
                                | K::BrokenPipe
                                | K::TimedOut
                                | K::UnexpectedEof
                                | K::Interrupted
                        );
                    }
                    cur = e.source();
                }
                false
            }
            _ => false,
        }
    }
}

/// Whether `key` exists in `store`: `Ok(false)` only for "not found"; any other failure
/// (access denied, network) is returned, never taken for absence.
///
/// # Errors
/// The store's error other than [`StorageError::NotFound`].
pub async fn exists(store: &dyn StorageBackend, key: &str) -> Result<bool, StorageError> {
    match store.head(key).await {
        Ok(_) => Ok(true),
        Err(StorageError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Metadata of a listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// Key relative to the package prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// An object being written in parts (multipart upload on object stores).
#[async_trait]
pub trait ObjectWriter: Send {
    /// Appends bytes.
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError>;
    /// Completes the object; it becomes visible only now.
    async fn finish(self: Box<Self>) -> Result<(), StorageError>;
    /// Abandons the object; nothing becomes visible.
    async fn abort(self: Box<Self>) -> Result<(), StorageError>;
}

/// A package location: a prefix in some object store. Keys are relative to the prefix.
/// Object-safe; convenience lives in free functions of the loader.
#[async_trait]
pub trait StorageBackend: Send + Sync + Debug + 'static {
    /// Human-readable location (no credentials), used in messages.
    fn location(&self) -> &str;

    /// Size of an object.
    async fn head(&self, key: &str) -> Result<u64, StorageError>;

    /// A whole object, refused with [`StorageError::TooLarge`] when over `max_len` bytes.
    async fn get(&self, key: &str, max_len: u64) -> Result<Bytes, StorageError>;

    /// Bytes `range` of an object; exactly `range.end - range.start` bytes or an error.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError>;

    /// Bytes `range` of an object as the body arrives, chunk by chunk: the chunks add up to
    /// exactly `range.end - range.start` bytes, or the stream ends with an error
    /// ([`StorageError::ShortRead`] when the body is shorter or longer). The default yields
    /// [`StorageBackend::get_range`] as one chunk.
    async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<ByteStream, StorageError> {
        let body = self.get_range(key, range).await?;
        Ok(Box::pin(futures::stream::once(async move { Ok(body) })))
    }

    /// Responses so far that asked this backend's client to slow down, or were server errors
    /// (always zero for backends without HTTP).
    fn pressure(&self) -> Pressure {
        Pressure::default()
    }

    /// Writes a whole object (atomically replaces an existing one).
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError>;

    /// Starts a streamed (multipart) write.
    async fn put_multipart(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StorageError>;

    /// Deletes an object (used to clean up after a failed pack); deleting a missing object
    /// succeeds.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// Objects under `prefix` (relative to the package prefix).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError>;
}
