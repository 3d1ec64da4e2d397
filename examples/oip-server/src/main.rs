//! `secure-model-oip-server`: an example model server that embeds `secure-model-core`.
//!
//! At start-up it verifies and decrypts an encrypted package **into memory** with
//! [`Loader::load_in_memory`] (signature, DEK commitment, AEAD and every plaintext SHA-256 are
//! checked; no plaintext touches a filesystem), parses the package's safetensors file, and only
//! then listens. It serves the KServe Open Inference Protocol (v2) metadata endpoints:
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /v2` | server metadata |
//! | `GET /v2/health/live`, `GET /v2/health/ready` | `{"live":true}` / `{"ready":true}` |
//! | `GET /v2/models/{name}` | model metadata; the weights' names, datatypes and shapes under `parameters.weights` |
//! | `GET /v2/models/{name}/ready` | `{"name":..,"ready":true}` |
//!
//! `--load-format secure-model` marks the `--package` form for the secure-model webhook: a pod
//! whose server loads in-process gets the profile's settings and Secrets, and no init
//! container (the flag vLLM's plugin uses; it changes nothing here).
//!
//! With `--model-dir DIR` instead of `--package`, it serves the plaintext model directory that
//! the `secure-model-initc` init container verified and placed in the pod's memory-backed volume
//! (the webhook's and KServe's layout: the serving container mounts it read-only), so the same
//! image serves behind the init container too; no key is needed then.
//!
//! Configuration is the init container's, through the same settings layer
//! (`secure-model-settings`): `SECURE_MODEL_TRUSTED_KEYS` / `SECURE_MODEL_TRUSTED_KEYS_PEM`,
//! `SECURE_MODEL_KEYS`, the KBS/CDH, storage and transfer settings, plus `--package`. The bound
//! address is printed on stdout as `listening on ADDR` (use `--listen 127.0.0.1:0` for a free
//! port).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod metadata;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use secure_model_core::loader::{LoadedModel, Loader};
use secure_model_core::storage::open_location;
use secure_model_core::ErrorClass;
use secure_model_settings::registry::{flag_item, KEYS, LOG, TRUSTED_KEYS};
use secure_model_settings::{Environment, Settings, Source};
use serde_json::{json, Value};

use metadata::TensorMeta;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Serve OIP v2 metadata of an encrypted secure-model package, loaded into memory"
)]
struct Args {
    /// Package location: a directory, `file://` URI or any location the storage layer opens.
    #[arg(
        long,
        required_unless_present = "model_dir",
        conflicts_with = "model_dir"
    )]
    package: Option<String>,
    /// Serve the plaintext directory an init container placed (e.g. `/mnt/models`) instead of
    /// loading a package; `--weights` is read from it.
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// `secure-model`: says on the command line that this server loads the package in-process
    /// (`--package`), with the convention vLLM's plugin uses, so the secure-model webhook gives
    /// an opted-in pod the loader's settings and Secrets instead of an init container
    /// (docs/webhook.md). It changes nothing in how the package is loaded.
    #[arg(long, value_parser = ["secure-model"], conflicts_with = "model_dir")]
    load_format: Option<String>,
    /// Name to serve the model under (default: the signed model name).
    #[arg(long)]
    model_name: Option<String>,
    /// Path of the safetensors file inside the package.
    #[arg(long, default_value = "model.safetensors")]
    weights: String,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Largest total plaintext loaded into memory, in bytes.
    #[arg(long, default_value_t = 1 << 30)]
    max_bytes: u64,
    /// Trusted signer public key files (PEM); or SECURE_MODEL_TRUSTED_KEYS /
    /// SECURE_MODEL_TRUSTED_KEYS_PEM.
    #[arg(long = "trusted-key", value_delimiter = ',', value_parser = flag_item(&TRUSTED_KEYS))]
    trusted_keys: Vec<PathBuf>,
    /// Key specifications, e.g. `local:/keys/kek.bin`; or SECURE_MODEL_KEYS.
    #[arg(long = "key", value_delimiter = ',', value_parser = flag_item(&KEYS))]
    keys: Vec<String>,
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
enum ServerError {
    /// Loading the package failed (verification, key, storage...).
    #[error(transparent)]
    Core(#[from] secure_model_core::Error),
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// A malformed setting.
    #[error(transparent)]
    Settings(#[from] secure_model_settings::SettingsError),
    /// Trusted keys could not be loaded.
    #[error(transparent)]
    Trust(#[from] secure_model_settings::trust::TrustError),
    /// The weights file is missing or not safetensors.
    #[error("{path}: not a valid safetensors file: {source}")]
    Weights {
        /// Path in the package.
        path: String,
        /// Parser error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// Socket error.
    #[error("cannot serve on {addr}: {source}")]
    Serve {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl ServerError {
    fn exit_code(&self) -> u8 {
        match self {
            ServerError::Core(e) => e.class().exit_code(),
            ServerError::Config(_) | ServerError::Weights { .. } => ErrorClass::Config.exit_code(),
            ServerError::Settings(e) => e.class().exit_code(),
            ServerError::Trust(e) => e.class().exit_code(),
            ServerError::Serve { .. } => ErrorClass::Internal.exit_code(),
        }
    }
}

/// What the endpoints serve.
struct Served {
    name: String,
    weights: Vec<TensorMeta>,
    origin: Origin,
}

/// Where the model came from.
enum Origin {
    /// Loaded from the package by this process. The decrypted model stays in memory for the
    /// process's life (a real server would run inference on it) and is zeroed when dropped.
    Package(LoadedModel),
    /// Read from the directory the init container verified and placed.
    Directory {
        /// Files in the directory.
        files: usize,
        /// Bytes of the weights file.
        bytes: u64,
    },
}

/// Reads the weights' metadata from the directory the init container placed.
fn load_dir(args: &Args, dir: &std::path::Path) -> Result<Served, ServerError> {
    let path = dir.join(&args.weights);
    let bytes = std::fs::read(&path)
        .map_err(|e| ServerError::Config(format!("cannot read {}: {e}", path.display())))?;
    let weights = metadata::tensors(&bytes).map_err(|source| ServerError::Weights {
        path: args.weights.clone(),
        source,
    })?;
    let files = std::fs::read_dir(dir)
        .map_err(|e| ServerError::Config(format!("cannot list {}: {e}", dir.display())))?
        .count();
    let name = args.model_name.clone().unwrap_or_else(|| {
        dir.file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned())
    });
    tracing::info!(
        model = %name,
        tensors = weights.len(),
        files,
        bytes = bytes.len(),
        dir = %dir.display(),
        "serving the model directory placed by the init container"
    );
    Ok(Served {
        name,
        weights,
        origin: Origin::Directory {
            files,
            bytes: bytes.len() as u64,
        },
    })
}

async fn load(args: &Args, src: &Source) -> Result<Served, ServerError> {
    let Some(package) = &args.package else {
        return match &args.model_dir {
            Some(dir) => load_dir(args, dir),
            None => Err(ServerError::Config(
                "--package or --model-dir is required".into(),
            )),
        };
    };
    // The one resolved configuration: trust policy, keys, storage, transfer options.
    let settings = Settings::from_source(src)?;
    let trusted = settings.trust_policy()?;
    let providers = settings.key_providers()?;
    if providers.is_empty() {
        return Err(ServerError::Config(
            "no key: pass --key TYPE:ARG or set SECURE_MODEL_KEYS".into(),
        ));
    }
    let store = open_location(package, false, &settings.storage.settings)
        .map_err(secure_model_core::Error::from)?;
    let model = Loader::new(trusted, providers)
        .with_options(settings.load.clone())
        .load_in_memory(store, args.max_bytes)
        .await
        .map_err(secure_model_core::Error::from)?;
    let bytes = model.file(&args.weights).ok_or_else(|| {
        ServerError::Config(format!(
            "the package has no {} (files: {})",
            args.weights,
            model.files.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let weights = metadata::tensors(bytes).map_err(|source| ServerError::Weights {
        path: args.weights.clone(),
        source,
    })?;
    let name = args
        .model_name
        .clone()
        .unwrap_or_else(|| model.model_name.clone());
    tracing::info!(
        model = %name,
        tensors = weights.len(),
        files = model.files.len(),
        bytes = model.plaintext_bytes(),
        manifest_sha256 = %model.manifest_digest,
        "model verified and loaded into memory"
    );
    Ok(Served {
        name,
        weights,
        origin: Origin::Package(model),
    })
}

fn not_found(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": format!("model {name} not found") })),
    )
        .into_response()
}

async fn server_metadata() -> Json<Value> {
    Json(json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": [],
    }))
}

async fn live() -> Json<Value> {
    Json(json!({ "live": true }))
}

/// Ready as soon as it listens: the server binds only after the model verified and loaded.
async fn ready() -> Json<Value> {
    Json(json!({ "ready": true }))
}

async fn model_metadata(State(s): State<Arc<Served>>, Path(name): Path<String>) -> Response {
    if name != s.name {
        return not_found(&name);
    }
    let parameters = match &s.origin {
        Origin::Package(m) => json!({
            "weights": s.weights,
            "model_id": m.model_id,
            "manifest_sha256": m.manifest_digest,
            "signer": m.signer,
            "files": m.files.len(),
            "plaintext_bytes": m.plaintext_bytes(),
        }),
        Origin::Directory { files, bytes } => json!({
            "weights": s.weights,
            "files": files,
            "weights_bytes": bytes,
        }),
    };
    Json(json!({
        "name": s.name,
        "platform": "safetensors",
        "inputs": [],
        "outputs": [],
        "parameters": parameters,
    }))
    .into_response()
}

async fn model_ready(State(s): State<Arc<Served>>, Path(name): Path<String>) -> Response {
    if name != s.name {
        return not_found(&name);
    }
    Json(json!({ "name": s.name, "ready": true })).into_response()
}

fn router(served: Arc<Served>) -> Router {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .with_state(served)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

async fn run(args: Args, src: Source) -> Result<(), ServerError> {
    let served = Arc::new(load(&args, &src).await?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServerError::Serve {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Serve {
        addr: args.listen,
        source,
    })?;
    // The one line on stdout: scripts and tests read the bound address from it.
    println!("listening on {addr}");
    axum::serve(listener, router(served))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|source| ServerError::Serve { addr, source })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let src = Source::new(Environment::capture())
        .with_list(&TRUSTED_KEYS, args.trusted_keys.clone())
        .with_list(&KEYS, args.keys.clone());
    let filter = src.get(&LOG).ok().flatten();
    secure_model_settings::logging::init(
        filter.as_deref().unwrap_or("info"),
        "info",
        secure_model_settings::logging::LogFormat::Json,
        secure_model_settings::logging::colour(&src),
    );
    if let Err(e) = secure_model_core::config::disable_core_dumps() {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("secure-model-oip-server: cannot start the async runtime: {e}");
            return ExitCode::from(ErrorClass::Internal.exit_code());
        }
    };
    match rt.block_on(run(args, src)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = match &e {
                ServerError::Core(c) => c.chain_message(),
                other => other.to_string(),
            };
            tracing::error!("{msg}");
            ExitCode::from(e.exit_code())
        }
    }
}
