//! Operator inputs shared by the binaries: trusted public keys (files and inline PEM), trust
//! policy files, certificate roots, Sigstore trusted roots, key specifications, digest pins,
//! and the one rule for boolean values. Reads only the files it is pointed at; never the
//! process environment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::keys::{provider_from_spec, KbsSettings, KeyProvider};
use crate::verify::{
    CertificateSigner, IdentityMatch, SigstoreRoot, SigstoreSigner, TrustPolicy, TrustedKeys,
    VerifyError, MAX_TRUSTED_ROOT_BYTES,
};

/// Largest trust policy file, certificate root bundle or public key file read, bytes.
pub const MAX_TRUST_FILE_BYTES: u64 = MAX_TRUSTED_ROOT_BYTES as u64;

fn read_trust_file(path: &Path) -> Result<String, VerifyError> {
    use std::io::Read as _;
    let bad = |reason: String| VerifyError::InvalidPolicy {
        reason: format!("{}: {reason}", path.display()),
    };
    let f = std::fs::File::open(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut text = String::new();
    f.take(MAX_TRUST_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_TRUST_FILE_BYTES {
        return Err(bad(format!("larger than {MAX_TRUST_FILE_BYTES} bytes")));
    }
    Ok(text)
}

/// The identity of a certificate or Sigstore signer: exact, or an anchored regex.
///
/// # Errors
/// [`VerifyError::InvalidPolicy`] when both or (for Sigstore) neither are given, or the
/// pattern is invalid.
pub fn identity_match(
    exact: Option<&str>,
    regex: Option<&str>,
) -> Result<Option<IdentityMatch>, VerifyError> {
    match (exact, regex) {
        (Some(_), Some(_)) => Err(VerifyError::InvalidPolicy {
            reason: "give an exact identity or an identity regex, not both".into(),
        }),
        (Some(e), None) => Ok(Some(IdentityMatch::exact(e))),
        (None, Some(r)) => IdentityMatch::regex(r).map(Some),
        (None, None) => Ok(None),
    }
}

/// A certificate-chain signer from a PEM bundle of root certificates, optionally restricted to
/// a leaf subject and identity.
///
/// # Errors
/// [`VerifyError::InvalidPolicy`] naming the file.
pub fn load_certificate_roots(
    path: &Path,
    subject: Option<&str>,
    identity: Option<IdentityMatch>,
) -> Result<CertificateSigner, VerifyError> {
    let text = read_trust_file(path)?;
    let mut signer = CertificateSigner::from_pem(path.display().to_string(), &text)?;
    if let Some(s) = subject {
        signer = signer.with_subject(s);
    }
    if let Some(i) = identity {
        signer = signer.with_identity(i);
    }
    Ok(signer)
}

/// A Sigstore trusted root: the file (`trusted_root.json` or `ClientTrustConfig`) when given,
/// otherwise Sigstore's public-good root embedded in the binary.
///
/// # Errors
/// [`VerifyError::InvalidPolicy`] naming the file.
pub fn load_sigstore_root(path: Option<&Path>) -> Result<SigstoreRoot, VerifyError> {
    match path {
        None => SigstoreRoot::public_good(),
        Some(p) => SigstoreRoot::from_json(p.display().to_string(), &read_trust_file(p)?),
    }
}

/// One signer of a policy file (`docs/signing.md`, "Policy files").
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum PolicyEntry {
    Key {
        path: PathBuf,
    },
    Certificate {
        roots: PathBuf,
        subject: Option<String>,
        identity: Option<String>,
        identity_regex: Option<String>,
    },
    Sigstore {
        identity: Option<String>,
        identity_regex: Option<String>,
        issuer: String,
        trusted_root: Option<PathBuf>,
    },
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    signers: Vec<PolicyEntry>,
}

/// Most signers in one policy file.
pub const MAX_POLICY_SIGNERS: usize = 64;

/// Reads a JSON trust policy file (`{"signers": [{"kind": "key" | "certificate" |
/// "sigstore", ...}]}`). Relative paths inside it are relative to the file's directory.
///
/// # Errors
/// [`VerifyError::InvalidPolicy`] naming the file and the entry.
pub fn load_trust_policy(path: &Path) -> Result<TrustPolicy, VerifyError> {
    let bad = |reason: String| VerifyError::InvalidPolicy {
        reason: format!("{}: {reason}", path.display()),
    };
    let file: PolicyFile =
        serde_json::from_str(&read_trust_file(path)?).map_err(|e| bad(e.to_string()))?;
    if file.signers.is_empty() || file.signers.len() > MAX_POLICY_SIGNERS {
        return Err(bad(format!(
            "{} signers (need 1..={MAX_POLICY_SIGNERS})",
            file.signers.len()
        )));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut policy = TrustPolicy::new();
    for (i, entry) in file.signers.into_iter().enumerate() {
        add_entry(&mut policy, entry, base).map_err(|e| bad(format!("signer {i}: {e}")))?;
    }
    Ok(policy)
}

fn add_entry(policy: &mut TrustPolicy, entry: PolicyEntry, base: &Path) -> Result<(), VerifyError> {
    match entry {
        PolicyEntry::Key { path } => {
            let text = read_trust_file(&base.join(path))?;
            for k in TrustedKeys::from_pem_bundle(&text)?.keys() {
                policy.push(k.clone());
            }
        }
        PolicyEntry::Certificate {
            roots,
            subject,
            identity,
            identity_regex,
        } => {
            let id = identity_match(identity.as_deref(), identity_regex.as_deref())?;
            policy.push(load_certificate_roots(
                &base.join(roots),
                subject.as_deref(),
                id,
            )?);
        }
        PolicyEntry::Sigstore {
            identity,
            identity_regex,
            issuer,
            trusted_root,
        } => {
            let id = identity_match(identity.as_deref(), identity_regex.as_deref())?.ok_or(
                VerifyError::InvalidPolicy {
                    reason: "a sigstore signer needs identity or identity_regex".into(),
                },
            )?;
            let root = load_sigstore_root(trusted_root.map(|p| base.join(p)).as_deref())?;
            policy.push(SigstoreSigner::new(id, issuer, root));
        }
    }
    Ok(())
}

/// What [`parse_bool`] accepts, for messages.
pub const BOOL_EXPECTED: &str = "expected true or false (also 1/0, yes/no, on/off)";

/// The one rule for boolean settings: `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`,
/// case-insensitive, surrounding whitespace ignored; anything else is `None` (an error for
/// the caller to name).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Reads trusted public keys from PEM files (each may hold several `PUBLIC KEY` blocks).
///
/// # Errors
/// [`VerifyError::InvalidKey`] naming the file when it cannot be read or parsed, and
/// [`VerifyError::NoTrustedKeys`] when `paths` is empty.
pub fn load_trusted_keys<P: AsRef<Path>>(paths: &[P]) -> Result<TrustedKeys, crate::Error> {
    let mut keys = TrustedKeys::new();
    for p in paths {
        let p = p.as_ref();
        let bytes = std::fs::read(p).map_err(|source| crate::keys::KeyError::ReadKeyFile {
            path: p.display().to_string(),
            source,
        })?;
        // Binary content (a KEK file given by mistake) is "not PEM", with its pointer.
        let text = std::str::from_utf8(&bytes).unwrap_or_default();
        let set = TrustedKeys::from_pem_bundle(text).map_err(|e| VerifyError::InvalidPolicy {
            reason: format!("trusted key file {}: {e}", p.display()),
        })?;
        for k in set.keys() {
            keys.push(k.clone());
        }
    }
    if keys.is_empty() {
        return Err(VerifyError::NoTrustedKeys.into());
    }
    Ok(keys)
}

/// Adds the keys of PEM text (one or more `PUBLIC KEY` blocks, for example inline in a
/// ClusterStorageContainer's environment) to `keys`.
///
/// # Errors
/// [`VerifyError::InvalidKey`] when the text holds no valid key.
pub fn add_trusted_pem(keys: &mut TrustedKeys, pem_text: &str) -> Result<(), VerifyError> {
    for k in TrustedKeys::from_pem_bundle(pem_text)?.keys() {
        keys.push(k.clone());
    }
    Ok(())
}

/// Builds key providers from specifications such as `local:/path/kek.bin`; `kbs:`/`cdh:`
/// specifications take their other settings from `kbs`.
///
/// # Errors
/// The first specification's [`crate::keys::KeyError`].
pub fn load_key_providers<S: AsRef<str>>(
    specs: &[S],
    kbs: &KbsSettings,
) -> Result<Vec<Arc<dyn KeyProvider>>, crate::Error> {
    specs
        .iter()
        .map(|s| provider_from_spec(s.as_ref(), kbs).map_err(crate::Error::from))
        .collect()
}

/// Parses a manifest digest pin: 64 hex characters, optionally prefixed `sha256:`.
pub fn parse_digest_pin(text: &str) -> Result<[u8; 32], crate::Error> {
    let t = text.trim();
    let t = t.strip_prefix("sha256:").unwrap_or(t);
    let mut out = [0u8; 32];
    if t.len() != 64 {
        return Err(crate::keys::KeyError::InvalidSpec {
            spec: text.into(),
            reason: "manifest digest must be 64 hex characters (optionally prefixed sha256:)"
                .into(),
        }
        .into());
    }
    hex::decode_to_slice(t.to_ascii_lowercase(), &mut out).map_err(|_| {
        crate::keys::KeyError::InvalidSpec {
            spec: text.into(),
            reason: "manifest digest must be 64 hex characters (optionally prefixed sha256:)"
                .into(),
        }
    })?;
    Ok(out)
}

/// Keeps plaintext and keys out of core dumps: sets `RLIMIT_CORE` to 0 and marks the process
/// non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`, which also blocks same-UID ptrace attach).
/// Binaries call this first thing; embedders should too.
///
/// # Errors
/// The OS error when either call fails (callers may log and continue).
pub fn disable_core_dumps() -> std::io::Result<()> {
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
        .map_err(std::io::Error::from)?;
    nix::sys::prctl::set_dumpable(false).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_dumps_disabled() {
        disable_core_dumps().unwrap();
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE).unwrap();
        assert_eq!((soft, hard), (0, 0));
        assert!(!nix::sys::prctl::get_dumpable().unwrap());
    }

    #[test]
    fn one_boolean_rule() {
        for t in ["true", "TRUE", " yes", "1", "On"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "False", "0", "no", "OFF "] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "tru", "2", "enabled", "y"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn digest_pins() {
        let h = "ab".repeat(32);
        assert_eq!(parse_digest_pin(&h).unwrap(), [0xab; 32]);
        assert_eq!(
            parse_digest_pin(&format!("sha256:{}", h.to_uppercase())).unwrap(),
            [0xab; 32]
        );
        assert!(parse_digest_pin("abc").is_err());
        assert!(parse_digest_pin(&"zz".repeat(32)).is_err());
    }
}
