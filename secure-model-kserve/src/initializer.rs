//! The KServe storage initializer as a library: `SRC DEST` pairs in, every package (and, in
//! KServe's confidential mode, every JWE download) verified and decrypted into staging, then
//! all published, or nothing. Normal and confidential mode are one plan: confidential mode
//! adds the `kbs` recipient of `CONFIDENTIAL_RESOURCE_ID` and accepts KServe's JWE files.
//! Key providers, the key resource and the trusted keys are built once per run, so a pod
//! attests once however many pairs it loads.

use std::path::PathBuf;
use std::sync::Arc;

use secure_model_core::format::MANIFEST_OBJECT;
use secure_model_core::keys::{
    BrokeredResource, KbsKeyProvider, KbsSettings, KeyProvider, ResourceBroker, ResourcePath,
};
use secure_model_core::loader::{
    LoadOptions, Loader, PhaseTimings, Progress, PullPlan, PullReport, StagedPlan,
};
use secure_model_core::storage::{StorageBackend, StorageSettings};
use secure_model_core::verify::TrustPolicy;
use secure_model_core::ErrorClass;

use crate::jwe::{stage_download, DownloadReport, JweDownloadOptions, ResourceKey, StagedDownload};
use crate::uri;

/// KServe's confidential mode (`CONFIDENTIAL_ENABLED=true`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConfidentialSettings {
    /// `CONFIDENTIAL_RESOURCE_ID`: the key, a KBS resource.
    pub resource: ResourcePath,
    /// `SECURE_MODEL_KBS_URL`: fetch directly from this KBS instead of through the CDH.
    pub kbs_url: Option<String>,
    /// `SECURE_MODEL_ALLOW_MIXED_JWE`: unencrypted files may sit next to JWE files.
    pub allow_mixed: bool,
    /// `SECURE_MODEL_JWE_MAX_BYTES`: the largest JWE file decrypted in memory.
    pub max_jwe_bytes: u64,
    /// `VERIFICATION_DIGEST`: SHA-256 of the single downloaded file or package manifest.
    pub verification_digest: Option<[u8; 32]>,
}

impl ConfidentialSettings {
    /// The mode for `resource`, with the defaults of the other members.
    pub fn new(resource: ResourcePath) -> Self {
        Self {
            resource,
            kbs_url: None,
            allow_mixed: false,
            max_jwe_bytes: crate::jwe::DEFAULT_MAX_JWE_BYTES,
            verification_digest: None,
        }
    }
}

/// Everything the storage initializer is configured with, as the settings layer resolves it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct InitializerSettings {
    /// The trust policy; `None` when no signer is configured, which is an error as soon as a
    /// package is to be verified.
    pub trust: Option<TrustPolicy>,
    /// The providers of the configured keys (`SECURE_MODEL_KEYS`).
    pub providers: Vec<Arc<dyn KeyProvider>>,
    /// `SECURE_MODEL_MANIFEST_DIGEST`: one manifest pin per pair, or none.
    pub manifest_digests: Vec<[u8; 32]>,
    /// Transfer tuning and relaxations.
    pub load: LoadOptions,
    /// KBS and CDH access.
    pub kbs: KbsSettings,
    /// Storage credentials and client settings.
    pub storage: StorageSettings,
    /// KServe's confidential mode, when enabled.
    pub confidential: Option<ConfidentialSettings>,
}

/// Why the storage initializer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A package is to be verified but no trusted signer is configured.
    #[error("no trusted signer is configured")]
    NoTrustedSigner,
    /// No key is configured outside confidential mode.
    #[error("no key is configured: nothing can unlock a package")]
    NoKeys,
    /// The arguments or configuration do not fit together.
    #[error("{reason}")]
    Config {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A source holds no package, outside confidential mode.
    #[error("{source_uri}: object {MANIFEST_OBJECT} not found: not a secure-model package. Plain downloads are not served; KServe JWE files are decrypted only in KServe's confidential mode (CONFIDENTIAL_ENABLED=true with CONFIDENTIAL_RESOURCE_ID)")]
    NotAPackage {
        /// The source URI.
        source_uri: String,
    },
    /// The core failed (storage, verification, keys, destination...).
    #[error(transparent)]
    Core(#[from] secure_model_core::Error),
    /// A KServe JWE download failed.
    #[error(transparent)]
    Jwe(#[from] crate::jwe::KserveJweError),
}

impl InitError {
    fn config(reason: impl Into<String>) -> Self {
        Self::Config {
            reason: reason.into(),
        }
    }

    /// The failure class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Config { .. } | Self::NoTrustedSigner | Self::NoKeys => ErrorClass::Config,
            Self::NotAPackage { .. } => ErrorClass::Storage,
            Self::Core(e) => e.class(),
            Self::Jwe(e) => e.class(),
        }
    }
}

macro_rules! from_core {
    ($($t:ty),*) => {$(
        impl From<$t> for InitError {
            fn from(e: $t) -> Self {
                Self::Core(e.into())
            }
        }
    )*};
}
from_core!(
    secure_model_core::storage::StorageError,
    secure_model_core::loader::LoadError,
    secure_model_core::keys::KeyError,
    secure_model_core::verify::VerifyError
);

/// One `SRC DEST` pair.
#[derive(Debug, Clone)]
pub struct Pair {
    /// Storage URI (a `secure+` form or a plain location).
    pub source: String,
    /// Destination directory.
    pub dest: PathBuf,
}

impl Pair {
    /// The pairs of a `SRC DEST [SRC DEST ...]` command line; `None` when `args` is empty or
    /// odd.
    pub fn from_args(args: &[String]) -> Option<Vec<Pair>> {
        if args.is_empty() || args.len() % 2 != 0 {
            return None;
        }
        Some(
            args.chunks_exact(2)
                .filter_map(|c| match c {
                    [s, d] => Some(Pair {
                        source: s.clone(),
                        dest: PathBuf::from(d),
                    }),
                    _ => None,
                })
                .collect(),
        )
    }
}

/// What one run published.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Published {
    /// A package.
    Package(PullReport),
    /// A KServe JWE download (confidential mode).
    Download(DownloadReport),
}

/// What a whole run did, for the final log line and the termination message.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// `success`.
    pub outcome: &'static str,
    /// Packages published.
    pub packages: usize,
    /// KServe JWE downloads published.
    pub downloads: usize,
    /// Files published.
    pub files: usize,
    /// Plaintext bytes published.
    pub bytes: u64,
    /// Wall seconds of the run.
    pub seconds: f64,
    /// Seconds per phase, summed over the packages (see [`PhaseTimings`]).
    pub phases: PhaseTimings,
}

impl Summary {
    /// The summary of a keyless run ([`crate::localmodel`]): `outcome` (`mirrored`,
    /// `cache-warmed`), packages handled and ciphertext bytes copied.
    pub fn keyless(outcome: &'static str, packages: usize, bytes: u64, seconds: f64) -> Self {
        Summary {
            outcome,
            packages,
            downloads: 0,
            files: 0,
            bytes,
            seconds,
            phases: PhaseTimings::default(),
        }
    }

    /// The summary of `published`, which took `seconds`.
    pub fn of(published: &[Published], seconds: f64) -> Self {
        let mut s = Summary {
            outcome: "success",
            packages: 0,
            downloads: 0,
            files: 0,
            bytes: 0,
            seconds,
            phases: PhaseTimings::default(),
        };
        for p in published {
            match p {
                Published::Package(r) => {
                    s.packages += 1;
                    s.files += r.files;
                    s.bytes += r.plaintext_bytes;
                    s.phases = s.phases.add(&r.phases);
                }
                Published::Download(d) => {
                    s.downloads += 1;
                    s.files += d.files;
                    s.bytes += d.output_bytes;
                }
            }
        }
        s
    }
}

/// Everything staged, not yet visible.
#[derive(Debug)]
pub struct Staged {
    packages: StagedPlan,
    downloads: Vec<StagedDownload>,
}

impl Staged {
    /// Publishes every package, then every download.
    ///
    /// # Errors
    /// The first publish failure.
    pub fn publish(self) -> Result<Vec<Published>, InitError> {
        let mut out: Vec<Published> = self
            .packages
            .publish()?
            .into_iter()
            .map(Published::Package)
            .collect();
        for d in self.downloads {
            let r = d.publish()?;
            tracing::info!(destination = %r.destination.display(), files = r.files, decrypted = r.decrypted, unencrypted = r.unencrypted.len(), bytes = r.output_bytes, "KServe JWE model published");
            out.push(Published::Download(r));
        }
        Ok(out)
    }
}

/// The run's key material, built once: the key providers of packages and, in confidential
/// mode, the JWE key (sharing one resource fetch with the `kbs` recipient).
struct Keys {
    providers: Vec<Arc<dyn KeyProvider>>,
    jwe_key: Option<ResourceKey>,
}

fn keys(settings: &InitializerSettings) -> Result<Keys, InitError> {
    let mut providers: Vec<Arc<dyn KeyProvider>> = Vec::new();
    let mut jwe_key = None;
    if let Some(c) = &settings.confidential {
        let broker = ResourceBroker::from_settings(c.kbs_url.as_deref(), &settings.kbs)?;
        match &c.kbs_url {
            Some(url) => {
                tracing::info!(kbs = %url, resource = %c.resource, "confidential mode: key directly from the KBS")
            }
            None => {
                tracing::info!(resource = %c.resource, "confidential mode: key through the Confidential Data Hub")
            }
        }
        let resource = BrokeredResource::new(broker, c.resource.clone());
        providers.push(Arc::new(KbsKeyProvider::from_resource(Arc::clone(
            &resource,
        ))));
        jwe_key = Some(ResourceKey::from_resource(resource));
    } else if settings.providers.is_empty() {
        return Err(InitError::NoKeys);
    }
    providers.extend(settings.providers.iter().cloned());
    Ok(Keys { providers, jwe_key })
}

/// The manifest pin of pair `i`: `SECURE_MODEL_MANIFEST_DIGEST`'s entry and, in confidential
/// mode, `VERIFICATION_DIGEST`, which must agree.
fn pin(settings: &InitializerSettings, i: usize) -> Result<Option<[u8; 32]>, InitError> {
    let verification = settings
        .confidential
        .as_ref()
        .and_then(|c| c.verification_digest);
    match (settings.manifest_digests.get(i), verification) {
        (Some(p), Some(v)) if *p != v => Err(InitError::config(
            "SECURE_MODEL_MANIFEST_DIGEST and VERIFICATION_DIGEST pin different manifest digests",
        )),
        (Some(p), _) => Ok(Some(*p)),
        (None, v) => Ok(v),
    }
}

fn check_pairs(settings: &InitializerSettings, pairs: &[Pair]) -> Result<(), InitError> {
    let confidential = settings.confidential.as_ref();
    if confidential.is_some_and(|c| c.verification_digest.is_some()) && pairs.len() != 1 {
        return Err(InitError::config(format!(
            "VERIFICATION_DIGEST pins one download, but there are {} SRC DEST pairs (use SECURE_MODEL_MANIFEST_DIGEST for packages)",
            pairs.len()
        )));
    }
    let pins = settings.manifest_digests.len();
    if pins != 0 && pins != pairs.len() {
        return Err(InitError::config(format!(
            "SECURE_MODEL_MANIFEST_DIGEST has {pins} digest(s) but there are {} SRC DEST pair(s): give one per pair, comma-separated",
            pairs.len()
        )));
    }
    Ok(())
}

/// Whether `store` holds one of our packages (`manifest.sig`).
async fn is_package(store: &dyn StorageBackend) -> Result<bool, InitError> {
    Ok(secure_model_core::storage::exists(store, MANIFEST_OBJECT).await?)
}

/// Sources by index: packages, and (confidential mode only) KServe JWE downloads.
type Sources = Vec<(usize, Arc<dyn StorageBackend>)>;

/// Opens every source and sorts it: a package (`manifest.sig` present), else, in confidential
/// mode, a KServe JWE download; outside it, not a package is an error.
async fn sort_sources(
    settings: &InitializerSettings,
    pairs: &[Pair],
) -> Result<(Sources, Sources), InitError> {
    let mut packages = Vec::new();
    let mut downloads = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        let store = uri::open(&pair.source, false, &settings.storage)?;
        if is_package(store.as_ref()).await? {
            packages.push((i, store));
        } else if settings.confidential.is_some() {
            downloads.push((i, store));
        } else {
            return Err(InitError::NotAPackage {
                source_uri: pair.source.clone(),
            });
        }
    }
    Ok((packages, downloads))
}

/// Stages the KServe JWE downloads of confidential mode.
async fn stage_downloads(
    settings: &InitializerSettings,
    pairs: &[Pair],
    downloads: Sources,
    key: Option<ResourceKey>,
) -> Result<Vec<StagedDownload>, InitError> {
    let (Some(c), Some(key)) = (settings.confidential.as_ref(), key) else {
        return Ok(Vec::new());
    };
    let opts = JweDownloadOptions::default()
        .max_jwe_bytes(c.max_jwe_bytes)
        .allow_mixed(c.allow_mixed)
        .verification_digest(c.verification_digest)
        .with_relaxations(settings.load.relaxations());
    let mut staged = Vec::with_capacity(downloads.len());
    for (i, store) in downloads {
        let Some(pair) = pairs.get(i) else { continue };
        tracing::info!(source = %pair.source, destination = %pair.dest.display(), "confidential mode: KServe JWE download");
        staged.push(stage_download(store, &pair.dest, &key, &opts).await?);
    }
    Ok(staged)
}

/// The trust policy, required once a package is to be verified.
fn trusted(settings: &InitializerSettings) -> Result<TrustPolicy, InitError> {
    settings.trust.clone().ok_or(InitError::NoTrustedSigner)
}

/// Stages every pair: packages through one [`PullPlan`], KServe JWE downloads (confidential
/// mode only) next to them. Nothing is published.
///
/// # Errors
/// [`InitError`]: configuration that does not fit the pairs, a source that is neither a
/// package nor (in confidential mode) a download, and every failure of the core.
pub async fn stage(
    settings: &InitializerSettings,
    pairs: &[Pair],
    progress: Arc<dyn Progress>,
) -> Result<Staged, InitError> {
    check_pairs(settings, pairs)?;
    // Outside confidential mode every source must be a package: fail fast on the trusted keys,
    // before any storage access.
    let early = match settings.confidential {
        None => Some(trusted(settings)?),
        Some(_) => None,
    };
    let keys = keys(settings)?;
    let (packages, downloads) = sort_sources(settings, pairs).await?;
    let trusted = match early {
        Some(t) => t,
        None if packages.is_empty() => TrustPolicy::new(),
        // Signatures are required in confidential mode too.
        None => trusted(settings)?,
    };
    let mut plan = PullPlan::new(
        Loader::new(trusted, keys.providers)
            .with_options(settings.load.clone())
            .with_progress(Arc::clone(&progress)),
    );
    for (i, store) in packages {
        let dest = pairs.get(i).map(|p| p.dest.clone()).unwrap_or_default();
        plan.add(store, dest, pin(settings, i)?);
    }
    let packages = plan.stage().await?;
    let staged_downloads = stage_downloads(settings, pairs, downloads, keys.jwe_key).await?;
    Ok(Staged {
        packages,
        downloads: staged_downloads,
    })
}

/// [`stage`] then [`Staged::publish`].
///
/// # Errors
/// As [`stage`] and [`Staged::publish`].
pub async fn run(
    settings: &InitializerSettings,
    pairs: &[Pair],
    progress: Arc<dyn Progress>,
) -> Result<Vec<Published>, InitError> {
    stage(settings, pairs, progress).await?.publish()
}
