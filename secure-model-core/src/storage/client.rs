//! HTTP client settings shared by every network backend: TLS roots (custom CA bundle), the
//! explicit opt-outs (plain HTTP, certificate verification), timeouts and request retries,
//! all from the typed [`StorageSettings`].

use std::path::PathBuf;
use std::time::Duration;

use object_store::{BackoffConfig, Certificate, ClientOptions, RetryConfig};

use super::{StorageEnv, StorageError};
use crate::danger::Relaxations;

/// Variable naming a PEM bundle of extra trusted CAs for every backend (named in messages;
/// the binaries' settings layer reads it into [`StorageSettings::ca_bundle`]).
pub const CA_BUNDLE_VAR: &str = "SECURE_MODEL_CA_BUNDLE";
/// Variable that permits plain `http://` for HTTP(S) package locations (named in messages;
/// the settings layer turns it into [`Relaxations::allow_plain_http_storage`]).
pub const ALLOW_HTTP_VAR: &str = "SECURE_MODEL_ALLOW_HTTP";

/// Default of [`StorageSettings::first_byte_timeout`].
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

/// How storage clients are configured: the credentials snapshot (KServe's variables and each
/// backend's own), timeouts, retries, an extra CA bundle and relaxations. The default has no
/// credentials, the documented timeouts and no relaxation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StorageSettings {
    /// Credentials and backend variables (`AWS_*`, `S3_*`, `GOOGLE_*`, `AZURE_*`...).
    pub env: StorageEnv,
    /// Per-request timeout, body included (default 60 s; a ranged GET is a few MiB).
    pub timeout: Duration,
    /// Connect timeout (default 5 s).
    pub connect_timeout: Duration,
    /// Longest wait for a response to start, retries included (default 10 s): a store that
    /// accepts connections but never answers fails in seconds, not after the total timeout.
    pub first_byte_timeout: Duration,
    /// Retries of one request on transient failures (default 6).
    pub max_retries: usize,
    /// Longest time spent retrying one request (default 120 s).
    pub retry_timeout: Duration,
    /// PEM bundle of extra trusted CAs for every backend ([`CA_BUNDLE_VAR`]).
    pub ca_bundle: Option<PathBuf>,
    /// Relaxations (plain-HTTP package mirrors).
    pub relax: Relaxations,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self::new(StorageEnv::default())
    }
}

impl StorageSettings {
    /// Defaults with the credentials of `env`.
    pub fn new(env: StorageEnv) -> Self {
        Self {
            env,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            max_retries: 6,
            retry_timeout: Duration::from_secs(120),
            ca_bundle: None,
            relax: Relaxations::NONE,
        }
    }

    /// Sets [`StorageSettings::ca_bundle`].
    pub fn with_ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }

    /// Sets [`StorageSettings::relax`].
    pub fn with_relaxations(mut self, relax: Relaxations) -> Self {
        self.relax = relax;
        self
    }

    /// Sets the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retries per request and the time they may take.
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

/// Reads a CA bundle named by `var` (for messages) at `path`.
fn ca_certificates(var: &str, path: &str) -> Result<Vec<Certificate>, StorageError> {
    let pem = std::fs::read(path).map_err(|e| StorageError::InvalidConfig {
        name: var.into(),
        reason: format!("cannot read CA bundle {path}: {e}"),
    })?;
    let certs = Certificate::from_pem_bundle(&pem).map_err(|e| StorageError::InvalidConfig {
        name: var.into(),
        reason: format!("CA bundle {path} is not valid PEM: {e}"),
    })?;
    if certs.is_empty() {
        return Err(StorageError::InvalidConfig {
            name: var.into(),
            reason: format!("CA bundle {path} holds no certificate"),
        });
    }
    Ok(certs)
}

/// Client options. `ca_vars` are backend-specific CA bundle variables of the credentials
/// snapshot, checked in order before [`StorageSettings::ca_bundle`]; `verify_var` may turn
/// verification off (`S3_VERIFY_SSL=false`, KServe's variable; logged as a warning).
pub(crate) fn client_options(
    settings: &StorageSettings,
    ca_vars: &[&str],
    verify_var: Option<&str>,
    allow_http: bool,
) -> Result<ClientOptions, StorageError> {
    crate::crypto::install_rustls_provider();
    let env = &settings.env;
    let mut opts = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_timeout(settings.timeout)
        .with_connect_timeout(settings.connect_timeout)
        .with_pool_max_idle_per_host(64)
        // One connection per request: parallel ranges then each get their own TCP window (the
        // per-connection ceiling real links have), and the pull may keep more ranges in flight
        // than it has buffers (loader::driver): a range not read stalls only its own
        // connection. Every object store speaks HTTP/1.1.
        .with_http1_only();
    let general = settings
        .ca_bundle
        .as_ref()
        .map(|p| (CA_BUNDLE_VAR, p.display().to_string()));
    let ca_path = ca_vars
        .iter()
        .find_map(|v| env.get(v).map(|p| (*v, p.to_string())))
        .or(general);
    if let Some((var, path)) = ca_path {
        for c in ca_certificates(var, &path)? {
            opts = opts.with_root_certificate(c);
        }
    }
    if let Some(var) = verify_var {
        if env.flag(var)? == Some(false) {
            tracing::warn!(
                variable = var,
                "TLS certificate verification is DISABLED for object storage: the store can be impersonated (integrity still holds: everything is signed and authenticated)"
            );
            opts = opts.with_allow_invalid_certificates(true);
        }
    }
    Ok(opts)
}
