//! `attest`: TEE evidence over report data, as a KBS would receive it.

use clap::Args;
use secure_model_core::attest::{AttesterChoice, MAX_REPORT_DATA};
use secure_model_settings::registry::{flag_value, ALLOW_SAMPLE_ATTESTER, ATTESTER};
use secure_model_settings::Source;

use super::{print_json, settings, Failure, Res};

/// Arguments of `attest`.
#[derive(Debug, Args)]
pub(crate) struct AttestArgs {
    /// Which TEE interface: auto, tdx, snp, cca, tsm, tsm:DIR, sev-guest, sev-guest:DEVICE,
    /// sample (see docs/attestation.md); default SECURE_MODEL_ATTESTER or auto. An unknown
    /// name is a configuration error (exit 3), like any attester selection error.
    #[arg(long, value_parser = flag_value(&ATTESTER))]
    attester: Option<AttesterChoice>,
    /// Allow the `sample` attester (no TEE; development only); or
    /// SECURE_MODEL_ALLOW_SAMPLE_ATTESTER.
    #[arg(long)]
    allow_sample: bool,
    /// Report data as hex, at most 64 bytes (zero-padded to 64 for TDX, SNP and CCA).
    /// Default: 48 random bytes, the size of the KBS binding hash.
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
}

#[derive(serde::Serialize)]
struct AttestReport {
    tee: String,
    report_data: String,
    evidence: serde_json::Value,
}

fn report_data(hex_text: Option<&str>) -> Result<Vec<u8>, Failure> {
    match hex_text {
        Some(h) => {
            let b =
                hex::decode(h.trim()).map_err(|_| Failure::config("--report-data is not hex"))?;
            if b.len() > MAX_REPORT_DATA {
                return Err(Failure::config(format!(
                    "--report-data is {} bytes; at most {MAX_REPORT_DATA} are accepted",
                    b.len()
                )));
            }
            Ok(b)
        }
        None => {
            let mut b = vec![0u8; 48];
            secure_model_core::crypto::random_fill(&mut b)
                .map_err(|_| Failure::internal("the system random number generator failed"))?;
            Ok(b)
        }
    }
}

/// Runs `attest`.
pub(crate) async fn run(a: AttestArgs, src: &Source) -> Res {
    let src = src
        .clone()
        .with(&ATTESTER, a.attester)
        .switch(&ALLOW_SAMPLE_ATTESTER, a.allow_sample);
    let report_data = report_data(a.report_data.as_deref())?;
    let kbs = settings(&src)?.kbs;
    let attester = kbs.attester.build(kbs.relax)?;
    let evidence = attester.evidence(&report_data).await?;
    print_json(&AttestReport {
        tee: attester.tee().to_string(),
        report_data: hex::encode(&report_data),
        evidence,
    })
}
