//! `secure-model-initc SRC DEST [SRC DEST ...]`: the KServe storage initializer for
//! secure-model packages. Configuration comes from environment variables (see README);
//! logs are JSON lines on stderr; on failure a one-line reason goes to the termination log.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use secure_model_core::config::{load_key_providers, load_trusted_keys, parse_digest_pin};
use secure_model_core::loader::{LoadOptions, Loader, LogProgress, StagedModel};
use secure_model_core::storage::open_location;
use secure_model_core::verify::TrustedKeys;
use secure_model_core::ErrorClass;

mod confidential;

/// Environment variable names (documented in the README).
mod env {
    pub(crate) const TRUSTED_KEYS: &str = "SECURE_MODEL_TRUSTED_KEYS";
    pub(crate) const TRUSTED_KEYS_PEM: &str = "SECURE_MODEL_TRUSTED_KEYS_PEM";
    pub(crate) const KEYS: &str = "SECURE_MODEL_KEYS";
    pub(crate) const ALLOW_DISK: &str = "SECURE_MODEL_ALLOW_DISK_PLAINTEXT";
    pub(crate) const MANIFEST_DIGEST: &str = "SECURE_MODEL_MANIFEST_DIGEST";
    pub(crate) const LOG: &str = "SECURE_MODEL_LOG";
    pub(crate) const TERMINATION_LOG: &str = "SECURE_MODEL_TERMINATION_LOG";
}

const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

struct Failure {
    class: ErrorClass,
    message: String,
}

impl From<secure_model_core::Error> for Failure {
    fn from(e: secure_model_core::Error) -> Self {
        Self {
            class: e.class(),
            message: e.chain_message(),
        }
    }
}

impl From<secure_model_core::loader::LoadError> for Failure {
    fn from(e: secure_model_core::loader::LoadError) -> Self {
        secure_model_core::Error::from(e).into()
    }
}

impl From<secure_model_core::storage::StorageError> for Failure {
    fn from(e: secure_model_core::storage::StorageError) -> Self {
        secure_model_core::Error::from(e).into()
    }
}

fn config(message: impl Into<String>) -> Failure {
    Failure {
        class: ErrorClass::Config,
        message: message.into(),
    }
}

fn list_var(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn bool_var(name: &str) -> Result<bool, Failure> {
    match std::env::var(name)
        .ok()
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("false") | Some("0") | Some("no") => Ok(false),
        Some("true") | Some("1") | Some("yes") => Ok(true),
        Some(other) => Err(config(format!("{name}={other:?}: expected true or false"))),
    }
}

fn pairs(args: &[String]) -> Vec<(String, PathBuf)> {
    args.chunks(2)
        .filter_map(|c| match c {
            [s, d] => Some((s.clone(), PathBuf::from(d))),
            _ => None,
        })
        .collect()
}

/// Trusted signer keys from PEM files named in `SECURE_MODEL_TRUSTED_KEYS` and/or PEM text
/// inline in `SECURE_MODEL_TRUSTED_KEYS_PEM` (public keys are not secret, so a
/// ClusterStorageContainer can carry them in its env without a volume). Both sets are trusted.
fn trusted_keys() -> Result<TrustedKeys, Failure> {
    let paths = list_var(env::TRUSTED_KEYS);
    let inline = std::env::var(env::TRUSTED_KEYS_PEM).unwrap_or_default();
    if paths.is_empty() && inline.trim().is_empty() {
        return Err(config(format!(
            "neither {} (trusted signer public key files, comma-separated) nor {} (PEM text) is set",
            env::TRUSTED_KEYS,
            env::TRUSTED_KEYS_PEM
        )));
    }
    let mut trusted = if paths.is_empty() {
        TrustedKeys::new()
    } else {
        load_trusted_keys(&paths)?
    };
    if !inline.trim().is_empty() {
        let set = TrustedKeys::from_pem_bundle(&inline)
            .map_err(|e| config(format!("{}: {e}", env::TRUSTED_KEYS_PEM)))?;
        for k in set.keys() {
            trusted.push(k.clone());
        }
    }
    Ok(trusted)
}

async fn run(args: Vec<String>) -> Result<(), Failure> {
    if args.is_empty() || args.len() % 2 != 0 {
        return Err(config(format!(
            "expected SRC DEST pairs, got {} argument(s); usage: secure-model-initc <src-uri> <dest-dir> [<src-uri> <dest-dir> ...]",
            args.len()
        )));
    }
    if confidential::enabled()? {
        return confidential::run(&pairs(&args)).await;
    }
    let trusted = trusted_keys()?;
    let key_specs = list_var(env::KEYS);
    if key_specs.is_empty() {
        return Err(config(format!("{} is not set: name the key(s) to unlock with, e.g. local:/var/run/secrets/kek/kek.bin", env::KEYS)));
    }
    let providers = load_key_providers(&key_specs)?;
    let pairs = pairs(&args);
    let pins = list_var(env::MANIFEST_DIGEST);
    if !pins.is_empty() && pins.len() != pairs.len() {
        return Err(config(format!(
            "{} has {} digest(s) but there are {} SRC DEST pair(s): give one per pair, comma-separated",
            env::MANIFEST_DIGEST,
            pins.len(),
            pairs.len()
        )));
    }
    let allow_disk = bool_var(env::ALLOW_DISK)?;
    let progress = Arc::new(LogProgress::new(Duration::from_secs(2)));

    // Stage every pair first; publish only when all verified, so a failure in the second
    // model leaves the first unpublished too.
    let mut staged: Vec<StagedModel> = Vec::with_capacity(pairs.len());
    for (i, (src, dest)) in pairs.iter().enumerate() {
        let mut opts = LoadOptions::default()
            .allow_disk_plaintext(allow_disk)
            .with_env_tuning(|k| std::env::var(k).ok())?;
        if let Some(pin) = pins.get(i) {
            opts = opts.pin_manifest_digest(parse_digest_pin(pin)?);
        }
        tracing::info!(source = %src, destination = %dest.display(), "loading package");
        let store = open_location(src, false)?;
        confidential::require_package(store.as_ref(), src).await?;
        let loader = Loader::new(trusted.clone(), providers.clone())
            .with_options(opts)
            .with_progress(progress.clone());
        staged.push(loader.stage(store, dest).await?);
    }
    for s in staged {
        let r = s.publish()?;
        tracing::info!(
            destination = %r.destination.display(),
            model_id = %r.model_id,
            files = r.files,
            bytes = r.plaintext_bytes,
            seconds = r.seconds,
            recipient = %r.recipient,
            "model published"
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let filter = std::env::var(env::LOG).unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .init();
    if let Err(e) = secure_model_core::config::disable_core_dumps() {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("secure-model-initc: cannot start the async runtime: {e}");
            return ExitCode::from(ErrorClass::Internal.exit_code());
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            tracing::error!(class = ?f.class, "{}", f.message);
            let path = std::env::var(env::TERMINATION_LOG)
                .unwrap_or_else(|_| DEFAULT_TERMINATION_LOG.into());
            let path = std::path::Path::new(&path);
            if path.exists() {
                // One line; KServe shows it in the InferenceService status.
                let line: String = f
                    .message
                    .chars()
                    .filter(|c| *c != '\n')
                    .take(4000)
                    .collect();
                if let Err(e) = std::fs::write(path, format!("secure-model-initc: {line}\n")) {
                    eprintln!(
                        "secure-model-initc: cannot write termination log {}: {e}",
                        path.display()
                    );
                }
            }
            ExitCode::from(f.class.exit_code())
        }
    }
}
