//! The `sample` attester: evidence `{"svn":"1","report_data":"<base64>"}` accepted by the
//! Trustee `sample` verifier. It proves nothing about the machine.

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{AttestError, Attester, TeeType, MAX_REPORT_DATA};
use crate::danger::{Relaxation, Relaxations};

/// Sample evidence for development and tests. Construction fails unless explicitly allowed,
/// and every use logs a warning.
#[derive(Debug)]
pub struct SampleAttester {
    _allowed: (),
}

impl SampleAttester {
    /// The sample attester, when `relax` carries the operator's explicit opt-in
    /// ([`Relaxations::allow_sample_attester`]).
    ///
    /// # Errors
    /// [`AttestError::SampleNotAllowed`] without it.
    pub fn new(relax: Relaxations) -> Result<Self, AttestError> {
        if !relax.sample_attester() {
            return Err(AttestError::SampleNotAllowed);
        }
        relax.take_effect(Relaxation::SampleAttester, "the sample attester");
        Ok(Self { _allowed: () })
    }
}

#[async_trait]
impl Attester for SampleAttester {
    fn tee(&self) -> TeeType {
        TeeType::Sample
    }

    fn interface(&self) -> String {
        "the sample attester (no TEE)".into()
    }

    async fn evidence(&self, report_data: &[u8]) -> Result<serde_json::Value, AttestError> {
        if report_data.len() > MAX_REPORT_DATA {
            return Err(AttestError::ReportDataTooLong {
                len: report_data.len(),
            });
        }
        tracing::warn!("producing SAMPLE evidence (no TEE)");
        Ok(serde_json::json!({"svn": "1", "report_data": STANDARD.encode(report_data)}))
    }
}
