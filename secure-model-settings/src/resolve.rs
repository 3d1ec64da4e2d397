//! The one resolved configuration of a binary run: every setting read once from a [`Source`]
//! and turned into the libraries' typed values ([`Settings`]), and the two steps that read
//! files: the trust policy ([`Settings::trust_policy`]) and the key providers
//! ([`Settings::key_providers`]). The CLI, the init container, the doctor and the webhook's
//! profile check all consume this value; none of them works any part of it out again.

use std::sync::Arc;

use secure_model_core::cache::CacheConfig;
use secure_model_core::danger::{Relaxation, Relaxations};
use secure_model_core::keys::kbs::TeeKeyKind;
use secure_model_core::keys::{KbsSettings, KeyProvider};
use secure_model_core::loader::LoadOptions;
use secure_model_core::storage::StorageError;
use secure_model_core::verify::TrustPolicy;
use secure_model_kserve::initializer::{ConfidentialSettings, InitializerSettings};

use crate::registry::{self as r, Setting};
use crate::source::{Origin, SettingError, Source};
use crate::storage::{storage, Storage};
use crate::trust::{TrustError, TrustSources};

/// A setting could not be turned into its typed value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value is malformed, out of bounds, or conflicts with another.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The storage-config secret is malformed (`STORAGE_CONFIG`).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The trust sources could not be loaded.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A key specification could not be turned into a provider.
    #[error(transparent)]
    Keys(#[from] secure_model_core::Error),
}

impl SettingsError {
    /// The failure class: configuration, except what the core classifies otherwise (a
    /// malformed storage secret is storage configuration).
    pub fn class(&self) -> secure_model_core::ErrorClass {
        match self {
            Self::Setting(_) => secure_model_core::ErrorClass::Config,
            Self::Storage(e) => e.class(),
            Self::Trust(e) => e.class(),
            Self::Keys(e) => e.class(),
        }
    }
}

type Result<T, E = SettingsError> = std::result::Result<T, E>;

/// Every setting of a run, read and typed (no file read yet).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Who signs the packages we accept.
    pub trust: TrustSources,
    /// Key specifications to unlock with (`TYPE:ARG`).
    pub keys: Vec<String>,
    /// Manifest digest pins, one per package.
    pub pins: Vec<[u8; 32]>,
    /// The relaxations in effect, each with its origin: the operator's own settings and those
    /// the storage variables imply. Copied into the option structs below, nowhere else decided.
    pub relax: Relaxations,
    /// Transfer tuning (and the relaxations).
    pub load: LoadOptions,
    /// KBS and CDH access (and the relaxations).
    pub kbs: KbsSettings,
    /// Storage clients (and the relaxations), and where credentials come from.
    pub storage: Storage,
    /// KServe's confidential mode, when enabled.
    pub confidential: Option<ConfidentialSettings>,
    /// How this binary names the key setting in messages.
    keys_name: String,
}

/// The relaxation each danger setting turns on.
const DANGER: [(&Setting<r::Bool>, Relaxation); 4] = [
    (&r::ALLOW_DISK_PLAINTEXT, Relaxation::DiskPlaintext),
    (&r::ALLOW_SAMPLE_ATTESTER, Relaxation::SampleAttester),
    (&r::ALLOW_HTTP, Relaxation::PlainHttpStorage),
    (&r::KBS_ALLOW_HTTP, Relaxation::PlainHttpKbs),
];

/// The relaxations the operator turned on by setting, each with the flag or variable that did.
///
/// # Errors
/// A malformed boolean.
pub fn relaxations(src: &Source) -> Result<Relaxations, SettingError> {
    let mut relax = Relaxations::NONE;
    for (setting, relaxation) in DANGER {
        if src.flag_on(setting)? {
            let origin = src.origin(setting)?.map_or(setting.env, Origin::name);
            relax = relax.allow(relaxation, origin);
        }
    }
    Ok(relax)
}

fn u32_of(n: Option<u64>, fallback: u32) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(fallback)
}

fn usize_of(n: Option<u64>, fallback: usize) -> usize {
    n.and_then(|n| usize::try_from(n).ok()).unwrap_or(fallback)
}

/// Transfer tuning of a pull.
fn load_options(src: &Source, relax: Relaxations) -> Result<LoadOptions, SettingError> {
    let d = LoadOptions::default();
    let opts = LoadOptions::default()
        .range_segments(u32_of(src.get(&r::RANGE_MIB)?, d.range_segments))
        .range_attempts(u32_of(src.get(&r::RANGE_ATTEMPTS)?, d.range_attempts))
        .concurrency(
            usize_of(src.get(&r::FILE_CONCURRENCY)?, d.file_concurrency),
            usize_of(src.get(&r::READ_AHEAD)?, d.read_ahead),
        )
        .buffer_bytes(
            src.get(&r::BUFFER_MIB)?
                .map_or(d.buffer_bytes, |mib| mib << 20),
        )
        .adaptive(src.get_or(&r::ADAPTIVE, true)?)
        .with_relaxations(relax);
    let mut opts = opts;
    opts.memory_limit = src.environment().memory_limit();
    Ok(match cache_config(src)? {
        Some(c) => opts.with_cache(c),
        None => opts,
    })
}

/// The node cache of a pull, when `SECURE_MODEL_CACHE_DIR` names one.
///
/// # Errors
/// A malformed size limit.
pub fn cache_config(src: &Source) -> Result<Option<CacheConfig>, SettingError> {
    let Some(dir) = src.get(&r::CACHE_DIR)? else {
        return Ok(None);
    };
    let config = CacheConfig::new(dir);
    Ok(Some(match src.get(&r::CACHE_MAX_BYTES)? {
        Some(max) => config.with_max_bytes(max),
        None => config,
    }))
}

/// How the KBS and the CDH are reached.
fn kbs_settings(src: &Source, relax: Relaxations) -> Result<KbsSettings, SettingError> {
    let mut s = KbsSettings::default();
    s.attester = src.get(&r::ATTESTER)?.unwrap_or_default();
    s.tee_key = match src.get(&r::KBS_TEE_KEY)? {
        Some("rsa") => TeeKeyKind::Rsa2048,
        _ => TeeKeyKind::EcP256,
    };
    s.ca_file = src.get(&r::KBS_CA)?;
    s.token_file = src.get(&r::KBS_TOKEN_FILE)?;
    s.tee_key_file = src.get(&r::KBS_TEE_KEY_FILE)?;
    s.init_data_file = src.get(&r::KBS_INITDATA)?;
    s.timeout = src.get(&r::KBS_TIMEOUT)?;
    s.cdh_addr = src
        .get(&r::CDH_ADDR)?
        .map(|u| u.as_str().trim_end_matches('/').to_string());
    s.relax = relax;
    Ok(s)
}

/// KServe's confidential mode, when `CONFIDENTIAL_ENABLED` is true.
fn confidential(src: &Source) -> Result<Option<ConfidentialSettings>, SettingError> {
    if !src.flag_on(&r::CONFIDENTIAL_ENABLED)? {
        return Ok(None);
    }
    let resource =
        src.get(&r::CONFIDENTIAL_RESOURCE_ID)?
            .ok_or_else(|| SettingError::Conflict {
                reason: format!(
                    "{}=true needs {} = kbs:///<repo>/<type>/<tag>",
                    r::CONFIDENTIAL_ENABLED.env,
                    r::CONFIDENTIAL_RESOURCE_ID.env,
                ),
            })?;
    let mut c = ConfidentialSettings::new(resource);
    c.kbs_url = src.get(&r::KBS_URL)?.map(|u| u.to_string());
    c.allow_mixed = src.flag_on(&r::ALLOW_MIXED_JWE)?;
    c.max_jwe_bytes = src.get_or(&r::JWE_MAX_BYTES, c.max_jwe_bytes)?;
    c.verification_digest = src.get(&r::VERIFICATION_DIGEST)?;
    Ok(Some(c))
}

impl Settings {
    /// Reads and types every setting of `src`.
    ///
    /// # Errors
    /// The first malformed or conflicting value, naming its flag or variable.
    pub fn from_source(src: &Source) -> Result<Self> {
        let operator = relaxations(src)?;
        let storage = storage(src, operator)?;
        let relax = storage.settings.relax;
        Ok(Self {
            trust: TrustSources::from_source(src)?,
            keys: src.get(&r::KEYS)?.unwrap_or_default(),
            pins: src.get(&r::MANIFEST_DIGEST)?.unwrap_or_default(),
            relax,
            load: load_options(src, relax)?,
            kbs: kbs_settings(src, relax)?,
            storage,
            confidential: confidential(src)?,
            keys_name: src.name(&r::KEYS),
        })
    }

    /// The trust policy: every signer the trust sources name, loaded.
    ///
    /// # Errors
    /// [`TrustError`]: no signer, incomplete sources, unreadable or malformed files.
    pub fn trust_policy(&self) -> Result<TrustPolicy, TrustError> {
        self.trust.load()
    }

    /// The key providers of the key specifications (no network: clients connect on first
    /// use).
    ///
    /// # Errors
    /// An unknown provider, a malformed specification (shown redacted), an unreadable key file.
    pub fn key_providers(&self) -> Result<Vec<Arc<dyn KeyProvider>>> {
        Ok(secure_model_core::config::load_key_providers(
            &self.keys, &self.kbs,
        )?)
    }

    /// How this binary names the key setting (`--key` or `SECURE_MODEL_KEYS`).
    pub fn keys_name(&self) -> &str {
        &self.keys_name
    }

    /// The one manifest pin of a single-package command (`verify`, `pull`): none or one.
    ///
    /// # Errors
    /// [`SettingError::Conflict`] for more than one.
    pub fn single_pin(&self) -> Result<Option<[u8; 32]>, SettingError> {
        match self.pins.as_slice() {
            [] => Ok(None),
            [pin] => Ok(Some(*pin)),
            more => Err(SettingError::Conflict {
                reason: format!(
                    "{} manifest digests given; one package takes one",
                    more.len()
                ),
            }),
        }
    }

    /// What the KServe storage initializer runs with: the trust policy (when any signer is
    /// named; required once a package is verified), the key providers and everything else.
    ///
    /// # Errors
    /// As [`Settings::trust_policy`] and [`Settings::key_providers`].
    pub fn initializer(&self) -> Result<InitializerSettings> {
        // Outside confidential mode every source must be a package: no signer is an error
        // now, before any storage access. In confidential mode it is one only once a package
        // (not a KServe JWE download) is to be verified.
        let trust = if self.trust.is_empty() && self.confidential.is_some() {
            None
        } else {
            Some(self.trust_policy()?)
        };
        let mut s = InitializerSettings::default();
        s.trust = trust;
        s.providers = self.key_providers()?;
        s.manifest_digests = self.pins.clone();
        s.load = self.load.clone();
        s.kbs = self.kbs.clone();
        s.storage = self.storage.settings.clone();
        s.confidential = self.confidential.clone();
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Environment;
    use secure_model_core::attest::AttesterChoice;
    use secure_model_core::storage::StorageSettings;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings> {
        Settings::from_source(&Source::new(Environment::from_pairs(pairs.iter().copied())))
    }

    #[test]
    fn defaults_are_the_libraries_defaults() {
        let s = settings(&[]).unwrap();
        let (o, d) = (&s.load, LoadOptions::default());
        assert_eq!(
            (
                o.range_segments,
                o.read_ahead,
                o.file_concurrency,
                o.range_attempts
            ),
            (
                d.range_segments,
                d.read_ahead,
                d.file_concurrency,
                d.range_attempts
            )
        );
        assert_eq!((o.buffer_bytes, o.adaptive), (d.buffer_bytes, d.adaptive));
        assert_eq!(o.relaxations(), Relaxations::NONE);
        let (st, d) = (&s.storage.settings, StorageSettings::default());
        assert_eq!(
            (
                st.timeout,
                st.connect_timeout,
                st.max_retries,
                st.retry_timeout
            ),
            (d.timeout, d.connect_timeout, d.max_retries, d.retry_timeout)
        );
        assert_eq!(s.kbs.attester, AttesterChoice::Auto);
        assert_eq!(
            s.kbs.cdh_addr.as_deref(),
            Some(secure_model_core::keys::cdh::DEFAULT_CDH_ADDR)
        );
        assert!(s.confidential.is_none());
    }

    #[test]
    fn every_relaxation_has_its_setting_and_one_value() {
        let s = settings(&[
            ("SECURE_MODEL_ALLOW_DISK_PLAINTEXT", "1"),
            ("SECURE_MODEL_ALLOW_SAMPLE_ATTESTER", "yes"),
            ("SECURE_MODEL_ALLOW_HTTP", "true"),
            ("SECURE_MODEL_KBS_ALLOW_HTTP", "on"),
        ])
        .unwrap();
        assert_eq!(
            s.relax.names(),
            [
                "disk-plaintext",
                "sample-attester",
                "plain-http-storage",
                "plain-http-kbs"
            ]
        );
        assert_eq!(
            s.relax.origin(Relaxation::DiskPlaintext),
            Some("SECURE_MODEL_ALLOW_DISK_PLAINTEXT")
        );
        assert_eq!(s.load.relaxations(), s.relax);
        assert_eq!(s.kbs.relax, s.relax);
        assert_eq!(s.storage.settings.relax, s.relax);
    }

    #[test]
    fn typed_values_and_errors_name_the_variable() {
        let s = settings(&[
            ("SECURE_MODEL_ATTESTER", "tsm:/x"),
            ("SECURE_MODEL_KBS_TEE_KEY", "rsa"),
            ("CDH_ADDR", "http://127.0.0.1:9"),
        ])
        .unwrap();
        assert_eq!(s.kbs.attester, AttesterChoice::Tsm("/x".into()));
        assert_eq!(s.kbs.tee_key, TeeKeyKind::Rsa2048);
        assert_eq!(s.kbs.cdh_addr.as_deref(), Some("http://127.0.0.1:9"));
        for (var, bad) in [
            ("SECURE_MODEL_ATTESTER", "tpm"),
            ("SECURE_MODEL_KBS_TEE_KEY", "ed25519"),
            ("CDH_ADDR", "127.0.0.1:8006"),
            ("SECURE_MODEL_MANIFEST_DIGEST", "abc"),
        ] {
            let e = settings(&[(var, bad)]).unwrap_err().to_string();
            assert!(e.starts_with(var) && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn confidential_mode_needs_a_kbs_resource() {
        let e = settings(&[("CONFIDENTIAL_ENABLED", "true")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("CONFIDENTIAL_RESOURCE_ID"), "{e}");
        let c = settings(&[
            ("CONFIDENTIAL_ENABLED", "true"),
            ("CONFIDENTIAL_RESOURCE_ID", "kbs:///default/key/m"),
            ("SECURE_MODEL_JWE_MAX_BYTES", "1024"),
        ])
        .unwrap()
        .confidential
        .unwrap();
        assert_eq!(c.resource.as_path(), "default/key/m");
        assert_eq!(c.max_jwe_bytes, 1024);
    }
}
