//! Parsing and verifying the manifest; the proof types.

use base64::Engine as _;

use super::statement::{check_model_signing, package_files, FileEntry, SignedFile};
use super::{SigningKey, TrustedKeys, VerifyError, VerifyingKey};
use crate::crypto::streaming::{SegmentOpener, StreamParams};
use crate::crypto::{check_dek_commitment, sha256, streaming::Header, CryptoError, DataKey};
use crate::format::{
    file_associated_data, parse_digest, validate_model_id, Aead, Bundle, DsseEnvelope,
    DsseSignature, FormatError, Hashing, Limits, PublicKeyMaterial, Statement,
    VerificationMaterial, BUNDLE_MEDIA_TYPE, ENCRYPTION_FORMAT, IN_TOTO_PAYLOAD_TYPE,
};

const DOC: &str = "manifest";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// At most this many signatures are tried (bounds work on hostile input).
const MAX_SIGNATURES: usize = 8;

fn invalid(field: &'static str, reason: impl Into<String>) -> FormatError {
    FormatError::InvalidField {
        document: DOC,
        field,
        reason: reason.into(),
    }
}

/// DSSE v1 pre-authentication encoding.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
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

/// A file of a [`VerifiedManifest`]: only a verified manifest hands these out, and
/// [`UnlockedManifest::file_opener`] accepts nothing else. Dereferences to its [`FileEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedFile(FileEntry);

impl std::ops::Deref for VerifiedFile {
    type Target = FileEntry;
    fn deref(&self) -> &FileEntry {
        &self.0
    }
}

/// What a structurally checked manifest says, signed or not: model, package id, AEAD
/// parameters, DEK commitment, digest and totals. Both [`UnverifiedManifest`] and
/// [`VerifiedManifest`] dereference to it; only their `files()` differ.
#[derive(Debug, Clone)]
pub struct ManifestInfo {
    statement: Statement,
    payload: Vec<u8>,
    envelope: DsseEnvelope,
    hint: String,
    digest: [u8; 32],
    model_id: String,
    params: StreamParams,
    dek_commitment: [u8; 32],
    hashing: Hashing,
    total_plaintext: u64,
    total_ciphertext: u64,
}

impl ManifestInfo {
    /// The signed statement.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }
    /// The exact signed payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// The DSSE envelope as read.
    pub fn envelope(&self) -> &DsseEnvelope {
        &self.envelope
    }
    /// The key hint the signer wrote (informational).
    pub fn signer_hint(&self) -> &str {
        &self.hint
    }
    /// SHA-256 of the manifest object bytes (what `--manifest-digest` pins).
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
    /// Package id.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }
    /// AEAD parameters.
    pub fn params(&self) -> StreamParams {
        self.params
    }
    /// Signed DEK commitment.
    pub fn dek_commitment(&self) -> &[u8; 32] {
        &self.dek_commitment
    }
    /// How the plaintext was hashed (algorithm, files or shards).
    pub fn hashing(&self) -> Hashing {
        self.hashing
    }
    /// Model name from the subject.
    pub fn model_name(&self) -> &str {
        self.statement
            .subject
            .first()
            .map(|s| s.name.as_str())
            .unwrap_or("")
    }
    /// Total plaintext bytes.
    pub fn total_plaintext(&self) -> u64 {
        self.total_plaintext
    }
    /// Total ciphertext bytes.
    pub fn total_ciphertext(&self) -> u64 {
        self.total_ciphertext
    }
}

/// A manifest whose structure was checked but whose signature was NOT verified. Good for
/// `inspect`; its files are plain [`FileEntry`]s, so nothing can be decrypted with it.
#[derive(Debug, Clone)]
pub struct UnverifiedManifest {
    info: ManifestInfo,
    files: Vec<FileEntry>,
}

impl std::ops::Deref for UnverifiedManifest {
    type Target = ManifestInfo;
    fn deref(&self) -> &ManifestInfo {
        &self.info
    }
}

impl UnverifiedManifest {
    /// Files in manifest order (descriptions only).
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }
}

/// A manifest whose signature verified under a trusted key and whose every structural rule
/// holds. Only [`verify_manifest`] creates one; decryption requires it.
#[derive(Debug, Clone)]
pub struct VerifiedManifest {
    info: ManifestInfo,
    files: Vec<VerifiedFile>,
    signer: VerifyingKey,
}

impl std::ops::Deref for VerifiedManifest {
    type Target = ManifestInfo;
    fn deref(&self) -> &ManifestInfo {
        &self.info
    }
}

impl VerifiedManifest {
    /// The trusted key that signed it.
    pub fn signer(&self) -> &VerifyingKey {
        &self.signer
    }

    /// Files in manifest order: the handles decryption accepts.
    pub fn files(&self) -> &[VerifiedFile] {
        &self.files
    }

    /// Checks `dek` against the signed DEK commitment (constant time) and returns the unlocked
    /// manifest that can build segment openers.
    ///
    /// # Errors
    /// [`VerifyError::DekCommitmentMismatch`] when the key is not the package's DEK.
    pub fn unlock(self, dek: DataKey) -> Result<UnlockedManifest, VerifyError> {
        check_dek_commitment(&dek, &self.info.model_id, &self.info.dek_commitment)
            .map_err(|_| VerifyError::DekCommitmentMismatch)?;
        Ok(UnlockedManifest {
            manifest: self,
            dek,
        })
    }
}

/// A verified manifest together with the DEK that matches its commitment.
#[derive(Debug)]
pub struct UnlockedManifest {
    manifest: VerifiedManifest,
    dek: DataKey,
}

impl UnlockedManifest {
    /// The verified manifest.
    pub fn manifest(&self) -> &VerifiedManifest {
        &self.manifest
    }

    /// The segment opener of `file`, given the first 40 bytes of its ciphertext.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] for a malformed header.
    pub fn file_opener(
        &self,
        file: &VerifiedFile,
        header: &[u8],
    ) -> Result<SegmentOpener, CryptoError> {
        let header = Header::parse(header)?;
        let ad = file_associated_data(&self.manifest.info.model_id, file.path());
        SegmentOpener::new(&self.dek, &header, &ad, self.manifest.info.params)
    }
}

fn decode_bundle(bytes: &[u8], limits: &Limits) -> Result<(Bundle, Vec<u8>), FormatError> {
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
    if bundle.media_type != BUNDLE_MEDIA_TYPE {
        return Err(FormatError::UnsupportedVersion {
            document: DOC,
            found: bundle.media_type.escape_debug().to_string(),
        });
    }
    if bundle.dsse_envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(invalid("payloadType", "not application/vnd.in-toto+json"));
    }
    let n = bundle.dsse_envelope.signatures.len();
    if n == 0 || n > MAX_SIGNATURES {
        return Err(invalid(
            "signatures",
            format!("{n} signatures (need 1..={MAX_SIGNATURES})"),
        ));
    }
    let payload = B64
        .decode(&bundle.dsse_envelope.payload)
        .map_err(|_| invalid("payload", "not standard padded base64"))?;
    Ok((bundle, payload))
}

fn check_statement(
    bundle: Bundle,
    payload: Vec<u8>,
    digest: [u8; 32],
    limits: &Limits,
) -> Result<(ManifestInfo, Vec<FileEntry>), VerifyError> {
    let statement: Statement =
        serde_json::from_slice(&payload).map_err(|source| FormatError::Malformed {
            document: "signed statement",
            source,
        })?;
    let (hashing, signed) = check_model_signing(&statement, limits)?;
    let enc = statement.predicate.encryption.as_ref().ok_or_else(|| {
        invalid(
            "predicate.secure_model",
            "missing: this is a plain model signature, not an encrypted package",
        )
    })?;
    if enc.format != ENCRYPTION_FORMAT {
        return Err(FormatError::UnsupportedVersion {
            document: "encryption section",
            found: enc.format.escape_debug().to_string(),
        }
        .into());
    }
    validate_model_id(&enc.model_id, DOC)?;
    if enc.aead.scheme != Aead::SCHEME
        || enc.aead.hkdf_hash != "SHA256"
        || enc.aead.derived_key_size != 32
    {
        return Err(invalid(
            "aead",
            "only AES256_GCM_HKDF_STREAMING with SHA256 and 32-byte keys",
        )
        .into());
    }
    let params = StreamParams::new(enc.aead.ciphertext_segment_size)
        .map_err(|_| invalid("aead.ciphertext_segment_size", "outside 1 KiB..=64 MiB"))?;
    let dek_commitment = parse_digest(&enc.dek_commitment, DOC, "dek_commitment")?;
    let files = package_files(&enc.files, hashing, signed, params, limits)?;
    let model_id = enc.model_id.clone();
    let info = ManifestInfo {
        hint: bundle.verification_material.public_key.hint.clone(),
        envelope: bundle.dsse_envelope,
        statement,
        payload,
        digest,
        model_id,
        params,
        dek_commitment,
        hashing,
        total_plaintext: files.iter().map(FileEntry::plaintext_size).sum(),
        total_ciphertext: files.iter().map(FileEntry::ciphertext_size).sum(),
    };
    Ok((info, files))
}

/// A plain OpenSSF model-signing v1.0 signature (no encryption section) verified under a
/// trusted key: the signed plaintext files and their digests (any hashing model signing 1.1
/// writes: `sha256`, `blake2b` or `blake3`, by files or by shards).
#[derive(Debug, Clone)]
pub struct VerifiedModelSignature {
    name: String,
    hashing: Hashing,
    files: Vec<SignedFile>,
    signer: VerifyingKey,
}

impl VerifiedModelSignature {
    /// Model name from the subject.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// How the model was hashed.
    pub fn hashing(&self) -> Hashing {
        self.hashing
    }
    /// The signed files in signed order, with their digests.
    pub fn files(&self) -> &[SignedFile] {
        &self.files
    }
    /// The trusted key that signed it.
    pub fn signer(&self) -> &VerifyingKey {
        &self.signer
    }
}

fn verify_signature(
    bytes: &[u8],
    trusted: &TrustedKeys,
    limits: &Limits,
) -> Result<(Bundle, Vec<u8>, VerifyingKey), VerifyError> {
    if trusted.is_empty() {
        return Err(VerifyError::NoTrustedKeys);
    }
    let (bundle, payload) = decode_bundle(bytes, limits)?;
    let msg = pae(&bundle.dsse_envelope.payload_type, &payload);
    for sig in &bundle.dsse_envelope.signatures {
        let Ok(der) = B64.decode(&sig.sig) else {
            continue;
        };
        for key in trusted.keys() {
            if key.verify(&msg, &der).is_ok() {
                let key = key.clone();
                return Ok((bundle, payload, key));
            }
        }
    }
    Err(VerifyError::SignatureInvalid {
        signer_hint: shown_hint(&bundle.verification_material.public_key.hint),
        trusted: trusted
            .keys()
            .iter()
            .map(VerifyingKey::hint)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The bundle's key hint for messages: attacker-controlled text, so control characters are
/// replaced and it is cut at 80 characters.
fn shown_hint(hint: &str) -> String {
    if hint.is_empty() {
        return "(none)".into();
    }
    let mut out: String = hint
        .chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if hint.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// Verifies a plain OpenSSF model-signing v1.0 bundle (as written by `model_signing sign key`):
/// signature by a trusted key, then the resource rules. Use it to check signatures made by the
/// upstream tool.
pub fn verify_model_signature(
    bytes: &[u8],
    trusted: &TrustedKeys,
    limits: &Limits,
) -> Result<VerifiedModelSignature, VerifyError> {
    let (_bundle, payload, signer) = verify_signature(bytes, trusted, limits)?;
    let statement: Statement =
        serde_json::from_slice(&payload).map_err(|source| FormatError::Malformed {
            document: "signed statement",
            source,
        })?;
    let (hashing, files) = check_model_signing(&statement, limits)?;
    let name = statement
        .subject
        .first()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    Ok(VerifiedModelSignature {
        name,
        hashing,
        files,
        signer,
    })
}

/// Parses and structurally checks a manifest WITHOUT verifying its signature (for `inspect`).
pub fn parse_unverified(bytes: &[u8], limits: &Limits) -> Result<UnverifiedManifest, VerifyError> {
    let (bundle, payload) = decode_bundle(bytes, limits)?;
    let (info, files) = check_statement(bundle, payload, sha256(bytes), limits)?;
    Ok(UnverifiedManifest { info, files })
}

/// Verifies a manifest: size cap, optional digest pin, DSSE signature by a trusted key over the
/// exact payload bytes, then every structural rule (see `docs/FORMAT.md`, "Reader checks").
///
/// # Errors
/// [`VerifyError::NoTrustedKeys`] with an empty key set, [`VerifyError::SignatureInvalid`]
/// when no trusted key signed it, other variants for structural faults.
pub fn verify_manifest(
    bytes: &[u8],
    trusted: &TrustedKeys,
    limits: &Limits,
    pinned_digest: Option<&[u8; 32]>,
) -> Result<VerifiedManifest, VerifyError> {
    if trusted.is_empty() {
        return Err(VerifyError::NoTrustedKeys);
    }
    let digest = sha256(bytes);
    if let Some(pin) = pinned_digest {
        if pin != &digest {
            return Err(VerifyError::ManifestDigestMismatch {
                expected: hex::encode(pin),
                actual: hex::encode(digest),
            });
        }
    }
    let (bundle, payload, signer) = verify_signature(bytes, trusted, limits)?;
    let (info, files) = check_statement(bundle, payload, digest, limits)?;
    Ok(VerifiedManifest {
        info,
        files: files.into_iter().map(VerifiedFile).collect(),
        signer,
    })
}

/// Serialises `statement` (2-space indented JSON, as `model_signing` writes it), signs its DSSE
/// PAE and returns the bundle bytes.
pub fn sign_statement(statement: &Statement, key: &SigningKey) -> Result<Vec<u8>, VerifyError> {
    let payload =
        serde_json::to_vec_pretty(statement).map_err(|source| FormatError::Malformed {
            document: "signed statement",
            source,
        })?;
    let sig = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload))?;
    let bundle = Bundle {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        verification_material: VerificationMaterial {
            public_key: PublicKeyMaterial {
                hint: key.verifying_key().hint(),
            },
            tlog_entries: Vec::new(),
        },
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
            document: DOC,
            source,
        }
        .into()
    })
}
