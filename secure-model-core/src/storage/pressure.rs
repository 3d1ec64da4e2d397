//! What the store says about load: an `object_store` HTTP connector that passes every request
//! to the usual `reqwest` client and counts the answers asking the client to slow down (HTTP
//! 429, and 503 as S3 sends with `SlowDown`) and other server errors (5xx). The client still
//! retries them itself; the loader reads the counts to lower its concurrency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::ClientOptions;

/// Counts of responses that signal load, since the backend was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Pressure {
    /// HTTP 429 and 503 responses (throttling, S3 `SlowDown`).
    pub throttled: u64,
    /// Other 5xx responses.
    pub server_errors: u64,
}

/// The shared counters behind [`Pressure`].
#[derive(Debug, Default)]
pub(crate) struct PressureCounters {
    throttled: AtomicU64,
    server_errors: AtomicU64,
}

impl PressureCounters {
    pub(crate) fn snapshot(&self) -> Pressure {
        Pressure {
            throttled: self.throttled.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
        }
    }

    fn record(&self, status: u16) {
        match status {
            429 | 503 => {
                self.throttled.fetch_add(1, Ordering::Relaxed);
            }
            500..=599 => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// The connector every network backend is built with.
#[derive(Debug)]
pub(crate) struct ObservingConnector(pub(crate) Arc<PressureCounters>);

impl HttpConnector for ObservingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Observed {
            inner,
            counters: Arc::clone(&self.0),
        }))
    }
}

#[derive(Debug)]
struct Observed {
    inner: HttpClient,
    counters: Arc<PressureCounters>,
}

#[async_trait]
impl HttpService for Observed {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let res = self.inner.execute(req).await?;
        self.counters.record(res.status().as_u16());
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let c = PressureCounters::default();
        for s in [200, 206, 404, 429, 503, 500, 502, 503] {
            c.record(s);
        }
        assert_eq!(
            c.snapshot(),
            Pressure {
                throttled: 3,
                server_errors: 2
            }
        );
    }
}
