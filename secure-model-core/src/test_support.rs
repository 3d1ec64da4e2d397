//! Test seams, compiled only with the `test-support` feature: the configfs-tsm emulation, the
//! KBS error-body mapping and the AWS SDK this crate was built with. For this workspace's
//! integration tests and for embedders' own tests; a production build never enables it (the
//! binaries do not), so none of this is reachable there.

use std::path::Path;
use std::sync::Arc;

pub use crate::attest::tsm::TsmEmulation;
use crate::attest::{AttestError, TsmAttester};
use crate::keys::kbs::KbsError;

/// A configfs-tsm attester on a directory tree driven by `emulation` instead of the kernel.
/// No CC event log is read.
///
/// # Errors
/// As [`TsmAttester::open`].
pub fn open_emulated_tsm(
    root: impl AsRef<Path>,
    emulation: Arc<dyn TsmEmulation>,
) -> Result<TsmAttester, AttestError> {
    TsmAttester::open_emulated(root.as_ref(), emulation)
}

/// How the KBS client maps an error response (`{"type":".../<Kind>","detail":..}`) at `stage`
/// with HTTP `status`: the mapping the known-answer tests pin.
pub fn kbs_server_error(stage: &'static str, status: u16, body: &[u8]) -> KbsError {
    crate::keys::kbs::server_error(stage, status, body)
}

/// The AWS SDK for KMS this crate was built with, to build a client for
/// [`crate::keys::AwsKmsKeyProvider::with_client`] in tests against a local KMS.
#[cfg(feature = "aws-kms")]
pub use aws_sdk_kms;
