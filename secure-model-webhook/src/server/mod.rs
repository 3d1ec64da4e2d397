//! The webhook server: HTTPS only (rustls on `ring`), HTTP/1.1, a certificate and a profiles
//! file that are reloaded when they change (a bad reload keeps the last good one and logs
//! why), timeouts on the TLS handshake, on request headers and on each request, a body cap,
//! a connection cap, and graceful shutdown (`/readyz` fails, the listener closes, in-flight
//! requests finish within a grace period). Owns the sockets and the reload tasks; decisions
//! are [`crate::admission`]'s.

pub mod http;
pub mod reload;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::profile::{ProfileError, Profiles};
use http::AppState;
use reload::{FileWatch, Shared};
use tls::{CertFiles, ReloadingCert, TlsError};

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The profiles file is missing or invalid at start.
    #[error("the profiles file {path} cannot be used")]
    Profiles {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ProfileError,
    },
    /// The certificate or key is missing or invalid at start.
    #[error("the server certificate cannot be used")]
    Tls(#[from] TlsError),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// How the server runs (built by the binary from the settings registry).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Certificate and key.
    pub cert: CertFiles,
    /// The profiles file.
    pub profiles: PathBuf,
    /// How often the files are checked for changes.
    pub reload_every: Duration,
    /// Largest request body.
    pub max_body: usize,
    /// TLS handshake, request headers, and each request's answer.
    pub timeout: Duration,
    /// Time in-flight requests get on shutdown.
    pub shutdown_grace: Duration,
}

impl ServerOptions {
    /// Options with the registry's defaults for everything but the addresses and files.
    pub fn new(listen: SocketAddr, cert: CertFiles, profiles: PathBuf) -> Self {
        Self {
            listen,
            cert,
            profiles,
            reload_every: Duration::from_secs(5),
            max_body: 4 << 20,
            timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// A bound server, ready to [`Webhook::run`].
pub struct Webhook {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    cert: Arc<ReloadingCert>,
    state: Arc<AppState>,
    opts: ServerOptions,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("listener", &self.listener)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Loads the profiles and the certificate (either failing is a startup error) and binds
    /// the address.
    ///
    /// # Errors
    /// [`ServeError`].
    pub async fn bind(opts: ServerOptions) -> Result<Self, ServeError> {
        let profiles = Profiles::load(&opts.profiles).map_err(|source| ServeError::Profiles {
            path: opts.profiles.clone(),
            source,
        })?;
        let cert = Arc::new(ReloadingCert::new(tls::load(&opts.cert)?));
        let acceptor = TlsAcceptor::from(tls::server_config(cert.clone())?);
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: opts.listen,
                source,
            })?;
        let state = Arc::new(AppState {
            profiles: Shared::new(profiles),
            ready: AtomicBool::new(true),
        });
        Ok(Self {
            listener,
            acceptor,
            cert,
            state,
            opts,
        })
    }

    /// The bound address (the port, when bound to port 0).
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting, fails `/readyz` and gives
    /// in-flight requests the grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let reloader = tokio::spawn(reload_loop(
            self.opts.clone(),
            self.cert.clone(),
            self.state.clone(),
        ));
        let router = http::router(self.state.clone(), self.opts.max_body);
        let graceful = GracefulShutdown::new();
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                p = slots.clone().acquire_owned() => p,
            };
            let Ok(permit) = permit else { break };
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                a = self.listener.accept() => a,
            };
            match accepted {
                Ok((tcp, peer)) => {
                    let conn = Connection {
                        acceptor: self.acceptor.clone(),
                        router: router.clone(),
                        timeout: self.opts.timeout,
                    };
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        conn.serve(tcp, peer, watcher).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        self.state.ready.store(false, Ordering::SeqCst);
        drop(self.listener);
        tracing::info!(in_flight = graceful.count(), "shutting down");
        if tokio::time::timeout(self.opts.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("grace period over: closing the remaining connections");
        }
        reloader.abort();
    }
}

/// One connection's handling.
struct Connection {
    acceptor: TlsAcceptor,
    router: axum::Router,
    timeout: Duration,
}

impl Connection {
    async fn serve(
        self,
        tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let tls = match tokio::time::timeout(self.timeout, self.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
        let (router, limit) = (self.router, self.timeout);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let router = router.clone();
            async move {
                let req = req.map(axum::body::Body::new);
                match tokio::time::timeout(limit, router.oneshot(req)).await {
                    Ok(Ok(resp)) => Ok::<_, Infallible>(resp),
                    Ok(Err(never)) => match never {},
                    Err(_) => Ok(timed_out()),
                }
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.timeout);
        let conn = builder.serve_connection(TokioIo::new(tls), service);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

fn timed_out() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::REQUEST_TIMEOUT,
        "the request was not read and answered in time",
    )
        .into_response()
}

/// Polls the certificate, key and profiles files; applies a good change, keeps the last good
/// value on a bad one and logs why.
async fn reload_loop(opts: ServerOptions, cert: Arc<ReloadingCert>, state: Arc<AppState>) {
    let seen_cert = FileWatch::read(&opts.cert.paths()).ok();
    let seen_profiles = FileWatch::read(std::slice::from_ref(&opts.profiles)).ok();
    let mut cert_watch = FileWatch::new(opts.cert.paths(), seen_cert);
    let mut profile_watch = FileWatch::new(vec![opts.profiles.clone()], seen_profiles);
    let mut tick = tokio::time::interval(opts.reload_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        reload_cert(&mut cert_watch, &opts.cert, &cert);
        reload_profiles(&mut profile_watch, &state);
    }
}

fn reload_cert(watch: &mut FileWatch, files: &CertFiles, cert: &ReloadingCert) {
    match watch.changed() {
        Ok(None) => {}
        Ok(Some(contents)) => {
            let (Some(c), Some(k)) = (contents.first(), contents.get(1)) else {
                return;
            };
            match tls::certified_key(files, c, k) {
                Ok(key) => {
                    cert.replace(key);
                    tracing::info!(cert = %files.cert.display(), "server certificate reloaded");
                }
                Err(e) => tracing::warn!(
                    error = %secure_model_core::chain_message(&e),
                    "new certificate or key not usable; serving the previous one"
                ),
            }
        }
        Err((path, e)) => tracing::warn!(
            file = %path.display(), error = %e,
            "cannot read the certificate files; serving the previous certificate"
        ),
    }
}

fn reload_profiles(watch: &mut FileWatch, state: &AppState) {
    match watch.changed() {
        Ok(None) => {}
        Ok(Some(contents)) => {
            let text = contents
                .first()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            match Profiles::parse(&text) {
                Ok(p) => {
                    tracing::info!(profiles = ?p.names(), "profiles reloaded");
                    state.profiles.set(p);
                }
                Err(e) => tracing::warn!(
                    error = %secure_model_core::chain_message(&e),
                    "new profiles file is invalid; keeping the last good profiles"
                ),
            }
        }
        Err((path, e)) => tracing::warn!(
            file = %path.display(), error = %e,
            "cannot read the profiles file; keeping the last good profiles"
        ),
    }
}
