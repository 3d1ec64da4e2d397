//! The binaries' failure: a class (the exit code), one line of message and an optional hint.
//! Both binaries report through it, so an error means the same exit code everywhere.

use secure_model_core::loader::LoadError;
use secure_model_core::ErrorClass;
use secure_model_kserve::initializer::InitError;
use secure_model_kserve::jwe::KserveJweError;

/// A failure with its class (exit code) and one-line message.
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure {
    /// The class; [`ErrorClass::exit_code`] is the process exit code.
    pub class: ErrorClass,
    /// One line: the error and its causes.
    pub message: String,
    /// What to try, when the cause or class suggests something.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure of `class` with `message`, and the class's hint.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        let hint = match class {
            ErrorClass::Key => Some("is the right --key given, and is it a recipient of this package? (`secure-model inspect`)"),
            ErrorClass::Integrity => Some("the package was modified, is incomplete, or was not signed by a trusted signer (docs/signing.md)"),
            ErrorClass::Destination => Some("use an emptyDir with medium: Memory or /dev/shm, or pass --allow-disk-plaintext"),
            _ => None,
        };
        Self {
            class,
            message: message.into(),
            hint: hint.map(String::from),
        }
    }

    /// A configuration or usage failure.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Config, message)
    }

    /// An internal failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Internal, message)
    }

    /// A failure already reported in full on stdout (the `doctor` report): only its exit
    /// code remains to be returned.
    pub fn reported(exit_code: u8) -> Self {
        let class = [
            ErrorClass::Config,
            ErrorClass::Integrity,
            ErrorClass::Key,
            ErrorClass::Storage,
            ErrorClass::Destination,
        ]
        .into_iter()
        .find(|c| c.exit_code() == exit_code)
        .unwrap_or(ErrorClass::Internal);
        let mut f = Self::new(class, "");
        f.hint = None;
        f
    }

    /// Whether this failure was already reported (see [`Failure::reported`]).
    pub fn is_reported(&self) -> bool {
        self.message.is_empty()
    }

    /// The same failure without a hint (where the class's hint does not apply).
    pub fn without_hint(mut self) -> Self {
        self.hint = None;
        self
    }

    /// The same failure with `hint`.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.class.exit_code()
    }

    /// Prints `error: MESSAGE` (and `hint: HINT`) on stderr and returns the exit code: how a
    /// command-line binary ends on this failure.
    pub fn report(&self) -> std::process::ExitCode {
        if self.is_reported() {
            return std::process::ExitCode::from(self.exit_code());
        }
        eprintln!("error: {}", self.message);
        if let Some(h) = &self.hint {
            eprintln!("hint: {h}");
        }
        std::process::ExitCode::from(self.exit_code())
    }

    /// The failure as one JSON object (`--json` output on failure):
    /// `{"error":{"class","exit_code","message","hint"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "class": self.class.as_str(),
                "exit_code": self.exit_code(),
                "message": self.message,
                "hint": self.hint,
            }
        })
    }

    /// The message on one line, at most `max` characters (for termination logs).
    pub fn one_line(&self, max: usize) -> String {
        self.message
            .chars()
            .filter(|c| *c != '\n')
            .take(max)
            .collect()
    }
}

/// Advice for a destination failure that fits its cause (the class's generic hint would
/// suggest allowing disk plaintext even when the destination is memory-backed but full).
fn destination_hint(e: &LoadError) -> Option<&'static str> {
    match e {
        LoadError::NotMemoryBacked { .. } => Some(
            "use an emptyDir with medium: Memory (or /dev/shm); only if plaintext on this disk is acceptable, pass --allow-disk-plaintext (SECURE_MODEL_ALLOW_DISK_PLAINTEXT=true)",
        ),
        LoadError::DestinationConflict { .. } => Some(
            "choose an empty destination directory, or remove what is in the way: nothing is ever overwritten",
        ),
        LoadError::Destination {
            source: Some(io), ..
        } if io.raw_os_error() == Some(28) || io.kind() == std::io::ErrorKind::StorageFull => Some(
            "the destination is full: raise the emptyDir sizeLimit and the pod's memory limit (tmpfs pages count against it) to the model's size plus headroom",
        ),
        LoadError::TooLargeForMemory { .. } => Some(
            "the model does not fit the in-memory cap or the memory available: raise the cap, or the memory limit",
        ),
        LoadError::MemoryLimit { .. } => Some(
            "raise the loading container's memory limit to the model's size plus 256Mi (the memory-backed volume's pages are charged to the container that writes them)",
        ),
        LoadError::Destination { .. } => {
            Some("check that the destination directory is writable by this user and has room")
        }
        _ => None,
    }
}

/// The load error inside a crate error, if any.
fn load_error(e: &secure_model_core::Error) -> Option<&LoadError> {
    match e {
        secure_model_core::Error::Load(l) => Some(l),
        _ => None,
    }
}

/// Advice for a failure that needs a relaxation the configuration does not grant, naming the
/// setting that opts in.
fn relaxation_hint(e: &secure_model_core::Error) -> Option<&'static str> {
    use secure_model_core::danger::Relaxation;
    use secure_model_core::storage::StorageError;
    let storage = match e {
        secure_model_core::Error::Storage(s) => Some(s),
        secure_model_core::Error::Load(LoadError::Storage(s)) => Some(s),
        _ => None,
    }?;
    match storage {
        StorageError::Relaxation { relaxation, .. } if *relaxation == Relaxation::PlainHttpStorage => Some(
            "use an https:// endpoint; only for a test, an emulator or an air-gapped mirror set SECURE_MODEL_ALLOW_HTTP=true (integrity still holds, but the traffic and any credential cross in clear)",
        ),
        StorageError::Relaxation { .. } => Some(
            "give the store's CA instead (AWS_CA_BUNDLE, GCS_CA_BUNDLE, AZURE_CA_BUNDLE or SECURE_MODEL_CA_BUNDLE)",
        ),
        StorageError::NotFound { key, .. } if key == "manifest.sig" => Some(
            "no package at this location: a package is what `secure-model pack` wrote there (manifest.sig, keys.json, data/); check the path or URI (`secure-model inspect LOCATION` lists one); a plain model directory signed by model_signing is checked with `verify-signature`",
        ),
        StorageError::InvalidLocation { reason, .. } if reason.starts_with("cannot open package directory") => Some(
            "no package at this location: a package is the directory `secure-model pack` wrote (manifest.sig, keys.json, data/); check the path",
        ),
        StorageError::NoResponse { .. } => Some(
            "the store accepted the request but did not answer; if it is just slow, raise SECURE_MODEL_STORAGE_FIRST_BYTE_TIMEOUT_SECS",
        ),
        StorageError::Stalled { .. } => Some(
            "the store stopped sending mid-transfer; if it is just slow, raise SECURE_MODEL_STORAGE_STALL_TIMEOUT_SECS",
        ),
        other if secure_model_core::chain_message(other).contains("169.254.169.254") => Some(
            "no S3 credentials were found, so the client asked the cloud's instance metadata service (169.254.169.254), which refused: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (in KServe, the ServiceAccount's S3 secret), AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN (IRSA), or awsAnonymousCredential for a public bucket (docs/storage.md)",
        ),
        _ => None,
    }
}

/// The first error of type `T` in `e`'s source chain (`e` included).
fn find_in_chain<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

/// Advice for a failure of a `kbs:` key: attestation that cannot start here (no TEE, sample
/// refused), a KBS that cannot be reached or does not answer, and its refusals. Names the
/// variables (the CLI's `pull`, `verify` and `doctor` have no attester flags).
fn kbs_hint(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use secure_model_core::attest::AttestError;
    use secure_model_core::keys::kbs::{KbsError, ServerErrorKind};
    if let Some(a) = find_in_chain::<AttestError>(e) {
        return match a {
            AttestError::NoTee { asked: None, .. } => Some(
                "a kbs: key attests, and this machine shows no TEE: run in a confidential VM (a Kata/CoCo runtime class); if its TEE interface is elsewhere, set SECURE_MODEL_ATTESTER (tsm:DIR or sev-guest:DEVICE); for development only, SECURE_MODEL_ATTESTER=sample with SECURE_MODEL_ALLOW_SAMPLE_ATTESTER=true (docs/attestation.md)",
            ),
            AttestError::NoTee { asked: Some(_), .. } => Some(
                "the attester setting (SECURE_MODEL_ATTESTER, or `attest --attester`) names a TEE this machine does not have: run in that kind of confidential VM, or leave it unset (auto-detection) (docs/attestation.md)",
            ),
            AttestError::SampleNotAllowed => Some(
                "SECURE_MODEL_ATTESTER=sample also needs SECURE_MODEL_ALLOW_SAMPLE_ATTESTER=true (`attest --allow-sample`): development only, a KBS in production refuses sample evidence",
            ),
            _ => None,
        };
    }
    let k = find_in_chain::<KbsError>(e)?;
    if k.is_timeout() {
        return Some(
            "the KBS accepted the request but did not answer within SECURE_MODEL_KBS_TIMEOUT_SECS (default 60 s): check that the URL of the kbs: key is the KBS's and that the KBS and its attestation service are healthy; raise the variable only if attestation is just slow",
        );
    }
    if k.is_unreachable() {
        return Some(
            "the KBS could not be reached: check the URL of the kbs: key (scheme, host, port), that the host name resolves here, and that the network lets this pod reach it (NetworkPolicy; a proxy needs the host outside NO_PROXY or in it as intended); `secure-model doctor` probes it",
        );
    }
    match k {
        KbsError::Server {
            kind: ServerErrorKind::PolicyDeny,
            ..
        } => Some(
            "the KBS's resource policy refused this TEE: check the policy and the attestation result it reads (Trustee's kbs/sample_policies/affirming.rego releases only to TEEs the verifier affirms; docs/attestation.md)",
        ),
        KbsError::Server {
            kind: ServerErrorKind::AttestationFailed,
            ..
        } => Some(
            "the KBS's attestation service refused the evidence: check its attestation policy and reference values for this TEE (docs/attestation.md)",
        ),
        KbsError::Server {
            kind: ServerErrorKind::ResourceUnavailable,
            ..
        } => Some(
            "the KBS has no such resource (Trustee answers 401 for a missing one): check the #repo/type/tag of the kbs: key against the resources stored in the KBS",
        ),
        _ => None,
    }
}

/// The error a [`secure_model_core::Error`] wraps, with the transparent layers peeled off
/// (a transparent layer's `source()` skips the error it wraps, so a search of the source chain
/// must start below it).
fn wrapped(e: &secure_model_core::Error) -> &(dyn std::error::Error + 'static) {
    use secure_model_core::Error as E;
    match e {
        E::Verify(v) | E::Load(LoadError::Verify(v)) => v,
        E::Storage(s) | E::Load(LoadError::Storage(s)) => s,
        E::Format(f) | E::Load(LoadError::Format(f)) => f,
        E::Load(l) => l,
        E::Pack(p) => p,
        E::Key(k) => k,
        E::Unlock(u) => u,
        E::Crypto(c) => c,
        E::Attest(a) => a,
        other => other,
    }
}

/// Advice for an integrity failure that fits its cause, instead of the class's generic "the
/// package was modified…": a signer that is not trusted, a manifest that is not the pinned one,
/// a plain model directory that differs from its signature.
fn integrity_hint(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use secure_model_core::package::PackError;
    use secure_model_core::verify::{RefusalReason, VerifyError};
    if let Some(v) = find_in_chain::<VerifyError>(e) {
        return match v {
            VerifyError::SignatureInvalid { refusals, .. }
                if !refusals.0.is_empty()
                    && refusals
                        .0
                        .iter()
                        .all(|r| matches!(r.reason, RefusalReason::Signature)) =>
            {
                Some("none of the trusted keys signed this manifest: if the signer the bundle names is your publisher, trust its public key (--trusted-key or SECURE_MODEL_TRUSTED_KEYS; `secure-model inspect` shows the package's signer hint); otherwise the manifest was re-signed by someone else or changed after signing (docs/signing.md)")
            }
            VerifyError::SignatureInvalid { .. } => Some(
                "no signer of the trust policy accepts this signature: each refusal above says why (docs/signing.md, \"What each refusal means\")",
            ),
            VerifyError::ManifestDigestMismatch { .. } => Some(
                "this is not the manifest you pinned: the package was re-published (another version) or replaced; if this version is the one you want, pin the digest `secure-model inspect` shows",
            ),
            _ => None,
        };
    }
    match find_in_chain::<PackError>(e)? {
        PackError::ModelMismatch { .. } => Some(
            "the directory is not what was signed: a file was changed, added or removed after signing, or the signature is of another version of the model",
        ),
        _ => None,
    }
}

impl From<secure_model_core::Error> for Failure {
    fn from(e: secure_model_core::Error) -> Self {
        let mut f = Self::new(e.class(), e.chain_message());
        if let Some(h) = load_error(&e)
            .and_then(destination_hint)
            .or_else(|| relaxation_hint(&e))
            .or_else(|| kbs_hint(&e))
            .or_else(|| integrity_hint(wrapped(&e)))
        {
            f.hint = Some(h.to_string());
        }
        f
    }
}

macro_rules! via_core {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                secure_model_core::Error::from(e).into()
            }
        }
    )*};
}
via_core!(
    LoadError,
    secure_model_core::package::PackError,
    secure_model_core::storage::StorageError,
    secure_model_core::keys::KeyError,
    secure_model_core::keys::UnlockError,
    secure_model_core::verify::VerifyError,
    secure_model_core::format::FormatError,
    secure_model_core::crypto::CryptoError,
    secure_model_core::attest::AttestError,
    secure_model_core::cache::CacheError
);

impl From<KserveJweError> for Failure {
    fn from(e: KserveJweError) -> Self {
        let mut f = Self::new(e.class(), secure_model_core::chain_message(&e));
        if let KserveJweError::Load(l) = &e {
            if let Some(h) = destination_hint(l) {
                f.hint = Some(h.to_string());
            }
        }
        f
    }
}

impl From<InitError> for Failure {
    fn from(e: InitError) -> Self {
        let f = match e {
            InitError::Core(c) => return c.into(),
            InitError::Jwe(j) => return j.into(),
            other => Self::new(other.class(), secure_model_core::chain_message(&other)),
        };
        match &f.message {
            m if m.starts_with("no trusted signer") => f.with_hint("set SECURE_MODEL_TRUSTED_KEYS or SECURE_MODEL_TRUSTED_KEYS_PEM (public keys), SECURE_MODEL_TRUSTED_CERT_ROOTS or _PEM (certificate roots), SECURE_MODEL_SIGSTORE_IDENTITY with SECURE_MODEL_SIGSTORE_ISSUER, or SECURE_MODEL_TRUST_POLICY (docs/signing.md)"),
            m if m.starts_with("no key is configured") => f.with_hint("set SECURE_MODEL_KEYS to the key(s) to unlock with, e.g. local:/var/run/secrets/kek/kek.bin (docs/key-providers.md)"),
            _ => f,
        }
    }
}

impl From<crate::resolve::SettingsError> for Failure {
    fn from(e: crate::resolve::SettingsError) -> Self {
        match e {
            crate::resolve::SettingsError::Keys(k) => k.into(),
            other => Self::new(other.class(), secure_model_core::chain_message(&other)),
        }
    }
}

impl From<crate::trust::TrustError> for Failure {
    fn from(e: crate::trust::TrustError) -> Self {
        match e {
            crate::trust::TrustError::Load(c) => {
                let f: Self = c.into();
                if f.hint.is_none() && f.message.contains("this is a certificate") {
                    return f.with_hint("a certificate signer is trusted through its root CA certificates: pass them with --trusted-cert-roots (SECURE_MODEL_TRUSTED_CERT_ROOTS), optionally with --trusted-cert-identity (docs/signing.md)");
                }
                f
            }
            e @ crate::trust::TrustError::NoSigner { .. } => Self::config(secure_model_core::chain_message(&e)).with_hint(
                "trust the publisher's public key (the signing-key.pub.pem `secure-model keygen` wrote next to the signing key) with --trusted-key; every option has a variable too: SECURE_MODEL_TRUSTED_KEYS, SECURE_MODEL_TRUSTED_CERT_ROOTS, SECURE_MODEL_SIGSTORE_IDENTITY with SECURE_MODEL_SIGSTORE_ISSUER, SECURE_MODEL_TRUST_POLICY (`secure-model settings`, docs/signing.md)",
            ),
            other => Self::config(secure_model_core::chain_message(&other)),
        }
    }
}

impl From<crate::source::SettingError> for Failure {
    fn from(e: crate::source::SettingError) -> Self {
        Self::config(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_advice_fits_the_cause() {
        let full = LoadError::Destination {
            path: "/mnt/models/x".into(),
            reason: "cannot write staging file",
            source: Some(std::io::Error::from_raw_os_error(28)),
        };
        let f: Failure = full.into();
        assert!(f.hint.unwrap().contains("sizeLimit"));
        let conflict: Failure = LoadError::DestinationConflict {
            path: "/m/a".into(),
        }
        .into();
        assert!(conflict.hint.unwrap().contains("empty destination"));
        let disk: Failure = LoadError::NotMemoryBacked { path: "/m".into() }.into();
        assert!(disk.hint.unwrap().contains("--allow-disk-plaintext"));
        for f in [full_failure(), conflict_failure()] {
            assert!(!f
                .hint
                .unwrap_or_default()
                .contains("--allow-disk-plaintext"));
        }
    }

    fn full_failure() -> Failure {
        LoadError::Destination {
            path: "/m".into(),
            reason: "cannot write staging file",
            source: Some(std::io::Error::from(std::io::ErrorKind::StorageFull)),
        }
        .into()
    }

    fn conflict_failure() -> Failure {
        LoadError::DestinationConflict {
            path: "/m/a".into(),
        }
        .into()
    }

    #[test]
    fn classes_keep_their_exit_codes_and_hints() {
        let f: Failure = secure_model_core::verify::VerifyError::SignatureInvalid {
            signer: "a".into(),
            refusals: Default::default(),
        }
        .into();
        assert_eq!(f.exit_code(), 4);
        assert!(f.hint.is_some());
        assert_eq!(Failure::config("x").exit_code(), 3);
        assert_eq!(Failure::internal("x\ny").one_line(10), "xy");
    }
}
