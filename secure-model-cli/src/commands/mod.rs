//! One module per subcommand: parse its arguments into settings and library calls, print the
//! result. Shared here: output helpers and the loader `verify` and `pull` build.

pub(crate) mod attest;
pub(crate) mod cache;
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod inspect;
pub(crate) mod jwe;
pub(crate) mod keygen;
pub(crate) mod mirror;
pub(crate) mod pack;
pub(crate) mod pull;
pub(crate) mod rewrap;
pub(crate) mod settings;
pub(crate) mod verify;
pub(crate) mod verify_signature;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use secure_model_core::keys::KeyProvider;
use secure_model_core::loader::{LoadOptions, Loader};
use secure_model_core::storage::StorageBackend;
use secure_model_settings::registry::{self as r, flag_item, flag_value};
pub(crate) use secure_model_settings::Failure;
use secure_model_settings::{Settings, Source};

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

/// The resolved configuration of this run: `src` (flags over the environment) read once.
pub(crate) fn settings(src: &Source) -> Result<Settings, Failure> {
    Ok(Settings::from_source(src)?)
}

/// Opens a package location (plain or KServe `secure+` form) with the storage settings.
pub(crate) fn open(
    uri: &str,
    create: bool,
    settings: &Settings,
) -> Result<Arc<dyn StorageBackend>, Failure> {
    Ok(secure_model_kserve::uri::open(
        uri,
        create,
        &settings.storage.settings,
    )?)
}

/// The trust policy flags `verify`, `verify-signature`, `pull`, `rewrap` and `doctor` share;
/// each overrides its variable (`secure-model settings`).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct TrustArgs {
    /// Trusted signer public key (SPKI PEM). Repeat for several (or SECURE_MODEL_TRUSTED_KEYS).
    #[arg(long = "trusted-key", value_delimiter = ',', value_parser = flag_item(&r::TRUSTED_KEYS))]
    pub(crate) trusted_keys: Vec<PathBuf>,
    /// JSON trust policy file listing several signers (docs/signing.md).
    #[arg(long, value_parser = flag_value(&r::TRUST_POLICY))]
    trust_policy: Option<PathBuf>,
    /// PEM bundle of trusted root CA certificates (certificate-chain signatures). Repeats.
    #[arg(long = "trusted-cert-roots", value_delimiter = ',', value_parser = flag_item(&r::TRUSTED_CERT_ROOTS))]
    trusted_cert_roots: Vec<PathBuf>,
    /// With --trusted-cert-roots: the required leaf subject (RFC 4514).
    #[arg(long, value_parser = flag_value(&r::TRUSTED_CERT_SUBJECT))]
    trusted_cert_subject: Option<String>,
    /// With --trusted-cert-roots: a required leaf SAN (email, URI, DNS name).
    #[arg(long, value_parser = flag_value(&r::TRUSTED_CERT_IDENTITY))]
    trusted_cert_identity: Option<String>,
    /// Sigstore keyless: the certificate identity (exact), with --sigstore-issuer.
    #[arg(long, value_parser = flag_value(&r::SIGSTORE_IDENTITY))]
    sigstore_identity: Option<String>,
    /// Sigstore keyless: the certificate identity as an anchored regex.
    #[arg(long, value_parser = flag_value(&r::SIGSTORE_IDENTITY_REGEX))]
    sigstore_identity_regex: Option<String>,
    /// Sigstore keyless: the OIDC issuer URL.
    #[arg(long, value_parser = flag_value(&r::SIGSTORE_ISSUER))]
    sigstore_issuer: Option<url::Url>,
    /// Sigstore trusted_root.json or ClientTrustConfig (default: the public-good root).
    #[arg(long, value_parser = flag_value(&r::SIGSTORE_TRUSTED_ROOT))]
    sigstore_trusted_root: Option<PathBuf>,
}

impl TrustArgs {
    /// `src` with these flags over their variables.
    pub(crate) fn apply(&self, src: &Source) -> Source {
        src.clone()
            .with_list(&r::TRUSTED_KEYS, self.trusted_keys.clone())
            .with(&r::TRUST_POLICY, self.trust_policy.clone())
            .with_list(&r::TRUSTED_CERT_ROOTS, self.trusted_cert_roots.clone())
            .with(&r::TRUSTED_CERT_SUBJECT, self.trusted_cert_subject.clone())
            .with(
                &r::TRUSTED_CERT_IDENTITY,
                self.trusted_cert_identity.clone(),
            )
            .with(&r::SIGSTORE_IDENTITY, self.sigstore_identity.clone())
            .with(
                &r::SIGSTORE_IDENTITY_REGEX,
                self.sigstore_identity_regex.clone(),
            )
            .with(&r::SIGSTORE_ISSUER, self.sigstore_issuer.clone())
            .with(
                &r::SIGSTORE_TRUSTED_ROOT,
                self.sigstore_trusted_root.clone(),
            )
    }
}

/// `--key`: the keys to unlock with, as every command that unlocks takes them.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct KeyArgs {
    /// Key to unlock with (`TYPE:ARG`, e.g. `local:kek.bin`). Repeat to try several (or
    /// SECURE_MODEL_KEYS).
    #[arg(long = "key", value_delimiter = ',', value_parser = flag_item(&r::KEYS))]
    pub(crate) keys: Vec<String>,
}

impl KeyArgs {
    /// `src` with these keys over `SECURE_MODEL_KEYS`.
    pub(crate) fn apply(&self, src: Source) -> Source {
        src.with_list(&r::KEYS, self.keys.clone())
    }
}

/// The key providers of the settings, refusing none.
pub(crate) fn required_keys(settings: &Settings) -> Result<Vec<Arc<dyn KeyProvider>>, Failure> {
    let providers = settings.key_providers()?;
    if providers.is_empty() {
        return Err(Failure::config(format!(
            "no key: pass {0} TYPE:ARG, e.g. {0} local:keys/kek.bin (or set {1})",
            settings.keys_name(),
            r::KEYS.env
        )));
    }
    Ok(providers)
}

/// Key providers of `specs` (recipients of `pack`, `rewrap --add`), with the KBS settings of
/// the run.
pub(crate) fn key_providers_of(
    specs: &[String],
    settings: &Settings,
) -> Result<Vec<Arc<dyn KeyProvider>>, Failure> {
    Ok(secure_model_core::config::load_key_providers(
        specs,
        &settings.kbs,
    )?)
}

/// The loader `verify` and `pull` share: the trust policy, key providers, options (with the
/// manifest pin, when one is given) and a progress bar.
pub(crate) fn loader(
    settings: &Settings,
    providers: Vec<Arc<dyn KeyProvider>>,
    bar: Bar,
) -> Result<Loader, Failure> {
    let mut opts: LoadOptions = settings.load.clone();
    if let Some(pin) = settings.single_pin()? {
        opts = opts.pin_manifest_digest(pin);
    }
    Ok(Loader::new(settings.trust_policy()?, providers)
        .with_options(opts)
        .with_progress(Arc::new(bar)))
}
