//! `inspect`: what a package says about itself, without verifying it.

use clap::Args;
use secure_model_core::format::{KeysFile, Limits, KEYS_OBJECT, MANIFEST_OBJECT};
use secure_model_core::verify::parse_unverified;
use secure_model_settings::Source;

use super::{open, print_json, settings, Output, Res};

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Package location: `s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`, `az://ACCOUNT/CONTAINER/PREFIX`,
    /// `https://HOST/PATH` (read-only), a directory or `file://` URI (KServe's `secure+` forms
    /// too). Credentials: `secure-model settings` and docs/storage.md.
    pkg: String,
    #[command(flatten)]
    pub(crate) output: Output,
}

#[derive(serde::Serialize)]
struct InspectFile {
    path: String,
    object: String,
    plaintext_size: u64,
    ciphertext_size: u64,
    /// The plaintext SHA-256 of a file hashed whole with SHA-256, else null.
    plaintext_sha256: Option<String>,
    /// The signed plaintext digests (hex): one, or one per shard.
    plaintext_digests: Vec<String>,
}

#[derive(serde::Serialize)]
struct InspectReport {
    format: String,
    signature_verified: bool,
    model_name: String,
    model_id: String,
    manifest_digest: String,
    signer_key_hint: String,
    segment_size: u32,
    /// Plaintext hash algorithm (`sha256`, `blake2b`, `blake3`).
    hash: String,
    /// Shard size of a `shards` serialization, null for `files`.
    shard_size: Option<u64>,
    files: Vec<InspectFile>,
    recipients: Vec<String>,
    plaintext_bytes: u64,
    ciphertext_bytes: u64,
}

fn print_human(location: &str, r: &InspectReport) {
    println!("package     {location}");
    println!("format      {} (segment size {})", r.format, r.segment_size);
    println!("model       {:?}  id {}", r.model_name, r.model_id);
    println!("manifest    sha256 {}", r.manifest_digest);
    match r.shard_size {
        Some(z) => println!("hashing     {} of {z}-byte shards", r.hash),
        None => println!("hashing     {} of every file", r.hash),
    }
    println!(
        "signer hint {}  (NOT verified here; run `secure-model verify`)",
        r.signer_key_hint
    );
    println!("recipients  {}", r.recipients.join(", "));
    println!(
        "files       {} ({} bytes plaintext, {} bytes ciphertext)",
        r.files.len(),
        r.plaintext_bytes,
        r.ciphertext_bytes
    );
    for f in &r.files {
        println!("  {:>12}  {}  {}", f.plaintext_size, f.object, f.path);
    }
}

/// Runs `inspect`.
pub(crate) async fn run(a: InspectArgs, src: &Source) -> Res {
    let store = open(&a.pkg, false, &settings(src)?)?;
    let limits = Limits::default();
    let bytes = store
        .get(MANIFEST_OBJECT, limits.max_manifest_bytes)
        .await?;
    let m = parse_unverified(&bytes, &limits)?;
    let keys = store.get(KEYS_OBJECT, limits.max_keys_file_bytes).await?;
    let kf = KeysFile::parse(&keys, &limits)?;
    let r = InspectReport {
        format: secure_model_core::format::ENCRYPTION_FORMAT.into(),
        signature_verified: false,
        model_name: m.model_name().into(),
        model_id: m.model_id().into(),
        manifest_digest: hex::encode(m.digest()),
        signer_key_hint: m.signer_hint().into(),
        segment_size: m.params().segment_size(),
        hash: m.hashing().algorithm().name().into(),
        shard_size: m.hashing().shard_size(),
        files: m
            .files()
            .iter()
            .map(|f| InspectFile {
                path: f.path().into(),
                object: f.object().into(),
                plaintext_size: f.plaintext_size(),
                ciphertext_size: f.ciphertext_size(),
                plaintext_sha256: f.plaintext_sha256().map(hex::encode),
                plaintext_digests: f.digests().digests().iter().map(|d| d.to_hex()).collect(),
            })
            .collect(),
        recipients: kf
            .recipients
            .iter()
            .map(|e| secure_model_core::keys::shown_recipient(&e.provider, &e.key_ref))
            .collect(),
        plaintext_bytes: m.total_plaintext(),
        ciphertext_bytes: m.total_ciphertext(),
    };
    if a.output.json {
        return print_json(&r);
    }
    print_human(store.location(), &r);
    Ok(())
}
