//! `secure-model jwe`: KServe confidential-mode JWE files (keygen, encrypt, decrypt). Argument
//! parsing and output only; the work is in `secure_model_kserve::jwe`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use secure_model_kserve::jwe::{
    decrypt_file, encrypt_file, encrypt_tree, KserveAlg, KserveJweError, KserveKey,
    DEFAULT_MAX_JWE_BYTES,
};
use zeroize::Zeroizing;

use super::{write_new, Failure, Output};

/// The package hints do not apply to JWE files.
fn jwe_failure(e: KserveJweError) -> Failure {
    Failure::from(e).without_hint()
}

/// Arguments of `jwe`.
#[derive(Debug, Args)]
pub(crate) struct JweArgs {
    #[command(subcommand)]
    command: JweCommand,
}

#[derive(Debug, Subcommand)]
enum JweCommand {
    /// Write a new random 256-bit key as a JWK (`{"k":..,"kty":"oct"}`, mode 0600): store
    /// this file as the KBS resource named by the InferenceService's confidential resourceId.
    Keygen(KeygenArgs),
    /// Encrypt a file into OUT, or every file of a directory into OUT/PATH.jwe, as KServe's
    /// confidential mode decrypts them (compact JWE, A256GCM). Each file is encrypted whole
    /// in memory: compact JWE cannot be streamed.
    Encrypt(EncryptArgs),
    /// Decrypt one KServe JWE file into OUT (mode 0600), e.g. to check an upload.
    Decrypt(DecryptArgs),
}

#[derive(Debug, Args)]
struct KeygenArgs {
    /// Output file (must not exist).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct EncryptArgs {
    /// Key file: 32 raw bytes, 43 base64url characters, or an `oct` JWK (what KServe reads
    /// from the KBS resource). `local:FILE` is accepted too, as `--key` is spelt elsewhere.
    #[arg(long)]
    key: PathBuf,
    /// Key management: `A256KW` (fresh content key per file, wrapped) or `dir` (the key is the
    /// content key).
    #[arg(long, default_value = "A256KW", value_parser = ["A256KW", "dir"])]
    alg: String,
    /// Largest plaintext file accepted, in bytes (each file is read whole: memory is about the
    /// largest file's size, encrypted in place and encoded as it is written).
    #[arg(long, default_value_t = DEFAULT_MAX_JWE_BYTES)]
    max_bytes: u64,
    /// Leave empty files out of a directory (KServe's decryptor cannot decrypt an empty JWE
    /// payload); they are listed in the output.
    #[arg(long)]
    skip_empty: bool,
    /// Model file or directory.
    input: PathBuf,
    /// Output file, or directory for a directory input (files must not exist).
    output: PathBuf,
    #[command(flatten)]
    out: Output,
}

#[derive(Debug, Args)]
struct DecryptArgs {
    /// Key file (as for `encrypt`; `local:FILE` too).
    #[arg(long)]
    key: PathBuf,
    /// Largest JWE file accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_JWE_BYTES)]
    max_bytes: u64,
    /// JWE file.
    input: PathBuf,
    /// Plaintext output file (must not exist).
    output: PathBuf,
    #[command(flatten)]
    out: Output,
}

fn read_key(path: &Path) -> Result<KserveKey, Failure> {
    // `local:FILE`, the TYPE:ARG form of --key elsewhere, names the same file (a file really
    // called `local:…` is still read when it exists).
    let path = match path.to_str().and_then(|p| p.strip_prefix("local:")) {
        Some(rest) if !path.exists() => Path::new(rest),
        _ => path,
    };
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::config(format!("cannot read key file {}: {e}", path.display())))?;
    if meta.len() > 64 * 1024 {
        return Err(Failure::config(format!(
            "key file {} is larger than 64 KiB",
            path.display()
        )));
    }
    let bytes =
        Zeroizing::new(std::fs::read(path).map_err(|e| {
            Failure::config(format!("cannot read key file {}: {e}", path.display()))
        })?);
    KserveKey::parse(&bytes)
        .map_err(|e| Failure::config(format!("key file {}: {e}", path.display())))
}

fn print(json: bool, value: &serde_json::Value, human: &str) -> Result<(), Failure> {
    if json {
        let s = serde_json::to_string_pretty(value)
            .map_err(|e| Failure::internal(format!("cannot serialise output: {e}")))?;
        println!("{s}");
    } else {
        println!("{human}");
    }
    Ok(())
}

impl JweArgs {
    /// Whether the subcommand prints JSON.
    pub(crate) fn json(&self) -> bool {
        match &self.command {
            JweCommand::Keygen(_) => false,
            JweCommand::Encrypt(e) => e.out.json,
            JweCommand::Decrypt(d) => d.out.json,
        }
    }
}

/// Runs `jwe`.
pub(crate) fn run(a: JweArgs) -> Result<(), Failure> {
    match a.command {
        JweCommand::Keygen(k) => {
            let key = KserveKey::generate().map_err(jwe_failure)?;
            write_new(&k.out, key.to_jwk_json().as_bytes(), 0o600)?;
            println!("wrote {} (oct JWK, 256 bits)", k.out.display());
            Ok(())
        }
        JweCommand::Encrypt(e) => {
            let key = read_key(&e.key)?;
            let alg: KserveAlg = e.alg.parse().map_err(jwe_failure)?;
            let (files, skipped, ignored) = if e.input.is_dir() {
                let t = encrypt_tree(&e.input, &e.output, &key, alg, e.max_bytes, e.skip_empty)
                    .map_err(jwe_failure)?;
                (t.files, t.skipped_empty, t.ignored)
            } else {
                let f = encrypt_file(&e.input, &e.output, &key, alg, e.max_bytes)
                    .map_err(jwe_failure)?;
                (vec![f], Vec::new(), Vec::new())
            };
            let total: u64 = files.iter().map(|f| f.plaintext_bytes).sum();
            let jwe: u64 = files.iter().map(|f| f.jwe_bytes).sum();
            let mut notes = String::new();
            if !skipped.is_empty() {
                notes.push_str(&format!("; left out empty file(s): {}", skipped.join(", ")));
            }
            if !ignored.is_empty() {
                notes.push_str(&format!(
                    "; left out git paths (as model_signing and pack do): {}",
                    ignored.join(", ")
                ));
            }
            print(
                e.out.json,
                &serde_json::json!({"alg": alg.as_str(), "enc": "A256GCM", "files": files, "skipped_empty": skipped, "ignored": ignored, "plaintext_bytes": total, "jwe_bytes": jwe}),
                &format!(
                    "encrypted {} file(s), {total} bytes -> {jwe} bytes of JWE ({} + A256GCM) in {}{notes}",
                    files.len(),
                    alg.as_str(),
                    e.output.display(),
                ),
            )
        }
        JweCommand::Decrypt(d) => {
            let key = read_key(&d.key)?;
            let n = decrypt_file(&d.input, &d.output, &key, d.max_bytes).map_err(jwe_failure)?;
            print(
                d.out.json,
                &serde_json::json!({"input": d.input, "output": d.output, "plaintext_bytes": n}),
                &format!(
                    "decrypted {} -> {} ({n} bytes)",
                    d.input.display(),
                    d.output.display()
                ),
            )
        }
    }
}
