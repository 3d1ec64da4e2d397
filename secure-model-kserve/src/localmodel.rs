//! Our image as KServe's LocalModelCache download Job and as a node pre-warmer, with no key:
//! `mirror` copies each package verbatim (ciphertext, keys file, manifest last) into the
//! node's disk volume after verifying its signature and every object; `warm` adds packages'
//! objects to the node cache (`SECURE_MODEL_CACHE_DIR`). KServe runs the download Job with the
//! `command` of a ClusterStorageContainer of `workloadType: localModelDownloadJob` and the args
//! `[sourceModelUri, /mnt/models]`: that container's command selects mirror mode
//! (docs/cache-kubernetes.md).

use std::sync::Arc;

use secure_model_core::cache::{CacheConfig, NodeCache};
use secure_model_core::loader::{Loader, WarmReport};
use secure_model_core::package::{mirror, MirrorOptions, MirrorReport};

use crate::initializer::{InitError, InitializerSettings, Pair};

/// Mirrors each pair's package into its destination directory (created when missing).
///
/// # Errors
/// [`InitError::NoTrustedSigner`] without a signer; manifest pins that do not fit the pairs;
/// every failure of [`mirror`] (an untrusted manifest, a source object that does not match
/// its signed digest, a destination holding another package, storage failures).
pub async fn mirror_pairs(
    settings: &InitializerSettings,
    pairs: &[Pair],
) -> Result<Vec<MirrorReport>, InitError> {
    let trusted = settings.trust.clone().ok_or(InitError::NoTrustedSigner)?;
    let pins = pins(settings, pairs.len())?;
    let mut reports = Vec::with_capacity(pairs.len());
    for (i, pair) in pairs.iter().enumerate() {
        let src = crate::uri::open(&pair.source, false, &settings.storage)?;
        let dest = pair.dest.display().to_string();
        let dst = secure_model_core::storage::open_location(&dest, true, &settings.storage)?;
        let mut opts = MirrorOptions::default();
        opts.range_attempts = settings.load.range_attempts;
        opts.concurrency = settings.load.file_concurrency;
        if let Some(pin) = pins.get(i).copied().flatten() {
            opts = opts.pin_manifest_digest(pin);
        }
        let r = mirror(
            src.as_ref(),
            dst.as_ref(),
            &trusted,
            &Default::default(),
            &opts,
        )
        .await
        .map_err(|e| InitError::Core(e.into()))?;
        tracing::info!(model_id = %r.model_id, model = %r.model_name, destination = %dest, copied = r.copied, already_present = r.already_present, bytes = r.bytes_copied, up_to_date = r.up_to_date, "package mirrored (ciphertext only)");
        reports.push(r);
    }
    Ok(reports)
}

/// Adds the objects of each package in `sources` to the node cache of the settings.
///
/// # Errors
/// [`InitError::Config`] without `SECURE_MODEL_CACHE_DIR`; [`InitError::NoTrustedSigner`];
/// every failure of [`Loader::warm_cache`].
pub async fn warm(
    settings: &InitializerSettings,
    sources: &[String],
) -> Result<Vec<WarmReport>, InitError> {
    let config: &CacheConfig = settings
        .load
        .cache
        .as_ref()
        .ok_or_else(|| InitError::Config {
            reason: "warming needs the cache directory: set SECURE_MODEL_CACHE_DIR".into(),
        })?;
    let cache = Arc::new(NodeCache::open(config).map_err(|e| InitError::Core(e.into()))?);
    let trusted = settings.trust.clone().ok_or(InitError::NoTrustedSigner)?;
    let pins = pins(settings, sources.len())?;
    let mut reports = Vec::with_capacity(sources.len());
    for (i, source) in sources.iter().enumerate() {
        let mut opts = settings.load.clone();
        if let Some(pin) = pins.get(i).copied().flatten() {
            opts = opts.pin_manifest_digest(pin);
        }
        let loader = Loader::new(trusted.clone(), Vec::new()).with_options(opts);
        let store = crate::uri::open(source, false, &settings.storage)?;
        let r = loader.warm_cache(store.as_ref(), &cache).await?;
        tracing::info!(model_id = %r.model_id, model = %r.model_name, cache = %cache.dir().display(), filled = r.filled, already_cached = r.already_cached, bytes = r.bytes_fetched, "node cache warmed");
        reports.push(r);
    }
    Ok(reports)
}

/// The manifest pin of each of `n` packages: none, or one per package.
fn pins(settings: &InitializerSettings, n: usize) -> Result<Vec<Option<[u8; 32]>>, InitError> {
    match settings.manifest_digests.len() {
        0 => Ok(vec![None; n]),
        k if k == n => Ok(settings.manifest_digests.iter().copied().map(Some).collect()),
        k => Err(InitError::Config {
            reason: format!(
                "SECURE_MODEL_MANIFEST_DIGEST has {k} digests for {n} packages: give one per package, in order"
            ),
        }),
    }
}
