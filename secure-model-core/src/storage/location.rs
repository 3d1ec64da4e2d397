//! Package locations: URIs for every backend, and opening a location with the typed
//! [`StorageSettings`] (each backend's configuration, timeouts, TLS, relaxations). Other URI
//! forms (an orchestrator's own schemes) are mapped onto these by their callers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;

use super::config::{AmazonS3ConfigKey, S3Config};

use super::client::{client_options, retry_config, StorageSettings};
use super::pressure::{ObservingConnector, PressureCounters};
use super::{ObjectStoreBackend, StorageBackend, StorageError};

/// A parsed package location.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PackageLocation {
    /// A directory on a local (or mounted: PVC, NFS) filesystem.
    Local(PathBuf),
    /// `s3://bucket/prefix` (AWS or any S3-compatible store).
    S3 {
        /// Bucket.
        bucket: String,
        /// Key prefix (no leading or trailing `/`).
        prefix: String,
    },
    /// `gs://bucket/prefix`.
    Gcs {
        /// Bucket.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
    /// `az://account/container/prefix` or `https://account.blob.core.windows.net/container/prefix`.
    Azure {
        /// Storage account.
        account: String,
        /// Container.
        container: String,
        /// Blob prefix.
        prefix: String,
    },
    /// An HTTP(S) server (read-only); the package prefix is the URL's path.
    Http {
        /// Base URL of the package (no credentials, no query).
        url: url::Url,
    },
}

fn invalid(uri: &str, reason: impl Into<String>) -> StorageError {
    StorageError::InvalidLocation {
        uri: redact_uri(uri),
        reason: reason.into(),
    }
}

/// `uri` with any `user:password@` removed and any query replaced, for messages.
pub fn redact_uri(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("");
                let _ = u.set_password(None);
            }
            if u.query().is_some() {
                // Query strings may carry SAS tokens or signatures.
                u.set_query(Some("REDACTED"));
            }
            u.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

fn split_bucket(uri: &str, rest: &str) -> Result<(String, String), StorageError> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(invalid(uri, "missing bucket name"));
    }
    if bucket.contains(['?', '#', '@', ':']) {
        return Err(invalid(uri, "bucket name contains a reserved character"));
    }
    Ok((bucket.to_string(), clean_prefix(uri, prefix)?))
}

fn clean_prefix(uri: &str, prefix: &str) -> Result<String, StorageError> {
    if prefix.contains(['?', '#']) {
        return Err(invalid(
            uri,
            "query strings and fragments are not allowed here",
        ));
    }
    let p = prefix.trim_matches('/');
    if p.split('/').any(|c| c == "." || c == "..") {
        return Err(invalid(uri, "prefix contains a . or .. component"));
    }
    Ok(p.to_string())
}

/// `file:///abs/path` (or `file://localhost/...`).
fn parse_file_url(uri: &str) -> Result<PackageLocation, StorageError> {
    let url = url::Url::parse(uri).map_err(|_| invalid(uri, "not a valid file:// URL"))?;
    if !matches!(url.host_str(), None | Some("") | Some("localhost")) {
        return Err(invalid(uri, "file:// URLs must not name a remote host"));
    }
    let p = url
        .to_file_path()
        .map_err(|_| invalid(uri, "file:// URL is not an absolute local path"))?;
    Ok(PackageLocation::Local(p))
}

/// `https://` (Azure Blob's own host form, or a mirror) and `http://`: no credentials, query
/// or fragment.
fn parse_http_url(uri: &str) -> Result<PackageLocation, StorageError> {
    let url = url::Url::parse(uri).map_err(|e| invalid(uri, format!("not a valid URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            uri,
            "credentials in the URL are not allowed (they would end up in logs)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(uri, "query strings and fragments are not allowed"));
    }
    let host = url.host_str().ok_or_else(|| invalid(uri, "missing host"))?;
    if url.scheme() == "https" {
        if let Some(account) = host.strip_suffix(".blob.core.windows.net") {
            let path = url.path().trim_start_matches('/');
            let (container, prefix) = split_bucket(uri, path).map_err(|_| {
                invalid(
                    uri,
                    "expected https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX",
                )
            })?;
            return Ok(PackageLocation::Azure {
                account: account.to_string(),
                container,
                prefix,
            });
        }
    }
    clean_prefix(uri, url.path())?;
    Ok(PackageLocation::Http { url })
}

impl PackageLocation {
    /// Parses a package URI: `file:///abs/path`, a plain path, `s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://account/container/prefix`,
    /// `https://account.blob.core.windows.net/container/prefix`, `https://host/path`,
    /// and `http://host/path` (opened only with the plain-HTTP relaxation).
    ///
    /// # Errors
    /// [`StorageError::InvalidLocation`] naming what is wrong (credentials redacted).
    pub fn parse(uri: &str) -> Result<Self, StorageError> {
        if uri.is_empty() {
            return Err(invalid(uri, "empty"));
        }
        if uri.starts_with("file://") {
            return parse_file_url(uri);
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, prefix) = split_bucket(uri, rest)?;
            return Ok(Self::S3 { bucket, prefix });
        }
        if let Some(rest) = uri.strip_prefix("gs://") {
            let (bucket, prefix) = split_bucket(uri, rest)?;
            return Ok(Self::Gcs { bucket, prefix });
        }
        if let Some(rest) = uri.strip_prefix("az://") {
            let (account, rest) = split_bucket(uri, rest)?;
            let (container, prefix) = split_bucket(uri, &rest)
                .map_err(|_| invalid(uri, "expected az://ACCOUNT/CONTAINER/PREFIX"))?;
            return Ok(Self::Azure {
                account,
                container,
                prefix,
            });
        }
        if uri.starts_with("https://") || uri.starts_with("http://") {
            return parse_http_url(uri);
        }
        if let Some((scheme, _)) = uri.split_once("://") {
            return Err(invalid(
                uri,
                format!(
                    "unsupported scheme {scheme:?} (supported: file, s3, gs, az, https, http with opt-in)"
                ),
            ));
        }
        Ok(Self::Local(PathBuf::from(uri)))
    }
}

fn absolute(p: &Path) -> Result<PathBuf, StorageError> {
    std::path::absolute(p).map_err(|e| StorageError::InvalidLocation {
        uri: p.display().to_string(),
        reason: format!("cannot make absolute: {e}"),
    })
}

fn store_prefix(uri: &str, prefix: &str) -> Result<StorePath, StorageError> {
    StorePath::parse(prefix).map_err(|e| invalid(uri, format!("invalid object prefix: {e}")))
}

fn build_err(uri: &str, backend: &str, e: object_store::Error) -> StorageError {
    StorageError::InvalidLocation {
        uri: redact_uri(uri),
        reason: format!("cannot configure the {backend} client: {e}"),
    }
}

/// Opens a package location for reading, or for writing when `create` is set (a local
/// directory is created), configured by `settings`.
///
/// # Errors
/// [`StorageError::InvalidLocation`] for a bad URI or client configuration,
/// [`StorageError::InvalidConfig`] for a bad credential variable,
/// [`StorageError::Unsupported`] for writing to an HTTP(S) location.
pub fn open_location(
    uri: &str,
    create: bool,
    settings: &StorageSettings,
) -> Result<Arc<dyn StorageBackend>, StorageError> {
    match PackageLocation::parse(uri)? {
        PackageLocation::Local(path) => open_local(uri, &path, create),
        PackageLocation::S3 { bucket, prefix } => {
            let counters = Arc::new(PressureCounters::default());
            let store = s3_builder(settings, &bucket)?
                .with_http_connector(ObservingConnector(Arc::clone(&counters)))
                .build()
                .map_err(|e| build_err(uri, "S3", e))?;
            prefixed(
                settings,
                uri,
                (Arc::new(store), counters),
                &prefix,
                format!("s3://{bucket}/{prefix}"),
            )
        }
        PackageLocation::Gcs { bucket, prefix } => {
            let counters = Arc::new(PressureCounters::default());
            let store = gcs_builder(settings, &bucket)?
                .with_http_connector(ObservingConnector(Arc::clone(&counters)))
                .build()
                .map_err(|e| build_err(uri, "GCS", e))?;
            prefixed(
                settings,
                uri,
                (Arc::new(store), counters),
                &prefix,
                format!("gs://{bucket}/{prefix}"),
            )
        }
        PackageLocation::Azure {
            account,
            container,
            prefix,
        } => {
            let counters = Arc::new(PressureCounters::default());
            let store = azure_builder(settings, &account, &container)?
                .with_http_connector(ObservingConnector(Arc::clone(&counters)))
                .build()
                .map_err(|e| build_err(uri, "Azure Blob", e))?;
            let shown = format!("az://{account}/{container}/{prefix}");
            prefixed(settings, uri, (Arc::new(store), counters), &prefix, shown)
        }
        PackageLocation::Http { url } => open_http(uri, url, create, settings),
    }
}

/// A backend over `store` (and the pressure counters of its client) at object prefix
/// `prefix`, shown as `shown`.
fn prefixed(
    settings: &StorageSettings,
    uri: &str,
    (store, counters): (Arc<dyn object_store::ObjectStore>, Arc<PressureCounters>),
    prefix: &str,
    shown: String,
) -> Result<Arc<dyn StorageBackend>, StorageError> {
    Ok(Arc::new(
        ObjectStoreBackend::new(store, store_prefix(uri, prefix)?, shown)
            .with_first_byte_timeout(settings.first_byte_timeout)
            .with_stall_timeout(settings.stall_timeout)
            .with_pressure(counters),
    ))
}

/// A read-only HTTP(S) mirror; plain `http://` only with the relaxation (the gate in
/// [`client_options`]).
fn open_http(
    uri: &str,
    url: url::Url,
    create: bool,
    settings: &StorageSettings,
) -> Result<Arc<dyn StorageBackend>, StorageError> {
    if create {
        return Err(StorageError::Unsupported {
            location: url.to_string(),
            operation: "writing (HTTP(S) locations are read-only)",
        });
    }
    let opts = client_options(settings, "HTTP mirror", Some(&url), &settings.http)?;
    let counters = Arc::new(PressureCounters::default());
    let store = HttpBuilder::new()
        .with_url(url.as_str())
        .with_client_options(opts)
        .with_retry(retry_config(settings))
        .with_http_connector(ObservingConnector(Arc::clone(&counters)))
        .build()
        .map_err(|e| build_err(uri, "HTTP", e))?;
    Ok(Arc::new(
        ObjectStoreBackend::new(Arc::new(store), StorePath::default(), url.to_string())
            .read_only()
            .with_first_byte_timeout(settings.first_byte_timeout)
            .with_stall_timeout(settings.stall_timeout)
            .with_pressure(counters),
    ))
}

fn open_local(
    uri: &str,
    path: &Path,
    create: bool,
) -> Result<Arc<dyn StorageBackend>, StorageError> {
    let path = absolute(path)?;
    if create {
        std::fs::create_dir_all(&path)
            .map_err(|e| invalid(uri, format!("cannot create directory: {e}")))?;
    }
    let meta = std::fs::metadata(&path)
        .map_err(|e| invalid(uri, format!("cannot open package directory: {e}")))?;
    if !meta.is_dir() {
        return Err(invalid(uri, "not a directory"));
    }
    let fs = LocalFileSystem::new_with_prefix(&path)
        .map_err(|e| invalid(uri, format!("cannot open package directory: {e}")))?;
    Ok(Arc::new(ObjectStoreBackend::new(
        Arc::new(fs),
        StorePath::default(),
        format!("file://{}", path.display()),
    )))
}

/// The endpoint of an S3 client for `bucket`: the configured one, with the bucket in the host
/// for virtual-hosted-style addressing (as `object_store` expects for custom endpoints).
fn s3_endpoint(s3: &S3Config, bucket: &str) -> Result<Option<url::Url>, StorageError> {
    let Some(ep) = s3.endpoint() else {
        return Ok(None);
    };
    if !s3.virtual_hosted() {
        return Ok(Some(ep.clone()));
    }
    let mut u = ep.clone();
    let host = format!("{bucket}.{}", ep.host_str().unwrap_or_default());
    u.set_host(Some(&host))
        .map_err(|e| StorageError::InvalidConfig {
            name: "S3 endpoint".into(),
            reason: format!("cannot put the bucket in the host for virtual-hosted style: {e}"),
        })?;
    Ok(Some(u))
}

/// An S3 client for `bucket`, configured by `settings.s3`.
fn s3_builder(settings: &StorageSettings, bucket: &str) -> Result<AmazonS3Builder, StorageError> {
    let s3 = &settings.s3;
    let mut b = AmazonS3Builder::new();
    for (k, v) in s3.options() {
        b = b.with_config(*k, v);
    }
    if s3.option(&AmazonS3ConfigKey::Region).is_none()
        && s3.option(&AmazonS3ConfigKey::DefaultRegion).is_none()
    {
        b = b.with_region("us-east-1");
    }
    b = b.with_bucket_name(bucket);
    let endpoint = s3_endpoint(s3, bucket)?;
    if let Some(ep) = &endpoint {
        b = b.with_endpoint(ep.as_str().trim_end_matches('/'));
    }
    let opts = client_options(settings, "S3", endpoint.as_ref(), s3.tls())?;
    Ok(b.with_virtual_hosted_style_request(s3.virtual_hosted())
        .with_skip_signature(s3.anonymous())
        .with_client_options(opts)
        .with_retry(retry_config(settings)))
}

fn gcs_builder(
    settings: &StorageSettings,
    bucket: &str,
) -> Result<GoogleCloudStorageBuilder, StorageError> {
    let gcs = &settings.gcs;
    let mut b = GoogleCloudStorageBuilder::new().with_bucket_name(bucket);
    for (k, v) in gcs.options() {
        b = b.with_config(*k, v);
    }
    if let Some(base) = gcs.base_url() {
        b = b.with_base_url(base.as_str().trim_end_matches('/'));
    }
    let opts = client_options(settings, "GCS", gcs.base_url(), gcs.tls())?;
    Ok(b.with_skip_signature(gcs.anonymous())
        .with_client_options(opts)
        .with_retry(retry_config(settings)))
}

fn azure_builder(
    settings: &StorageSettings,
    account: &str,
    container: &str,
) -> Result<MicrosoftAzureBuilder, StorageError> {
    let az = &settings.azure;
    let mut b = MicrosoftAzureBuilder::new();
    for (k, v) in az.options() {
        b = b.with_config(*k, v);
    }
    b = b.with_account(account).with_container_name(container);
    // The emulator's URL carries the account in its path (object_store's own emulator mode
    // would read the process environment for it).
    let endpoint = match (az.endpoint(), az.emulator()) {
        (Some(ep), _) => Some(ep.clone()),
        (None, Some(base)) => {
            let joined = format!("{}/{account}", base.as_str().trim_end_matches('/'));
            Some(
                url::Url::parse(&joined).map_err(|e| StorageError::InvalidConfig {
                    name: "Azure emulator URL".into(),
                    reason: e.to_string(),
                })?,
            )
        }
        (None, None) => None,
    };
    if let Some(ep) = &endpoint {
        b = b.with_endpoint(ep.as_str().trim_end_matches('/').to_string());
    }
    let opts = client_options(settings, "Azure Blob", endpoint.as_ref(), az.tls())?;
    Ok(b.with_client_options(opts)
        .with_retry(retry_config(settings)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::danger::{Relaxation, Relaxations};
    use crate::storage::{AzureConfig, GcsConfig, S3Config, Tls};

    #[test]
    fn parse_forms() {
        assert_eq!(
            PackageLocation::parse("/a/b").unwrap(),
            PackageLocation::Local("/a/b".into())
        );
        assert_eq!(
            PackageLocation::parse("rel/p").unwrap(),
            PackageLocation::Local("rel/p".into())
        );
        assert_eq!(
            PackageLocation::parse("file:///a/b").unwrap(),
            PackageLocation::Local("/a/b".into())
        );
        assert_eq!(
            PackageLocation::parse("file://localhost/a%20b").unwrap(),
            PackageLocation::Local("/a b".into())
        );
        assert!(PackageLocation::parse("file://evil.example/a").is_err());
        assert!(PackageLocation::parse("gopher://x/y").is_err());
        assert!(PackageLocation::parse("").is_err());
    }

    #[test]
    fn parse_cloud_forms() {
        let s3 = PackageLocation::S3 {
            bucket: "b".into(),
            prefix: "models/m1".into(),
        };
        assert_eq!(PackageLocation::parse("s3://b/models/m1/").unwrap(), s3);
        assert_eq!(
            PackageLocation::parse("gs://g/p").unwrap(),
            PackageLocation::Gcs {
                bucket: "g".into(),
                prefix: "p".into()
            }
        );
        let az = PackageLocation::Azure {
            account: "acct".into(),
            container: "c".into(),
            prefix: "p/q".into(),
        };
        assert_eq!(PackageLocation::parse("az://acct/c/p/q").unwrap(), az);
        assert_eq!(
            PackageLocation::parse("https://acct.blob.core.windows.net/c/p/q").unwrap(),
            az
        );
        assert!(matches!(
            PackageLocation::parse("https://mirror.example:8443/m").unwrap(),
            PackageLocation::Http { url } if url.as_str() == "https://mirror.example:8443/m"
        ));
        for bad in [
            "s3://",
            "s3:///p",
            "az://acct",
            "secure+s3://b/p",
            "s3://b/../x",
            "https://u:p@host/x",
            "https://host/x?sig=abc",
        ] {
            let e = PackageLocation::parse(bad).unwrap_err().to_string();
            assert!(!e.contains(":p@") && !e.contains("sig=abc"), "{e}");
        }
    }

    #[test]
    fn http_needs_opt_in_and_is_read_only() {
        let strict = StorageSettings::default();
        let e = open_location("http://127.0.0.1:1/m", false, &strict).unwrap_err();
        assert!(
            matches!(&e, StorageError::Relaxation { relaxation, .. } if *relaxation == Relaxation::PlainHttpStorage),
            "{e}"
        );
        let relaxed = StorageSettings::default()
            .with_relaxations(Relaxations::NONE.allow_plain_http_storage());
        open_location("http://127.0.0.1:1/m", false, &relaxed).unwrap();
        assert!(open_location("http://127.0.0.1:1/m", true, &relaxed).is_err());
    }

    #[test]
    fn every_backend_goes_through_the_gate() {
        let http = url::Url::parse("http://127.0.0.1:1").unwrap();
        let strict = |s: StorageSettings| s;
        let cases: [(&str, StorageSettings); 3] = [
            (
                "s3://b/p",
                strict(
                    StorageSettings::default()
                        .with_s3(S3Config::default().with_endpoint(http.clone())),
                ),
            ),
            (
                "gs://b/p",
                strict(
                    StorageSettings::default()
                        .with_gcs(GcsConfig::default().with_base_url(http.clone())),
                ),
            ),
            (
                "az://a/c/p",
                strict(
                    StorageSettings::default()
                        .with_azure(AzureConfig::default().with_emulator(http.clone())),
                ),
            ),
        ];
        for (uri, settings) in cases {
            let e = open_location(uri, false, &settings).unwrap_err();
            assert!(matches!(e, StorageError::Relaxation { .. }), "{uri}: {e}");
            let relaxed = settings.with_relaxations(Relaxations::NONE.allow_plain_http_storage());
            open_location(uri, false, &relaxed).unwrap();
        }
        let insecure = StorageSettings::default()
            .with_s3(S3Config::default().with_tls(Tls::default().skipping_verification()));
        let e = open_location("s3://b/p", false, &insecure).unwrap_err();
        assert!(
            matches!(&e, StorageError::Relaxation { relaxation, .. } if *relaxation == Relaxation::UnverifiedStorageTls),
            "{e}"
        );
        let relaxed = insecure.with_relaxations(Relaxations::NONE.allow_unverified_storage_tls());
        open_location("s3://b/p", false, &relaxed).unwrap();
    }

    #[test]
    fn virtual_hosted_endpoints_carry_the_bucket() {
        let s3 = S3Config::default()
            .with_endpoint(url::Url::parse("https://minio:9000").unwrap())
            .with_virtual_hosted_style(true);
        assert_eq!(
            s3_endpoint(&s3, "models").unwrap().unwrap().as_str(),
            "https://models.minio:9000/"
        );
        let e = s3_builder(
            &StorageSettings::default().with_s3(
                S3Config::default().with_tls(Tls::default().with_ca_bundle("/nonexistent/ca.pem")),
            ),
            "b",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("S3 CA bundle") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
    }
}
