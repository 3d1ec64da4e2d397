//! HTTP client settings shared by every network backend: the per-backend configuration
//! ([`S3Config`], [`GcsConfig`], [`AzureConfig`], [`Tls`] for HTTP(S) mirrors), timeouts and
//! request retries, and the one gate of the storage relaxations ([`client_options`]): plain
//! HTTP and unverified TLS pass only when [`StorageSettings::relax`] carries them.

use std::time::Duration;

use object_store::{BackoffConfig, Certificate, ClientOptions, RetryConfig};

use super::config::{AzureConfig, GcsConfig, S3Config, Tls};
use super::StorageError;
use crate::danger::{Relaxation, Relaxations};

/// Default of [`StorageSettings::first_byte_timeout`].
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`StorageSettings::stall_timeout`].
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How storage clients are configured: each backend's configuration, timeouts, retries and
/// relaxations. The default has no credentials, the documented timeouts and no relaxation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StorageSettings {
    /// S3 (and S3-compatible stores).
    pub s3: S3Config,
    /// Google Cloud Storage.
    pub gcs: GcsConfig,
    /// Azure Blob Storage.
    pub azure: AzureConfig,
    /// HTTP(S) package mirrors (read-only).
    pub http: Tls,
    /// Per-request timeout, body included (default 60 s; a ranged GET is a few MiB).
    pub timeout: Duration,
    /// Connect timeout (default 5 s).
    pub connect_timeout: Duration,
    /// Longest wait for a response to start, retries included (default 10 s): a store that
    /// accepts connections but never answers fails in seconds, not after the total timeout.
    pub first_byte_timeout: Duration,
    /// Longest pause inside a response body (default 5 s): a body that stops arriving is
    /// abandoned and resumed once from the first byte not received; a second stall of the
    /// same range fails the read (so a store that freezes mid-transfer fails in about this
    /// plus the first-byte timeout).
    pub stall_timeout: Duration,
    /// Retries of one request on transient failures (default 6).
    pub max_retries: usize,
    /// Longest time spent retrying one request (default 120 s).
    pub retry_timeout: Duration,
    /// Relaxations: plain HTTP to stores, unverified TLS.
    pub relax: Relaxations,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            s3: S3Config::default(),
            gcs: GcsConfig::default(),
            azure: AzureConfig::default(),
            http: Tls::default(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            max_retries: 6,
            retry_timeout: Duration::from_secs(120),
            relax: Relaxations::NONE,
        }
    }
}

impl StorageSettings {
    /// Sets [`StorageSettings::s3`].
    #[must_use]
    pub fn with_s3(mut self, s3: S3Config) -> Self {
        self.s3 = s3;
        self
    }

    /// Sets [`StorageSettings::gcs`].
    #[must_use]
    pub fn with_gcs(mut self, gcs: GcsConfig) -> Self {
        self.gcs = gcs;
        self
    }

    /// Sets [`StorageSettings::azure`].
    #[must_use]
    pub fn with_azure(mut self, azure: AzureConfig) -> Self {
        self.azure = azure;
        self
    }

    /// Sets [`StorageSettings::http`], the TLS of HTTP(S) mirrors.
    #[must_use]
    pub fn with_http(mut self, tls: Tls) -> Self {
        self.http = tls;
        self
    }

    /// Sets [`StorageSettings::relax`].
    #[must_use]
    pub fn with_relaxations(mut self, relax: Relaxations) -> Self {
        self.relax = relax;
        self
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retries per request and the time they may take.
    #[must_use]
    pub fn with_retries(mut self, max_retries: usize, retry_timeout: Duration) -> Self {
        self.max_retries = max_retries;
        self.retry_timeout = retry_timeout;
        self
    }
}

/// Request retry policy: transient failures (connection errors, timeouts, 429, 5xx, a body
/// cut mid-transfer) are retried with exponential backoff; 4xx other than 429 fail at once.
pub(crate) fn retry_config(settings: &StorageSettings) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: settings.max_retries,
        retry_timeout: settings.retry_timeout,
    }
}

/// Reads the CA bundle at `path` for `backend`'s client.
fn ca_certificates(
    backend: &str,
    path: &std::path::Path,
) -> Result<Vec<Certificate>, StorageError> {
    let shown = path.display();
    let bad = |reason: String| StorageError::InvalidConfig {
        name: format!("{backend} CA bundle"),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read {shown}: {e}")))?;
    let certs = Certificate::from_pem_bundle(&pem)
        .map_err(|e| bad(format!("{shown} is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad(format!("{shown} holds no certificate")));
    }
    Ok(certs)
}

/// The one gate of the storage relaxations, and the client options of one backend: plain
/// HTTP to `endpoint` passes only with [`Relaxation::PlainHttpStorage`], skipping certificate
/// verification only with [`Relaxation::UnverifiedStorageTls`]; each is announced when it
/// takes effect. Every network backend's client is configured here.
///
/// # Errors
/// [`StorageError::Relaxation`] naming the backend and what would be relaxed;
/// [`StorageError::InvalidConfig`] for an unreadable CA bundle.
pub(crate) fn client_options(
    settings: &StorageSettings,
    backend: &'static str,
    endpoint: Option<&url::Url>,
    tls: &Tls,
) -> Result<ClientOptions, StorageError> {
    crate::crypto::install_rustls_provider();
    let relax = &settings.relax;
    let plain = endpoint.filter(|u| u.scheme() == "http");
    if let Some(url) = plain {
        if !relax.allows(Relaxation::PlainHttpStorage) {
            return Err(StorageError::Relaxation {
                backend,
                relaxation: Relaxation::PlainHttpStorage,
                detail: format!(
                    "endpoint {} is plain http://",
                    super::redact_uri(url.as_str())
                ),
            });
        }
        relax.take_effect(Relaxation::PlainHttpStorage, &format!("{backend} {url}"));
    }
    let mut opts = ClientOptions::new()
        .with_allow_http(plain.is_some())
        .with_timeout(settings.timeout)
        .with_connect_timeout(settings.connect_timeout)
        .with_pool_max_idle_per_host(64)
        // One connection per request: parallel ranges then each get their own TCP window (the
        // per-connection ceiling real links have), and the pull may keep more ranges in flight
        // than it has buffers (loader::driver): a range not read stalls only its own
        // connection. Every object store speaks HTTP/1.1.
        .with_http1_only();
    if let Some(path) = &tls.ca_bundle {
        for c in ca_certificates(backend, path)? {
            opts = opts.with_root_certificate(c);
        }
    }
    if tls.skip_verify {
        if !relax.allows(Relaxation::UnverifiedStorageTls) {
            return Err(StorageError::Relaxation {
                backend,
                relaxation: Relaxation::UnverifiedStorageTls,
                detail: "certificate verification is turned off".into(),
            });
        }
        relax.take_effect(Relaxation::UnverifiedStorageTls, backend);
        opts = opts.with_allow_invalid_certificates(true);
    }
    Ok(opts)
}
