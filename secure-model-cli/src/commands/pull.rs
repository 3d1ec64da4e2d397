//! `pull`: verify, decrypt and publish a package into a (memory-backed) directory.

use std::path::PathBuf;

use clap::Args;
use secure_model_core::loader::PullPlan;
use secure_model_settings::registry::{
    flag_value, ADAPTIVE, ALLOW_DISK_PLAINTEXT, BUFFER_MIB, FILE_CONCURRENCY, KEYS,
    MANIFEST_DIGEST, RANGE_MIB, READ_AHEAD,
};
use secure_model_settings::Source;

use super::{key_providers, loader, open, print_json, Output, Res, TrustArgs};
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
    /// Key to unlock with (`TYPE:ARG`, e.g. `local:kek.bin`). Repeat to try several (or
    /// SECURE_MODEL_KEYS).
    #[arg(long = "key", value_parser = flag_value(&KEYS))]
    keys: Vec<String>,
    /// Allow plaintext on a disk-backed destination (unsafe in Kata pods: shared with the host).
    #[arg(long)]
    allow_disk_plaintext: bool,
    /// Require the manifest to have this SHA-256 (hex): refuses rollbacks.
    #[arg(long, value_parser = flag_value(&MANIFEST_DIGEST))]
    manifest_digest: Option<String>,
    #[command(flatten)]
    tuning: PullTuning,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// Pipeline knobs of `pull` (defaults and bounds: `secure-model settings`). The ranged GETs in
/// flight adapt to the store within the caps; in-flight memory is bounded by --buffer-mib.
#[derive(Debug, Args)]
pub(crate) struct PullTuning {
    /// Ciphertext segments per ranged GET (MiB with the default 1 MiB segment size).
    #[arg(long, visible_alias = "range-mib", value_parser = flag_value(&RANGE_MIB))]
    range_segments: Option<String>,
    /// Most ranged GETs in flight per file.
    #[arg(long, value_parser = flag_value(&READ_AHEAD))]
    read_ahead: Option<String>,
    /// Most files fetched and decrypted concurrently.
    #[arg(long, value_parser = flag_value(&FILE_CONCURRENCY))]
    file_concurrency: Option<String>,
    /// Memory for ciphertext in flight, MiB.
    #[arg(long, value_parser = flag_value(&BUFFER_MIB))]
    buffer_mib: Option<String>,
    /// `false` keeps the ranged GETs in flight at the caps instead of adapting.
    #[arg(long, value_parser = flag_value(&ADAPTIVE))]
    adaptive: Option<String>,
}

/// Runs `pull`.
pub(crate) async fn run(a: PullArgs, src: &Source) -> Res {
    let src = a
        .trust
        .apply(src)
        .flags(&KEYS, &a.keys)
        .flag(&MANIFEST_DIGEST, a.manifest_digest.as_ref())
        .switch(&ALLOW_DISK_PLAINTEXT, a.allow_disk_plaintext)
        .flag(&RANGE_MIB, a.tuning.range_segments.as_ref())
        .flag(&READ_AHEAD, a.tuning.read_ahead.as_ref())
        .flag(&FILE_CONCURRENCY, a.tuning.file_concurrency.as_ref())
        .flag(&BUFFER_MIB, a.tuning.buffer_mib.as_ref())
        .flag(&ADAPTIVE, a.tuning.adaptive.as_ref());
    let providers = key_providers(&src)?;
    if providers.is_empty() {
        return Err(super::Failure::config(
            "no key: pass --key TYPE:ARG (or set SECURE_MODEL_KEYS)",
        ));
    }
    let loader = loader(&src, providers, Bar::new("pulling", a.output.json))?;
    let store = open(&a.pkg, false, &src)?;
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
    println!(
        "pulled {} files ({} bytes) of model {:?} into {} ({:?}) in {:.2}s via {}",
        r.files,
        r.plaintext_bytes,
        r.model_name,
        r.destination.display(),
        r.destination_fs,
        r.seconds,
        r.recipient
    );
    Ok(())
}
