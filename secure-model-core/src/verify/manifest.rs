//! Parsing and verifying the manifest; the proof types.

use super::bundle::{decode_bundle, invalid, pae, subject_sha256, Decoded, Evidence};
use super::policy::{Signer, TrustPolicy};
use super::statement::{check_model_signing, package_files, FileEntry, SignedFile};
use super::VerifyError;
use crate::crypto::opening::SegmentOpener;
use crate::crypto::streaming::StreamParams;
use crate::crypto::{check_dek_commitment, sha256, streaming::Header, CryptoError, DataKey};
use crate::format::{
    file_associated_data, parse_digest, validate_model_id, Aead, DsseEnvelope, FormatError,
    Hashing, Limits, Statement, ENCRYPTION_FORMAT,
};

const DOC: &str = "manifest";

/// A file of a [`VerifiedManifest`]: only a verified manifest hands these out, and
/// the loader's segment openers accept nothing else. Dereferences to its [`FileEntry`].
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
    /// manifest that can build segment openers. Crate-private: only the loader, which checks
    /// every signed digest of what it opens, holds an unlocked manifest.
    ///
    /// # Errors
    /// [`VerifyError::DekCommitmentMismatch`] when the key is not the package's DEK.
    pub(crate) fn unlock(self, dek: DataKey) -> Result<UnlockedManifest, VerifyError> {
        check_dek_commitment(&dek, &self.info.model_id, &self.info.dek_commitment)
            .map_err(|_| VerifyError::DekCommitmentMismatch)?;
        Ok(UnlockedManifest {
            manifest: self,
            dek,
        })
    }
}

/// A verified manifest together with the DEK that matches its commitment. Crate-private: its
/// openers hand out authenticated plaintext before the signed digests are checked, which only
/// the loader's digest stage may see.
#[derive(Debug)]
pub(crate) struct UnlockedManifest {
    manifest: VerifiedManifest,
    dek: DataKey,
}

impl UnlockedManifest {
    /// The verified manifest.
    pub(crate) fn manifest(&self) -> &VerifiedManifest {
        &self.manifest
    }

    /// The segment opener of `file`, given the first 40 bytes of its ciphertext.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] for a malformed header.
    pub(crate) fn file_opener(
        &self,
        file: &VerifiedFile,
        header: &[u8],
    ) -> Result<SegmentOpener, CryptoError> {
        let header = Header::parse(header)?;
        let ad = file_associated_data(&self.manifest.info.model_id, file.path());
        SegmentOpener::new(&self.dek, &header, &ad, self.manifest.info.params)
    }
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
        hint: material.claim(),
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

/// A plain OpenSSF model-signing v1.0 signature (no encryption section) accepted by the trust
/// policy: the signed plaintext files and their digests (any hashing model signing 1.1
/// writes: `sha256`, `blake2b` or `blake3`, by files or by shards).
#[derive(Debug, Clone)]
pub struct VerifiedModelSignature {
    name: String,
    hashing: Hashing,
    files: Vec<SignedFile>,
    signer: Signer,
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
/// tool; comparing the files on disk to [`VerifiedModelSignature::files`] is the caller's.
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
