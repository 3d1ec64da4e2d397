//! Test seams, compiled only with the `test-support` feature: the configfs-tsm emulation, the
//! KBS error-body mapping, the AWS SDK this crate was built with, and the KBS/CDH response
//! parsers the fuzz targets drive ([`parsers`]). For this workspace's
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

/// The parsers of untrusted bytes that have no public entry point of their own (they run
/// inside the KBS and CDH clients' HTTP exchanges), each exactly as the client calls it: for
/// the fuzz targets (`fuzz/`, harnesses in `secure-model-fuzz`) and the bounded-allocation
/// tests. Everything else those targets parse goes through the public API.
pub mod parsers {
    use zeroize::Zeroizing;

    use crate::crypto::Kek;
    use crate::keys::cdh::CdhError;
    use crate::keys::kbs::{KbsError, TeeKeyPair};

    /// The nonce of a KBS `auth` response body.
    ///
    /// # Errors
    /// [`KbsError::Protocol`] for anything but a challenge with a 1..=1024 character nonce.
    pub fn kbs_challenge(body: &[u8]) -> Result<String, KbsError> {
        crate::keys::kbs::parse_challenge(body)
    }

    /// The token of a KBS `attest` response body.
    ///
    /// # Errors
    /// [`KbsError::Protocol`] for anything but `{"token": ...}`.
    pub fn kbs_token(body: &[u8]) -> Result<Zeroizing<String>, KbsError> {
        crate::keys::kbs::parse_token(body)
    }

    /// The plaintext of a KBS `resource` response body (a flattened JWE) under `key`.
    ///
    /// # Errors
    /// [`KbsError::ResponseJwe`] for a malformed or refused JWE, the opaque
    /// [`KbsError::DecryptionFailed`] for one that does not decrypt.
    pub fn kbs_resource(body: &[u8], key: &TeeKeyPair) -> Result<Zeroizing<Vec<u8>>, KbsError> {
        crate::keys::kbs::open_resource(body, key)
    }

    /// The session cookie the KBS client takes from an `auth` response's headers.
    pub fn kbs_session_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
        crate::keys::kbs::session_cookie(headers)
    }

    /// A CDH response with HTTP `status` and `body`, as the CDH client maps it.
    ///
    /// # Errors
    /// [`CdhError::Status`] for a status other than 2xx.
    pub fn cdh_response(
        resource: &str,
        status: u16,
        body: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>, CdhError> {
        crate::keys::cdh::response(resource.to_owned(), status, Zeroizing::new(body))
    }

    /// A KEK read from released resource bytes (32 raw bytes, 64 hex or 44 base64
    /// characters), as the `kbs` recipient and the `local` key file read it.
    pub fn kek_from_bytes(bytes: &[u8]) -> Option<Kek> {
        crate::keys::parse_kek(bytes)
    }
}
