//! The statement side of a manifest: the model-signing predicate (serialization, resources,
//! their digests, shard tiling, the subject digest) and how our encryption section's files
//! match it. Envelope and signature checks are in `manifest.rs`.

use std::ops::Range;

use super::VerifyError;
use crate::crypto::streaming::StreamParams;
use crate::crypto::{Digest, HashAlgorithm};
use crate::format::{
    compare_paths, parse_digest, parse_shard_name, validate_object_key, validate_path,
    EncryptedFile, FormatError, Hashing, Limits, ModelPath, Resource, Statement,
    IN_TOTO_STATEMENT_TYPE, MODEL_SIGNING_PREDICATE_TYPE,
};

const DOC: &str = "manifest";

fn invalid(field: &'static str, reason: impl Into<String>) -> FormatError {
    FormatError::InvalidField {
        document: DOC,
        field,
        reason: reason.into(),
    }
}

fn bad_path(path: &str, reason: &'static str) -> FormatError {
    FormatError::InvalidPath {
        path: path.escape_debug().to_string(),
        reason,
    }
}

/// The signed plaintext digests of one file: one digest (`files`) or one per shard
/// (`shards`), with the hashing that produced them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigests {
    hashing: Hashing,
    digests: Vec<Digest>,
}

impl FileDigests {
    /// How the file was hashed.
    pub fn hashing(&self) -> Hashing {
        self.hashing
    }
    /// The hash algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.hashing.algorithm()
    }
    /// The digests: one in `files` mode, one per shard (in file order) in `shards` mode (none
    /// for an empty file).
    pub fn digests(&self) -> &[Digest] {
        &self.digests
    }
    /// The byte ranges of a `size`-byte file that the digests cover, in order: `[0, size)` in
    /// `files` mode, the shards `[k·Z, min((k+1)·Z, size))` in `shards` mode.
    pub fn units(&self, size: u64) -> Vec<Range<u64>> {
        match self.hashing.shard_size() {
            None => std::iter::once(0..size).collect(),
            Some(z) => (0..size.div_ceil(z))
                .map(|k| k * z..((k + 1) * z).min(size))
                .collect(),
        }
    }
    /// The SHA-256 digest of a file hashed whole with SHA-256 (the format before model signing
    /// 1.1), `None` otherwise.
    pub fn sha256(&self) -> Option<&[u8]> {
        match (self.hashing.shard_size(), self.digests.as_slice()) {
            (None, [d]) if d.algorithm() == HashAlgorithm::Sha256 => Some(d.as_bytes()),
            _ => None,
        }
    }
}

/// A file as a model signature lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFile {
    path: String,
    digests: FileDigests,
    shard_end: Option<u64>,
}

impl SignedFile {
    /// Relative POSIX path.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// Its signed digests.
    pub fn digests(&self) -> &FileDigests {
        &self.digests
    }
    /// In `shards` mode the file size the shards imply (the end of the last shard); `None` in
    /// `files` mode, where a signature does not state sizes.
    pub fn size(&self) -> Option<u64> {
        self.shard_end
    }
}

/// One resource, parsed: path, shard bounds (`0..0` in `files` mode) and digest.
struct Item<'a> {
    path: &'a str,
    start: u64,
    end: u64,
    digest: Digest,
}

fn parse_item<'a>(
    res: &'a Resource,
    hashing: &Hashing,
    label: &str,
) -> Result<Item<'a>, FormatError> {
    if res.algorithm != label {
        return Err(invalid(
            "resources.algorithm",
            format!(
                "{:?} differs from the serialization's {label:?}",
                res.algorithm.escape_debug().to_string()
            ),
        ));
    }
    let digest = Digest::from_hex(hashing.algorithm(), &res.digest).ok_or_else(|| {
        invalid(
            "resources.digest",
            format!(
                "must be {} lowercase hex characters",
                2 * hashing.algorithm().digest_len()
            ),
        )
    })?;
    let Some(z) = hashing.shard_size() else {
        return Ok(Item {
            path: &res.name,
            start: 0,
            end: 0,
            digest,
        });
    };
    let (path, start, end) = parse_shard_name(&res.name)
        .ok_or_else(|| bad_path(&res.name, "a shard name must be path:start:end (decimal)"))?;
    if end <= start || end - start > z {
        return Err(invalid(
            "resources.name",
            "a shard is empty or longer than shard_size",
        ));
    }
    Ok(Item {
        path,
        start,
        end,
        digest,
    })
}

/// Accumulates resources into files, checking order, uniqueness and shard tiling.
struct Files<'l> {
    hashing: Hashing,
    limits: &'l Limits,
    out: Vec<SignedFile>,
}

impl Files<'_> {
    fn push(&mut self, item: Item<'_>) -> Result<(), FormatError> {
        let z = self.hashing.shard_size();
        if let Some(prev) = self.out.last_mut() {
            let continues = z.is_some() && prev.path == item.path;
            if !continues {
                validate_path(item.path, self.limits)?;
            }
            if continues {
                let prev_end = prev.shard_end.unwrap_or(0);
                let full = z.is_some_and(|z| prev_end % z == 0);
                if item.start != prev_end || !full {
                    return Err(invalid(
                        "resources",
                        "shards of a file overlap, leave a gap or are not shard_size long",
                    ));
                }
                prev.digests.digests.push(item.digest);
                prev.shard_end = Some(item.end);
                return self.check_size(item.end);
            }
            check_after(&prev.path, item.path)?;
        } else {
            validate_path(item.path, self.limits)?;
        }
        if z.is_some() && item.start != 0 {
            return Err(invalid(
                "resources",
                "the first shard of a file does not start at 0",
            ));
        }
        if self.out.len() as u64 >= self.limits.max_files {
            return Err(FormatError::LimitExceeded {
                what: "file count",
                actual: self.out.len() as u64 + 1,
                limit: self.limits.max_files,
            });
        }
        self.out.push(SignedFile {
            path: item.path.to_string(),
            digests: FileDigests {
                hashing: self.hashing,
                digests: vec![item.digest],
            },
            shard_end: z.map(|_| item.end),
        });
        self.check_size(item.end)
    }

    fn check_size(&self, end: u64) -> Result<(), FormatError> {
        if end > self.limits.max_file_bytes {
            return Err(FormatError::LimitExceeded {
                what: "file size",
                actual: end,
                limit: self.limits.max_file_bytes,
            });
        }
        Ok(())
    }
}

/// `next` must sort after `prev` (component-wise) and must not use `prev` as a directory.
fn check_after(prev: &str, next: &str) -> Result<(), FormatError> {
    match compare_paths(prev, next) {
        std::cmp::Ordering::Less => {}
        std::cmp::Ordering::Equal => return Err(bad_path(next, "duplicate path")),
        std::cmp::Ordering::Greater => {
            return Err(invalid("resources", "not in component-wise sorted order"))
        }
    }
    if next.len() > prev.len()
        && next.starts_with(prev)
        && next.as_bytes().get(prev.len()) == Some(&b'/')
    {
        return Err(bad_path(next, "a listed file is also used as a directory"));
    }
    Ok(())
}

fn check_types(statement: &Statement) -> Result<(), FormatError> {
    if statement.type_ != IN_TOTO_STATEMENT_TYPE {
        return Err(invalid("_type", "not https://in-toto.io/Statement/v1"));
    }
    if statement.predicate_type != MODEL_SIGNING_PREDICATE_TYPE {
        return Err(FormatError::UnsupportedVersion {
            document: "predicate",
            found: statement.predicate_type.escape_debug().to_string(),
        });
    }
    Ok(())
}

/// Checks the model-signing part of a statement: types, serialization, every resource (name,
/// algorithm label, digest), their order and uniqueness, shard tiling (each file's shards start
/// at 0, follow each other without gap or overlap, are `shard_size` long except the last), the
/// count limits and the subject digest. Returns the hashing and the signed files in order.
///
/// # Errors
/// [`FormatError`] variants (through [`VerifyError::Format`]) and
/// [`VerifyError::SubjectDigestMismatch`].
pub(super) fn check_model_signing(
    statement: &Statement,
    limits: &Limits,
) -> Result<(Hashing, Vec<SignedFile>), VerifyError> {
    check_types(statement)?;
    let pred = &statement.predicate;
    let hashing = Hashing::from_serialization(&pred.serialization)?;
    let count = pred.resources.len() as u64;
    if count > limits.max_resources {
        return Err(FormatError::LimitExceeded {
            what: "resource count",
            actual: count,
            limit: limits.max_resources,
        }
        .into());
    }
    let subject = match statement.subject.as_slice() {
        [one] => one,
        _ => return Err(invalid("subject", "exactly one subject required").into()),
    };
    let subject_digest = parse_digest(&subject.digest.sha256, DOC, "subject.digest.sha256")?;
    let label = hashing.resource_algorithm();
    let mut files = Files {
        hashing,
        limits,
        out: Vec::new(),
    };
    let mut concat = crate::crypto::Sha256::new();
    for res in &pred.resources {
        let item = parse_item(res, &hashing, &label)?;
        concat.update(item.digest.as_bytes());
        files.push(item)?;
    }
    if concat.finish() != subject_digest {
        return Err(VerifyError::SubjectDigestMismatch);
    }
    Ok((hashing, files.out))
}

/// One file of an encrypted package as its manifest describes it: path, object, sizes and
/// signed digests. Read-only; decryption does not accept it (see [`super::VerifiedFile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    path: ModelPath,
    object: String,
    plaintext_size: u64,
    ciphertext_size: u64,
    digests: FileDigests,
    ciphertext_sha256: [u8; 32],
    segments: u64,
}

impl FileEntry {
    /// Relative POSIX path of the plaintext file.
    pub fn path(&self) -> &str {
        self.path.as_str()
    }
    /// The same path as a checked [`ModelPath`].
    pub fn model_path(&self) -> &ModelPath {
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
    /// Signed plaintext digests.
    pub fn digests(&self) -> &FileDigests {
        &self.digests
    }
    /// Signed plaintext SHA-256 of a file hashed whole with SHA-256; `None` for other
    /// hashings (see [`FileEntry::digests`]).
    pub fn plaintext_sha256(&self) -> Option<&[u8]> {
        self.digests.sha256()
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

/// The signed digests of the package file `ef`, taken from `signed` (advanced past them):
/// `files` mode pairs files and resources one to one; in `shards` mode an empty file has no
/// shard and every other file's shards must end exactly at its plaintext size.
fn digests_of(
    ef: &EncryptedFile,
    hashing: Hashing,
    signed: &mut std::iter::Peekable<std::vec::IntoIter<SignedFile>>,
) -> Result<FileDigests, FormatError> {
    let mismatch = || {
        invalid(
            "secure_model.files.path",
            "order or names differ from resources",
        )
    };
    if hashing.shard_size().is_some() && ef.plaintext_size == 0 {
        if signed.peek().is_some_and(|s| s.path == ef.path) {
            return Err(invalid("resources", "an empty file has shards"));
        }
        return Ok(FileDigests {
            hashing,
            digests: Vec::new(),
        });
    }
    let s = signed.next().ok_or_else(mismatch)?;
    if s.path != ef.path {
        return Err(mismatch());
    }
    if s.shard_end.is_some_and(|end| end != ef.plaintext_size) {
        return Err(invalid(
            "resources",
            "the shards of a file do not end at its plaintext_size",
        ));
    }
    Ok(s.digests)
}

/// Checks our encryption section's files against the signed files (same paths in the same
/// order, shards that tile each plaintext), the object keys and the size limits, and returns
/// the package's files.
///
/// # Errors
/// [`FormatError`] naming the first broken rule.
pub(super) fn package_files(
    enc_files: &[EncryptedFile],
    hashing: Hashing,
    signed: Vec<SignedFile>,
    params: StreamParams,
    limits: &Limits,
) -> Result<Vec<FileEntry>, FormatError> {
    check_file_count(enc_files, limits)?;
    let mut signed = signed.into_iter().peekable();
    let mut files: Vec<FileEntry> = Vec::with_capacity(enc_files.len());
    let mut total: u64 = 0;
    let mut objects = std::collections::HashSet::with_capacity(enc_files.len());
    for ef in enc_files {
        let path = ModelPath::new(&ef.path, limits)?;
        if let Some(prev) = files.last() {
            check_after(prev.path(), &ef.path)?;
        }
        let digests = digests_of(ef, hashing, &mut signed)?;
        validate_object_key(&ef.object)?;
        if !objects.insert(ef.object.as_str()) {
            return Err(invalid(
                "secure_model.files.object",
                "two files share one object",
            ));
        }
        total = total.saturating_add(ef.plaintext_size);
        check_sizes(ef, total, params, limits)?;
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
            digests,
            ciphertext_sha256: ct,
            segments: params.segment_count(ef.plaintext_size),
        });
    }
    if signed.next().is_some() {
        return Err(invalid(
            "secure_model.files",
            "count differs from resources",
        ));
    }
    Ok(files)
}

/// At least one file, at most `max_files`.
fn check_file_count(enc_files: &[EncryptedFile], limits: &Limits) -> Result<(), FormatError> {
    if enc_files.is_empty() {
        return Err(invalid(
            "resources",
            "a package must contain at least one file",
        ));
    }
    if enc_files.len() as u64 > limits.max_files {
        return Err(FormatError::LimitExceeded {
            what: "file count",
            actual: enc_files.len() as u64,
            limit: limits.max_files,
        });
    }
    Ok(())
}

fn check_sizes(
    ef: &EncryptedFile,
    total: u64,
    params: StreamParams,
    limits: &Limits,
) -> Result<(), FormatError> {
    if ef.plaintext_size > limits.max_file_bytes {
        return Err(FormatError::LimitExceeded {
            what: "file size",
            actual: ef.plaintext_size,
            limit: limits.max_file_bytes,
        });
    }
    if total > limits.max_total_bytes {
        return Err(FormatError::LimitExceeded {
            what: "total plaintext size",
            actual: total,
            limit: limits.max_total_bytes,
        });
    }
    if params.ciphertext_len(ef.plaintext_size) != Some(ef.ciphertext_size) {
        return Err(invalid(
            "secure_model.files.ciphertext_size",
            "does not match plaintext_size and segment size",
        ));
    }
    Ok(())
}
