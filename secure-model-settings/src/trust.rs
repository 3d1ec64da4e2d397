//! Who signs the packages we accept: the trust sources the settings name (public keys,
//! certificate roots, a Sigstore identity, a policy file), read once from a [`Source`], and the
//! one place they are loaded into a [`TrustPolicy`] (through the core's file loaders). The CLI,
//! the init container, the doctor and the webhook's profile check all go through here.

use std::path::PathBuf;

use secure_model_core::config::{
    add_trusted_pem, identity_match, load_certificate_roots, load_sigstore_root, load_trust_policy,
    load_trusted_keys,
};
use secure_model_core::verify::{CertificateSigner, SigstoreSigner, TrustPolicy, TrustedKeys};

use crate::registry as r;
use crate::source::{SettingError, Source};

/// Why the trust sources could not become a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// No source names any signer.
    #[error("no trusted signer: {how}")]
    NoSigner {
        /// The settings that would name one, as this binary spells them.
        how: String,
    },
    /// The sources do not fit together (an identity without roots or issuer).
    #[error("{reason}")]
    Incomplete {
        /// What is missing.
        reason: String,
    },
    /// A file or PEM text of a source could not be read or parsed.
    #[error(transparent)]
    Load(#[from] secure_model_core::Error),
}

impl TrustError {
    /// The failure class: configuration.
    pub fn class(&self) -> secure_model_core::ErrorClass {
        match self {
            Self::Load(e) => e.class(),
            _ => secure_model_core::ErrorClass::Config,
        }
    }
}

impl From<secure_model_core::verify::VerifyError> for TrustError {
    fn from(e: secure_model_core::verify::VerifyError) -> Self {
        Self::Load(e.into())
    }
}

/// Where the trust policy comes from: any mix of public keys, certificate roots, a Sigstore
/// identity and a policy file; every signer they name is trusted (any one suffices).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TrustSources {
    /// PEM files of public keys.
    pub files: Vec<PathBuf>,
    /// PEM text of public keys.
    pub pem: Option<String>,
    /// A JSON trust policy file.
    pub policy_file: Option<PathBuf>,
    /// PEM bundles of root CA certificates, one certificate signer each.
    pub cert_roots: Vec<PathBuf>,
    /// Root CA certificates as PEM text, one more certificate signer.
    pub cert_roots_pem: Option<String>,
    /// Required leaf subject of the certificate signers.
    pub cert_subject: Option<String>,
    /// Required leaf identity (SAN) of the certificate signers.
    pub cert_identity: Option<String>,
    /// Sigstore identity, exact.
    pub sigstore_identity: Option<String>,
    /// Sigstore identity, anchored regex.
    pub sigstore_identity_regex: Option<String>,
    /// Sigstore OIDC issuer.
    pub sigstore_issuer: Option<String>,
    /// Sigstore trusted root file; the embedded public-good root when unset.
    pub sigstore_trusted_root: Option<PathBuf>,
    /// The names of the settings, as this binary spells them (for messages).
    names: Names,
}

/// How the binary that read the sources spells the settings in messages.
#[derive(Debug, Clone, Default)]
struct Names {
    keys: String,
    keys_pem: String,
    policy: String,
    roots: String,
    roots_pem: String,
    subject_identity: String,
    sigstore: String,
    issuer: String,
}

fn text(t: Option<String>) -> Option<String> {
    t.filter(|t| !t.trim().is_empty())
}

impl TrustSources {
    /// The sources `src` names.
    ///
    /// # Errors
    /// A malformed value, naming its flag or variable.
    pub fn from_source(src: &Source) -> Result<Self, SettingError> {
        let n = |s: &dyn r::AnySetting| src.name(s);
        Ok(Self {
            files: src.get(&r::TRUSTED_KEYS)?.unwrap_or_default(),
            pem: text(src.get(&r::TRUSTED_KEYS_PEM)?),
            policy_file: src.get(&r::TRUST_POLICY)?,
            cert_roots: src.get(&r::TRUSTED_CERT_ROOTS)?.unwrap_or_default(),
            cert_roots_pem: text(src.get(&r::TRUSTED_CERT_ROOTS_PEM)?),
            cert_subject: text(src.get(&r::TRUSTED_CERT_SUBJECT)?),
            cert_identity: text(src.get(&r::TRUSTED_CERT_IDENTITY)?),
            sigstore_identity: text(src.get(&r::SIGSTORE_IDENTITY)?),
            sigstore_identity_regex: text(src.get(&r::SIGSTORE_IDENTITY_REGEX)?),
            sigstore_issuer: src.get(&r::SIGSTORE_ISSUER)?.map(|u| u.to_string()),
            sigstore_trusted_root: src.get(&r::SIGSTORE_TRUSTED_ROOT)?,
            names: Names {
                keys: n(&r::TRUSTED_KEYS),
                keys_pem: n(&r::TRUSTED_KEYS_PEM),
                policy: n(&r::TRUST_POLICY),
                roots: n(&r::TRUSTED_CERT_ROOTS),
                roots_pem: n(&r::TRUSTED_CERT_ROOTS_PEM),
                subject_identity: format!(
                    "{} / {}",
                    n(&r::TRUSTED_CERT_SUBJECT),
                    n(&r::TRUSTED_CERT_IDENTITY)
                ),
                sigstore: format!(
                    "{} (or {})",
                    n(&r::SIGSTORE_IDENTITY),
                    n(&r::SIGSTORE_IDENTITY_REGEX)
                ),
                issuer: n(&r::SIGSTORE_ISSUER),
            },
        })
    }

    /// Whether no source names any signer.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.pem.is_none()
            && self.policy_file.is_none()
            && self.cert_roots.is_empty()
            && self.cert_roots_pem.is_none()
            && self.sigstore_identity.is_none()
            && self.sigstore_identity_regex.is_none()
    }

    /// How to name a signer, in this binary's words (for "no trusted signer").
    pub fn how_to_name_a_signer(&self) -> String {
        let n = &self.names;
        format!(
            "give {} or {} (public keys), {} or {} (certificate roots), {} with {} (Sigstore keyless) or {} (a policy file)",
            n.keys, n.keys_pem, n.roots, n.roots_pem, n.sigstore, n.issuer, n.policy
        )
    }

    /// Loads every signer of every source into one policy.
    ///
    /// # Errors
    /// [`TrustError::NoSigner`] when no source is set, [`TrustError::Incomplete`] for a
    /// certificate identity without roots or a Sigstore identity without issuer, and the core's
    /// errors for unreadable or malformed files and PEM text.
    pub fn load(&self) -> Result<TrustPolicy, TrustError> {
        if self.is_empty() {
            return Err(self.nothing_to_trust());
        }
        let mut policy = match &self.policy_file {
            Some(p) => load_trust_policy(p)?,
            None => TrustPolicy::new(),
        };
        self.load_keys(&mut policy)?;
        self.load_roots(&mut policy)?;
        self.load_sigstore(&mut policy)?;
        Ok(policy)
    }

    /// Why no signer is named: a restriction without what it restricts, or nothing at all.
    fn nothing_to_trust(&self) -> TrustError {
        let n = &self.names;
        if self.cert_subject.is_some() || self.cert_identity.is_some() {
            return TrustError::Incomplete {
                reason: format!(
                    "{} restrict certificate signers, but no certificate roots are given: add {} or {}",
                    n.subject_identity, n.roots, n.roots_pem
                ),
            };
        }
        if self.sigstore_issuer.is_some() {
            return TrustError::Incomplete {
                reason: format!("{} needs {}", n.issuer, n.sigstore),
            };
        }
        TrustError::NoSigner {
            how: self.how_to_name_a_signer(),
        }
    }

    fn load_keys(&self, policy: &mut TrustPolicy) -> Result<(), TrustError> {
        let mut trusted = if self.files.is_empty() {
            TrustedKeys::new()
        } else {
            load_trusted_keys(&self.files)?
        };
        if let Some(pem) = &self.pem {
            add_trusted_pem(&mut trusted, pem).map_err(|e| TrustError::Incomplete {
                reason: format!("{}: {e}", self.names.keys_pem),
            })?;
        }
        for k in trusted.keys() {
            policy.push(k.clone());
        }
        Ok(())
    }

    fn load_roots(&self, policy: &mut TrustPolicy) -> Result<(), TrustError> {
        let id = identity_match(self.cert_identity.as_deref(), None)?;
        for roots in &self.cert_roots {
            policy.push(load_certificate_roots(
                roots,
                self.cert_subject.as_deref(),
                id.clone(),
            )?);
        }
        if let Some(pem) = &self.cert_roots_pem {
            let mut c = CertificateSigner::from_pem(self.names.roots_pem.clone(), pem)?;
            if let Some(s) = &self.cert_subject {
                c = c.with_subject(s.clone());
            }
            if let Some(i) = &id {
                c = c.with_identity(i.clone());
            }
            policy.push(c);
        }
        let no_roots = self.cert_roots.is_empty() && self.cert_roots_pem.is_none();
        if no_roots && (self.cert_subject.is_some() || id.is_some()) {
            return Err(TrustError::Incomplete {
                reason: format!(
                    "{} need {} or {}",
                    self.names.subject_identity, self.names.roots, self.names.roots_pem
                ),
            });
        }
        Ok(())
    }

    fn load_sigstore(&self, policy: &mut TrustPolicy) -> Result<(), TrustError> {
        let id = identity_match(
            self.sigstore_identity.as_deref(),
            self.sigstore_identity_regex.as_deref(),
        )?;
        match (id, &self.sigstore_issuer) {
            (None, None) => Ok(()),
            (Some(id), Some(issuer)) => {
                let root = load_sigstore_root(self.sigstore_trusted_root.as_deref())?;
                policy.push(SigstoreSigner::new(id, issuer.clone(), root));
                Ok(())
            }
            _ => Err(TrustError::Incomplete {
                reason: format!(
                    "a Sigstore signer needs both {} and {}",
                    self.names.sigstore, self.names.issuer
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Binary;
    use crate::source::Environment;

    #[test]
    fn no_signer_is_named_in_the_binarys_words() {
        let initc = TrustSources::from_source(&Source::new(Environment::default())).unwrap();
        let e = initc.load().unwrap_err().to_string();
        assert!(
            e.starts_with("no trusted signer") && e.contains("SECURE_MODEL_TRUSTED_KEYS"),
            "{e}"
        );
        let cli = Source::new(Environment::default()).for_binary(Binary::Cli);
        let e = TrustSources::from_source(&cli)
            .unwrap()
            .load()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--trusted-key"), "{e}");
    }

    #[test]
    fn identities_need_roots_and_issuers() {
        let src = Source::new(Environment::from_pairs([(
            "SECURE_MODEL_TRUSTED_CERT_IDENTITY",
            "a@example.com",
        )]));
        let t = TrustSources::from_source(&src).unwrap();
        // An identity alone names no signer: say what is missing.
        let e = t.load().unwrap_err();
        assert!(
            matches!(e, TrustError::Incomplete { .. })
                && e.to_string().contains("SECURE_MODEL_TRUSTED_CERT_ROOTS"),
            "{e}"
        );
        let src = Source::new(Environment::from_pairs([(
            "SECURE_MODEL_SIGSTORE_IDENTITY",
            "a@example.com",
        )]));
        let e = TrustSources::from_source(&src).unwrap().load().unwrap_err();
        assert!(
            e.to_string().contains("SECURE_MODEL_SIGSTORE_ISSUER"),
            "{e}"
        );
    }
}
