//! Reading a signature bundle into checked parts before any trust decision: size cap, media
//! type, DSSE payload type and signature count, the payload bytes, and the verification
//! material (a public key hint, or certificates with their count and sizes capped).

use base64::Engine as _;

use super::chain::{MAX_CERTIFICATE_BYTES, MAX_CHAIN_CERTIFICATES};
use crate::format::{
    Bundle, FormatError, Limits, VerificationMaterial, BUNDLE_MEDIA_TYPES_READ,
    IN_TOTO_PAYLOAD_TYPE,
};

const DOC: &str = "manifest";
pub(crate) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// At most this many signatures are tried (bounds work on hostile input).
pub(crate) const MAX_SIGNATURES: usize = 8;

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> FormatError {
    FormatError::InvalidField {
        document: DOC,
        field,
        reason: reason.into(),
    }
}

/// What the bundle offers as its signer's material.
#[derive(Debug, Clone)]
pub(crate) enum Material {
    /// `publicKey`: the hint (possibly empty) names the key; trust comes from the policy.
    PublicKey { hint: String },
    /// `certificate` or `x509CertificateChain`: DER, leaf first.
    Certificates(Vec<Vec<u8>>),
}

impl Material {
    /// Reads the one material member, decoding and capping certificates.
    pub(crate) fn of(vm: &VerificationMaterial) -> Result<Self, FormatError> {
        let members = usize::from(vm.public_key.is_some())
            + usize::from(vm.certificate.is_some())
            + usize::from(vm.x509_certificate_chain.is_some());
        if members != 1 {
            return Err(invalid(
                "verificationMaterial",
                "needs exactly one of publicKey, certificate, x509CertificateChain",
            ));
        }
        if let Some(pk) = &vm.public_key {
            return Ok(Material::PublicKey {
                hint: pk.hint.clone().unwrap_or_default(),
            });
        }
        let certs: Vec<&str> = match (&vm.certificate, &vm.x509_certificate_chain) {
            (Some(c), _) => vec![c.raw_bytes.as_str()],
            (None, Some(chain)) => chain
                .certificates
                .iter()
                .map(|c| c.raw_bytes.as_str())
                .collect(),
            (None, None) => Vec::new(),
        };
        if certs.is_empty() || certs.len() > MAX_CHAIN_CERTIFICATES {
            return Err(invalid(
                "verificationMaterial",
                format!(
                    "{} certificates (need 1..={MAX_CHAIN_CERTIFICATES})",
                    certs.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(certs.len());
        for c in certs {
            // base64 is 4/3 of the DER: refuse before decoding.
            if c.len() > MAX_CERTIFICATE_BYTES / 3 * 4 + 4 {
                return Err(invalid("verificationMaterial", "certificate too large"));
            }
            let der = B64
                .decode(c)
                .map_err(|_| invalid("rawBytes", "not standard padded base64"))?;
            out.push(der);
        }
        Ok(Material::Certificates(out))
    }

    /// What the bundle says about its signer, for messages and `inspect`: the key hint (empty
    /// when absent), or `x509:` and the leaf certificate's subject. Untrusted text, sanitized.
    pub(crate) fn claim(&self) -> String {
        match self {
            Material::PublicKey { hint } => shown(hint),
            Material::Certificates(certs) => {
                use x509_cert::der::Decode;
                let subject = certs
                    .first()
                    .and_then(|d| x509_cert::Certificate::from_der(d).ok())
                    .map(|c| c.tbs_certificate.subject.to_string())
                    .unwrap_or_else(|| "(unreadable certificate)".into());
                format!("x509:{}", shown(&subject))
            }
        }
    }

    /// [`Material::claim`] for messages, `(none)` when empty.
    pub(crate) fn describe(&self) -> String {
        let c = self.claim();
        if c.is_empty() {
            "(none)".into()
        } else {
            c
        }
    }
}

/// Attacker-controlled text for messages: control characters replaced, cut at 80 characters.
pub(crate) fn shown(text: &str) -> String {
    shown_up_to(text, 80)
}

/// [`shown`] with another length.
pub(crate) fn shown_up_to(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}

/// A bundle read and checked structurally; nothing in it is trusted yet.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) bundle: Bundle,
    pub(crate) payload: Vec<u8>,
    pub(crate) material: Material,
    /// The DSSE signatures that decode from base64 (others can never verify).
    pub(crate) signatures: Vec<Vec<u8>>,
}

/// Reads `bytes` as a bundle: size cap, JSON, media type, payload type, 1..=8 signatures,
/// payload base64, verification material.
pub(crate) fn decode_bundle(bytes: &[u8], limits: &Limits) -> Result<Decoded, FormatError> {
    if bytes.len() as u64 > limits.max_manifest_bytes {
        return Err(FormatError::LimitExceeded {
            what: "manifest size",
            actual: bytes.len() as u64,
            limit: limits.max_manifest_bytes,
        });
    }
    let bundle: Bundle =
        serde_json::from_slice(bytes).map_err(|source| FormatError::Malformed {
            document: DOC,
            source,
        })?;
    if !BUNDLE_MEDIA_TYPES_READ.contains(&bundle.media_type.as_str()) {
        return Err(FormatError::UnsupportedVersion {
            document: DOC,
            found: bundle.media_type.escape_debug().to_string(),
        });
    }
    let env = &bundle.dsse_envelope;
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(invalid("payloadType", "not application/vnd.in-toto+json"));
    }
    let n = env.signatures.len();
    if n == 0 || n > MAX_SIGNATURES {
        return Err(invalid(
            "signatures",
            format!("{n} signatures (need 1..={MAX_SIGNATURES})"),
        ));
    }
    let payload = B64
        .decode(&env.payload)
        .map_err(|_| invalid("payload", "not standard padded base64"))?;
    let signatures = env
        .signatures
        .iter()
        .filter_map(|s| B64.decode(&s.sig).ok())
        .collect();
    let material = Material::of(&bundle.verification_material)?;
    Ok(Decoded {
        bundle,
        payload,
        material,
        signatures,
    })
}

/// DSSE v1 pre-authentication encoding.
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// The SHA-256 digest of the statement's first subject, if the payload has one (what a
/// keyless bundle binds; the statement rules are checked after the signature).
pub(crate) fn subject_sha256(payload: &[u8]) -> Option<[u8; 32]> {
    #[derive(serde::Deserialize)]
    struct S {
        subject: Vec<Sub>,
    }
    #[derive(serde::Deserialize)]
    struct Sub {
        digest: D,
    }
    #[derive(serde::Deserialize)]
    struct D {
        sha256: String,
    }
    let s: S = serde_json::from_slice(payload).ok()?;
    let hex_digest = &s.subject.first()?.digest.sha256;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut out).ok()?;
    Some(out)
}

/// What a policy entry examines: the bundle text (for the Sigstore verifier), its material,
/// the PAE the DSSE signatures cover, the signatures and the bound subject digest.
#[derive(Debug)]
pub(crate) struct Evidence<'a> {
    pub(crate) json: &'a str,
    pub(crate) material: &'a Material,
    pub(crate) pae: &'a [u8],
    pub(crate) signatures: &'a [Vec<u8>],
    pub(crate) subject_sha256: Option<[u8; 32]>,
}
