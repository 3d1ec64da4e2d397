//! The server certificate: read from PEM files (cert-manager's `tls.crt` / `tls.key`), served
//! through a rustls resolver whose certificate is swapped when the files change, so new
//! connections get a rotated certificate without a restart. rustls on `ring` only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::ring::default_provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{path} holds no PEM certificate")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no PEM private key.
    #[error("{path} holds no PEM private key (PKCS#8, SEC1 or PKCS#1)")]
    NoKey {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// The key is unusable or does not belong to the certificate.
    #[error("the private key does not fit the certificate, or is of an unsupported type")]
    Key(#[source] rustls::Error),
    /// The TLS configuration could not be built.
    #[error("cannot build the TLS configuration")]
    Config(#[source] rustls::Error),
}

/// The certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl CertFiles {
    /// The files `cert` and `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
        }
    }

    /// Both paths, certificate first (for the file watcher).
    pub fn paths(&self) -> Vec<PathBuf> {
        vec![self.cert.clone(), self.key.clone()]
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A certified key from the PEM texts of a chain and its key (the key must match the leaf).
///
/// # Errors
/// [`TlsError`] naming the file at fault.
pub fn certified_key(
    files: &CertFiles,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| TlsError::NoKey {
        path: files.key.clone(),
        source,
    })?;
    let ck = CertifiedKey::from_der(chain, key, &default_provider()).map_err(TlsError::Key)?;
    Ok(Arc::new(ck))
}

/// Reads and checks the certificate and key files.
///
/// # Errors
/// As [`certified_key`], and [`TlsError::Read`].
pub fn load(files: &CertFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    certified_key(files, &read(&files.cert)?, &read(&files.key)?)
}

/// A rustls certificate resolver whose certificate can be replaced while serving.
#[derive(Debug)]
pub struct ReloadingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCert {
    /// Serves `key` until [`ReloadingCert::replace`].
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        Self {
            current: RwLock::new(key),
        }
    }

    /// New handshakes get `key`.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// A server configuration (TLS 1.2 and 1.3, `ring`, HTTP/1.1 by ALPN) resolving its
/// certificate through `resolver`. Sessions are not resumed: every new connection is
/// authenticated with the certificate in use then, so a rotation (or a revocation) takes effect
/// for every new connection at once; the API server keeps its connections alive anyway.
///
/// # Errors
/// [`TlsError::Config`].
pub fn server_config(resolver: Arc<ReloadingCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}
