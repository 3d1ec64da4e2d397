//! `inspect`: what a package says about itself, without verifying it.

use clap::Args;
use secure_model_core::format::{KeysFile, Limits, KEYS_OBJECT, MANIFEST_OBJECT};
use secure_model_core::verify::parse_unverified;
use secure_model_settings::Source;

use super::{open, print_json, Output, Res};

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
    plaintext_sha256: String,
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
    let store = open(&a.pkg, false, src)?;
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
        files: m
            .files()
            .iter()
            .map(|f| InspectFile {
                path: f.path().into(),
                object: f.object().into(),
                plaintext_size: f.plaintext_size(),
                ciphertext_size: f.ciphertext_size(),
                plaintext_sha256: hex::encode(f.plaintext_sha256()),
            })
            .collect(),
        recipients: kf
            .recipients
            .iter()
            .map(|e| format!("{}:{}", e.provider, e.key_ref))
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
