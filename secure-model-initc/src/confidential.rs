//! KServe's confidential mode (`CONFIDENTIAL_ENABLED=true`, KServe v0.20+): the key named by
//! `CONFIDENTIAL_RESOURCE_ID` unlocks our packages (as the `kbs` recipient's KEK) and KServe's
//! JWE files. Configuration and wiring only; the work is in `secure_model_core`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secure_model_core::config::{load_key_providers, parse_digest_pin};
use secure_model_core::format::MANIFEST_OBJECT;
use secure_model_core::keys::cdh::CdhClient;
use secure_model_core::keys::kbs::{client_from_settings, KbsSettings, ResourcePath};
use secure_model_core::keys::{KbsKeyProvider, KeyProvider};
use secure_model_core::kserve_jwe::{
    stage_download, JweDownloadOptions, ResourceKey, StagedDownload, DEFAULT_MAX_JWE_BYTES,
};
use secure_model_core::loader::{LoadOptions, Loader, LogProgress, StagedModel};
use secure_model_core::storage::{open_location, StorageBackend};
use secure_model_core::verify::TrustedKeys;

use super::{bool_var, config, env, list_var, Failure};

/// Variables of this mode (documented in docs/kserve-jwe.md).
pub(crate) mod vars {
    pub(crate) const ENABLED: &str = "CONFIDENTIAL_ENABLED";
    pub(crate) const RESOURCE_ID: &str = "CONFIDENTIAL_RESOURCE_ID";
    pub(crate) const KBS_URL: &str = "SECURE_MODEL_KBS_URL";
    pub(crate) const ALLOW_MIXED: &str = "SECURE_MODEL_ALLOW_MIXED_JWE";
    pub(crate) const JWE_MAX_BYTES: &str = "SECURE_MODEL_JWE_MAX_BYTES";
    pub(crate) const VERIFICATION_DIGEST: &str = "VERIFICATION_DIGEST";
}

impl From<secure_model_core::kserve_jwe::KserveJweError> for Failure {
    fn from(e: secure_model_core::kserve_jwe::KserveJweError) -> Self {
        secure_model_core::Error::from(e).into()
    }
}

impl From<secure_model_core::keys::KeyError> for Failure {
    fn from(e: secure_model_core::keys::KeyError) -> Self {
        secure_model_core::Error::from(e).into()
    }
}

/// Whether `CONFIDENTIAL_ENABLED` is set to true.
pub(crate) fn enabled() -> Result<bool, Failure> {
    bool_var(vars::ENABLED)
}

/// Whether `store` holds one of our packages (`manifest.sig`).
async fn is_package(store: &dyn StorageBackend) -> Result<bool, Failure> {
    Ok(secure_model_core::storage::exists(store, MANIFEST_OBJECT).await?)
}

/// Outside confidential mode only packages are served: a clear error for anything else
/// (storage class, as a package whose manifest went missing).
pub(crate) async fn require_package(store: &dyn StorageBackend, src: &str) -> Result<(), Failure> {
    if is_package(store).await? {
        return Ok(());
    }
    Err(Failure {
        class: secure_model_core::ErrorClass::Storage,
        message: format!(
            "{src}: object {MANIFEST_OBJECT} not found: not a secure-model package. Plain downloads are not served; \
             KServe JWE files are decrypted only in KServe's confidential mode ({}=true with {})",
            vars::ENABLED,
            vars::RESOURCE_ID
        ),
    })
}

fn digest_var(name: &str) -> Result<Option<[u8; 32]>, Failure> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            Ok(Some(parse_digest_pin(&v.trim().to_ascii_lowercase())?))
        }
        _ => Ok(None),
    }
}

fn max_jwe_bytes() -> Result<u64, Failure> {
    match std::env::var(vars::JWE_MAX_BYTES) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u64>().map_err(|_| {
            config(format!(
                "{}={v:?}: expected a number of bytes",
                vars::JWE_MAX_BYTES
            ))
        }),
        _ => Ok(DEFAULT_MAX_JWE_BYTES),
    }
}

enum Staged {
    Package(StagedModel),
    Download(StagedDownload),
}

/// Runs every SRC DEST pair in confidential mode; publishes only when all staged.
pub(crate) async fn run(pairs: &[(String, PathBuf)]) -> Result<(), Failure> {
    let rid = std::env::var(vars::RESOURCE_ID).unwrap_or_default();
    if !rid.starts_with("kbs:///") {
        return Err(config(format!(
            "{}=true needs {} = kbs:///<repo>/<type>/<tag> (got {:?})",
            vars::ENABLED,
            vars::RESOURCE_ID,
            rid.chars().take(128).collect::<String>()
        )));
    }
    let resource =
        ResourcePath::parse(&rid).map_err(|e| config(format!("{}: {e}", vars::RESOURCE_ID)))?;
    let settings = KbsSettings::from_env();
    let kbs_url = std::env::var(vars::KBS_URL).ok().filter(|u| !u.is_empty());
    // One source for JWE files (raw resource bytes, KServe's key forms) and one for packages
    // (the `kbs` recipient's KEK); each fetches lazily, only if a pair needs it.
    let (jwe_key, pkg_provider): (ResourceKey, Arc<dyn KeyProvider>) = match &kbs_url {
        Some(url) => {
            tracing::info!(kbs = %url, resource = %resource, "confidential mode: key directly from the KBS");
            (
                ResourceKey::direct(client_from_settings(url, &settings)?, resource.clone()),
                Arc::new(KbsKeyProvider::direct(
                    client_from_settings(url, &settings)?,
                    resource.clone(),
                )),
            )
        }
        None => {
            let cdh = CdhClient::new(settings.cdh_addr.as_deref())
                .map_err(secure_model_core::keys::KeyError::from)?;
            tracing::info!(resource = %resource, "confidential mode: key through the Confidential Data Hub");
            (
                ResourceKey::via_cdh(cdh.clone(), resource.clone()),
                Arc::new(KbsKeyProvider::via_cdh(cdh, resource.clone())),
            )
        }
    };
    let allow_disk = bool_var(env::ALLOW_DISK)?;
    let verification = digest_var(vars::VERIFICATION_DIGEST)?;
    if verification.is_some() && pairs.len() != 1 {
        return Err(config(format!(
            "{} pins one download, but there are {} SRC DEST pairs (use {} for packages)",
            vars::VERIFICATION_DIGEST,
            pairs.len(),
            env::MANIFEST_DIGEST
        )));
    }
    let pins = list_var(env::MANIFEST_DIGEST);
    if !pins.is_empty() && pins.len() != pairs.len() {
        return Err(config(format!(
            "{} has {} digest(s) but there are {} SRC DEST pair(s)",
            env::MANIFEST_DIGEST,
            pins.len(),
            pairs.len()
        )));
    }
    let jwe_opts = JweDownloadOptions::default()
        .max_jwe_bytes(max_jwe_bytes()?)
        .allow_mixed(bool_var(vars::ALLOW_MIXED)?)
        .verification_digest(verification)
        .allow_disk_plaintext(allow_disk);
    let progress = Arc::new(LogProgress::new(Duration::from_secs(2)));
    let mut trusted: Option<TrustedKeys> = None;

    let mut staged = Vec::with_capacity(pairs.len());
    for (i, (src, dest)) in pairs.iter().enumerate() {
        let store = open_location(src, false)?;
        if is_package(store.as_ref()).await? {
            tracing::info!(source = %src, destination = %dest.display(), "confidential mode: loading package");
            // Signatures are required in confidential mode too.
            let trusted = match &trusted {
                Some(t) => TrustedKeys::clone(t),
                None => {
                    let t = crate::trusted_keys()?;
                    trusted = Some(t.clone());
                    t
                }
            };
            let mut providers = vec![Arc::clone(&pkg_provider)];
            providers.extend(load_key_providers(&list_var(env::KEYS))?);
            let mut opts = LoadOptions::default()
                .allow_disk_plaintext(allow_disk)
                .with_env_tuning(|k| std::env::var(k).ok())?;
            let pin = match (pins.get(i), verification) {
                (Some(p), Some(v)) => {
                    let p = parse_digest_pin(p)?;
                    if p != v {
                        return Err(config(format!(
                            "{} and {} pin different manifest digests",
                            env::MANIFEST_DIGEST,
                            vars::VERIFICATION_DIGEST
                        )));
                    }
                    Some(p)
                }
                (Some(p), None) => Some(parse_digest_pin(p)?),
                (None, v) => v,
            };
            if let Some(pin) = pin {
                opts = opts.pin_manifest_digest(pin);
            }
            let loader = Loader::new(trusted, providers)
                .with_options(opts)
                .with_progress(progress.clone());
            staged.push(Staged::Package(loader.stage(store, dest).await?));
        } else {
            tracing::info!(source = %src, destination = %dest.display(), "confidential mode: KServe JWE download");
            staged.push(Staged::Download(
                stage_download(store, dest, &jwe_key, &jwe_opts).await?,
            ));
        }
    }
    for s in staged {
        match s {
            Staged::Package(m) => {
                let r = m.publish()?;
                tracing::info!(destination = %r.destination.display(), model_id = %r.model_id, files = r.files, bytes = r.plaintext_bytes, recipient = %r.recipient, "model published");
            }
            Staged::Download(d) => {
                let r = d.publish()?;
                tracing::info!(destination = %r.destination.display(), files = r.files, decrypted = r.decrypted, unencrypted = r.unencrypted.len(), bytes = r.output_bytes, "KServe JWE model published");
            }
        }
    }
    Ok(())
}
