//! `cache`: the node cache of ciphertext objects: pre-warm it from a package, or evict.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use secure_model_core::cache::NodeCache;
use secure_model_settings::registry::{
    flag_item, flag_value, CACHE_DIR, CACHE_MAX_BYTES, MANIFEST_DIGEST,
};
use secure_model_settings::resolve::cache_config;
use secure_model_settings::Source;

use super::{open, print_json, settings, Failure, Output, Res, TrustArgs};

/// Arguments of `cache`.
#[derive(Debug, Args)]
pub(crate) struct CacheArgs {
    #[command(subcommand)]
    action: Action,
    /// The cache directory (or SECURE_MODEL_CACHE_DIR).
    #[arg(long = "cache", global = true, value_name = "DIR", value_parser = flag_value(&CACHE_DIR))]
    dir: Option<PathBuf>,
}

impl CacheArgs {
    /// Whether the result is printed as JSON.
    pub(crate) fn json(&self) -> bool {
        match &self.action {
            Action::Warm(w) => w.output.json,
            Action::Gc(g) => g.output.json,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Verify a package's manifest and add each of its ciphertext objects to the cache,
    /// checked against its signed size and SHA-256 (no key needed).
    Warm(Box<WarmArgs>),
    /// Remove abandoned partial fills, then the least recently used objects until the cache
    /// holds at most --max-bytes.
    Gc(GcArgs),
}

#[derive(Debug, Args)]
struct WarmArgs {
    /// Package location (any location `pull` reads).
    pkg: String,
    #[command(flatten)]
    trust: TrustArgs,
    /// Require the manifest to have this SHA-256 (hex).
    #[arg(long, value_parser = flag_item(&MANIFEST_DIGEST))]
    manifest_digest: Vec<[u8; 32]>,
    /// Evict least recently used objects over this many bytes afterwards.
    #[arg(long = "cache-max-bytes", value_name = "BYTES", value_parser = flag_value(&CACHE_MAX_BYTES))]
    max_bytes: Option<u64>,
    #[command(flatten)]
    output: Output,
}

#[derive(Debug, Args)]
struct GcArgs {
    /// The most bytes to keep (or SECURE_MODEL_CACHE_MAX_BYTES).
    #[arg(long = "max-bytes", value_name = "BYTES", value_parser = flag_value(&CACHE_MAX_BYTES))]
    max_bytes: Option<u64>,
    #[command(flatten)]
    output: Output,
}

/// Runs `cache`.
pub(crate) async fn run(a: CacheArgs, src: &Source) -> Res {
    let src = src.clone().with(&CACHE_DIR, a.dir);
    match a.action {
        Action::Warm(w) => warm(w, src).await,
        Action::Gc(g) => {
            let json = g.output.json;
            gc(src.with(&CACHE_MAX_BYTES, g.max_bytes), json)
        }
    }
}

fn open_cache(src: &Source) -> Result<NodeCache, Failure> {
    let config = cache_config(src)?.ok_or_else(|| {
        Failure::config(format!(
            "no cache directory: pass --cache DIR (or set {})",
            CACHE_DIR.env
        ))
    })?;
    Ok(NodeCache::open(&config)?)
}

async fn warm(w: Box<WarmArgs>, src: Source) -> Res {
    let output = w.output;
    let src = w
        .trust
        .apply(&src)
        .with_list(&MANIFEST_DIGEST, w.manifest_digest)
        .with(&CACHE_MAX_BYTES, w.max_bytes);
    let settings = settings(&src)?;
    let cache = Arc::new(open_cache(&src)?);
    let loader = super::loader(
        &settings,
        Vec::new(),
        crate::progress::Bar::new("warming", output.json),
    )?;
    let store = open(&w.pkg, false, &settings)?;
    let r = loader.warm_cache(store.as_ref(), &cache).await?;
    if output.json {
        return print_json(&r);
    }
    println!(
        "cache {}: model {:?} ({}): {} objects added ({} bytes fetched), {} already cached, {} being added by another process",
        cache.dir().display(),
        r.model_name,
        r.model_id,
        r.filled,
        r.bytes_fetched,
        r.already_cached,
        r.left_to_others
    );
    Ok(())
}

fn gc(src: Source, json: bool) -> Res {
    let cache = open_cache(&src)?;
    let max = src.get(&CACHE_MAX_BYTES)?.ok_or_else(|| {
        Failure::config(format!(
            "no size limit: pass --max-bytes BYTES (or set {})",
            CACHE_MAX_BYTES.env
        ))
    })?;
    let r = cache.gc(max)?;
    if json {
        return print_json(&r);
    }
    println!(
        "cache {}: removed {} objects ({} bytes) and {} abandoned fills; kept {} objects ({} bytes)",
        cache.dir().display(),
        r.removed,
        r.removed_bytes,
        r.stale_fills,
        r.kept,
        r.kept_bytes
    );
    Ok(())
}
