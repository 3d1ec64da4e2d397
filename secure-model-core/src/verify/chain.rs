//! X.509 certificate chains of a publisher's own PKI (`model_signing sign certificate`): the
//! leaf's validity and usage, path building to the configured roots with `rustls-webpki`, and
//! the DSSE signature with the leaf's key (P-256, P-384, P-521).
//!
//! Path building, signature checks on the chain, basic constraints, path length, name
//! constraints and critical extensions are webpki's. What webpki does not do for a code
//! signing leaf is done here, before it: the leaf's validity with its dates in the message,
//! the key usage / extended key usage rule, the leaf key's curve. Certificates are read with
//! `x509-cert`; no ASN.1 is written by hand.

use std::time::Duration;

use pki_types::{
    alg_id, AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm,
    TrustAnchor, UnixTime,
};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, SubjectAltName};
use x509_cert::Certificate;

/// Most certificates a bundle may carry (leaf included); more is refused before parsing.
pub const MAX_CHAIN_CERTIFICATES: usize = 10;
/// Largest single certificate accepted, bytes of DER.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

const ID_KP_CODE_SIGNING: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 3];
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// Why a certificate chain was refused. Each case names the certificate it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A certificate is not valid DER X.509, or the bundle carries too many or too large.
    #[error("malformed certificate: {reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// The leaf's validity period ended before the verification time.
    #[error("leaf certificate {subject} expired at {}", rfc3339(*not_after))]
    Expired {
        /// Leaf subject (RFC 4514).
        subject: String,
        /// `notAfter`, unix seconds (shown as RFC 3339).
        not_after: u64,
    },
    /// The leaf's validity period starts after the verification time.
    #[error("leaf certificate {subject} is not valid before {}", rfc3339(*not_before))]
    NotYetValid {
        /// Leaf subject (RFC 4514).
        subject: String,
        /// `notBefore`, unix seconds (shown as RFC 3339).
        not_before: u64,
    },
    /// The leaf may not sign code: its key usage lacks digitalSignature, its extended key
    /// usage lacks codeSigning, or it has neither extension.
    #[error("leaf certificate {subject} may not sign models: {reason}")]
    Usage {
        /// Leaf subject (RFC 4514).
        subject: String,
        /// Which rule failed.
        reason: &'static str,
    },
    /// The leaf's key is not ECDSA P-256, P-384 or P-521.
    #[error("leaf certificate {subject} has an unsupported key: {reason}")]
    UnsupportedKey {
        /// Leaf subject (RFC 4514).
        subject: String,
        /// What the key is.
        reason: &'static str,
    },
    /// The bundle has no certificate for an issuer below the trusted roots: an intermediate
    /// is missing (or the leaf was issued by a CA that is not configured).
    #[error("the bundle carries no certificate of issuer {issuer}, and it is not a trusted root (an intermediate is missing?)")]
    MissingIntermediate {
        /// The issuer whose certificate is missing (RFC 4514).
        issuer: String,
    },
    /// The bundle's chain ends at a CA that is not among the trusted roots.
    #[error("the chain ends at {issuer}, which is not a trusted root (trusted: {trusted})")]
    UntrustedRoot {
        /// The last issuer the chain names (RFC 4514).
        issuer: String,
        /// Subjects of the configured roots.
        trusted: String,
    },
    /// A certificate names a trusted root as issuer but the root's key did not sign it (a CA
    /// with a copied name, or a re-keyed root).
    #[error("{subject} names the trusted root {root} as issuer but is not signed by its key")]
    RootKeyMismatch {
        /// The certificate (RFC 4514).
        subject: String,
        /// The root (RFC 4514).
        root: String,
    },
    /// A certificate is signed with an algorithm that is not accepted (SHA-1, unknown).
    #[error("a certificate of the chain uses an unsupported signature algorithm (SHA-1 and unknown algorithms are refused)")]
    UnsupportedAlgorithm,
    /// The chain violates a CA's path length constraint or is too deep.
    #[error("the chain violates a path length constraint or is too deep")]
    PathLength,
    /// Any other path validation failure (webpki's reason).
    #[error("certificate chain invalid: {reason}")]
    Invalid {
        /// webpki's error.
        reason: String,
    },
}

/// `secs` since the Unix epoch as an RFC 3339 UTC time (`2025-01-01T00:00:00Z`), by the
/// days-to-civil-date algorithm of the proleptic Gregorian calendar (H. Hinnant).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3_600, (rem % 3_600) / 60, rem % 60);
    // Shift the epoch to 0000-03-01 so that leap days end a 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// The leaf's key, by curve, as the SEC1 point from its SPKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeafKey {
    P256(Vec<u8>),
    P384(Vec<u8>),
    P521(Vec<u8>),
}

impl LeafKey {
    /// Verifies a DER ECDSA signature over `msg` with the curve's hash (SHA-256, SHA-384,
    /// SHA-512), as `model_signing` signs.
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        use ring::signature as rs;
        match self {
            LeafKey::P256(p) => rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_ASN1, p)
                .verify(msg, sig)
                .is_ok(),
            LeafKey::P384(p) => rs::UnparsedPublicKey::new(&rs::ECDSA_P384_SHA384_ASN1, p)
                .verify(msg, sig)
                .is_ok(),
            LeafKey::P521(p) => ec_verify(Curve::P521, &ring::digest::SHA512, p, msg, sig),
        }
    }
}

/// What a verified chain says about its leaf.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub(crate) subject: String,
    pub(crate) sans: Vec<String>,
    pub(crate) key: LeafKey,
}

/// The configured roots of one certificate-chain signer, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct Roots {
    anchors: Vec<TrustAnchor<'static>>,
    names: Vec<(Vec<u8>, String)>,
}

impl Roots {
    /// Parses root certificates (DER). At least one.
    pub(crate) fn new(ders: &[Vec<u8>]) -> Result<Self, ChainError> {
        let mut anchors = Vec::with_capacity(ders.len());
        let mut names = Vec::with_capacity(ders.len());
        for der in ders {
            let cert = parse(der)?;
            let cert_der = CertificateDer::from(der.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&cert_der)
                .map_err(|e| malformed(format!("trusted root: {e}")))?;
            anchors.push(anchor.to_owned());
            let subject = &cert.tbs_certificate.subject;
            names.push((subject.to_der().unwrap_or_default(), subject.to_string()));
        }
        if anchors.is_empty() {
            return Err(malformed("no root certificate"));
        }
        Ok(Self { anchors, names })
    }

    /// Subjects of the roots, for messages.
    pub(crate) fn subjects(&self) -> String {
        self.names
            .iter()
            .map(|(_, n)| n.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn named(&self, der_name: &[u8]) -> Option<&str> {
        self.names
            .iter()
            .find(|(d, _)| d == der_name)
            .map(|(_, n)| n.as_str())
    }
}

fn malformed(reason: impl Into<String>) -> ChainError {
    ChainError::Malformed {
        reason: reason.into(),
    }
}

fn parse(der: &[u8]) -> Result<Certificate, ChainError> {
    if der.len() > MAX_CERTIFICATE_BYTES {
        return Err(malformed(format!(
            "{} bytes (limit {MAX_CERTIFICATE_BYTES})",
            der.len()
        )));
    }
    Certificate::from_der(der).map_err(|e| malformed(e.to_string()))
}

/// Verifies `certs` (leaf first, then intermediates in any order; a root among them is
/// harmless) to `roots` at `now`, and returns the leaf's identity and key.
pub(crate) fn verify_chain(
    certs: &[Vec<u8>],
    roots: &Roots,
    now: UnixTime,
) -> Result<Leaf, ChainError> {
    if certs.len() > MAX_CHAIN_CERTIFICATES {
        return Err(malformed(format!(
            "{} certificates (limit {MAX_CHAIN_CERTIFICATES})",
            certs.len()
        )));
    }
    let (leaf_der, rest) = certs
        .split_first()
        .ok_or_else(|| malformed("no certificate"))?;
    let leaf = parse(leaf_der)?;
    let subject = leaf.tbs_certificate.subject.to_string();
    check_validity(&leaf, &subject, now)?;
    check_usage(&leaf, &subject)?;
    let key = leaf_key(&leaf, &subject)?;
    let leaf_cert_der = CertificateDer::from(leaf_der.as_slice());
    let ee =
        webpki::EndEntityCert::try_from(&leaf_cert_der).map_err(|e| malformed(e.to_string()))?;
    let intermediates: Vec<CertificateDer<'_>> = rest
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    ee.verify_for_usage(
        ALGORITHMS,
        &roots.anchors,
        &intermediates,
        now,
        webpki::KeyUsage::required_if_present(ID_KP_CODE_SIGNING),
        None,
        None,
    )
    .map_err(|e| classify(e, &leaf, rest, roots))?;
    Ok(Leaf {
        sans: sans(&leaf),
        subject,
        key,
    })
}

fn check_validity(leaf: &Certificate, subject: &str, now: UnixTime) -> Result<(), ChainError> {
    let v = &leaf.tbs_certificate.validity;
    let (nb, na) = (
        v.not_before.to_unix_duration(),
        v.not_after.to_unix_duration(),
    );
    let now = Duration::from_secs(now.as_secs());
    if now > na {
        return Err(ChainError::Expired {
            subject: subject.into(),
            not_after: na.as_secs(),
        });
    }
    if now < nb {
        return Err(ChainError::NotYetValid {
            subject: subject.into(),
            not_before: nb.as_secs(),
        });
    }
    Ok(())
}

/// The leaf rule: a key usage extension, when present, includes digitalSignature; an extended
/// key usage extension, when present, includes codeSigning; at least one of them is present.
fn check_usage(leaf: &Certificate, subject: &str) -> Result<(), ChainError> {
    let refuse = |reason| ChainError::Usage {
        subject: subject.into(),
        reason,
    };
    let tbs = &leaf.tbs_certificate;
    let ku = tbs
        .get::<KeyUsage>()
        .map_err(|_| refuse("malformed key usage extension"))?;
    let eku = tbs
        .get::<ExtendedKeyUsage>()
        .map_err(|_| refuse("malformed extended key usage extension"))?;
    if ku.is_none() && eku.is_none() {
        return Err(refuse(
            "neither key usage nor extended key usage is present",
        ));
    }
    if let Some((_, ku)) = ku {
        if !ku.digital_signature() {
            return Err(refuse("key usage lacks digitalSignature"));
        }
    }
    if let Some((_, eku)) = eku {
        if !eku.0.contains(&CODE_SIGNING) {
            return Err(refuse("extended key usage lacks codeSigning"));
        }
    }
    Ok(())
}

fn leaf_key(leaf: &Certificate, subject: &str) -> Result<LeafKey, ChainError> {
    let refuse = |reason| ChainError::UnsupportedKey {
        subject: subject.into(),
        reason,
    };
    let spki = &leaf.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != EC_PUBLIC_KEY {
        return Err(refuse("not an elliptic-curve key"));
    }
    let curve: ObjectIdentifier = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as().ok())
        .ok_or_else(|| refuse("no named curve"))?;
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| refuse("malformed public key bits"))?
        .to_vec();
    match curve {
        c if c == SECP256R1 => Ok(LeafKey::P256(point)),
        c if c == SECP384R1 => Ok(LeafKey::P384(point)),
        c if c == SECP521R1 => Ok(LeafKey::P521(point)),
        _ => Err(refuse("curve is not P-256, P-384 or P-521")),
    }
}

/// Email, URI and DNS names of the leaf's subject alternative names.
fn sans(leaf: &Certificate) -> Vec<String> {
    let Ok(Some((_, san))) = leaf.tbs_certificate.get::<SubjectAltName>() else {
        return Vec::new();
    };
    san.0
        .iter()
        .filter_map(|n| match n {
            GeneralName::Rfc822Name(s) | GeneralName::DnsName(s) => Some(s.to_string()),
            GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

/// Turns webpki's error into a [`ChainError`]; an unknown issuer is explained by following
/// issuer names from the leaf through the bundle's certificates.
#[allow(
    deprecated,
    reason = "webpki 0.103 still defines the context-free variants; match them too"
)]
fn classify(e: webpki::Error, leaf: &Certificate, rest: &[Vec<u8>], roots: &Roots) -> ChainError {
    use webpki::Error as W;
    match e {
        W::UnknownIssuer => explain_unknown_issuer(leaf, rest, roots),
        // A root of the right name but another key (or a bad signature below it).
        W::InvalidSignatureForPublicKey => match explain_unknown_issuer(leaf, rest, roots) {
            e @ ChainError::RootKeyMismatch { .. } => e,
            _ => ChainError::Invalid {
                reason: "a certificate is not signed by its issuer's key".into(),
            },
        },
        W::UnsupportedSignatureAlgorithm
        | W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKey
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            ChainError::UnsupportedAlgorithm
        }
        W::PathLenConstraintViolated | W::MaximumPathDepthExceeded => ChainError::PathLength,
        W::CaUsedAsEndEntity => ChainError::Usage {
            subject: leaf.tbs_certificate.subject.to_string(),
            reason: "it is a CA certificate (basic constraints CA:TRUE); models are signed with an end-entity certificate issued by the CA",
        },
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => ChainError::Usage {
            subject: "an intermediate of the chain".into(),
            reason: "extended key usage lacks codeSigning",
        },
        other => ChainError::Invalid {
            reason: other.to_string(),
        },
    }
}

fn explain_unknown_issuer(leaf: &Certificate, rest: &[Vec<u8>], roots: &Roots) -> ChainError {
    let bundle: Vec<Certificate> = rest.iter().filter_map(|d| parse(d).ok()).collect();
    let mut current = leaf;
    // Bounded walk: each step moves to a different bundle certificate.
    for _ in 0..=bundle.len() {
        let issuer = &current.tbs_certificate.issuer;
        let issuer_der = issuer.to_der().unwrap_or_default();
        if let Some(root) = roots.named(&issuer_der) {
            return ChainError::RootKeyMismatch {
                subject: current.tbs_certificate.subject.to_string(),
                root: root.into(),
            };
        }
        let next = bundle.iter().find(|c| {
            c.tbs_certificate.subject == *issuer
                && c.tbs_certificate.subject != current.tbs_certificate.subject
        });
        match next {
            Some(n) => current = n,
            None if std::ptr::eq(current, leaf) => {
                return ChainError::MissingIntermediate {
                    issuer: issuer.to_string(),
                }
            }
            None => {
                return ChainError::UntrustedRoot {
                    issuer: issuer.to_string(),
                    trusted: roots.subjects(),
                }
            }
        }
    }
    ChainError::Invalid {
        reason: "the bundle's certificates form a loop".into(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Curve {
    P256,
    P384,
    P521,
}

/// ECDSA over `msg` hashed with `hash`, with RustCrypto's prehash verifiers (for the curve and
/// hash pairs ring lacks).
fn ec_verify(
    curve: Curve,
    hash: &'static ring::digest::Algorithm,
    public_key: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let digest = ring::digest::digest(hash, msg);
    let d = digest.as_ref();
    match curve {
        Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
            .ok()
            .zip(p256::ecdsa::Signature::from_der(sig).ok())
            .is_some_and(|(k, s)| k.verify_prehash(d, &s).is_ok()),
        Curve::P384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
            .ok()
            .zip(p384::ecdsa::Signature::from_der(sig).ok())
            .is_some_and(|(k, s)| k.verify_prehash(d, &s).is_ok()),
        Curve::P521 => p521::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
            .ok()
            .zip(p521::ecdsa::Signature::from_der(sig).ok())
            .is_some_and(|(k, s)| k.verify_prehash(d, &s).is_ok()),
    }
}

/// A certificate signature algorithm ring does not offer, verified with RustCrypto.
#[derive(Debug)]
struct RustCryptoEcdsa {
    curve: Curve,
    key_id: AlgorithmIdentifier,
    sig_id: AlgorithmIdentifier,
    hash: &'static ring::digest::Algorithm,
}

impl SignatureVerificationAlgorithm for RustCryptoEcdsa {
    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.key_id
    }
    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.sig_id
    }
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        if ec_verify(self.curve, self.hash, public_key, message, signature) {
            Ok(())
        } else {
            Err(InvalidSignature)
        }
    }
}

static P521_SHA512: RustCryptoEcdsa = RustCryptoEcdsa {
    curve: Curve::P521,
    key_id: alg_id::ECDSA_P521,
    sig_id: alg_id::ECDSA_SHA512,
    hash: &ring::digest::SHA512,
};
static P521_SHA384: RustCryptoEcdsa = RustCryptoEcdsa {
    curve: Curve::P521,
    key_id: alg_id::ECDSA_P521,
    sig_id: alg_id::ECDSA_SHA384,
    hash: &ring::digest::SHA384,
};
static P384_SHA512: RustCryptoEcdsa = RustCryptoEcdsa {
    curve: Curve::P384,
    key_id: alg_id::ECDSA_P384,
    sig_id: alg_id::ECDSA_SHA512,
    hash: &ring::digest::SHA512,
};
static P256_SHA512: RustCryptoEcdsa = RustCryptoEcdsa {
    curve: Curve::P256,
    key_id: alg_id::ECDSA_P256,
    sig_id: alg_id::ECDSA_SHA512,
    hash: &ring::digest::SHA512,
};

/// Certificate signature algorithms accepted in a chain: webpki's ring set (ECDSA P-256/P-384
/// with SHA-256/384, Ed25519, RSA PKCS#1 and PSS with SHA-256/384/512, 2048 bits and up) plus
/// ECDSA with SHA-512 and P-521 (SHA-384/512) from RustCrypto. No SHA-1.
static ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
    &P256_SHA512,
    &P384_SHA512,
    &P521_SHA384,
    &P521_SHA512,
];

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known_answers() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_577_923_200, "2020-01-02T00:00:00Z"),
            (1_735_689_599, "2024-12-31T23:59:59Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(super::rfc3339(secs), want, "{secs}");
        }
    }
}
