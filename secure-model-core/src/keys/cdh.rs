//! The CoCo Confidential Data Hub client: inside a Confidential Containers pod the CDH has
//! already attested, and `GET {CDH_ADDR}/cdh/resource/<repo>/<type>/<tag>` returns the
//! plaintext resource. One of the two brokers of [`super::broker`].
//!
//! The CDH listens on the pod's loopback; plain HTTP is its normal transport, so `http://` is
//! accepted here (and only loopback or an explicit `CDH_ADDR` is ever contacted).

use std::time::Duration;

use zeroize::Zeroizing;

use super::resource::{sanitize, ResourcePath};

/// Default CDH address.
pub const DEFAULT_CDH_ADDR: &str = "http://127.0.0.1:8006";
/// Largest resource read from the CDH.
const MAX_RESOURCE: usize = 1024 * 1024;

/// Errors of the CDH client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CdhError {
    /// The address is not an http(s) URL.
    #[error("invalid CDH address {addr:?}")]
    InvalidAddress {
        /// As given (sanitized).
        addr: String,
    },
    /// Transport failure (is the CDH running in this pod?).
    #[error("CDH request for {resource} failed (is the Confidential Data Hub running at the configured address?)")]
    Http {
        /// Resource.
        resource: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// The CDH answered with an error status.
    #[error("CDH refused {resource}: HTTP {status}: {detail}")]
    Status {
        /// Resource.
        resource: String,
        /// HTTP status.
        status: u16,
        /// Body text (sanitized, truncated).
        detail: String,
    },
    /// The response is larger than accepted.
    #[error("CDH response for {resource} larger than {MAX_RESOURCE} bytes")]
    TooLarge {
        /// Resource.
        resource: String,
    },
}

/// A CDH client.
#[derive(Debug, Clone)]
pub struct CdhClient {
    base: String,
    http: reqwest::Client,
}

impl CdhClient {
    /// A client for `addr` (default [`DEFAULT_CDH_ADDR`]).
    ///
    /// # Errors
    /// [`CdhError::InvalidAddress`].
    pub fn new(addr: Option<&str>) -> Result<Self, CdhError> {
        let addr = addr.unwrap_or(DEFAULT_CDH_ADDR);
        let bad = || CdhError::InvalidAddress {
            addr: sanitize(addr, 128),
        };
        let url = url::Url::parse(addr).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
            return Err(bad());
        }
        crate::crypto::install_rustls_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| bad())?;
        Ok(Self {
            base: url.as_str().trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// Whether the CDH answers at all (any HTTP status counts), and the `Date` it sends: a
    /// reachability check that requests no resource (`doctor`).
    ///
    /// # Errors
    /// [`CdhError::Http`] when nothing answers.
    pub async fn probe(&self) -> Result<Option<String>, CdhError> {
        let resp = self
            .http
            .get(format!("{}/", self.base))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|source| CdhError::Http {
                resource: "(reachability check)".into(),
                source,
            })?;
        Ok(resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned))
    }

    /// The base URL.
    pub fn address(&self) -> &str {
        &self.base
    }

    /// Fetches the plaintext resource.
    ///
    /// # Errors
    /// [`CdhError`].
    pub async fn get_resource(&self, path: &ResourcePath) -> Result<Zeroizing<Vec<u8>>, CdhError> {
        let resource = path.uri();
        let url = format!("{}/cdh/resource/{}", self.base, path.as_path());
        let mut resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|source| CdhError::Http {
                resource: resource.clone(),
                source,
            })?;
        let status = resp.status();
        // A declared length over the cap is refused before anything is read or allocated.
        if resp
            .content_length()
            .is_some_and(|l| l > MAX_RESOURCE as u64)
        {
            return Err(CdhError::TooLarge { resource });
        }
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = resp.chunk().await.map_err(|source| CdhError::Http {
            resource: resource.clone(),
            source,
        })? {
            if body.len() + chunk.len() > MAX_RESOURCE {
                return Err(CdhError::TooLarge { resource });
            }
            body.extend_from_slice(&chunk);
        }
        response(resource, status.as_u16(), body)
    }
}

/// A CDH response: the body of a 2xx status is the resource, any other status is a refusal
/// whose body (server text) is shown sanitized and cut at 300 characters.
pub(crate) fn response(
    resource: String,
    status: u16,
    body: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, CdhError> {
    if !(200..300).contains(&status) {
        return Err(CdhError::Status {
            resource,
            status,
            detail: sanitize(
                &String::from_utf8_lossy(body.get(..300).unwrap_or(&body)),
                300,
            ),
        });
    }
    Ok(body)
}
