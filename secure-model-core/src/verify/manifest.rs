//! Parsing and verifying the manifest; the proof types.

use base64::Engine as _;

use super::{SigningKey, TrustedKeys, VerifyError, VerifyingKey};
use crate::crypto::streaming::{SegmentOpener, StreamParams};
use crate::crypto::{check_dek_commitment, sha256, streaming::Header, CryptoError, DataKey};
use crate::format::{
    compare_paths, file_associated_data, parse_digest, validate_model_id, validate_object_key,
    validate_path, Aead, Bundle, DsseEnvelope, DsseSignature, FormatError, Limits,
    PublicKeyMaterial, Statement, VerificationMaterial, BUNDLE_MEDIA_TYPE, ENCRYPTION_FORMAT,
    IN_TOTO_PAYLOAD_TYPE, IN_TOTO_STATEMENT_TYPE, MODEL_SIGNING_PREDICATE_TYPE,
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

/// One file as a manifest describes it: path, object, sizes and signed digests. Read-only;
/// decryption does not accept it (see [`VerifiedFile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    path: String,
    object: String,
    plaintext_size: u64,
    ciphertext_size: u64,
    plaintext_sha256: [u8; 32],
    ciphertext_sha256: [u8; 32],
    segments: u64,
}

impl FileEntry {
    /// Relative POSIX path of the plaintext file.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// Object key of the ciphertext, relative to the package prefix.
    pub fn object(&self) -> &str {
        &self.object
    }
    /// Plaintext size.
    pub fn plaintext_size(&self) -> u64 {
        self.plaintext_size
    }
    /// Ciphertext size.
    pub fn ciphertext_size(&self) -> u64 {
        self.ciphertext_size
    }
    /// Signed plaintext SHA-256.
    pub fn plaintext_sha256(&self) -> &[u8; 32] {
        &self.plaintext_sha256
    }
    /// Signed ciphertext SHA-256.
    pub fn ciphertext_sha256(&self) -> &[u8; 32] {
        &self.ciphertext_sha256
    }
    /// Number of AEAD segments.
    pub fn segments(&self) -> u64 {
        self.segments
    }
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
        let ad = file_associated_data(&self.manifest.info.model_id, &file.path);
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

/// Checks the model-signing part of a statement (types, serialization, resources: paths,
/// order, duplicates, digests, subject digest, count limit) and returns the resources.
fn check_model_signing(
    statement: &Statement,
    limits: &Limits,
) -> Result<Vec<(String, [u8; 32])>, VerifyError> {
    if statement.type_ != IN_TOTO_STATEMENT_TYPE {
        return Err(invalid("_type", "not https://in-toto.io/Statement/v1").into());
    }
    if statement.predicate_type != MODEL_SIGNING_PREDICATE_TYPE {
        return Err(FormatError::UnsupportedVersion {
            document: "predicate",
            found: statement.predicate_type.escape_debug().to_string(),
        }
        .into());
    }
    let pred = &statement.predicate;
    let ser = &pred.serialization;
    if ser.method != "files" || ser.hash_type != "sha256" || ser.allow_symlinks {
        return Err(invalid(
            "serialization",
            "only method 'files', hash_type 'sha256', allow_symlinks false",
        )
        .into());
    }
    let count = pred.resources.len() as u64;
    if count > limits.max_files {
        return Err(FormatError::LimitExceeded {
            what: "file count",
            actual: count,
            limit: limits.max_files,
        }
        .into());
    }
    let subject = match statement.subject.as_slice() {
        [one] => one,
        _ => return Err(invalid("subject", "exactly one subject required").into()),
    };
    let subject_digest = parse_digest(&subject.digest.sha256, DOC, "subject.digest.sha256")?;
    let mut out: Vec<(String, [u8; 32])> = Vec::with_capacity(pred.resources.len());
    let mut concat = crate::crypto::Sha256::new();
    for res in &pred.resources {
        validate_path(&res.name, limits)?;
        if res.algorithm != "sha256" {
            return Err(invalid("resources.algorithm", "only sha256").into());
        }
        if let Some((p, _)) = out.last() {
            match compare_paths(p, &res.name) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    return Err(FormatError::InvalidPath {
                        path: res.name.escape_debug().to_string(),
                        reason: "duplicate path",
                    }
                    .into())
                }
                std::cmp::Ordering::Greater => {
                    return Err(invalid("resources", "not in component-wise sorted order").into())
                }
            }
            // A file must not also be a directory prefix of a later file ("a" and "a/b").
            if res.name.len() > p.len()
                && res.name.starts_with(p.as_str())
                && res.name.as_bytes().get(p.len()) == Some(&b'/')
            {
                return Err(FormatError::InvalidPath {
                    path: res.name.escape_debug().to_string(),
                    reason: "a listed file is also used as a directory",
                }
                .into());
            }
        }
        let pt = parse_digest(&res.digest, DOC, "resources.digest")?;
        concat.update(&pt);
        out.push((res.name.clone(), pt));
    }
    if concat.finish() != subject_digest {
        return Err(VerifyError::SubjectDigestMismatch);
    }
    Ok(out)
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
    let resources = check_model_signing(&statement, limits)?;
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
    if resources.is_empty() {
        return Err(invalid("resources", "a package must contain at least one file").into());
    }
    if enc.files.len() != resources.len() {
        return Err(invalid("secure_model.files", "count differs from resources").into());
    }
    let mut files = Vec::with_capacity(enc.files.len());
    let mut total: u64 = 0;
    let mut objects = std::collections::HashSet::with_capacity(enc.files.len());
    for ((path, pt), ef) in resources.into_iter().zip(&enc.files) {
        if ef.path != path {
            return Err(invalid(
                "secure_model.files.path",
                "order or names differ from resources",
            )
            .into());
        }
        validate_object_key(&ef.object)?;
        if !objects.insert(ef.object.as_str()) {
            return Err(invalid("secure_model.files.object", "two files share one object").into());
        }
        if ef.plaintext_size > limits.max_file_bytes {
            return Err(FormatError::LimitExceeded {
                what: "file size",
                actual: ef.plaintext_size,
                limit: limits.max_file_bytes,
            }
            .into());
        }
        total = total.saturating_add(ef.plaintext_size);
        if total > limits.max_total_bytes {
            return Err(FormatError::LimitExceeded {
                what: "total plaintext size",
                actual: total,
                limit: limits.max_total_bytes,
            }
            .into());
        }
        if params.ciphertext_len(ef.plaintext_size) != Some(ef.ciphertext_size) {
            return Err(invalid(
                "secure_model.files.ciphertext_size",
                "does not match plaintext_size and segment size",
            )
            .into());
        }
        let ct = parse_digest(
            &ef.ciphertext_sha256,
            DOC,
            "secure_model.files.ciphertext_sha256",
        )?;
        files.push(FileEntry {
            path,
            object: ef.object.clone(),
            plaintext_size: ef.plaintext_size,
            ciphertext_size: ef.ciphertext_size,
            plaintext_sha256: pt,
            ciphertext_sha256: ct,
            segments: params.segment_count(ef.plaintext_size),
        });
    }
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
        total_plaintext: files.iter().map(|f| f.plaintext_size).sum(),
        total_ciphertext: files.iter().map(|f| f.ciphertext_size).sum(),
    };
    Ok((info, files))
}

/// A plain OpenSSF model-signing v1.0 signature (no encryption section) verified under a
/// trusted key: the list of signed plaintext files.
#[derive(Debug, Clone)]
pub struct VerifiedModelSignature {
    name: String,
    resources: Vec<(String, [u8; 32])>,
    signer: VerifyingKey,
}

impl VerifiedModelSignature {
    /// Model name from the subject.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Signed `(path, sha256)` pairs in signed order.
    pub fn resources(&self) -> &[(String, [u8; 32])] {
        &self.resources
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
    let resources = check_model_signing(&statement, limits)?;
    let name = statement
        .subject
        .first()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    Ok(VerifiedModelSignature {
        name,
        resources,
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
