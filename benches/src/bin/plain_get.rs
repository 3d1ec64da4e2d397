//! `plain_get`: downloads every object under a store prefix into a local directory, with no
//! cryptography and no hashing. The ceiling for `secure-model pull` in the pull benchmark
//! (`benches/pull-bench.sh`).
//!
//! Two modes:
//! - `range` (default): the same `StorageBackend` and client settings `secure-model pull`
//!   uses (`secure_model_core::storage::open_location`), the same request shape (ranged GETs of
//!   `--range-mib`, `--read-ahead` in flight per file, `--file-concurrency` files) and positional
//!   writes into preallocated files from the blocking pool. Exactly the pull pipeline minus
//!   decryption and SHA-256.
//! - `stream`: one streaming GET per object (`object_store` directly, same client options),
//!   `--file-concurrency` objects at once, sequential writes.
//!
//! Prints one JSON line: `{"mode":..,"bytes":..,"files":..,"seconds":..}`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt};
use secure_model_core::storage::{open_location, StorageBackend};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Range,
    Stream,
}

/// Plain (unencrypted) download of a store prefix: the throughput ceiling.
/// `range` mode reads every location `secure-model pull` reads, with the same variables
/// (`SECURE_MODEL_ALLOW_HTTP=true` for a plain `http://` server).
#[derive(Debug, Parser)]
struct Args {
    /// Store prefix (`s3://bucket/prefix`; `range` mode accepts every location `pull` does).
    src: String,
    /// Destination directory (created; must not hold the files yet).
    dest: PathBuf,
    /// Request shape.
    #[arg(long, value_enum, default_value_t = Mode::Range)]
    mode: Mode,
    /// Bytes per ranged GET, in MiB (`range` mode; the same default as `pull`).
    #[arg(long, default_value_t = 8)]
    range_mib: u64,
    /// Ranged GETs in flight per file (`range` mode; `pull`'s cap).
    #[arg(long, default_value_t = 32)]
    read_ahead: usize,
    /// Objects downloaded concurrently (`pull`'s cap).
    #[arg(long, default_value_t = 4)]
    file_concurrency: usize,
    /// Ranged GETs in flight in all (`range` mode): the most `pull` reaches with its default
    /// 16 MiB of segment buffers (two ranges per buffer less one per core of a 2-core
    /// machine). Unlike `pull`,
    /// each range is received whole before it is written, so memory grows with this.
    #[arg(long, default_value_t = 30)]
    in_flight: usize,
    /// Download these keys (sizes from HEAD) instead of listing the prefix: for HTTP servers
    /// without listing. Repeatable.
    #[arg(long = "key")]
    keys: Vec<String>,
}

fn create_file(dest: &Path, key: &str, size: u64) -> Result<File> {
    let path = dest.join(key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.set_len(size)
        .with_context(|| format!("cannot size {}", path.display()))?;
    Ok(f)
}

async fn get_ranged(
    store: Arc<dyn StorageBackend>,
    key: String,
    size: u64,
    file: File,
    range: u64,
    read_ahead: usize,
    in_flight: Arc<tokio::sync::Semaphore>,
) -> Result<u64> {
    let file = Arc::new(file);
    let starts: Vec<u64> = (0..size.div_ceil(range)).map(|i| i * range).collect();
    let written = futures::stream::iter(starts)
        .map(|start| {
            let store = Arc::clone(&store);
            let key = key.clone();
            let file = Arc::clone(&file);
            let in_flight = Arc::clone(&in_flight);
            async move {
                let end = (start + range).min(size);
                let permit = in_flight.acquire_owned().await?;
                let bytes = store.get_range(&key, start..end).await?;
                drop(permit);
                let n = bytes.len() as u64;
                tokio::task::spawn_blocking(move || file.write_all_at(&bytes, start)).await??;
                anyhow::Ok(n)
            }
        })
        .buffered(read_ahead.max(1))
        .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
        .await?;
    Ok(written)
}

fn raw_s3(src: &str) -> Result<(Arc<dyn ObjectStore>, StorePath)> {
    let rest = src
        .strip_prefix("s3://")
        .context("stream mode supports s3:// only")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    // The client options `secure_model_core` sets for S3 (timeouts, idle pool), and the
    // endpoint from KServe's variables.
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(false);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok().or_else(|| {
        std::env::var("S3_ENDPOINT").ok().map(|h| {
            let https = !matches!(
                std::env::var("S3_USE_HTTPS").as_deref(),
                Ok("0" | "false" | "False")
            );
            format!("{}://{h}", if https { "https" } else { "http" })
        })
    });
    let allow_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    if let Some(e) = endpoint {
        b = b.with_endpoint(e);
    }
    let opts = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_timeout(Duration::from_secs(60))
        .with_connect_timeout(Duration::from_secs(10))
        .with_pool_max_idle_per_host(16);
    let store = b.with_client_options(opts).build()?;
    Ok((Arc::new(store), StorePath::from(prefix)))
}

async fn get_streaming(store: Arc<dyn ObjectStore>, path: StorePath, file: File) -> Result<u64> {
    let res = store.get(&path).await?;
    let mut stream = res.into_stream();
    let file = Arc::new(file);
    let mut offset = 0u64;
    // One write in flight behind the network read.
    let mut pending: Option<tokio::task::JoinHandle<std::io::Result<()>>> = None;
    while let Some(chunk) = stream.try_next().await? {
        let at = offset;
        offset += chunk.len() as u64;
        if let Some(p) = pending.take() {
            p.await??;
        }
        let f = Arc::clone(&file);
        pending = Some(tokio::task::spawn_blocking(move || {
            f.write_all_at(&chunk, at)
        }));
    }
    if let Some(p) = pending.take() {
        p.await??;
    }
    Ok(offset)
}

async fn run(a: Args) -> Result<()> {
    secure_model_core::crypto::install_rustls_provider();
    std::fs::create_dir_all(&a.dest)
        .with_context(|| format!("cannot create {}", a.dest.display()))?;
    let backend = open_location(&a.src, false, &storage_settings()?)?;
    let objects = if a.keys.is_empty() {
        backend
            .list("")
            .await?
            .into_iter()
            .map(|o| (o.key, o.size))
            .collect::<Vec<_>>()
    } else {
        let mut v = Vec::new();
        for k in &a.keys {
            v.push((k.clone(), backend.head(k).await?));
        }
        v
    };
    if objects.is_empty() {
        bail!("no objects under {}", a.src);
    }
    let started = Instant::now();
    let total = match a.mode {
        Mode::Range => {
            let range = a.range_mib.max(1) << 20;
            let in_flight = Arc::new(tokio::sync::Semaphore::new(a.in_flight.max(1)));
            let mut jobs = Vec::new();
            for (key, size) in &objects {
                let f = create_file(&a.dest, key, *size)?;
                jobs.push(get_ranged(
                    Arc::clone(&backend),
                    key.clone(),
                    *size,
                    f,
                    range,
                    a.read_ahead,
                    Arc::clone(&in_flight),
                ));
            }
            futures::stream::iter(jobs)
                .buffer_unordered(a.file_concurrency.max(1))
                .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
                .await?
        }
        Mode::Stream => {
            let (store, prefix) = raw_s3(&a.src)?;
            let mut jobs = Vec::new();
            for (key, size) in &objects {
                let f = create_file(&a.dest, key, *size)?;
                let mut p = prefix.clone();
                for part in key.split('/') {
                    p = p.join(part);
                }
                jobs.push(get_streaming(Arc::clone(&store), p, f));
            }
            futures::stream::iter(jobs)
                .buffer_unordered(a.file_concurrency.max(1))
                .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
                .await?
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let expected: u64 = objects.iter().map(|(_, size)| size).sum();
    if total != expected {
        bail!("downloaded {total} bytes, expected {expected}");
    }
    println!(
        "{{\"mode\":\"{:?}\",\"bytes\":{total},\"files\":{},\"seconds\":{secs:.3}}}",
        a.mode,
        objects.len()
    );
    Ok(())
}

fn main() -> Result<()> {
    let a = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(a))
}

/// The storage settings `secure-model` itself would use here (credentials, timeouts, CA
/// bundle), from the settings layer.
fn storage_settings() -> anyhow::Result<secure_model_core::storage::StorageSettings> {
    let src = secure_model_settings::Source::new(secure_model_settings::Environment::capture());
    Ok(secure_model_settings::storage::storage_settings(&src)?)
}
