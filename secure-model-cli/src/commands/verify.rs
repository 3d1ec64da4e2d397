//! `verify`: signature, structure, ciphertext digests; with `--key` also every plaintext.

use clap::Args;
use secure_model_settings::registry::{flag_item, MANIFEST_DIGEST};
use secure_model_settings::Source;

use super::{loader, open, print_json, settings, KeyArgs, Output, Res, TrustArgs};
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
    /// With a key (`--key` or SECURE_MODEL_KEYS) also decrypt and check every signed plaintext
    /// digest, exactly as a pull does (nothing is written).
    #[command(flatten)]
    keys: KeyArgs,
    /// Require the manifest to have this SHA-256 (hex).
    #[arg(long, value_parser = flag_item(&MANIFEST_DIGEST))]
    manifest_digest: Vec<[u8; 32]>,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// Runs `verify`.
pub(crate) async fn run(a: VerifyArgs, src: &Source) -> Res {
    let src = a
        .keys
        .apply(a.trust.apply(src))
        .with_list(&MANIFEST_DIGEST, a.manifest_digest);
    let settings = settings(&src)?;
    // A configured key (flag or SECURE_MODEL_KEYS, as for pull) decrypts too.
    let providers = settings.key_providers()?;
    let decrypt = !providers.is_empty();
    let loader = loader(&settings, providers, Bar::new("verifying", a.output.json))?;
    let store = open(&a.pkg, false, &settings)?;
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
        None => println!("(no key given: plaintext not checked; pass --key to check it)"),
    }
    Ok(())
}
