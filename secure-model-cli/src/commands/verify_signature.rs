//! `verify-signature`: a plain OpenSSF model signature of an unencrypted model directory.

use std::io::Read as _;
use std::path::PathBuf;

use clap::Args;
use secure_model_core::format::Limits;
use secure_model_core::package::check_model_dir;
use secure_model_core::verify::verify_model_signature;
use secure_model_settings::Source;

use secure_model_settings::trust::TrustSources;

use super::{print_json, Failure, Output, Res, TrustArgs};

/// Arguments of `verify-signature`.
#[derive(Debug, Args)]
pub(crate) struct VerifySignatureArgs {
    /// The model directory that was signed.
    model_dir: PathBuf,
    /// The signature bundle (`model_signing sign ... --signature`, default `model.sig`).
    #[arg(long, default_value = "model.sig")]
    signature: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// What `verify-signature --json` prints.
#[derive(Debug, serde::Serialize)]
struct Report {
    model_name: String,
    signer: String,
    files: usize,
    bytes: u64,
}

fn read_signature(a: &VerifySignatureArgs, limits: &Limits) -> Result<Vec<u8>, Failure> {
    let f = std::fs::File::open(&a.signature).map_err(|e| {
        Failure::config(format!(
            "cannot read signature {}: {e}",
            a.signature.display()
        ))
    })?;
    let mut bytes = Vec::new();
    f.take(limits.max_manifest_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| {
            Failure::config(format!(
                "cannot read signature {}: {e}",
                a.signature.display()
            ))
        })?;
    Ok(bytes)
}

/// Runs `verify-signature`.
pub(crate) fn run(a: VerifySignatureArgs, src: &Source) -> Res {
    // Only the trust part of the settings: nothing else is needed to check a directory.
    let policy = TrustSources::from_source(&a.trust.apply(src))?.load()?;
    let limits = Limits::default();
    let bytes = read_signature(&a, &limits)?;
    let sig = verify_model_signature(&bytes, &policy, &limits)?;
    let check = check_model_dir(&a.model_dir, &sig, Some(&a.signature))?;
    let r = Report {
        model_name: sig.name().into(),
        signer: sig.signer().to_string(),
        files: check.files,
        bytes: check.bytes,
    };
    if a.output.json {
        return print_json(&r);
    }
    println!(
        "OK: signature by trusted signer {} over model {:?}",
        r.signer, r.model_name
    );
    println!(
        "OK: {} files ({} bytes) match their signed SHA-256",
        r.files, r.bytes
    );
    Ok(())
}
