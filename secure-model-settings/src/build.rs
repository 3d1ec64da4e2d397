//! Typed settings from a [`Source`]: what the binaries hand to the libraries. One builder per
//! library type, each reading only the registry's settings.

use std::collections::BTreeMap;
use std::time::Duration;

use secure_model_core::attest::AttesterChoice;
use secure_model_core::config::parse_digest_pin;
use secure_model_core::danger::Relaxations;
use secure_model_core::keys::kbs::TeeKeyKind;
use secure_model_core::keys::{KbsSettings, ResourcePath};
use secure_model_core::loader::LoadOptions;
use secure_model_core::storage::{StorageEnv, StorageError, StorageSettings};
use secure_model_kserve::initializer::{ConfidentialSettings, InitializerSettings, TrustSources};

use crate::registry as r;
use crate::source::{SettingError, Source};

/// A setting could not be turned into its typed value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value is malformed, out of bounds, or conflicts with another.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The storage credentials snapshot is malformed (`STORAGE_CONFIG`).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl SettingsError {
    /// The failure class: configuration, except a malformed storage secret, which is reported
    /// as storage configuration as before.
    pub fn class(&self) -> secure_model_core::ErrorClass {
        match self {
            Self::Setting(_) => secure_model_core::ErrorClass::Config,
            Self::Storage(e) => e.class(),
        }
    }
}

type Result<T> = std::result::Result<T, SettingsError>;

fn u32_of(n: Option<u64>, fallback: u32) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(fallback)
}

fn usize_of(n: Option<u64>, fallback: usize) -> usize {
    n.and_then(|n| usize::try_from(n).ok()).unwrap_or(fallback)
}

fn secs(src: &Source, setting: &r::Setting, fallback: Duration) -> Result<Duration> {
    Ok(src
        .number(setting)?
        .map(Duration::from_secs)
        .unwrap_or(fallback))
}

/// The relaxations the operator opted into (each is logged where it takes effect).
///
/// # Errors
/// A malformed boolean.
pub fn relaxations(src: &Source) -> Result<Relaxations> {
    let mut relax = Relaxations::NONE;
    if src.bool(&r::ALLOW_DISK_PLAINTEXT)? {
        relax = relax.allow_disk_plaintext();
    }
    if src.bool(&r::ALLOW_SAMPLE_ATTESTER)? {
        relax = relax.allow_sample_attester();
    }
    if src.bool(&r::ALLOW_HTTP)? {
        relax = relax.allow_plain_http_storage();
    }
    if src.bool(&r::KBS_ALLOW_HTTP)? {
        relax = relax.allow_plain_http_kbs();
    }
    Ok(relax)
}

/// Transfer tuning and relaxations of a pull.
///
/// # Errors
/// A malformed or out-of-bounds value.
pub fn load_options(src: &Source) -> Result<LoadOptions> {
    let d = LoadOptions::default();
    Ok(LoadOptions::default()
        .range_segments(u32_of(src.number(&r::RANGE_MIB)?, d.range_segments))
        .range_attempts(u32_of(src.number(&r::RANGE_ATTEMPTS)?, d.range_attempts))
        .concurrency(
            usize_of(src.number(&r::FILE_CONCURRENCY)?, d.file_concurrency),
            usize_of(src.number(&r::READ_AHEAD)?, d.read_ahead),
        )
        .buffer_bytes(
            src.number(&r::BUFFER_MIB)?
                .map_or(d.buffer_bytes, |mib| mib << 20),
        )
        .adaptive(src.bool(&r::ADAPTIVE)?)
        .with_relaxations(relaxations(src)?))
}

/// How the KBS and the CDH are reached.
///
/// # Errors
/// A malformed value.
pub fn kbs_settings(src: &Source) -> Result<KbsSettings> {
    let mut s = KbsSettings::default();
    s.attester = src
        .parsed(&r::ATTESTER, |t| AttesterChoice::parse(t).ok())?
        .unwrap_or_default();
    s.tee_key = match src.choice(&r::KBS_TEE_KEY)?.as_deref() {
        Some("rsa") => TeeKeyKind::Rsa2048,
        _ => TeeKeyKind::EcP256,
    };
    s.ca_file = src.path(&r::KBS_CA)?;
    s.token_file = src.path(&r::KBS_TOKEN_FILE)?;
    s.tee_key_file = src.path(&r::KBS_TEE_KEY_FILE)?;
    s.init_data_file = src.path(&r::KBS_INITDATA)?;
    s.cdh_addr = src.parsed(&r::CDH_ADDR, url)?;
    s.relax = relaxations(src)?;
    Ok(s)
}

fn url(text: &str) -> Option<String> {
    (text.starts_with("http://") || text.starts_with("https://")).then(|| text.to_string())
}

/// The storage credentials snapshot (every variable, with KServe's storage-config secret
/// applied as KServe's own initializer applies it) and the storage client settings.
///
/// # Errors
/// A malformed value; [`StorageError::InvalidConfig`] for a malformed storage secret.
pub fn storage_settings(src: &Source) -> Result<StorageSettings> {
    let mut vars: BTreeMap<String, String> = src.environment().vars().clone();
    secure_model_kserve::storage_config::apply(&mut vars)?;
    let d = StorageSettings::default();
    let mut s = StorageSettings::new(StorageEnv::from_pairs(vars))
        .with_timeout(secs(src, &r::STORAGE_TIMEOUT, d.timeout)?)
        .with_retries(
            usize_of(src.number(&r::STORAGE_MAX_RETRIES)?, d.max_retries),
            secs(src, &r::STORAGE_RETRY_TIMEOUT, d.retry_timeout)?,
        )
        .with_relaxations(relaxations(src)?);
    s.connect_timeout = secs(src, &r::STORAGE_CONNECT_TIMEOUT, d.connect_timeout)?;
    s.first_byte_timeout = secs(src, &r::STORAGE_FIRST_BYTE_TIMEOUT, d.first_byte_timeout)?;
    if let Some(ca) = src.path(&r::CA_BUNDLE)? {
        s = s.with_ca_bundle(ca);
    }
    Ok(s)
}

/// Manifest digest pins, in order.
///
/// # Errors
/// A malformed digest, naming it.
pub fn manifest_digests(src: &Source) -> Result<Vec<[u8; 32]>> {
    Ok(src.parsed_list(&r::MANIFEST_DIGEST, |t| parse_digest_pin(t).ok())?)
}

/// Where the trust policy comes from: keys, certificate roots, a Sigstore identity, a
/// policy file.
///
/// # Errors
/// [`SettingError::NotUnicode`].
pub fn trust_sources(src: &Source) -> Result<TrustSources> {
    let mut t = TrustSources::default();
    t.files = src
        .list(&r::TRUSTED_KEYS)?
        .into_iter()
        .map(Into::into)
        .collect();
    t.pem = src.text(&r::TRUSTED_KEYS_PEM)?;
    t.policy_file = src.path(&r::TRUST_POLICY)?;
    t.cert_roots = src
        .list(&r::TRUSTED_CERT_ROOTS)?
        .into_iter()
        .map(Into::into)
        .collect();
    t.cert_roots_pem = src.text(&r::TRUSTED_CERT_ROOTS_PEM)?;
    t.cert_subject = src.text(&r::TRUSTED_CERT_SUBJECT)?;
    t.cert_identity = src.text(&r::TRUSTED_CERT_IDENTITY)?;
    t.sigstore_identity = src.text(&r::SIGSTORE_IDENTITY)?;
    t.sigstore_identity_regex = src.text(&r::SIGSTORE_IDENTITY_REGEX)?;
    t.sigstore_issuer = src.parsed(&r::SIGSTORE_ISSUER, url)?;
    t.sigstore_trusted_root = src.path(&r::SIGSTORE_TRUSTED_ROOT)?;
    Ok(t)
}

/// KServe's confidential mode, when `CONFIDENTIAL_ENABLED` is true.
///
/// # Errors
/// A malformed value; a missing or malformed `CONFIDENTIAL_RESOURCE_ID`.
pub fn confidential(src: &Source) -> Result<Option<ConfidentialSettings>> {
    if !src.bool(&r::CONFIDENTIAL_ENABLED)? {
        return Ok(None);
    }
    let rid = src.text(&r::CONFIDENTIAL_RESOURCE_ID)?.unwrap_or_default();
    if !rid.starts_with("kbs:///") {
        return Err(SettingError::Conflict {
            reason: format!(
                "{}=true needs {} = kbs:///<repo>/<type>/<tag> (got {:?})",
                r::CONFIDENTIAL_ENABLED.env,
                r::CONFIDENTIAL_RESOURCE_ID.env,
                rid.chars().take(128).collect::<String>()
            ),
        }
        .into());
    }
    let resource = ResourcePath::parse(&rid).map_err(|e| SettingError::Conflict {
        reason: format!("{}: {e}", r::CONFIDENTIAL_RESOURCE_ID.env),
    })?;
    let mut c = ConfidentialSettings::new(resource);
    c.kbs_url = src.parsed(&r::KBS_URL, url)?;
    c.allow_mixed = src.bool(&r::ALLOW_MIXED_JWE)?;
    c.max_jwe_bytes = src.number(&r::JWE_MAX_BYTES)?.unwrap_or(c.max_jwe_bytes);
    // KServe's variable: accepted in either case, prefix included (as KServe writes it).
    c.verification_digest = src.parsed(&r::VERIFICATION_DIGEST, |t| {
        parse_digest_pin(&t.to_ascii_lowercase()).ok()
    })?;
    Ok(Some(c))
}

/// Everything the KServe storage initializer needs.
///
/// # Errors
/// The first malformed setting.
pub fn initializer(src: &Source) -> Result<InitializerSettings> {
    let mut s = InitializerSettings::default();
    s.trust = trust_sources(src)?;
    s.key_specs = src.list(&r::KEYS)?;
    s.manifest_digests = manifest_digests(src)?;
    s.load = load_options(src)?;
    s.kbs = kbs_settings(src)?;
    s.storage = storage_settings(src)?;
    s.confidential = confidential(src)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Environment;

    fn src(pairs: &[(&str, &str)]) -> Source {
        Source::new(Environment::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_are_the_libraries_defaults() {
        let o = load_options(&src(&[])).unwrap();
        let d = LoadOptions::default();
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
        let s = storage_settings(&src(&[])).unwrap();
        let d = StorageSettings::default();
        assert_eq!(
            (s.timeout, s.connect_timeout, s.max_retries, s.retry_timeout),
            (d.timeout, d.connect_timeout, d.max_retries, d.retry_timeout)
        );
        let k = kbs_settings(&src(&[])).unwrap();
        assert_eq!(k.attester, AttesterChoice::Auto);
        assert_eq!(
            k.cdh_addr.as_deref(),
            Some(secure_model_core::keys::cdh::DEFAULT_CDH_ADDR)
        );
        assert!(confidential(&src(&[])).unwrap().is_none());
    }

    #[test]
    fn every_relaxation_has_its_variable() {
        let r = relaxations(&src(&[
            ("SECURE_MODEL_ALLOW_DISK_PLAINTEXT", "1"),
            ("SECURE_MODEL_ALLOW_SAMPLE_ATTESTER", "yes"),
            ("SECURE_MODEL_ALLOW_HTTP", "true"),
            ("SECURE_MODEL_KBS_ALLOW_HTTP", "on"),
        ]))
        .unwrap();
        assert_eq!(
            r.names(),
            [
                "disk-plaintext",
                "sample-attester",
                "plain-http-storage",
                "plain-http-kbs"
            ]
        );
    }

    #[test]
    fn typed_values_and_errors_name_the_variable() {
        let k = kbs_settings(&src(&[
            ("SECURE_MODEL_ATTESTER", "tsm:/x"),
            ("SECURE_MODEL_KBS_TEE_KEY", "rsa"),
            ("CDH_ADDR", "http://127.0.0.1:9"),
        ]))
        .unwrap();
        assert_eq!(k.attester, AttesterChoice::Tsm("/x".into()));
        assert_eq!(k.tee_key, TeeKeyKind::Rsa2048);
        assert_eq!(k.cdh_addr.as_deref(), Some("http://127.0.0.1:9"));
        for (var, bad) in [
            ("SECURE_MODEL_ATTESTER", "tpm"),
            ("SECURE_MODEL_KBS_TEE_KEY", "ed25519"),
            ("CDH_ADDR", "127.0.0.1:8006"),
        ] {
            let e = kbs_settings(&src(&[(var, bad)])).unwrap_err().to_string();
            assert!(e.starts_with(var) && e.contains(bad), "{e}");
        }
        let e = manifest_digests(&src(&[("SECURE_MODEL_MANIFEST_DIGEST", "abc")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SECURE_MODEL_MANIFEST_DIGEST") && e.contains("abc"),
            "{e}"
        );
    }

    #[test]
    fn confidential_mode_needs_a_kbs_resource() {
        let e = confidential(&src(&[("CONFIDENTIAL_ENABLED", "true")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("CONFIDENTIAL_RESOURCE_ID"), "{e}");
        let c = confidential(&src(&[
            ("CONFIDENTIAL_ENABLED", "true"),
            ("CONFIDENTIAL_RESOURCE_ID", "kbs:///default/key/m"),
            ("SECURE_MODEL_JWE_MAX_BYTES", "1024"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.resource.as_path(), "default/key/m");
        assert_eq!(c.max_jwe_bytes, 1024);
    }

    #[test]
    fn the_storage_secret_is_applied_and_never_echoed() {
        let s = storage_settings(&src(&[(
            "STORAGE_CONFIG",
            r#"{"type":"s3","access_key_id":"AK"}"#,
        )]))
        .unwrap();
        assert_eq!(s.env.get("AWS_ACCESS_KEY_ID"), Some("AK"));
        let e = storage_settings(&src(&[("STORAGE_CONFIG", "{s3cr3t")])).unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert_eq!(e.class(), secure_model_core::ErrorClass::Storage);
    }
}
