//! The KServe storage initializer as a library: `SRC DEST` pairs in, every package (and, in
//! KServe's confidential mode, every JWE download) verified and decrypted into staging, then
//! all published, or nothing. Normal and confidential mode are one plan: confidential mode
//! adds the `kbs` recipient of `CONFIDENTIAL_RESOURCE_ID` and accepts KServe's JWE files.
//! Key providers, the key resource and the trusted keys are built once per run, so a pod
//! attests once however many pairs it loads.

use std::path::PathBuf;
use std::sync::Arc;

use secure_model_core::config::{
    add_trusted_pem, identity_match, load_certificate_roots, load_key_providers,
    load_sigstore_root, load_trust_policy, load_trusted_keys,
};
use secure_model_core::format::MANIFEST_OBJECT;
use secure_model_core::keys::{
    BrokeredResource, KbsKeyProvider, KbsSettings, KeyProvider, ResourceBroker, ResourcePath,
};
use secure_model_core::loader::{
    LoadOptions, Loader, PhaseTimings, Progress, PullPlan, PullReport, StagedPlan,
};
use secure_model_core::storage::{StorageBackend, StorageSettings};
use secure_model_core::verify::{CertificateSigner, SigstoreSigner, TrustPolicy, TrustedKeys};
use secure_model_core::ErrorClass;

use crate::jwe::{stage_download, DownloadReport, JweDownloadOptions, ResourceKey, StagedDownload};
use crate::uri;

/// Where the trust policy comes from: any mix of public keys, certificate roots, a Sigstore
/// identity and a policy file; every signer they name is trusted (any one suffices).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TrustSources {
    /// PEM files of public keys (`SECURE_MODEL_TRUSTED_KEYS`).
    pub files: Vec<PathBuf>,
    /// PEM text of public keys (`SECURE_MODEL_TRUSTED_KEYS_PEM`).
    pub pem: Option<String>,
    /// A JSON trust policy file (`SECURE_MODEL_TRUST_POLICY`).
    pub policy_file: Option<PathBuf>,
    /// PEM bundles of root CA certificates, one certificate signer each
    /// (`SECURE_MODEL_TRUSTED_CERT_ROOTS`).
    pub cert_roots: Vec<PathBuf>,
    /// Root CA certificates as PEM text, one more certificate signer
    /// (`SECURE_MODEL_TRUSTED_CERT_ROOTS_PEM`).
    pub cert_roots_pem: Option<String>,
    /// Required leaf subject of those signers (`SECURE_MODEL_TRUSTED_CERT_SUBJECT`).
    pub cert_subject: Option<String>,
    /// Required leaf identity (SAN) of those signers (`SECURE_MODEL_TRUSTED_CERT_IDENTITY`).
    pub cert_identity: Option<String>,
    /// Sigstore identity, exact (`SECURE_MODEL_SIGSTORE_IDENTITY`).
    pub sigstore_identity: Option<String>,
    /// Sigstore identity, anchored regex (`SECURE_MODEL_SIGSTORE_IDENTITY_REGEX`).
    pub sigstore_identity_regex: Option<String>,
    /// Sigstore OIDC issuer (`SECURE_MODEL_SIGSTORE_ISSUER`).
    pub sigstore_issuer: Option<String>,
    /// Sigstore trusted root file; the embedded public-good root when unset
    /// (`SECURE_MODEL_SIGSTORE_TRUSTED_ROOT`).
    pub sigstore_trusted_root: Option<PathBuf>,
}

impl TrustSources {
    fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.pem.as_deref().is_none_or(|p| p.trim().is_empty())
            && self.policy_file.is_none()
            && self.cert_roots.is_empty()
            && self.inline_roots().is_none()
            && self.sigstore_identity.is_none()
            && self.sigstore_identity_regex.is_none()
    }

    /// Loads every signer of every source into one policy.
    ///
    /// # Errors
    /// [`InitError::Config`] when no source is set, a source is incomplete (a Sigstore identity
    /// without issuer) or unreadable; the core's errors for unreadable key files.
    pub fn load(&self) -> Result<TrustPolicy, InitError> {
        if self.is_empty() {
            return Err(InitError::config(
                "no trusted signer: set SECURE_MODEL_TRUSTED_KEYS / SECURE_MODEL_TRUSTED_KEYS_PEM (public keys), SECURE_MODEL_TRUSTED_CERT_ROOTS / _PEM (certificate roots), SECURE_MODEL_SIGSTORE_IDENTITY with SECURE_MODEL_SIGSTORE_ISSUER (Sigstore keyless) or SECURE_MODEL_TRUST_POLICY (a policy file)",
            ));
        }
        let mut policy = match &self.policy_file {
            Some(p) => load_trust_policy(p)?,
            None => TrustPolicy::new(),
        };
        self.load_keys(&mut policy)?;
        let cert_id = identity_match(self.cert_identity.as_deref(), None)?;
        for roots in &self.cert_roots {
            policy.push(load_certificate_roots(
                roots,
                self.cert_subject.as_deref(),
                cert_id.clone(),
            )?);
        }
        if let Some(pem) = self.inline_roots() {
            let mut c = CertificateSigner::from_pem("SECURE_MODEL_TRUSTED_CERT_ROOTS_PEM", pem)?;
            if let Some(s) = &self.cert_subject {
                c = c.with_subject(s.clone());
            }
            if let Some(i) = &cert_id {
                c = c.with_identity(i.clone());
            }
            policy.push(c);
        }
        let no_roots = self.cert_roots.is_empty() && self.inline_roots().is_none();
        if no_roots && (self.cert_subject.is_some() || cert_id.is_some()) {
            return Err(InitError::config(
                "SECURE_MODEL_TRUSTED_CERT_SUBJECT / _IDENTITY need SECURE_MODEL_TRUSTED_CERT_ROOTS or _ROOTS_PEM",
            ));
        }
        self.load_sigstore(&mut policy)?;
        Ok(policy)
    }

    fn inline_roots(&self) -> Option<&str> {
        self.cert_roots_pem
            .as_deref()
            .filter(|p| !p.trim().is_empty())
    }

    fn load_keys(&self, policy: &mut TrustPolicy) -> Result<(), InitError> {
        let mut trusted = if self.files.is_empty() {
            TrustedKeys::new()
        } else {
            load_trusted_keys(&self.files)?
        };
        if let Some(pem) = self.pem.as_deref().filter(|p| !p.trim().is_empty()) {
            add_trusted_pem(&mut trusted, pem)
                .map_err(|e| InitError::config(format!("SECURE_MODEL_TRUSTED_KEYS_PEM: {e}")))?;
        }
        for k in trusted.keys() {
            policy.push(k.clone());
        }
        Ok(())
    }

    fn load_sigstore(&self, policy: &mut TrustPolicy) -> Result<(), InitError> {
        let id = identity_match(
            self.sigstore_identity.as_deref(),
            self.sigstore_identity_regex.as_deref(),
        )?;
        match (id, &self.sigstore_issuer) {
            (None, None) => Ok(()),
            (Some(id), Some(issuer)) => {
                let root = load_sigstore_root(self.sigstore_trusted_root.as_deref())?;
                policy.push(SigstoreSigner::new(id, issuer.clone(), root));
                Ok(())
            }
            _ => Err(InitError::config(
                "a Sigstore signer needs both SECURE_MODEL_SIGSTORE_IDENTITY (or _IDENTITY_REGEX) and SECURE_MODEL_SIGSTORE_ISSUER",
            )),
        }
    }
}

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

/// Everything the storage initializer is configured with, as the settings layer builds it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct InitializerSettings {
    /// Trusted signer keys.
    pub trust: TrustSources,
    /// `SECURE_MODEL_KEYS`: key specifications.
    pub key_specs: Vec<String>,
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
            Self::Config { .. } => ErrorClass::Config,
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
    } else if settings.key_specs.is_empty() {
        return Err(InitError::config(
            "SECURE_MODEL_KEYS is not set: name the key(s) to unlock with, e.g. local:/var/run/secrets/kek/kek.bin",
        ));
    }
    providers.extend(load_key_providers(&settings.key_specs, &settings.kbs)?);
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
        None => Some(settings.trust.load()?),
        Some(_) => None,
    };
    let keys = keys(settings)?;
    let (packages, downloads) = sort_sources(settings, pairs).await?;
    let trusted = match early {
        Some(t) => t,
        None if packages.is_empty() => TrustPolicy::new(),
        // Signatures are required in confidential mode too.
        None => settings.trust.load()?,
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
