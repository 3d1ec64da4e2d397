//! What a call is configured with: the init container's settings (read once from the
//! environment by `secure-model-settings`, the only reader of it) with the caller's keyword
//! arguments over them, turned into a [`Loader`] and an opened store exactly as `pull` does.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use secure_model_core::loader::Loader;
use secure_model_core::storage::StorageBackend;
use secure_model_settings::logging::{self, LogFormat};
use secure_model_settings::registry::{self as r, ListKind};
use secure_model_settings::{Environment, Failure, Settings, Source};

/// The keyword arguments that override settings; `None` (or empty) leaves the variable in
/// charge.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Trusted signer public keys (SPKI PEM files): `SECURE_MODEL_TRUSTED_KEYS`.
    pub trusted_keys: Vec<PathBuf>,
    /// A JSON trust policy file: `SECURE_MODEL_TRUST_POLICY`.
    pub trust_policy: Option<PathBuf>,
    /// Key specifications (`TYPE:ARG`): `SECURE_MODEL_KEYS`.
    pub keys: Vec<String>,
    /// The manifest's SHA-256 pin (hex): `SECURE_MODEL_MANIFEST_DIGEST`.
    pub manifest_digest: Option<String>,
}

impl Overrides {
    /// `src` with these values over their variables.
    ///
    /// # Errors
    /// A malformed manifest digest (a configuration failure).
    fn apply(&self, src: Source) -> Result<Source, Failure> {
        let pins = match &self.manifest_digest {
            None => Vec::new(),
            Some(d) => vec![r::MANIFEST_DIGEST
                .kind
                .parse_item(d)
                .map_err(|e| Failure::config(format!("manifest_digest: {e}")))?],
        };
        Ok(src
            .with_list(&r::TRUSTED_KEYS, self.trusted_keys.clone())
            .with(&r::TRUST_POLICY, self.trust_policy.clone())
            .with_list(&r::KEYS, self.keys.clone())
            .with_list(&r::MANIFEST_DIGEST, pins))
    }
}

/// Logs go to stderr as the init container's would (`SECURE_MODEL_LOG`, default `warn`, so
/// each relaxation in effect is warned about), set up once per process.
fn init_logging(src: &Source) {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = src.get(&r::LOG).ok().flatten();
        logging::init(
            filter.as_deref().unwrap_or("warn"),
            "warn",
            LogFormat::Text,
            logging::colour(src),
        );
    });
}

/// The loader and the opened store of package `source`, from the environment and
/// `overrides`: the trust policy, at least one key, the transfer options, the manifest pin and
/// the storage settings, as the init container resolves them.
///
/// # Errors
/// Every settings failure (class config, or storage for a malformed storage secret); no key
/// configured; a location that cannot be opened.
pub fn loader_and_store(
    source: &str,
    overrides: &Overrides,
) -> Result<(Loader, Arc<dyn StorageBackend>), Failure> {
    let src = overrides.apply(Source::new(Environment::capture()))?;
    init_logging(&src);
    let settings = Settings::from_source(&src)?;
    let providers = settings.key_providers()?;
    if providers.is_empty() {
        return Err(Failure::config(format!(
            "no key: pass keys=[\"TYPE:ARG\"], e.g. keys=[\"local:kek.bin\"], or set {}",
            r::KEYS.env
        )));
    }
    let mut opts = settings.load.clone();
    if let Some(pin) = settings.single_pin()? {
        opts = opts.pin_manifest_digest(pin);
    }
    let loader = Loader::new(settings.trust_policy()?, providers).with_options(opts);
    let store = open_store(source, &settings)?;
    Ok((loader, store))
}

/// Opens a package location (plain or KServe `secure+` form), read-only.
fn open_store(source: &str, settings: &Settings) -> Result<Arc<dyn StorageBackend>, Failure> {
    Ok(secure_model_kserve::uri::open(
        source,
        false,
        &settings.storage.settings,
    )?)
}
