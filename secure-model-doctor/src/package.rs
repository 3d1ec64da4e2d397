//! The package: the location parses, where the credentials come from, the manifest is
//! reachable and its signature verifies under the trust configuration, and each configured key
//! is a recipient.

use std::sync::Arc;

use secure_model_core::crypto::sha256;
use secure_model_core::format::{KeysFile, Limits, ModelPath, KEYS_OBJECT, MANIFEST_OBJECT};
use secure_model_core::storage::{PackageLocation, StorageBackend, StorageError};
use secure_model_core::verify::{parse_unverified, verify_manifest, UnverifiedManifest};
use secure_model_core::ErrorClass;
use secure_model_settings::storage::CredentialSource;
use secure_model_settings::{Failure, Settings};

use crate::Check;

/// What the package checks learned.
pub(crate) struct Found {
    /// Total plaintext size the manifest signs.
    pub(crate) plaintext_bytes: u64,
    /// The paths the manifest would publish.
    pub(crate) paths: Vec<ModelPath>,
    /// The manifest's SHA-256: the id of its publication in a destination.
    pub(crate) digest: [u8; 32],
}

impl Found {
    fn of(m: &UnverifiedManifest, bytes: &[u8]) -> Self {
        Self {
            digest: sha256(bytes),
            plaintext_bytes: m.total_plaintext(),
            paths: m.files().iter().map(|f| f.model_path().clone()).collect(),
        }
    }
}

/// Where the credentials of `location` come from, in words (never their values): the
/// settings layer's finding, so the doctor and the clients agree.
fn credential_source(location: &PackageLocation, settings: &Settings) -> (bool, String) {
    let c = &settings.storage.credentials;
    let source = match location {
        PackageLocation::Local(_) => return (true, "a local directory: no credentials".into()),
        PackageLocation::Http { .. } => return (true, "HTTP(S) mirror: no credentials".into()),
        PackageLocation::S3 { .. } => &c.s3,
        PackageLocation::Gcs { .. } => &c.gcs,
        PackageLocation::Azure { .. } => &c.azure,
        other => return (true, format!("{other:?}")),
    };
    match source {
        CredentialSource::Configured(how) => (true, (*how).to_string()),
        CredentialSource::Missing(why) => (false, format!("none configured: {why}")),
        other => (false, format!("{other:?}")),
    }
}

/// A storage failure as a pull reports it (the same class, message and, where the cause has
/// one, the same hint); `advice` otherwise.
fn storage_fail(check: &str, e: StorageError, advice: &str) -> Check {
    let f = Failure::from(e);
    let advice = f.hint.as_deref().unwrap_or(advice);
    Check::fail(check, f.class, f.message.clone(), advice)
}

/// Parses and opens `source`; the location and credentials checks.
fn open(
    settings: &Settings,
    source: &str,
    checks: &mut Vec<Check>,
) -> Option<Arc<dyn StorageBackend>> {
    let name = format!("storage {source}");
    let location =
        secure_model_kserve::uri::to_location(source).and_then(|l| PackageLocation::parse(&l));
    let location = match location {
        Ok(l) => l,
        Err(e) => {
            checks.push(Check::fail(
                &name,
                ErrorClass::Config,
                secure_model_core::chain_message(&e),
                "use secure+s3://, secure+gs://, secure+az://, secure+web:// or secure+file:// (or the plain forms)",
            ));
            return None;
        }
    };
    let (found, how) = credential_source(&location, settings);
    checks.push(if found {
        Check::ok(format!("credentials {source}"), how)
    } else {
        Check::warn(
            format!("credentials {source}"),
            how,
            "set the storage credentials (docs/storage.md), or check the pod's service account",
        )
    });
    match secure_model_kserve::uri::open(source, false, &settings.storage.settings) {
        Ok(store) => Some(store),
        Err(e) => {
            checks.push(storage_fail(
                &name,
                e,
                "fix the storage URI or its settings",
            ));
            None
        }
    }
}

/// The storage, signature and recipient checks of `source`.
pub(crate) async fn checks(settings: &Settings, source: &str) -> (Vec<Check>, Option<Found>) {
    let mut checks = Vec::new();
    let Some(store) = open(settings, source, &mut checks) else {
        return (checks, None);
    };
    let limits = Limits::default();
    let name = format!("manifest {source}");
    let bytes = match store.get(MANIFEST_OBJECT, limits.max_manifest_bytes).await {
        Ok(b) => b,
        Err(e) => {
            checks.push(storage_fail(
                &name,
                e,
                "check the URI, the credentials and that the store is reachable from this pod (NetworkPolicy, proxy)",
            ));
            return (checks, None);
        }
    };
    checks.push(Check::ok(
        &name,
        format!("{MANIFEST_OBJECT} read ({} bytes)", bytes.len()),
    ));
    let found = signature(settings, source, &bytes, &limits, &mut checks);
    recipients(
        settings,
        source,
        store.as_ref(),
        &bytes,
        &limits,
        &mut checks,
    )
    .await;
    (checks, found)
}

/// The signature check; the signed plaintext size when the structure parses.
fn signature(
    settings: &Settings,
    source: &str,
    bytes: &[u8],
    limits: &Limits,
    checks: &mut Vec<Check>,
) -> Option<Found> {
    let name = format!("signature {source}");
    let claimed = parse_unverified(bytes, limits).ok();
    let trusted = match settings.trust_policy() {
        Ok(t) => t,
        Err(e) => {
            checks.push(Check::fail(
                &name,
                e.class(),
                secure_model_core::chain_message(&e),
                "configure the trusted signers (SECURE_MODEL_TRUSTED_KEYS / _PEM, SECURE_MODEL_TRUSTED_CERT_ROOTS, SECURE_MODEL_SIGSTORE_IDENTITY with _ISSUER, or SECURE_MODEL_TRUST_POLICY; docs/signing.md)",
            ));
            return claimed.as_ref().map(|m| Found::of(m, bytes));
        }
    };
    let pin = settings.pins.first();
    match verify_manifest(bytes, &trusted, limits, pin) {
        Ok(m) => checks.push(Check::ok(
            &name,
            format!(
                "signed by trusted signer {}; model {:?}, {} files, {} bytes",
                m.signer(),
                m.model_name(),
                m.files().len(),
                m.total_plaintext()
            ),
        )),
        Err(e) => checks.push(Check::fail(
            &name,
            e.class(),
            secure_model_core::chain_message(&e),
            "trust the publisher's key, certificate roots or identity (docs/signing.md), or check that this is the package you meant (a pinned digest refuses older manifests)",
        )),
    }
    claimed.as_ref().map(|m| Found::of(m, bytes))
}

/// Whether each configured key is a recipient of the package.
async fn recipients(
    settings: &Settings,
    source: &str,
    store: &dyn StorageBackend,
    manifest: &[u8],
    limits: &Limits,
    checks: &mut Vec<Check>,
) {
    let name = format!("keys {source}");
    let keys = match store.get(KEYS_OBJECT, limits.max_keys_file_bytes).await {
        Ok(b) => b,
        Err(e) => {
            checks.push(storage_fail(
                &name,
                e,
                "the package is incomplete: re-upload keys.json",
            ));
            return;
        }
    };
    let kf = match KeysFile::parse(&keys, limits) {
        Ok(k) => k,
        Err(e) => {
            checks.push(Check::fail(
                &name,
                e.class(),
                secure_model_core::chain_message(&e),
                "the keys file is malformed: re-run `secure-model rewrap` or re-pack",
            ));
            return;
        }
    };
    if let Ok(m) = parse_unverified(manifest, limits) {
        if m.model_id() != kf.model_id {
            checks.push(Check::fail(
                &name,
                ErrorClass::Integrity,
                "keys.json belongs to another package",
                "upload the keys file packed with this manifest",
            ));
            return;
        }
    }
    let available: Vec<String> = kf
        .recipients
        .iter()
        .map(|e| secure_model_core::keys::shown_recipient(&e.provider, &e.key_ref))
        .collect();
    let mut specs: Vec<String> = settings.keys.clone();
    if let Some(c) = &settings.confidential {
        specs.insert(0, format!("kbs resource {}", c.resource));
    }
    if specs.is_empty() {
        checks.push(Check::fail(
            &name,
            ErrorClass::Config,
            "no key configured",
            "set SECURE_MODEL_KEYS (e.g. local:/var/run/secrets/kek/kek.bin)",
        ));
        return;
    }
    let matched = match_specs(settings, &kf);
    match matched {
        Ok(hits) if !hits.is_empty() => checks.push(Check::ok(&name, format!("recipient(s) configured: {}", hits.join(", ")))),
        Ok(_) => checks.push(Check::fail(
            &name,
            ErrorClass::Key,
            format!("no configured key is a recipient (package: [{}]; configured: [{}])", available.join(", "), specs.join(", ")),
            "add the right --key / SECURE_MODEL_KEYS, or rewrap the package for this key (`secure-model rewrap --add`)",
        )),
        Err(e) => checks.push(Check::fail(&name, e.class(), secure_model_core::chain_message(&e), "fix the key specification named")),
    }
}

/// The configured recipients present in `kf` (`provider:key_ref`).
fn match_specs(
    settings: &Settings,
    kf: &KeysFile,
) -> Result<Vec<String>, secure_model_core::Error> {
    let mut recipients: Vec<secure_model_core::keys::Recipient> = Vec::new();
    if let Some(c) = &settings.confidential {
        recipients.push(secure_model_core::keys::Recipient::new(
            secure_model_core::keys::KBS,
            c.resource.uri(),
        ));
    }
    for spec in &settings.keys {
        recipients.push(secure_model_core::keys::recipient_of_spec(spec)?);
    }
    Ok(recipients
        .iter()
        .filter(|r| kf.recipients.iter().any(|e| r.matches(e)))
        .map(ToString::to_string)
        .collect())
}
