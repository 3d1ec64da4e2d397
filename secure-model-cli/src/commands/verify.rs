//! `verify`: signature, structure, ciphertext digests; with `--key` also every plaintext.

use clap::Args;
use secure_model_settings::registry::{flag_value, MANIFEST_DIGEST};
use secure_model_settings::Source;

use super::{key_providers_of, loader, open, print_json, Output, Res, TrustArgs};
use crate::progress::Bar;

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Package location: `s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`, `az://ACCOUNT/CONTAINER/PREFIX`,
    /// `https://HOST/PATH` (read-only), a directory or `file://` URI (KServe's `secure+` forms
    /// too). Credentials: `secure-model settings` and docs/storage.md.
    pkg: String,
    #[command(flatten)]
    trust: TrustArgs,
    /// Also decrypt with this key (`TYPE:ARG`) and check every plaintext SHA-256 (nothing is
    /// written).
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Require the manifest to have this SHA-256 (hex).
    #[arg(long, value_parser = flag_value(&MANIFEST_DIGEST))]
    manifest_digest: Option<String>,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// Runs `verify`.
pub(crate) async fn run(a: VerifyArgs, src: &Source) -> Res {
    let src = a
        .trust
        .apply(src)
        .flag(&MANIFEST_DIGEST, a.manifest_digest.as_ref());
    // Only an explicit --key decrypts: SECURE_MODEL_KEYS alone does not turn it on.
    let decrypt = !a.keys.is_empty();
    let providers = key_providers_of(&a.keys, &src)?;
    let loader = loader(&src, providers, Bar::new("verifying", a.output.json))?;
    let store = open(&a.pkg, false, &src)?;
    let r = loader.verify_package(store, decrypt).await?;
    if a.output.json {
        return print_json(&r);
    }
    println!(
        "OK: signature by trusted signer {} over model {:?} ({})",
        r.signer, r.model_name, r.model_id
    );
    println!(
        "OK: {} ciphertext objects match their signed sizes and SHA-256",
        r.files
    );
    match &r.decrypted_with {
        Some(rc) => println!(
            "OK: decrypted with {rc}; {} plaintext bytes match their signed SHA-256",
            r.plaintext_bytes
        ),
        None => println!("(no --key given: plaintext not checked)"),
    }
    Ok(())
}
