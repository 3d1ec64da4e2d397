//! Checking a plain (unencrypted) model directory against a verified OpenSSF model signature:
//! the same files, each with its signed digests under the signature's hashing (SHA-256,
//! BLAKE2b or BLAKE3, by files or by shards), as `model_signing verify` does after the
//! signature.

use std::io::Read as _;
use std::path::Path;

use super::pack::scan_model_dir;
use super::PackError;
use crate::crypto::Digest;
use crate::format::Hashing;
use crate::verify::{SignedFile, VerifiedModelSignature};

/// What [`check_model_dir`] compared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ModelDirCheck {
    /// Files compared.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
}

fn mismatch(path: &str, reason: &'static str) -> PackError {
    PackError::ModelMismatch {
        path: path.escape_debug().to_string(),
        reason,
    }
}

/// The digests of the file at `path` under `hashing` (one, or one per shard), and its size.
fn file_digests(path: &Path, rel: &str, hashing: Hashing) -> Result<(Vec<Digest>, u64), PackError> {
    let io = |e| PackError::ModelDir {
        path: path.display().to_string(),
        reason: "cannot read".into(),
        source: Some(e),
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = hashing.file_hasher();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(
            buf.get(..n)
                .ok_or_else(|| mismatch(rel, "read past the buffer"))?,
        );
        total = total.saturating_add(n as u64);
    }
    Ok((h.finish(), total))
}

/// Compares `root` with `signature`: the regular files under it (without the top-level git
/// paths `model_signing` ignores, and without `skip`, the signature file when it lies inside)
/// must be exactly the signed files (in `shards` mode empty files, which have no shard, may be
/// present too), each with its signed digests.
///
/// # Errors
/// [`PackError::ModelMismatch`] naming the first file that is missing, extra or different;
/// [`PackError::ModelDir`] when the directory cannot be read.
pub fn check_model_dir(
    root: &Path,
    signature: &VerifiedModelSignature,
    skip: Option<&Path>,
) -> Result<ModelDirCheck, PackError> {
    let skip = skip.and_then(|s| s.canonicalize().ok());
    let files: Vec<_> = scan_model_dir(root)?
        .into_iter()
        .filter(|(_, p)| {
            skip.as_ref()
                .is_none_or(|s| p.canonicalize().ok().as_ref() != Some(s))
        })
        .collect();
    let signed: std::collections::BTreeMap<&str, &SignedFile> =
        signature.files().iter().map(|f| (f.path(), f)).collect();
    for name in signed.keys() {
        if !files.iter().any(|(rel, _)| rel == name) {
            return Err(mismatch(name, "signed but missing from the directory"));
        }
    }
    let hashing = signature.hashing();
    let mut bytes = 0u64;
    for (rel, path) in &files {
        let Some(want) = signed.get(rel.as_str()) else {
            // Shard serialization lists no shard for an empty file (as upstream writes it).
            if hashing.shard_size().is_some() && std::fs::metadata(path).is_ok_and(|m| m.len() == 0)
            {
                continue;
            }
            return Err(mismatch(rel, "not in the signature"));
        };
        let (got, n) = file_digests(path, rel, hashing)?;
        if got != want.digests().digests() || want.size().is_some_and(|s| s != n) {
            return Err(mismatch(rel, "content differs from the signed digests"));
        }
        bytes = bytes.saturating_add(n);
    }
    Ok(ModelDirCheck {
        files: files.len(),
        bytes,
    })
}
