//! `demo`: keygen → pack the example model → verify → pull into tmpfs → compare.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use secure_model_core::danger::Relaxations;
use secure_model_core::keys::KeyProvider;
use secure_model_core::loader::{filesystem_kind, FsKind, LoadOptions, Loader};
use secure_model_core::package::{self, PackOptions};
use secure_model_core::storage::{open_location, StorageSettings};
use secure_model_core::verify::TrustedKeys;

use super::keygen::{keygen_into, KeygenReport};
use super::pack::read_signing_key;
use super::{Failure, Res};

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Model directory to use (default: examples/tiny-model of the source tree this binary was
    /// built from).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Working directory for keys and the package (default: a new temporary directory, kept).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Memory-backed directory to pull into (default: a new directory under /dev/shm).
    #[arg(long)]
    dest: Option<PathBuf>,
    /// Allow a --dest that is not memory-backed (plaintext on disk).
    #[arg(long)]
    allow_disk_plaintext: bool,
}

fn sha256_file(p: &Path) -> Result<[u8; 32], Failure> {
    let mut f =
        std::fs::File::open(p).map_err(|e| Failure::internal(format!("{}: {e}", p.display())))?;
    let mut h = secure_model_core::crypto::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)
            .map_err(|e| Failure::internal(format!("{}: {e}", p.display())))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(h.finish())
}

fn workdir(given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    match given {
        Some(w) => Ok(w),
        None => Ok(tempfile::Builder::new()
            .prefix("secure-model-demo-")
            .tempdir()
            .map_err(|e| Failure::internal(format!("cannot create a temporary directory: {e}")))?
            .keep()),
    }
}

/// `--dest`, or a new directory under /dev/shm.
fn destination(given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    if let Some(d) = given {
        return Ok(d);
    }
    let shm = Path::new("/dev/shm");
    if filesystem_kind(shm).ok() != Some(FsKind::Tmpfs) {
        return Err(Failure::config(
            "/dev/shm is not a tmpfs here; pass --dest DIR on a memory-backed filesystem",
        ));
    }
    Ok(tempfile::Builder::new()
        .prefix("secure-model-demo-")
        .tempdir_in(shm)
        .map_err(|e| Failure::internal(format!("cannot create a directory in /dev/shm: {e}")))?
        .keep()
        .join("model"))
}

async fn pack_and_verify(
    model: &Path,
    pkg: &Path,
    k: &KeygenReport,
) -> Result<
    (
        Arc<dyn secure_model_core::storage::StorageBackend>,
        Vec<Arc<dyn KeyProvider>>,
        TrustedKeys,
    ),
    Failure,
> {
    println!("2. pack     {} -> {}", model.display(), pkg.display());
    let signer = read_signing_key(&k.signing_key)?;
    let kek = secure_model_core::keys::LocalKeyProvider::from_file(&k.kek)?;
    let recipients: Vec<Arc<dyn KeyProvider>> = vec![Arc::new(kek)];
    let store = open_location(
        &pkg.display().to_string(),
        true,
        &StorageSettings::default(),
    )?;
    let r = package::pack(
        model,
        store.as_ref(),
        &signer,
        &recipients,
        &PackOptions::default(),
    )
    .await?;
    println!(
        "   {} files, {} bytes, model_id {}, manifest sha256 {}",
        r.files, r.plaintext_bytes, r.model_id, r.manifest_digest
    );
    println!("3. verify   signature + ciphertext digests (no key)");
    let trusted = secure_model_core::config::load_trusted_keys(&[&k.public_key])?;
    let v = Loader::new(trusted.clone(), Vec::new())
        .verify_package(Arc::clone(&store), false)
        .await?;
    println!("   OK, signed by trusted signer {}", v.signer);
    Ok((store, recipients, trusted))
}

fn compare(model: &Path, dest: &Path) -> Res {
    println!("5. compare  pulled files with {}", model.display());
    let files = package::scan_model_dir(model)?;
    for (rel, src) in &files {
        if sha256_file(src)? != sha256_file(&dest.join(rel))? {
            return Err(Failure::internal(format!(
                "{rel} differs after the round trip"
            )));
        }
    }
    println!("   all {} files identical", files.len());
    Ok(())
}

/// The bundled example model of the source tree, when `--model` is not given.
fn default_model() -> Result<PathBuf, Failure> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tiny-model");
    if p.is_dir() {
        return Ok(p);
    }
    Err(Failure::config(format!(
        "no --model given, and the example model of the source tree this binary was built from ({}) is not here",
        p.display()
    ))
    .with_hint("pass --model DIR (any directory of model files)"))
}

/// Runs `demo`.
pub(crate) async fn run(a: DemoArgs) -> Res {
    let model = match a.model {
        Some(m) => m,
        None => default_model()?,
    };
    let work = workdir(a.workdir)?;
    let user_dest = a.dest.is_some();
    let dest = destination(a.dest)?;
    println!("1. keygen   -> {}", work.join("keys").display());
    let k = keygen_into(&work.join("keys"))?;
    println!(
        "   KEK recipient {}; signer hint {}",
        k.kek_recipient, k.public_key_hint
    );
    let pkg = work.join("package");
    let (store, recipients, trusted) = pack_and_verify(&model, &pkg, &k).await?;

    println!("4. pull     -> {}", dest.display());
    let relax = if a.allow_disk_plaintext {
        Relaxations::NONE.allow_disk_plaintext()
    } else {
        Relaxations::NONE
    };
    let p = Loader::new(trusted, recipients)
        .with_options(LoadOptions::default().with_relaxations(relax))
        .pull(store, &dest)
        .await?;
    println!(
        "   {} files, {} bytes in {:.3}s on {}",
        p.files,
        p.plaintext_bytes,
        p.seconds,
        p.destination_fs.name()
    );
    compare(&model, &dest)?;
    println!();
    println!(
        "done. keys and package: {}  plaintext: {}",
        work.display(),
        dest.display()
    );
    // Run as `cargo run -- demo`, the binary is not on PATH: name the one that ran.
    let me = std::env::current_exe()
        .ok()
        .filter(|p| {
            std::env::var_os("PATH").is_none_or(|path| {
                !std::env::split_paths(&path).any(|d| Some(d.as_path()) == p.parent())
            })
        })
        .map_or_else(|| "secure-model".to_string(), |p| p.display().to_string());
    println!("try:  {me} inspect {}", pkg.display());
    println!(
        "      {me} verify {} --trusted-key {} --key local:{}",
        pkg.display(),
        k.public_key.display(),
        k.kek.display()
    );
    let plain_root = if user_dest {
        dest.as_path()
    } else {
        dest.parent().unwrap_or(&dest)
    };
    println!(
        "clean up with: rm -rf {} {}",
        work.display(),
        plain_root.display()
    );
    Ok(())
}
