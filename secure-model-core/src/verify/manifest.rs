//! Parsing and verifying the manifest; the proof types.

use super::bundle::{decode_bundle, invalid, pae, subject_sha256, Decoded, Evidence};
use super::policy::{Signer, TrustPolicy};
use super::VerifyError;
use crate::crypto::streaming::{SegmentOpener, StreamParams};
use crate::crypto::{check_dek_commitment, sha256, streaming::Header, CryptoError, DataKey};
use crate::format::{
    compare_paths, file_associated_data, parse_digest, validate_model_id, validate_object_key,
    validate_path, Aead, DsseEnvelope, FormatError, Limits, Statement, ENCRYPTION_FORMAT,
    IN_TOTO_STATEMENT_TYPE, MODEL_SIGNING_PREDICATE_TYPE,
};

const DOC: &str = "manifest";

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
    /// What the bundle says about its signer (untrusted, informational): the key hint
    /// `model_signing` writes (empty when absent), or `x509:` and the leaf certificate's subject.
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

/// A manifest whose signature a signer of the trust policy accepted and whose every structural
/// rule holds. Only [`verify_manifest`] creates one; decryption requires it.
#[derive(Debug, Clone)]
pub struct VerifiedManifest {
    info: ManifestInfo,
    files: Vec<VerifiedFile>,
    signer: Signer,
}

impl std::ops::Deref for VerifiedManifest {
    type Target = ManifestInfo;
    fn deref(&self) -> &ManifestInfo {
        &self.info
    }
}

impl VerifiedManifest {
    /// The policy signer that accepted it (key, certificate or Sigstore identity).
    pub fn signer(&self) -> &Signer {
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
    decoded: Decoded,
    digest: [u8; 32],
    limits: &Limits,
) -> Result<(ManifestInfo, Vec<FileEntry>), VerifyError> {
    let Decoded {
        bundle,
        payload,
        material,
        ..
    } = decoded;
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
        hint: material.claim(),
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

/// A plain OpenSSF model-signing v1.0 signature (no encryption section) accepted by the trust
/// policy: the list of signed plaintext files.
#[derive(Debug, Clone)]
pub struct VerifiedModelSignature {
    name: String,
    resources: Vec<(String, [u8; 32])>,
    signer: Signer,
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
    /// The policy signer that accepted it.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

/// Decodes the bundle and finds the policy signer that accepts it. Nothing of the statement
/// is trusted before this returns.
fn verify_signature(
    bytes: &[u8],
    policy: &TrustPolicy,
    limits: &Limits,
) -> Result<(Decoded, Signer), VerifyError> {
    if policy.is_empty() {
        return Err(VerifyError::NoTrustedKeys);
    }
    let decoded = decode_bundle(bytes, limits)?;
    let json = std::str::from_utf8(bytes).map_err(|_| invalid("bundle", "not UTF-8"))?;
    let msg = pae(&decoded.bundle.dsse_envelope.payload_type, &decoded.payload);
    let evidence = Evidence {
        json,
        material: &decoded.material,
        pae: &msg,
        signatures: &decoded.signatures,
        subject_sha256: subject_sha256(&decoded.payload),
    };
    let signer = policy.check(&evidence)?;
    Ok((decoded, signer))
}

/// Verifies a plain OpenSSF model-signing v1.0 bundle (as `model_signing sign key`,
/// `sign certificate` or `sign sigstore` writes it): a signer of the policy accepts the
/// signature, then the resource rules hold. Use it to check signatures made by the upstream
/// tool; comparing the files on disk to [`VerifiedModelSignature::resources`] is the caller's.
///
/// # Errors
/// [`VerifyError::NoTrustedKeys`] for an empty policy, [`VerifyError::SignatureInvalid`] with
/// every signer's refusal, other variants for structural faults.
pub fn verify_model_signature(
    bytes: &[u8],
    policy: &TrustPolicy,
    limits: &Limits,
) -> Result<VerifiedModelSignature, VerifyError> {
    let (decoded, signer) = verify_signature(bytes, policy, limits)?;
    let statement: Statement =
        serde_json::from_slice(&decoded.payload).map_err(|source| FormatError::Malformed {
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
    let decoded = decode_bundle(bytes, limits)?;
    let (info, files) = check_statement(decoded, sha256(bytes), limits)?;
    Ok(UnverifiedManifest { info, files })
}

/// Verifies a manifest: size cap, optional digest pin, the DSSE signature over the exact
/// payload bytes accepted by a signer of the policy, then every structural rule (see
/// `docs/FORMAT.md`, "Reader checks").
///
/// # Errors
/// [`VerifyError::NoTrustedKeys`] with an empty policy, [`VerifyError::SignatureInvalid`]
/// when no signer accepts it (with each signer's reason), other variants for structural
/// faults.
pub fn verify_manifest(
    bytes: &[u8],
    policy: &TrustPolicy,
    limits: &Limits,
    pinned_digest: Option<&[u8; 32]>,
) -> Result<VerifiedManifest, VerifyError> {
    if policy.is_empty() {
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
    let (decoded, signer) = verify_signature(bytes, policy, limits)?;
    let (info, files) = check_statement(decoded, digest, limits)?;
    Ok(VerifiedManifest {
        info,
        files: files.into_iter().map(VerifiedFile).collect(),
        signer,
    })
}
