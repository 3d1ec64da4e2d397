//! Sigstore keyless bundles, verified by `sigstore-verify` (the sigstore-rust project) with
//! our ring provider: the Fulcio chain to the trusted root at every verified signing time,
//! the SCT against the CT log keys, the Rekor entry (inclusion proof, signed checkpoint,
//! signed entry timestamp; Rekor v2 entries with RFC 3161 timestamps), the certificate's
//! validity at the signing time, and the identity and issuer extensions. Bundle media types
//! v0.1, v0.2 and v0.3.
//!
//! The trusted root is Sigstore's public-good root embedded in `sigstore-verify` (no TUF
//! fetch: the binaries never go online to learn whom to trust) or a `trusted_root.json` /
//! `ClientTrustConfig` file for a private Sigstore instance, as `model_signing verify sigstore
//! --trust_config` takes.

use std::fmt;
use std::sync::Arc;

use sigstore_verify::trust_root::{TrustedRoot, SIGSTORE_PRODUCTION_TRUSTED_ROOT};
use sigstore_verify::types::{Bundle as SigstoreBundle, DerPublicKey, Sha256Hash};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

use super::policy::IdentityMatch;
use super::VerifyError;

/// Longest trusted root document accepted, bytes.
pub const MAX_TRUSTED_ROOT_BYTES: usize = 4 << 20;
/// Longest reason text kept from `sigstore-verify` (it may quote bundle contents).
const MAX_REASON_CHARS: usize = 300;
/// `mediaType` of a `ClientTrustConfig` (what `model_signing --trust_config` reads).
const CLIENT_TRUST_CONFIG: &str = "application/vnd.dev.sigstore.clienttrustconfig";

/// Why a Sigstore keyless check refused a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeylessError {
    /// The bundle is not a Sigstore bundle this verifier reads.
    #[error("not a valid Sigstore bundle: {0}")]
    Bundle(String),
    /// `sigstore-verify` refused it (chain, SCT, log entry, timestamps, signature).
    #[error("Sigstore verification failed: {0}")]
    Verification(String),
    /// The certificate's identity does not match the policy.
    #[error("certificate identity {actual:?} does not match {expected}")]
    Identity {
        /// The policy's identity.
        expected: String,
        /// The certificate's (untrusted text, escaped; empty when absent).
        actual: String,
    },
    /// The certificate's OIDC issuer is not the policy's.
    #[error("certificate issuer {actual:?} is not {expected:?}")]
    Issuer {
        /// The policy's issuer.
        expected: String,
        /// The certificate's (escaped; empty when absent).
        actual: String,
    },
}

/// Untrusted text for messages: control characters replaced, cut to a bounded length.
fn shown(text: &str) -> String {
    super::bundle::shown_up_to(text, MAX_REASON_CHARS)
}

/// The identity and issuer a verified keyless certificate carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeylessClaims {
    /// Certificate identity (SAN).
    pub identity: String,
    /// OIDC issuer (Fulcio extension).
    pub issuer: String,
}

/// A Sigstore trusted root (Fulcio CAs, CT logs, Rekor logs, TSAs), parsed and checked once.
#[derive(Clone)]
pub struct SigstoreRoot {
    label: String,
    verifier: Arc<Verifier>,
}

impl fmt::Debug for SigstoreRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigstoreRoot")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl SigstoreRoot {
    /// Sigstore's public-good trusted root, as embedded in `sigstore-verify` 0.15.1.
    ///
    /// # Errors
    /// [`VerifyError::InvalidPolicy`] if the embedded root does not load (a build defect).
    pub fn public_good() -> Result<Self, VerifyError> {
        Self::build("public-good", SIGSTORE_PRODUCTION_TRUSTED_ROOT)
    }

    /// A custom root: a `trusted_root.json` (`application/vnd.dev.sigstore.trustedroot+json`)
    /// or a `ClientTrustConfig` holding one (what `model_signing --trust_config` reads).
    /// `label` names it in messages (a file path, for example).
    ///
    /// # Errors
    /// [`VerifyError::InvalidPolicy`] for oversized, malformed or invalid trust material.
    pub fn from_json(label: impl Into<String>, json: &str) -> Result<Self, VerifyError> {
        let label = label.into();
        if json.len() > MAX_TRUSTED_ROOT_BYTES {
            return Err(VerifyError::InvalidPolicy {
                reason: format!("trusted root {label}: larger than {MAX_TRUSTED_ROOT_BYTES} bytes"),
            });
        }
        let doc: serde_json::Value =
            serde_json::from_str(json).map_err(|e| VerifyError::InvalidPolicy {
                reason: format!("trusted root {label}: not JSON: {e}"),
            })?;
        let is_client_config = doc
            .get("mediaType")
            .and_then(|m| m.as_str())
            .is_some_and(|m| m.starts_with(CLIENT_TRUST_CONFIG));
        if is_client_config {
            let root = doc.get("trustedRoot").ok_or(VerifyError::InvalidPolicy {
                reason: format!("trusted root {label}: ClientTrustConfig without trustedRoot"),
            })?;
            return Self::build(&label, &root.to_string());
        }
        Self::build(&label, json)
    }

    fn build(label: &str, json: &str) -> Result<Self, VerifyError> {
        super::provider::ensure_installed();
        let bad = |e: &dyn fmt::Display| VerifyError::InvalidPolicy {
            reason: format!("trusted root {label}: {}", shown(&e.to_string())),
        };
        let root = TrustedRoot::from_json(json).map_err(|e| bad(&e))?;
        let verifier = Verifier::new(&root).map_err(|e| bad(&e))?;
        Ok(Self {
            label: label.into(),
            verifier: Arc::new(verifier),
        })
    }

    /// The label given at construction (`public-good` for the embedded root).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Verifies a keyless bundle whose DSSE statement (or message digest) binds the SHA-256
    /// `digest`, and matches the certificate's identity and issuer to the policy.
    pub(crate) fn verify_digest(
        &self,
        bundle_json: &str,
        digest: [u8; 32],
        identity: &IdentityMatch,
        issuer: &str,
    ) -> Result<KeylessClaims, KeylessError> {
        let bundle = parse_bundle(bundle_json)?;
        self.check(Sha256Hash::new(digest), &bundle, identity, issuer)
    }

    /// Verifies a keyless bundle over `artifact` (the signed blob, or for a DSSE in-toto
    /// bundle the blob its statement names), with the identity and issuer policy. This is the
    /// entry point of the Sigstore conformance suite; model signatures go through the
    /// [`crate::verify::TrustPolicy`].
    ///
    /// # Errors
    /// The [`KeylessError`] of the first failed check.
    pub fn verify_artifact(
        &self,
        bundle_json: &str,
        artifact: &[u8],
        identity: &IdentityMatch,
        issuer: &str,
    ) -> Result<KeylessClaims, KeylessError> {
        let bundle = parse_bundle(bundle_json)?;
        self.check(artifact, &bundle, identity, issuer)
    }

    /// Verifies a managed-key Sigstore bundle (public key hint, logged in Rekor) over
    /// `artifact` with the SPKI PEM `public_key`: the log entry and any timestamps against
    /// this root, and the signature with the key.
    ///
    /// # Errors
    /// The [`KeylessError`] of the first failed check.
    pub fn verify_artifact_with_key(
        &self,
        bundle_json: &str,
        artifact: &[u8],
        public_key_pem: &str,
    ) -> Result<(), KeylessError> {
        let bundle = parse_bundle(bundle_json)?;
        let key = DerPublicKey::from_pem(public_key_pem)
            .map_err(|e| KeylessError::Verification(shown(&format!("public key: {e}"))))?;
        self.verifier
            .verify(artifact, &bundle, &PublicKeyVerificationPolicy::new(key))
            .map(|_| ())
            .map_err(|e| KeylessError::Verification(shown(&e.to_string())))
    }

    fn check<'a>(
        &self,
        artifact: impl Into<sigstore_verify::types::Artifact<'a>>,
        bundle: &SigstoreBundle,
        identity: &IdentityMatch,
        issuer: &str,
    ) -> Result<KeylessClaims, KeylessError> {
        // Identity is matched here (exact or regex); the issuer by sigstore-verify and again
        // below. Chain, SCT and transparency log checks stay on (no `skip_*`).
        let policy = VerificationPolicy::any_identity().require_issuer(issuer);
        let result = self
            .verifier
            .verify(artifact, bundle, &policy)
            .map_err(|e| KeylessError::Verification(shown(&e.to_string())))?;
        if !(result.certificate_verified() && result.sct_verified() && result.tlog_verified()) {
            return Err(KeylessError::Verification(
                "certificate, SCT or log verification did not run".into(),
            ));
        }
        let actual = result.identity().map(|i| i.as_str()).unwrap_or("");
        if !identity.matches(actual) {
            return Err(KeylessError::Identity {
                expected: identity.to_string(),
                actual: shown(actual),
            });
        }
        let actual_issuer = result.issuer().unwrap_or("");
        if actual_issuer != issuer {
            return Err(KeylessError::Issuer {
                expected: issuer.into(),
                actual: shown(actual_issuer),
            });
        }
        Ok(KeylessClaims {
            identity: actual.into(),
            issuer: actual_issuer.into(),
        })
    }
}

fn parse_bundle(json: &str) -> Result<SigstoreBundle, KeylessError> {
    super::provider::ensure_installed();
    SigstoreBundle::from_json(json).map_err(|e| KeylessError::Bundle(shown(&e.to_string())))
}
