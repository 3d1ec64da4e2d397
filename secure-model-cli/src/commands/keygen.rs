//! `keygen`: a local KEK and an ECDSA P-256 signing key pair.

use std::path::{Path, PathBuf};

use clap::Args;
use secure_model_core::crypto::Kek;
use secure_model_core::keys::{KeyProvider, LocalKeyProvider};
use secure_model_core::verify::SigningKey;

use super::{print_json, write_new, Failure, Output, Res};

/// Arguments of `keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Directory to write `kek.bin`, `signing-key.pem` and `signing-key.pub.pem` into
    /// (created if missing; existing files are never overwritten).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// What `keygen` wrote.
#[derive(serde::Serialize)]
pub(crate) struct KeygenReport {
    pub(crate) kek: PathBuf,
    pub(crate) kek_recipient: String,
    pub(crate) signing_key: PathBuf,
    pub(crate) public_key: PathBuf,
    pub(crate) public_key_hint: String,
}

/// Writes the three key files into `dir`.
pub(crate) fn keygen_into(dir: &Path) -> Result<KeygenReport, Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::config(format!("cannot create {}: {e}", dir.display())))?;
    let kek = Kek::generate()?;
    let (sk, pem) = SigningKey::generate()?;
    let vk = sk.verifying_key();
    let kek_path = dir.join("kek.bin");
    let sk_path = dir.join("signing-key.pem");
    let pk_path = dir.join("signing-key.pub.pem");
    for p in [&kek_path, &sk_path, &pk_path] {
        if p.exists() {
            return Err(Failure::config(format!(
                "{} already exists; refusing to overwrite a key",
                p.display()
            ))
            .with_hint(format!(
                "choose another --out directory, or move {} away first: packages wrapped for its KEK, and readers trusting its public key, still need the old keys",
                dir.display()
            )));
        }
    }
    write_new(&kek_path, kek.expose_secret(), 0o600)?;
    write_new(&sk_path, pem.as_bytes(), 0o600)?;
    write_new(&pk_path, vk.to_pem().as_bytes(), 0o644)?;
    let recipient = LocalKeyProvider::new(kek).recipient().to_string();
    Ok(KeygenReport {
        kek: kek_path,
        kek_recipient: recipient,
        signing_key: sk_path,
        public_key: pk_path,
        public_key_hint: vk.hint(),
    })
}

/// Runs `keygen`.
pub(crate) fn run(a: KeygenArgs) -> Res {
    let r = keygen_into(&a.out)?;
    if a.output.json {
        return print_json(&r);
    }
    println!(
        "wrote {} (local KEK, recipient {}, mode 0600)",
        r.kek.display(),
        r.kek_recipient
    );
    println!(
        "wrote {} (ECDSA P-256 PKCS#8 signing key, mode 0600)",
        r.signing_key.display()
    );
    println!(
        "wrote {} (public key, hint {})",
        r.public_key.display(),
        r.public_key_hint
    );
    Ok(())
}
