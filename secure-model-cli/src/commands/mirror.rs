//! `mirror`: copy a package verbatim to another location after checking its signature and
//! every ciphertext object; no key needed.

use clap::Args;
use secure_model_core::package::{mirror, MirrorOptions};
use secure_model_settings::registry::{flag_item, MANIFEST_DIGEST};
use secure_model_settings::Source;

use super::{open, print_json, settings, Output, Res, TrustArgs};

/// Arguments of `mirror`.
#[derive(Debug, Args)]
pub(crate) struct MirrorArgs {
    /// Package to copy (any location `pull` reads, `secure+` forms too).
    src: String,
    /// Where to copy it: a directory, `file://`, `s3://`, `gs://` or `az://` location, empty
    /// or holding an earlier (possibly interrupted) mirror of the same package.
    dest: String,
    #[command(flatten)]
    trust: TrustArgs,
    /// Require the manifest to have this SHA-256 (hex).
    #[arg(long, value_parser = flag_item(&MANIFEST_DIGEST))]
    manifest_digest: Vec<[u8; 32]>,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// Runs `mirror`.
pub(crate) async fn run(a: MirrorArgs, src: &Source) -> Res {
    let src = a
        .trust
        .apply(src)
        .with_list(&MANIFEST_DIGEST, a.manifest_digest);
    let settings = settings(&src)?;
    let mut opts = MirrorOptions::default();
    opts.range_attempts = settings.load.range_attempts;
    opts.concurrency = settings.load.file_concurrency;
    if let Some(pin) = settings.single_pin()? {
        opts = opts.pin_manifest_digest(pin);
    }
    let from = open(&a.src, false, &settings)?;
    let to = open(&a.dest, true, &settings)?;
    let r = mirror(
        from.as_ref(),
        to.as_ref(),
        &settings.trust_policy()?,
        &Default::default(),
        &opts,
    )
    .await?;
    if a.output.json {
        return print_json(&r);
    }
    if r.up_to_date {
        println!(
            "{} already holds model {:?} ({}), every object matching its signed digest; nothing written",
            to.location(),
            r.model_name,
            r.model_id
        );
        return Ok(());
    }
    println!(
        "mirrored model {:?} ({}, signed by {}) to {}: {} objects copied ({} bytes), {} already there, in {:.2}s",
        r.model_name,
        r.model_id,
        r.signer,
        to.location(),
        r.copied,
        r.bytes_copied,
        r.already_present,
        r.seconds
    );
    Ok(())
}
