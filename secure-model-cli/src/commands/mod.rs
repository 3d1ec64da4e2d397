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
pub(crate) mod verify_signature;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use clap::Args;
use secure_model_core::keys::KeyProvider;
use secure_model_core::loader::{LoadOptions, Loader};
use secure_model_core::storage::StorageBackend;
use secure_model_core::verify::TrustPolicy;
use secure_model_settings::registry::flag_value;
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

/// The trust policy flags `verify`, `verify-signature`, `pull` and `doctor` share; each
/// overrides its variable (`secure-model settings`).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct TrustArgs {
    /// Trusted signer public key (SPKI PEM). Repeat for several (or SECURE_MODEL_TRUSTED_KEYS).
    #[arg(long = "trusted-key", value_parser = flag_value(&registry::TRUSTED_KEYS))]
    pub(crate) trusted_keys: Vec<String>,
    /// JSON trust policy file listing several signers (docs/signing.md).
    #[arg(long, value_parser = flag_value(&registry::TRUST_POLICY))]
    trust_policy: Option<String>,
    /// PEM bundle of trusted root CA certificates (certificate-chain signatures). Repeats.
    #[arg(long = "trusted-cert-roots", value_parser = flag_value(&registry::TRUSTED_CERT_ROOTS))]
    trusted_cert_roots: Vec<String>,
    /// With --trusted-cert-roots: the required leaf subject (RFC 4514).
    #[arg(long, value_parser = flag_value(&registry::TRUSTED_CERT_SUBJECT))]
    trusted_cert_subject: Option<String>,
    /// With --trusted-cert-roots: a required leaf SAN (email, URI, DNS name).
    #[arg(long, value_parser = flag_value(&registry::TRUSTED_CERT_IDENTITY))]
    trusted_cert_identity: Option<String>,
    /// Sigstore keyless: the certificate identity (exact), with --sigstore-issuer.
    #[arg(long, value_parser = flag_value(&registry::SIGSTORE_IDENTITY))]
    sigstore_identity: Option<String>,
    /// Sigstore keyless: the certificate identity as an anchored regex.
    #[arg(long, value_parser = flag_value(&registry::SIGSTORE_IDENTITY_REGEX))]
    sigstore_identity_regex: Option<String>,
    /// Sigstore keyless: the OIDC issuer URL.
    #[arg(long, value_parser = flag_value(&registry::SIGSTORE_ISSUER))]
    sigstore_issuer: Option<String>,
    /// Sigstore trusted_root.json or ClientTrustConfig (default: the public-good root).
    #[arg(long, value_parser = flag_value(&registry::SIGSTORE_TRUSTED_ROOT))]
    sigstore_trusted_root: Option<String>,
}

impl TrustArgs {
    /// `src` with these flags over their variables.
    pub(crate) fn apply(&self, src: &Source) -> Source {
        use registry as r;
        src.clone()
            .flags(&r::TRUSTED_KEYS, &self.trusted_keys)
            .flag(&r::TRUST_POLICY, self.trust_policy.as_ref())
            .flags(&r::TRUSTED_CERT_ROOTS, &self.trusted_cert_roots)
            .flag(&r::TRUSTED_CERT_SUBJECT, self.trusted_cert_subject.as_ref())
            .flag(
                &r::TRUSTED_CERT_IDENTITY,
                self.trusted_cert_identity.as_ref(),
            )
            .flag(&r::SIGSTORE_IDENTITY, self.sigstore_identity.as_ref())
            .flag(
                &r::SIGSTORE_IDENTITY_REGEX,
                self.sigstore_identity_regex.as_ref(),
            )
            .flag(&r::SIGSTORE_ISSUER, self.sigstore_issuer.as_ref())
            .flag(
                &r::SIGSTORE_TRUSTED_ROOT,
                self.sigstore_trusted_root.as_ref(),
            )
    }
}

/// The trust policy of `src`: keys, certificate roots, Sigstore identity, policy file.
pub(crate) fn trust_policy(src: &Source) -> Result<TrustPolicy, Failure> {
    Ok(build::trust_sources(src)?.load()?)
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
    Ok(Loader::new(trust_policy(src)?, providers)
        .with_options(opts)
        .with_progress(Arc::new(bar)))
}
