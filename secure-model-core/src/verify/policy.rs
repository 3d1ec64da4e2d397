//! The trust policy: which signers a reader accepts. A list of [`TrustedSigner`]s, each a raw
//! public key, the roots of a certificate chain (with an optional required subject or
//! identity), or a Sigstore keyless identity with its trusted root. Any one signer suffices;
//! an empty policy fails closed. A refusal lists, per signer, why it did not accept.

use std::fmt;

use pki_types::UnixTime;

use super::bundle::{Evidence, Material};
use super::chain::{self, ChainError, Roots};
use super::sigstore::{KeylessError, SigstoreRoot};
use super::{TrustedKeys, VerifyError, VerifyingKey};

/// Longest identity pattern accepted, bytes (operator input, but bounded all the same).
const MAX_PATTERN_BYTES: usize = 1024;

/// How a certificate identity (a SAN: email, URI or DNS name) is matched.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum IdentityMatch {
    /// The identity equals this string.
    Exact(String),
    /// The identity matches this regular expression over the whole value (the pattern is
    /// anchored: `^(?:PATTERN)$`).
    Regex(regex::Regex),
}

impl IdentityMatch {
    /// An exact identity.
    pub fn exact(identity: impl Into<String>) -> Self {
        Self::Exact(identity.into())
    }

    /// An anchored regular expression (Rust `regex` syntax, which is RE2's: no backtracking,
    /// linear time).
    ///
    /// # Errors
    /// [`VerifyError::InvalidPolicy`] for an invalid or oversized pattern.
    pub fn regex(pattern: &str) -> Result<Self, VerifyError> {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(VerifyError::InvalidPolicy {
                reason: format!("identity pattern longer than {MAX_PATTERN_BYTES} bytes"),
            });
        }
        regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map(Self::Regex)
            .map_err(|e| VerifyError::InvalidPolicy {
                reason: format!("identity pattern {pattern:?}: {e}"),
            })
    }

    /// Whether `identity` satisfies this matcher.
    pub fn matches(&self, identity: &str) -> bool {
        match self {
            Self::Exact(e) => e == identity,
            Self::Regex(r) => r.is_match(identity),
        }
    }
}

impl fmt::Display for IdentityMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(e) => write!(f, "{e:?}"),
            Self::Regex(r) => write!(f, "regex {:?}", r.as_str()),
        }
    }
}

/// A certificate-chain signer: roots of the publisher's PKI (like `model_signing verify
/// certificate --certificate_chain`), optionally restricted to one leaf subject and/or a
/// leaf identity (SAN).
#[derive(Debug, Clone)]
pub struct CertificateSigner {
    label: String,
    roots: Roots,
    subject: Option<String>,
    identity: Option<IdentityMatch>,
}

impl CertificateSigner {
    /// Roots from PEM text (one or more `CERTIFICATE` blocks); `label` names them in messages
    /// (a file path, for example).
    ///
    /// # Errors
    /// [`VerifyError::InvalidPolicy`] when the text holds no certificate or a bad one.
    pub fn from_pem(label: impl Into<String>, pem_text: &str) -> Result<Self, VerifyError> {
        let label = label.into();
        let bad = |reason: String| VerifyError::InvalidPolicy {
            reason: format!("certificate roots {label}: {reason}"),
        };
        let blocks = pem::parse_many(pem_text).map_err(|e| bad(format!("not PEM: {e}")))?;
        let mut ders = Vec::with_capacity(blocks.len());
        for b in blocks {
            if b.tag() != "CERTIFICATE" {
                return Err(bad(format!("PEM label {:?} is not CERTIFICATE", b.tag())));
            }
            ders.push(b.into_contents());
        }
        let roots = Roots::new(&ders).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            label,
            roots,
            subject: None,
            identity: None,
        })
    }

    /// Accepts only a leaf whose subject is exactly `subject` (RFC 4514, as
    /// `secure-model verify-signature` prints it, e.g. `CN=signer,O=Example`).
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Accepts only a leaf with a subject alternative name (email, URI or DNS) that matches.
    pub fn with_identity(mut self, identity: IdentityMatch) -> Self {
        self.identity = Some(identity);
        self
    }

    fn check(&self, ev: &Evidence<'_>) -> Result<Signer, RefusalReason> {
        let Material::Certificates(certs) = ev.material else {
            return Err(RefusalReason::Material {
                needed: "a certificate chain",
            });
        };
        let leaf = chain::verify_chain(certs, &self.roots, UnixTime::now())?;
        if !ev.signatures.iter().any(|s| leaf.key.verify(ev.pae, s)) {
            return Err(RefusalReason::Signature);
        }
        if let Some(want) = &self.subject {
            if *want != leaf.subject {
                return Err(RefusalReason::Subject {
                    expected: want.clone(),
                    actual: leaf.subject,
                });
            }
        }
        if let Some(want) = &self.identity {
            if !leaf.sans.iter().any(|s| want.matches(s)) {
                return Err(RefusalReason::Identity {
                    expected: want.to_string(),
                    actual: leaf.sans.join(", "),
                });
            }
        }
        Ok(Signer::Certificate {
            subject: leaf.subject,
            sans: leaf.sans,
            roots: self.label.clone(),
        })
    }
}

impl fmt::Display for CertificateSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certificate roots {} ({})",
            self.label,
            self.roots.subjects()
        )?;
        if let Some(s) = &self.subject {
            write!(f, " subject {s:?}")?;
        }
        if let Some(i) = &self.identity {
            write!(f, " identity {i}")?;
        }
        Ok(())
    }
}

/// A Sigstore keyless signer: a certificate identity issued by Fulcio for an OIDC `issuer`,
/// checked against a trusted root (CA, CT logs, Rekor, TSAs).
#[derive(Debug, Clone)]
pub struct SigstoreSigner {
    identity: IdentityMatch,
    issuer: String,
    root: SigstoreRoot,
}

impl SigstoreSigner {
    /// The identity (exact or regex) and the exact OIDC issuer URL, under `root`.
    pub fn new(identity: IdentityMatch, issuer: impl Into<String>, root: SigstoreRoot) -> Self {
        Self {
            identity,
            issuer: issuer.into(),
            root,
        }
    }

    fn check(&self, ev: &Evidence<'_>) -> Result<Signer, RefusalReason> {
        if !matches!(ev.material, Material::Certificates(_)) {
            return Err(RefusalReason::Material {
                needed: "a Sigstore certificate",
            });
        }
        if ev.signatures.len() != 1 {
            return Err(
                KeylessError::Bundle("a Sigstore bundle has exactly one signature".into()).into(),
            );
        }
        let digest = ev
            .subject_sha256
            .ok_or_else(|| KeylessError::Bundle("the statement has no sha256 subject".into()))?;
        let claims = self
            .root
            .verify_digest(ev.json, digest, &self.identity, &self.issuer)?;
        Ok(Signer::Sigstore {
            identity: claims.identity,
            issuer: claims.issuer,
            root: self.root.label().into(),
        })
    }
}

impl fmt::Display for SigstoreSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sigstore identity {} issuer {:?} (trusted root {})",
            self.identity,
            self.issuer,
            self.root.label()
        )
    }
}

/// One entry of a [`TrustPolicy`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TrustedSigner {
    /// A raw ECDSA P-256, P-384 or P-521 public key (`model_signing sign key`; what `pack`
    /// signs with).
    Key(VerifyingKey),
    /// Roots of an X.509 certificate chain (`model_signing sign certificate`).
    Certificates(CertificateSigner),
    /// A Sigstore keyless identity (`model_signing sign sigstore`).
    Sigstore(SigstoreSigner),
}

impl TrustedSigner {
    fn check(&self, ev: &Evidence<'_>) -> Result<Signer, RefusalReason> {
        match self {
            TrustedSigner::Key(k) => {
                if !matches!(ev.material, Material::PublicKey { .. }) {
                    return Err(RefusalReason::Material {
                        needed: "a public key",
                    });
                }
                if ev.signatures.iter().any(|s| k.verify(ev.pae, s).is_ok()) {
                    Ok(Signer::Key(k.clone()))
                } else {
                    Err(RefusalReason::Signature)
                }
            }
            TrustedSigner::Certificates(c) => c.check(ev),
            TrustedSigner::Sigstore(s) => s.check(ev),
        }
    }
}

impl fmt::Display for TrustedSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustedSigner::Key(k) => write!(f, "key {}", k.hint()),
            TrustedSigner::Certificates(c) => c.fmt(f),
            TrustedSigner::Sigstore(s) => s.fmt(f),
        }
    }
}

impl From<VerifyingKey> for TrustedSigner {
    fn from(k: VerifyingKey) -> Self {
        Self::Key(k)
    }
}
impl From<CertificateSigner> for TrustedSigner {
    fn from(c: CertificateSigner) -> Self {
        Self::Certificates(c)
    }
}
impl From<SigstoreSigner> for TrustedSigner {
    fn from(s: SigstoreSigner) -> Self {
        Self::Sigstore(s)
    }
}

/// The signers a reader trusts. Any one suffices; an empty policy accepts nothing.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    signers: Vec<TrustedSigner>,
}

impl TrustPolicy {
    /// An empty policy (verification with it always fails).
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a signer.
    pub fn with_signer(mut self, signer: impl Into<TrustedSigner>) -> Self {
        self.signers.push(signer.into());
        self
    }
    /// Adds a signer.
    pub fn push(&mut self, signer: impl Into<TrustedSigner>) {
        self.signers.push(signer.into());
    }
    /// The signers, in the order they are tried.
    pub fn signers(&self) -> &[TrustedSigner] {
        &self.signers
    }
    /// True when no signer is configured.
    pub fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }

    /// The first signer that accepts the evidence, or every signer's refusal.
    pub(crate) fn check(&self, ev: &Evidence<'_>) -> Result<Signer, VerifyError> {
        if self.is_empty() {
            return Err(VerifyError::NoTrustedKeys);
        }
        let mut refusals = Vec::with_capacity(self.signers.len());
        for s in &self.signers {
            match s.check(ev) {
                Ok(signer) => return Ok(signer),
                Err(reason) => refusals.push(Refusal {
                    signer: s.to_string(),
                    reason,
                }),
            }
        }
        Err(VerifyError::SignatureInvalid {
            signer: ev.material.describe(),
            refusals: Refusals(refusals),
        })
    }
}

impl From<TrustedKeys> for TrustPolicy {
    fn from(keys: TrustedKeys) -> Self {
        Self {
            signers: keys
                .keys()
                .iter()
                .cloned()
                .map(TrustedSigner::Key)
                .collect(),
        }
    }
}

impl From<&TrustedKeys> for TrustPolicy {
    fn from(keys: &TrustedKeys) -> Self {
        keys.clone().into()
    }
}

/// Who signed a verified manifest: the policy entry that accepted it, with what it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signer {
    /// A trusted public key.
    Key(VerifyingKey),
    /// A leaf certificate that chains to configured roots.
    Certificate {
        /// Leaf subject (RFC 4514).
        subject: String,
        /// Leaf subject alternative names (email, URI, DNS).
        sans: Vec<String>,
        /// Label of the roots it chains to.
        roots: String,
    },
    /// A Sigstore keyless identity.
    Sigstore {
        /// Certificate identity (SAN).
        identity: String,
        /// OIDC issuer.
        issuer: String,
        /// Label of the trusted root.
        root: String,
    },
}

impl Signer {
    /// The public key, for a key signer.
    pub fn key(&self) -> Option<&VerifyingKey> {
        match self {
            Signer::Key(k) => Some(k),
            _ => None,
        }
    }
}

/// A key signer prints its hint (as `model_signing` computes it); a certificate its subject;
/// a Sigstore signer its identity and issuer.
impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Key(k) => f.write_str(&k.hint()),
            Signer::Certificate { subject, .. } => write!(f, "x509:{subject}"),
            Signer::Sigstore {
                identity, issuer, ..
            } => write!(f, "sigstore:{identity} ({issuer})"),
        }
    }
}

/// Why one policy entry did not accept a signature.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The bundle's verification material is of another kind than the entry needs.
    #[error("the bundle does not carry {needed}")]
    Material {
        /// What the entry needs.
        needed: &'static str,
    },
    /// No DSSE signature verifies with the entry's key (or the leaf's key).
    #[error("no valid signature by this key")]
    Signature,
    /// The certificate chain is refused.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The leaf's subject is not the required one.
    #[error("leaf subject {actual:?} is not {expected:?}")]
    Subject {
        /// Required subject.
        expected: String,
        /// The leaf's (untrusted text, escaped).
        actual: String,
    },
    /// No SAN of the leaf matches the required identity.
    #[error("leaf identities [{actual}] do not match {expected}")]
    Identity {
        /// Required identity.
        expected: String,
        /// The leaf's SANs.
        actual: String,
    },
    /// Sigstore keyless verification refused the bundle.
    #[error(transparent)]
    Keyless(#[from] KeylessError),
}

/// One entry's refusal.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Refusal {
    /// The entry, as it prints (`key 3f2a…`, `certificate roots …`, `Sigstore identity …`).
    pub signer: String,
    /// Why it refused.
    pub reason: RefusalReason,
}

/// Every entry's refusal, in policy order.
#[derive(Debug, Clone, Default)]
pub struct Refusals(pub Vec<Refusal>);

impl fmt::Display for Refusals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", r.signer, r.reason)?;
        }
        Ok(())
    }
}
