//! HTTP client settings shared by every network backend: TLS roots (custom CA bundle), the
//! explicit opt-outs (plain HTTP, certificate verification), timeouts and request retries.

use std::time::Duration;

use object_store::{BackoffConfig, Certificate, ClientOptions, RetryConfig};

use super::{StorageEnv, StorageError};

/// Variable naming a PEM bundle of extra trusted CAs for every backend.
pub const CA_BUNDLE_VAR: &str = "SECURE_MODEL_CA_BUNDLE";
/// Variable that permits plain `http://` for HTTP(S) package locations.
pub const ALLOW_HTTP_VAR: &str = "SECURE_MODEL_ALLOW_HTTP";

fn secs(env: &StorageEnv, name: &str, default: u64) -> Result<Duration, StorageError> {
    match env.get(name) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| StorageError::InvalidConfig {
                name: name.into(),
                reason: "expected a positive number of seconds".into(),
            }),
    }
}

/// Request retry policy: transient failures (connection errors, timeouts, 429, 5xx, a body
/// cut mid-transfer) are retried with exponential backoff; 4xx other than 429 fail at once.
pub(crate) fn retry_config(env: &StorageEnv) -> Result<RetryConfig, StorageError> {
    let max_retries = match env.get("SECURE_MODEL_STORAGE_MAX_RETRIES") {
        None => 6,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| StorageError::InvalidConfig {
                name: "SECURE_MODEL_STORAGE_MAX_RETRIES".into(),
                reason: "expected a number".into(),
            })?,
    };
    Ok(RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries,
        retry_timeout: secs(env, "SECURE_MODEL_STORAGE_RETRY_TIMEOUT_SECS", 120)?,
    })
}

/// Client options from the environment. `ca_vars` are checked in order for a CA bundle path
/// (backend-specific first, then [`CA_BUNDLE_VAR`]); `verify_var` may turn verification off
/// (`S3_VERIFY_SSL=false`; logged as a warning).
pub(crate) fn client_options(
    env: &StorageEnv,
    ca_vars: &[&str],
    verify_var: Option<&str>,
    allow_http: bool,
) -> Result<ClientOptions, StorageError> {
    crate::crypto::install_rustls_provider();
    let mut opts = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_timeout(secs(env, "SECURE_MODEL_STORAGE_TIMEOUT_SECS", 60)?)
        .with_connect_timeout(secs(env, "SECURE_MODEL_STORAGE_CONNECT_TIMEOUT_SECS", 10)?)
        .with_pool_max_idle_per_host(16);
    let ca_path = ca_vars
        .iter()
        .chain(std::iter::once(&CA_BUNDLE_VAR))
        .find_map(|v| env.get(v).map(|p| (*v, p)));
    if let Some((var, path)) = ca_path {
        let pem = std::fs::read(path).map_err(|e| StorageError::InvalidConfig {
            name: var.into(),
            reason: format!("cannot read CA bundle {path}: {e}"),
        })?;
        let certs =
            Certificate::from_pem_bundle(&pem).map_err(|e| StorageError::InvalidConfig {
                name: var.into(),
                reason: format!("CA bundle {path} is not valid PEM: {e}"),
            })?;
        if certs.is_empty() {
            return Err(StorageError::InvalidConfig {
                name: var.into(),
                reason: format!("CA bundle {path} holds no certificate"),
            });
        }
        for c in certs {
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
