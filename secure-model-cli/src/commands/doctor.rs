//! `doctor`: why will (or did) a pull fail? The checks of `secure-model-doctor`, with this
//! command's flags over the environment.

use clap::Args;
use secure_model_kserve::initializer::Pair;
use secure_model_settings::registry::{flag_item, ALLOW_DISK_PLAINTEXT, MANIFEST_DIGEST};
use secure_model_settings::Source;

use super::{print_json, Failure, KeyArgs, Output, Res};

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// `SRC DEST` pairs, as the init container takes them (SRC: a package location or KServe
    /// storage URI; DEST: the destination directory).
    #[arg(required = true, num_args = 2.., value_names = ["SRC", "DEST"])]
    pairs: Vec<String>,
    #[command(flatten)]
    trust: super::TrustArgs,
    #[command(flatten)]
    keys: KeyArgs,
    /// Plaintext on a disk-backed destination is acceptable.
    #[arg(long)]
    allow_disk_plaintext: bool,
    /// Manifest SHA-256 pin (one per pair, or repeat).
    #[arg(long, value_delimiter = ',', value_parser = flag_item(&MANIFEST_DIGEST))]
    manifest_digest: Vec<[u8; 32]>,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// The `SRC DEST` pairs of `args`.
pub(crate) fn pairs(args: &[String]) -> Result<Vec<Pair>, Failure> {
    Pair::from_args(args).ok_or_else(|| {
        Failure::config(format!(
            "expected SRC DEST pairs, got {} argument(s)",
            args.len()
        ))
    })
}

/// Runs `doctor`; the exit code is the report's (0 when a pull can succeed).
pub(crate) async fn run(a: DoctorArgs, src: &Source) -> Res {
    let src = a
        .keys
        .apply(a.trust.apply(src))
        .with_list(&MANIFEST_DIGEST, a.manifest_digest)
        .switch(&ALLOW_DISK_PLAINTEXT, a.allow_disk_plaintext);
    let report = secure_model_doctor::run(&src, &pairs(&a.pairs)?).await;
    if a.output.json {
        print_json(&report)?;
    } else {
        print!("{}", report.to_text());
    }
    if report.pull_possible {
        return Ok(());
    }
    Err(Failure::reported(report.exit_code))
}
