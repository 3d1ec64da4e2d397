//! `plain_put`: uploads every regular file under a local directory to a store prefix, with no
//! cryptography, the way `secure-model pack` uploads ciphertext: the same `StorageBackend`
//! (`open_location(dest, true)`), multipart writes fed in 8 MiB chunks, two files at once.
//! The baseline for `pack` in the pull benchmark (`benches/pull-bench.sh`).
//!
//! Prints one JSON line: `{"bytes":..,"files":..,"seconds":..}`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use secure_model_core::storage::{open_location, StorageBackend};

/// Plain (unencrypted) upload of a directory.
#[derive(Debug, Parser)]
struct Args {
    /// Local directory.
    src: PathBuf,
    /// Destination prefix (`s3://bucket/prefix`, ...).
    dest: String,
    /// Files uploaded concurrently (`pack` uses 2).
    #[arg(long, default_value_t = 2)]
    file_concurrency: usize,
}

const CHUNK: usize = 8 << 20;

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        let t = e.file_type()?;
        if t.is_dir() {
            walk(root, &p, out)?;
        } else if t.is_file() {
            let rel = p.strip_prefix(root)?.to_string_lossy().into_owned();
            out.push((rel, p));
        }
    }
    Ok(())
}

async fn upload(store: Arc<dyn StorageBackend>, key: String, path: PathBuf) -> Result<u64> {
    let mut f = std::fs::File::open(&path)?;
    let mut w = store.put_multipart(&key).await?;
    let mut total = 0u64;
    loop {
        let (chunk, file) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut buf = vec![0u8; CHUNK];
            let mut n = 0;
            while n < CHUNK {
                let r = f.read(buf.get_mut(n..).unwrap_or_default())?;
                if r == 0 {
                    break;
                }
                n += r;
            }
            buf.truncate(n);
            Ok((buf, f))
        })
        .await??;
        f = file;
        if chunk.is_empty() {
            break;
        }
        total += chunk.len() as u64;
        w.write(Bytes::from(chunk)).await?;
    }
    w.finish().await?;
    Ok(total)
}

async fn run(a: Args) -> Result<()> {
    secure_model_core::crypto::install_rustls_provider();
    let store = open_location(&a.dest, true, &storage_settings()?)?;
    let mut files = Vec::new();
    walk(&a.src, &a.src, &mut files)?;
    files.sort();
    let n = files.len();
    let started = Instant::now();
    let total = futures::stream::iter(files)
        .map(|(k, p)| upload(Arc::clone(&store), k, p))
        .buffer_unordered(a.file_concurrency.max(1))
        .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
        .await?;
    println!(
        "{{\"bytes\":{total},\"files\":{n},\"seconds\":{:.3}}}",
        started.elapsed().as_secs_f64()
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
