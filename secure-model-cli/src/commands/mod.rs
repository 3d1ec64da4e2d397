//! One module per subcommand: parse its arguments into settings and library calls, print the
//! result. Shared here: output helpers and the loader `verify` and `pull` build.

pub(crate) mod attest;
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod inspect;
pub(crate) mod jwe;
pub(crate) mod keygen;
pub(crate) mod pack;
pub(crate) mod pull;
pub(crate) mod rewrap;
pub(crate) mod settings;
pub(crate) mod verify;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use clap::Args;
use secure_model_core::keys::KeyProvider;
use secure_model_core::loader::{LoadOptions, Loader};
use secure_model_core::storage::StorageBackend;
use secure_model_core::verify::TrustedKeys;
pub(crate) use secure_model_settings::Failure;
use secure_model_settings::{build, registry, Source};

use crate::progress::Bar;

pub(crate) type Res = Result<(), Failure>;

/// Output switch shared by commands that print a result.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct Output {
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> Res {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| Failure::internal(format!("cannot serialise output: {e}")))?;
    println!("{s}");
    Ok(())
}

/// Creates `path` with `mode` and writes `data`; never overwrites.
pub(crate) fn write_new(path: &Path, data: &[u8], mode: u32) -> Res {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            Failure::config(format!(
                "cannot create {} (refusing to overwrite existing files): {e}",
                path.display()
            ))
        })?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| Failure::internal(format!("cannot write {}: {e}", path.display())))
}

/// Opens a package location (plain or KServe `secure+` form) with the storage settings.
pub(crate) fn open(
    uri: &str,
    create: bool,
    src: &Source,
) -> Result<Arc<dyn StorageBackend>, Failure> {
    let storage = build::storage_settings(src)?;
    Ok(secure_model_kserve::uri::open(uri, create, &storage)?)
}

/// Trusted signer keys from `--trusted-key`/`SECURE_MODEL_TRUSTED_KEYS` (and the inline PEM
/// variable).
pub(crate) fn trusted_keys(src: &Source) -> Result<TrustedKeys, Failure> {
    let trust = build::trust_sources(src)?;
    if trust.files.is_empty() && trust.pem.is_none() {
        return Err(Failure::config(
            "no trusted signer key: pass --trusted-key PUB.pem (or set SECURE_MODEL_TRUSTED_KEYS)",
        ));
    }
    Ok(trust.load()?)
}

/// Key providers from `--key`/`SECURE_MODEL_KEYS`.
pub(crate) fn key_providers(src: &Source) -> Result<Vec<Arc<dyn KeyProvider>>, Failure> {
    let specs = src.list(&registry::KEYS)?;
    key_providers_of(&specs, src)
}

/// Key providers of `specs`, with the KBS settings of `src`.
pub(crate) fn key_providers_of(
    specs: &[String],
    src: &Source,
) -> Result<Vec<Arc<dyn KeyProvider>>, Failure> {
    let kbs = build::kbs_settings(src)?;
    Ok(secure_model_core::config::load_key_providers(specs, &kbs)?)
}

/// The loader `verify` and `pull` share: trusted keys, key providers, options (with the
/// manifest pin, when one is given) and a progress bar.
pub(crate) fn loader(
    src: &Source,
    providers: Vec<Arc<dyn KeyProvider>>,
    bar: Bar,
) -> Result<Loader, Failure> {
    let mut opts: LoadOptions = build::load_options(src)?;
    match build::manifest_digests(src)?.as_slice() {
        [] => {}
        [pin] => opts = opts.pin_manifest_digest(*pin),
        more => {
            return Err(Failure::config(format!(
                "{} manifest digests given; one package takes one",
                more.len()
            )))
        }
    }
    Ok(Loader::new(trusted_keys(src)?, providers)
        .with_options(opts)
        .with_progress(Arc::new(bar)))
}
