//! `pack`: encrypt and sign a model directory into a package.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use secure_model_core::crypto::streaming::StreamParams;
use secure_model_core::crypto::HashAlgorithm;
use secure_model_core::format::Hashing;
use secure_model_core::loader::Progress;
use secure_model_core::package::{self, PackOptions};
use secure_model_core::verify::{CertificateSigningKey, SigningKey, StatementSigner};
use secure_model_settings::registry::{
    flag_item, flag_value, CERTIFICATE_CHAIN, SIGNING_CERTIFICATE, SIGNING_KEY,
};
use secure_model_settings::Source;

use super::{key_providers_of, open, print_json, settings, Failure, Output, Res};
use crate::progress::Bar;

/// Arguments of `pack`.
#[derive(Debug, Args)]
pub(crate) struct PackArgs {
    /// Model directory to encrypt (regular files only; the top-level git paths `.git`,
    /// `.gitattributes`, `.github` and `.gitignore` are left out, as model_signing does, and
    /// listed).
    model_dir: PathBuf,
    /// Package destination: `s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`,
    /// `az://ACCOUNT/CONTAINER/PREFIX`, a directory or `file://` URI (HTTPS mirrors are
    /// read-only). Credentials: `secure-model settings` and docs/storage.md.
    dest: String,
    /// PKCS#8 PEM ECDSA private key that signs the manifest (or SECURE_MODEL_SIGNING_KEY):
    /// P-256, or P-256/P-384 with --signing-certificate.
    #[arg(long, value_parser = flag_value(&SIGNING_KEY))]
    signing_key: Option<PathBuf>,
    /// The signing key's leaf certificate (PEM): sign with the certificate chain, as
    /// `model_signing sign certificate` does (or SECURE_MODEL_SIGNING_CERTIFICATE).
    #[arg(long, value_parser = flag_value(&SIGNING_CERTIFICATE))]
    signing_certificate: Option<PathBuf>,
    /// Intermediate CA certificates (PEM) to include after the leaf. Repeatable (or
    /// SECURE_MODEL_CERTIFICATE_CHAIN).
    #[arg(long, value_delimiter = ',', value_parser = flag_item(&CERTIFICATE_CHAIN))]
    certificate_chain: Vec<PathBuf>,
    /// Recipient that can unwrap the data key, `TYPE:ARG` (e.g. `local:keys/kek.bin`).
    /// Repeat for several.
    #[arg(long = "recipient", required = true)]
    recipients: Vec<String>,
    /// Model name written in the manifest (default: the directory name).
    #[arg(long)]
    name: Option<String>,
    /// Ciphertext segment size in bytes (default 1048576, Tink AES256_GCM_HKDF_1MB).
    #[arg(long, default_value_t = 1 << 20)]
    segment_size: u32,
    /// Plaintext hash signed for every file (OpenSSF model signing 1.1): sha256 (what the
    /// upstream `model_signing verify` CLI re-hashes with), blake2b or blake3 (a tree hash:
    /// a pull verifies ranges of one file in parallel).
    #[arg(long, value_enum, default_value_t = HashArg::Sha256)]
    hash: HashArg,
    /// Sign shards of N bytes instead of whole files (`shards` serialization, resources
    /// `path:start:end`); ignored with blake3, which model signing never shards.
    #[arg(long, value_name = "N")]
    shard_size: Option<u64>,
    /// After uploading, read every object back and compare its SHA-256 with what was sent
    /// (without it, every object's stored size is checked: one HEAD each). A mismatch is
    /// uploaded again, twice at most, then the pack fails.
    #[arg(long)]
    verify_upload: bool,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// `--hash`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum HashArg {
    /// SHA-256.
    Sha256,
    /// BLAKE2b-512 (upstream's `blake2`).
    Blake2b,
    /// BLAKE3.
    Blake3,
}

impl HashArg {
    fn algorithm(self) -> HashAlgorithm {
        match self {
            HashArg::Sha256 => HashAlgorithm::Sha256,
            HashArg::Blake2b => HashAlgorithm::Blake2b,
            HashArg::Blake3 => HashAlgorithm::Blake3,
        }
    }
}

/// The hashing `--hash` and `--shard-size` ask for.
fn hashing(a: &PackArgs) -> Result<Hashing, Failure> {
    let alg = a.hash.algorithm();
    match a.shard_size {
        None => Ok(Hashing::files(alg)),
        Some(z) => {
            Hashing::shards(alg, z).map_err(|e| Failure::config(format!("--shard-size: {e}")))
        }
    }
}

/// Reads a PKCS#8 PEM signing key.
pub(crate) fn read_signing_key(path: &Path) -> Result<SigningKey, Failure> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
        Failure::config(format!("cannot read signing key {}: {e}", path.display()))
    })?);
    // Binary content (a KEK file given by mistake) is "not PEM", with its pointer.
    SigningKey::from_pem(std::str::from_utf8(&bytes).unwrap_or_default())
        .map_err(|e| Failure::config(format!("signing key {}: {e}", path.display())))
}

fn read_text(what: &str, path: &Path) -> Result<zeroize::Zeroizing<String>, Failure> {
    std::fs::read_to_string(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| Failure::config(format!("cannot read {what} {}: {e}", path.display())))
}

/// The manifest signer: a bare key, or a key with its certificate chain.
fn statement_signer(src: &Source) -> Result<Box<dyn StatementSigner>, Failure> {
    let key_path = src.get(&SIGNING_KEY)?.ok_or_else(|| {
        Failure::config(
            "no signing key: pass --signing-key KEY.pem (or set SECURE_MODEL_SIGNING_KEY)",
        )
    })?;
    let chain_paths = src.get(&CERTIFICATE_CHAIN)?.unwrap_or_default();
    let Some(leaf_path) = src.get(&SIGNING_CERTIFICATE)? else {
        if !chain_paths.is_empty() {
            return Err(Failure::config(
                "--certificate-chain needs --signing-certificate (the leaf)",
            ));
        }
        return Ok(Box::new(read_signing_key(&key_path)?));
    };
    let mut chain = String::new();
    for p in chain_paths {
        chain.push_str(&read_text("certificate chain", &p)?);
        chain.push('\n');
    }
    let signer = CertificateSigningKey::from_pem(
        &read_text("signing key", &key_path)?,
        &read_text("signing certificate", &leaf_path)?,
        &chain,
    )
    .map_err(|e| Failure::config(format!("signing key {}: {e}", key_path.display())))?;
    Ok(Box::new(signer))
}

/// Runs `pack`.
pub(crate) async fn run(a: PackArgs, src: &Source) -> Res {
    let src = src
        .clone()
        .with(&SIGNING_KEY, a.signing_key.clone())
        .with(&SIGNING_CERTIFICATE, a.signing_certificate.clone())
        .with_list(&CERTIFICATE_CHAIN, a.certificate_chain.clone());
    let signer = statement_signer(&src)?;
    let settings = settings(&src)?;
    let recipients = key_providers_of(&a.recipients, &settings)?;
    let params = StreamParams::new(a.segment_size)
        .map_err(|e| Failure::config(format!("--segment-size: {e}")))?;
    let store = open(&a.dest, true, &settings)?;
    let bar: Arc<dyn Progress> = Arc::new(Bar::new("packing", a.output.json));
    let mut opts = PackOptions::default()
        .with_params(params)
        .with_hashing(hashing(&a)?)
        .with_verify_upload(a.verify_upload)
        .with_progress(bar);
    if let Some(n) = a.name {
        opts = opts.with_model_name(n);
    }
    let r = package::pack(
        &a.model_dir,
        store.as_ref(),
        signer.as_ref(),
        &recipients,
        &opts,
    )
    .await?;
    if a.output.json {
        return print_json(&r);
    }
    println!(
        "packed {} files ({} bytes) of model {:?} into {}",
        r.files,
        r.plaintext_bytes,
        r.model_name,
        store.location()
    );
    println!("model_id        {}", r.model_id);
    println!(
        "manifest sha256 {}  (pin it with --manifest-digest to refuse rollbacks)",
        r.manifest_digest
    );
    for rc in &r.recipients {
        println!("recipient       {rc}");
    }
    if !r.ignored.is_empty() {
        println!(
            "left out        {} (git paths, as model_signing leaves them out)",
            r.ignored.join(", ")
        );
    }
    Ok(())
}
