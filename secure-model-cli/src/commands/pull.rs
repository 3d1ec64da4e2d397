//! `pull`: verify, decrypt and publish a package into a (memory-backed) directory.

use std::path::PathBuf;

use clap::Args;
use secure_model_core::loader::PullPlan;
use secure_model_settings::registry::{
    flag_item, flag_value, ADAPTIVE, ALLOW_DISK_PLAINTEXT, BUFFER_MIB, CACHE_DIR, CACHE_MAX_BYTES,
    FILE_CONCURRENCY, MANIFEST_DIGEST, RANGE_MIB, READ_AHEAD,
};
use secure_model_settings::Source;

use super::{loader, open, print_json, required_keys, settings, KeyArgs, Output, Res, TrustArgs};
use crate::progress::Bar;

/// Arguments of `pull`.
#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// Package location: `s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`, `az://ACCOUNT/CONTAINER/PREFIX`,
    /// `https://HOST/PATH` (read-only), a directory or `file://` URI (KServe's `secure+` forms
    /// too). Credentials: `secure-model settings` and docs/storage.md.
    pkg: String,
    /// Destination directory (must be tmpfs/ramfs unless --allow-disk-plaintext).
    dest: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    keys: KeyArgs,
    /// Allow plaintext on a disk-backed destination (unsafe in Kata pods: shared with the host).
    #[arg(long)]
    allow_disk_plaintext: bool,
    /// Require the manifest to have this SHA-256 (hex): refuses rollbacks.
    #[arg(long, value_parser = flag_item(&MANIFEST_DIGEST))]
    manifest_digest: Vec<[u8; 32]>,
    #[command(flatten)]
    tuning: PullTuning,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// The node cache of ciphertext objects (docs/cache.md).
#[derive(Debug, Args)]
pub(crate) struct CacheArgs {
    /// Node-local cache directory of ciphertext objects: read when a copy hashes to the
    /// signed digest, filled from the origin otherwise (or SECURE_MODEL_CACHE_DIR).
    #[arg(long = "cache", value_name = "DIR", value_parser = flag_value(&CACHE_DIR))]
    dir: Option<PathBuf>,
    /// With --cache: evict least recently used objects over this many bytes.
    #[arg(long = "cache-max-bytes", value_name = "BYTES", value_parser = flag_value(&CACHE_MAX_BYTES))]
    max_bytes: Option<u64>,
}

impl CacheArgs {
    /// `src` with these flags over their variables.
    pub(crate) fn apply(&self, src: Source) -> Source {
        src.with(&CACHE_DIR, self.dir.clone())
            .with(&CACHE_MAX_BYTES, self.max_bytes)
    }
}

/// Pipeline knobs of `pull`. The ranged GETs in flight adapt to the store within the caps;
/// in-flight memory is bounded by --buffer-mib.
#[derive(Debug, Args)]
pub(crate) struct PullTuning {
    /// Ciphertext segments per ranged GET (MiB with the default 1 MiB segment size)
    /// [default: 8].
    #[arg(long, visible_alias = "range-mib", value_parser = flag_value(&RANGE_MIB))]
    range_segments: Option<u64>,
    /// Most ranged GETs in flight per file [default: 32].
    #[arg(long, value_parser = flag_value(&READ_AHEAD))]
    read_ahead: Option<u64>,
    /// Most files fetched and decrypted concurrently [default: 4].
    #[arg(long, value_parser = flag_value(&FILE_CONCURRENCY))]
    file_concurrency: Option<u64>,
    /// Memory for ciphertext in flight, MiB [default: 16].
    #[arg(long, value_parser = flag_value(&BUFFER_MIB))]
    buffer_mib: Option<u64>,
    /// `false` keeps the ranged GETs in flight at the caps instead of adapting [default: true].
    #[arg(long, value_parser = flag_value(&ADAPTIVE))]
    adaptive: Option<bool>,
}

impl PullTuning {
    /// `src` with these flags over their variables.
    pub(crate) fn apply(&self, src: Source) -> Source {
        src.with(&RANGE_MIB, self.range_segments)
            .with(&READ_AHEAD, self.read_ahead)
            .with(&FILE_CONCURRENCY, self.file_concurrency)
            .with(&BUFFER_MIB, self.buffer_mib)
            .with(&ADAPTIVE, self.adaptive)
    }
}

/// Runs `pull`.
pub(crate) async fn run(a: PullArgs, src: &Source) -> Res {
    let src = a
        .cache
        .apply(a.tuning.apply(a.keys.apply(a.trust.apply(src))))
        .with_list(&MANIFEST_DIGEST, a.manifest_digest)
        .switch(&ALLOW_DISK_PLAINTEXT, a.allow_disk_plaintext);
    let settings = settings(&src)?;
    let providers = required_keys(&settings)?;
    let loader = loader(&settings, providers, Bar::new("pulling", a.output.json))?;
    let store = open(&a.pkg, false, &settings)?;
    let mut plan = PullPlan::new(loader);
    plan.add(store, &a.dest, None);
    let r = plan
        .stage()
        .await?
        .publish()?
        .into_iter()
        .next()
        .ok_or_else(|| super::Failure::internal("the pull published nothing"))?;
    if a.output.json {
        return print_json(&r);
    }
    if r.already_published {
        println!(
            "model {:?} is already in {} ({}): published by an earlier run, every file matched its signed digests; nothing fetched",
            r.model_name,
            r.destination.display(),
            r.destination_fs.name()
        );
        return Ok(());
    }
    println!(
        "pulled {} files ({} bytes) of model {:?} into {} ({}) in {:.2}s via {}",
        r.files,
        r.plaintext_bytes,
        r.model_name,
        r.destination.display(),
        r.destination_fs.name(),
        r.seconds,
        r.recipient
    );
    if let Some(c) = r.cache {
        println!(
            "cache: {} objects read from the cache, {} added, {} corrupt copies replaced, {} read from the origin only",
            c.hits, c.filled, c.repaired, c.bypassed
        );
    }
    Ok(())
}
