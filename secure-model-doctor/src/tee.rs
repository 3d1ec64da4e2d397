//! The TEE: which attester a `kbs:` key (or confidential mode with a direct KBS) would use,
//! why, and whether it produces evidence now.

use secure_model_core::attest::AttesterChoice;
use secure_model_core::ErrorClass;
use secure_model_settings::Settings;

use crate::Check;

/// Whether anything in this configuration attests in this process: a `kbs:` key spec, or
/// confidential mode fetching directly from a KBS (the CDH attests for the pod otherwise).
fn attestation_needed(settings: &Settings) -> bool {
    let direct_kbs = settings
        .confidential
        .as_ref()
        .is_some_and(|c| c.kbs_url.is_some());
    let kbs_spec = settings.keys.iter().any(|s| s.starts_with("kbs:"));
    let passport = settings.kbs.token_file.is_some();
    (direct_kbs || kbs_spec) && !passport
}

/// The TEE check.
pub(crate) async fn check(settings: &Settings) -> Check {
    let needed = attestation_needed(settings);
    let choice = &settings.kbs.attester;
    let attester = match choice.build(settings.kbs.relax) {
        Ok(a) => a,
        Err(e) if needed => {
            return Check::fail(
                "tee",
                ErrorClass::Config,
                format!(
                    "{}: {}",
                    describe(choice),
                    secure_model_core::chain_message(&e)
                ),
                no_tee_advice(&e),
            )
        }
        Err(e) => {
            return Check::ok(
                "tee",
                format!(
                    "not needed (no kbs: key, no direct KBS); {}: {}",
                    describe(choice),
                    secure_model_core::chain_message(&e)
                ),
            )
        }
    };
    let what = format!("{} via {}", attester.tee(), attester.interface());
    let mut rd = [0u8; 48];
    if secure_model_core::crypto::random_fill(&mut rd).is_err() {
        return Check::fail(
            "tee",
            ErrorClass::Internal,
            "the system random number generator failed",
            "check the kernel's entropy source",
        );
    }
    match attester.evidence(&rd).await {
        Ok(_) if attester.tee() == secure_model_core::attest::TeeType::Sample => Check::warn(
            "tee",
            format!("{what}: evidence produced, but it proves nothing"),
            "the sample attester is for development only; a KBS in production refuses it",
        ),
        Ok(_) => Check::ok("tee", format!("{what}: evidence produced now")),
        Err(e) => Check::fail(
            "tee",
            ErrorClass::Internal,
            format!("{what}: {}", secure_model_core::chain_message(&e)),
            "the TEE interface exists but refused a report: check the kernel log (dmesg) and the VM's firmware",
        ),
    }
}

/// What to do when the attester cannot be built although a `kbs:` key needs one (names the
/// variables: the CLI's `pull` and `doctor` have no attester flags).
fn no_tee_advice(e: &secure_model_core::attest::AttestError) -> &'static str {
    use secure_model_core::attest::AttestError;
    match e {
        AttestError::SampleNotAllowed => "SECURE_MODEL_ATTESTER=sample also needs SECURE_MODEL_ALLOW_SAMPLE_ATTESTER=true (development only: a KBS in production refuses sample evidence)",
        AttestError::NoTee { asked: Some(_), .. } => "SECURE_MODEL_ATTESTER names a TEE this node does not have: run in that kind of confidential VM, or leave it unset (auto-detection)",
        _ => "run in a confidential VM (a Kata/CoCo runtime class), or set SECURE_MODEL_ATTESTER to the TEE interface this node has (tsm:DIR, sev-guest:DEVICE); development only: SECURE_MODEL_ATTESTER=sample with SECURE_MODEL_ALLOW_SAMPLE_ATTESTER=true",
    }
}

/// How the choice was made, in words.
fn describe(choice: &AttesterChoice) -> String {
    match choice {
        AttesterChoice::Auto => "auto-detection (configfs-tsm, then /dev/sev-guest)".into(),
        AttesterChoice::Sample => "the sample attester (SECURE_MODEL_ATTESTER=sample)".into(),
        AttesterChoice::Tsm(root) => format!("configfs-tsm at {}", root.display()),
        AttesterChoice::Tee(tee) => format!("SECURE_MODEL_ATTESTER={tee}"),
        AttesterChoice::SevGuest(dev) => format!("SEV-SNP guest device {}", dev.display()),
        other => format!("{other:?}"),
    }
}
