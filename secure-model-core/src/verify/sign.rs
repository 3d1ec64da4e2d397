//! The publisher's side: signing a statement into a bundle with a raw key (`model_signing
//! sign key` form) or a certificate chain (`model_signing sign certificate` form).

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use x509_cert::der::Decode;

use super::bundle::{pae, B64};
use super::{SigningKey, VerifyError};
use crate::format::{
    Bundle, CertificateChain, CertificateMaterial, DsseEnvelope, DsseSignature, FormatError,
    PublicKeyMaterial, Statement, VerificationMaterial, BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE,
};

/// Something that signs a statement's DSSE PAE and says how a reader finds its key.
pub trait StatementSigner: Send + Sync + std::fmt::Debug {
    /// DER ECDSA signature over `msg`.
    ///
    /// # Errors
    /// [`VerifyError::InvalidKey`] when signing fails.
    fn sign_message(&self, msg: &[u8]) -> Result<Vec<u8>, VerifyError>;
    /// The bundle's `verificationMaterial`.
    fn material(&self) -> VerificationMaterial;
    /// How the signer shows in reports: the key hint, or `x509:` and the leaf's subject.
    fn describe(&self) -> String;
}

impl StatementSigner for SigningKey {
    fn sign_message(&self, msg: &[u8]) -> Result<Vec<u8>, VerifyError> {
        self.sign(msg)
    }
    fn material(&self) -> VerificationMaterial {
        VerificationMaterial {
            public_key: Some(PublicKeyMaterial {
                hint: Some(self.verifying_key().hint()),
            }),
            ..VerificationMaterial::default()
        }
    }
    fn describe(&self) -> String {
        self.verifying_key().hint()
    }
}

fn key_error(reason: &'static str) -> VerifyError {
    VerifyError::InvalidKey {
        what: "certificate signing key",
        reason,
    }
}

/// An ECDSA P-256 or P-384 leaf key with its certificate and the intermediates up to (not
/// necessarily including) the root, as `model_signing sign certificate --private_key
/// --signing_certificate --certificate_chain` takes them. `Debug` is redacted; not `Clone`.
pub struct CertificateSigningKey {
    pair: EcdsaKeyPair,
    chain: Vec<Vec<u8>>,
    subject: String,
}

impl std::fmt::Debug for CertificateSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertificateSigningKey({}, [redacted])", self.subject)
    }
}

impl CertificateSigningKey {
    /// Reads the PKCS#8 key, the leaf certificate and the chain (PEM; the chain may be empty
    /// or hold several certificates). The key must be the leaf's.
    ///
    /// # Errors
    /// [`VerifyError::InvalidKey`] for a key that is not PKCS#8 P-256/P-384, certificates that
    /// do not parse, or a key that does not match the leaf.
    pub fn from_pem(key_pem: &str, leaf_pem: &str, chain_pem: &str) -> Result<Self, VerifyError> {
        let key = pem::parse(key_pem).map_err(|_| key_error("not PEM"))?;
        if key.tag() != "PRIVATE KEY" {
            return Err(key_error(
                "not a PKCS#8 'PRIVATE KEY' PEM; convert with `openssl pkcs8 -topk8 -nocrypt`",
            ));
        }
        let rng = SystemRandom::new();
        let pair = [
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        ]
        .into_iter()
        .find_map(|alg| EcdsaKeyPair::from_pkcs8(alg, key.contents(), &rng).ok())
        .ok_or(key_error("not a PKCS#8 ECDSA P-256 or P-384 key"))?;
        let mut chain = vec![certificates(leaf_pem)?
            .into_iter()
            .next()
            .ok_or(key_error("no leaf certificate"))?];
        chain.extend(certificates(chain_pem)?);
        let leaf = x509_cert::Certificate::from_der(chain.first().map_or(&[][..], |c| c))
            .map_err(|_| key_error("leaf certificate does not parse"))?;
        let spki_point = leaf
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .as_bytes();
        if spki_point != Some(pair.public_key().as_ref()) {
            return Err(key_error("the key is not the leaf certificate's key"));
        }
        Ok(Self {
            pair,
            chain,
            subject: leaf.tbs_certificate.subject.to_string(),
        })
    }
}

fn certificates(text: &str) -> Result<Vec<Vec<u8>>, VerifyError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let blocks = pem::parse_many(text).map_err(|_| key_error("certificate is not PEM"))?;
    blocks
        .into_iter()
        .map(|b| {
            if b.tag() == "CERTIFICATE" {
                Ok(b.into_contents())
            } else {
                Err(key_error("PEM label is not CERTIFICATE"))
            }
        })
        .collect()
}

impl StatementSigner for CertificateSigningKey {
    fn sign_message(&self, msg: &[u8]) -> Result<Vec<u8>, VerifyError> {
        self.pair
            .sign(&SystemRandom::new(), msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| key_error("signing failed"))
    }
    fn material(&self) -> VerificationMaterial {
        VerificationMaterial {
            x509_certificate_chain: Some(CertificateChain {
                certificates: self
                    .chain
                    .iter()
                    .map(|der| CertificateMaterial {
                        raw_bytes: B64.encode(der),
                    })
                    .collect(),
            }),
            ..VerificationMaterial::default()
        }
    }
    fn describe(&self) -> String {
        format!("x509:{}", self.subject)
    }
}

/// Serialises `statement` (2-space indented JSON, as `model_signing` writes it), signs its DSSE
/// PAE and returns the bundle bytes.
///
/// # Errors
/// [`VerifyError::InvalidKey`] when signing fails.
pub fn sign_statement(
    statement: &Statement,
    signer: &dyn StatementSigner,
) -> Result<Vec<u8>, VerifyError> {
    let payload =
        serde_json::to_vec_pretty(statement).map_err(|source| FormatError::Malformed {
            document: "signed statement",
            source,
        })?;
    let sig = signer.sign_message(&pae(IN_TOTO_PAYLOAD_TYPE, &payload))?;
    let bundle = Bundle {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        verification_material: signer.material(),
        dsse_envelope: DsseEnvelope {
            payload: B64.encode(&payload),
            payload_type: IN_TOTO_PAYLOAD_TYPE.into(),
            signatures: vec![DsseSignature {
                sig: B64.encode(sig),
                keyid: String::new(),
            }],
        },
    };
    serde_json::to_vec(&bundle).map_err(|source| {
        FormatError::Malformed {
            document: "manifest",
            source,
        }
        .into()
    })
}
