//! The publisher side on local files: encrypt a file or a whole model directory into KServe JWE
//! files, and decrypt one (for checks). Files are never overwritten.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use secure_model_core::format::DEFAULT_IGNORE_PATHS;
use zeroize::Zeroizing;

use super::{decrypt_vec, encrypt_to, KserveAlg, KserveJweError, KserveKey, JWE_SUFFIX};

/// One file written by [`encrypt_file`] or [`encrypt_tree`].
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct EncryptedFile {
    /// Input path (relative to the model directory for [`encrypt_tree`]).
    pub source: String,
    /// Output path (relative to the output directory for [`encrypt_tree`]).
    pub output: String,
    /// Plaintext bytes.
    pub plaintext_bytes: u64,
    /// Bytes of the compact JWE written.
    pub jwe_bytes: u64,
}

fn io<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> KserveJweError + 'a {
    move |source| KserveJweError::Io {
        path: path.display().to_string(),
        action,
        source,
    }
}

fn read_capped(path: &Path, max_len: u64) -> Result<Vec<u8>, KserveJweError> {
    let meta = std::fs::symlink_metadata(path).map_err(io(path, "cannot stat"))?;
    if !meta.is_file() {
        return Err(KserveJweError::Io {
            path: path.display().to_string(),
            action: "not a regular file",
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    if meta.len() > max_len {
        return Err(KserveJweError::TooLarge {
            path: path.display().to_string(),
            size: meta.len(),
            max: max_len,
        });
    }
    std::fs::read(path).map_err(io(path, "cannot read"))
}

/// Creates `path` (never overwriting) with `mode`, lets `write` fill it, syncs it; on any
/// failure the partial file is removed.
fn write_new<T>(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> Result<T, KserveJweError>,
) -> Result<T, KserveJweError> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io(path, "cannot create (it must not exist)"))?;
    let result = (|| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &f);
        let t = write(&mut w)?;
        w.flush().map_err(io(path, "cannot write"))?;
        drop(w);
        f.sync_all().map_err(io(path, "cannot write"))?;
        Ok(t)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Encrypts file `input` into a new KServe JWE file `output` (mode 0644). The file is read
/// whole, encrypted in place and base64url-encoded as it is written: memory is about the
/// file's size.
///
/// # Errors
/// [`KserveJweError::TooLarge`] when `input` exceeds `max_len`; [`KserveJweError::EmptyFile`]
/// for an empty `input` (KServe's decryptor, jwcrypto 1.6, treats an empty payload as a
/// failure, so such a file would stop a stock KServe pod); I/O errors (an existing `output`
/// is never overwritten).
pub fn encrypt_file(
    input: &Path,
    output: &Path,
    key: &KserveKey,
    alg: KserveAlg,
    max_len: u64,
) -> Result<EncryptedFile, KserveJweError> {
    let plain = Zeroizing::new(read_capped(input, max_len)?);
    if plain.is_empty() {
        return Err(KserveJweError::EmptyFile {
            path: input.display().to_string(),
        });
    }
    let plaintext_bytes = plain.len() as u64;
    let shown = output.display().to_string();
    let jwe_bytes = write_new(output, 0o644, |w| {
        encrypt_to(plain, key, alg, max_len, w, &shown)
    })?;
    Ok(EncryptedFile {
        source: input.display().to_string(),
        output: output.display().to_string(),
        plaintext_bytes,
        jwe_bytes,
    })
}

/// Decrypts KServe JWE file `input` into a new file `output` (mode 0600); returns the
/// plaintext size.
///
/// # Errors
/// As [`decrypt`](super::decrypt); I/O errors (an existing `output` is never overwritten).
pub fn decrypt_file(
    input: &Path,
    output: &Path,
    key: &KserveKey,
    max_len: u64,
) -> Result<u64, KserveJweError> {
    let text = read_capped(input, max_len)?;
    let plain = decrypt_vec(&input.display().to_string(), text, key, max_len)?;
    write_new(output, 0o600, |w| {
        w.write_all(&plain).map_err(io(output, "cannot write"))
    })?;
    Ok(plain.len() as u64)
}

/// What [`encrypt_tree`] did.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct TreeReport {
    /// Files encrypted.
    pub files: Vec<EncryptedFile>,
    /// Empty files left out (`skip_empty`).
    pub skipped_empty: Vec<String>,
    /// Top-level git paths left out, as `model_signing` ignores them by default (`.git`,
    /// `.gitattributes`, `.github`, `.gitignore`).
    pub ignored: Vec<String>,
}

fn walk(root: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), KserveJweError> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(io(&dir, "cannot list directory"))?
        .collect::<Result<_, _>>()
        .map_err(io(&dir, "cannot list directory"))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let name = name.to_str().ok_or_else(|| KserveJweError::Io {
            path: e.path().display().to_string(),
            action: "file name is not UTF-8",
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        })?;
        if rel.is_empty() && DEFAULT_IGNORE_PATHS.contains(&name) {
            continue;
        }
        let child = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let ft = e.file_type().map_err(io(&e.path(), "cannot stat"))?;
        if ft.is_dir() {
            walk(root, &child, out)?;
        } else if ft.is_file() {
            out.push(child);
        } else {
            return Err(KserveJweError::Io {
                path: e.path().display().to_string(),
                action: "refusing a symlink or special file in the model directory",
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            });
        }
    }
    Ok(())
}

/// Encrypts every regular file under `model_dir` into `out_dir/<relative path>.jwe`, the
/// layout KServe's confidential mode downloads and decrypts. `out_dir` is created; it must
/// not already contain the outputs. Symlinks are refused. Top-level git paths are left out,
/// as `model_signing` and `secure-model pack` leave them out, and listed. Empty files are
/// refused, or with `skip_empty` left out and listed (see [`encrypt_file`]). Files are
/// processed one at a time, so memory is bounded by the largest file (about its size).
///
/// # Errors
/// As [`encrypt_file`]; a failure leaves the files written so far (the publisher re-runs
/// into an empty directory).
pub fn encrypt_tree(
    model_dir: &Path,
    out_dir: &Path,
    key: &KserveKey,
    alg: KserveAlg,
    max_len: u64,
    skip_empty: bool,
) -> Result<TreeReport, KserveJweError> {
    let mut files = Vec::new();
    walk(model_dir, "", &mut files)?;
    let ignored: Vec<String> = DEFAULT_IGNORE_PATHS
        .iter()
        .filter(|p| model_dir.join(p).symlink_metadata().is_ok())
        .map(|p| p.to_string())
        .collect();
    // Empty files are found before anything is written.
    let mut skipped = Vec::new();
    let mut kept = Vec::with_capacity(files.len());
    for rel in files {
        let p = model_dir.join(&rel);
        if std::fs::metadata(&p).map_err(io(&p, "cannot stat"))?.len() > 0 {
            kept.push(rel);
        } else if skip_empty {
            skipped.push(rel);
        } else {
            return Err(KserveJweError::EmptyFile {
                path: p.display().to_string(),
            });
        }
    }
    let files = kept;
    std::fs::create_dir_all(out_dir).map_err(io(out_dir, "cannot create directory"))?;
    let mut done = Vec::with_capacity(files.len());
    for rel in files {
        let target = out_dir.join(format!("{rel}{JWE_SUFFIX}"));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent, "cannot create directory"))?;
        }
        let mut f = encrypt_file(&model_dir.join(&rel), &target, key, alg, max_len)?;
        f.output = format!("{rel}{JWE_SUFFIX}");
        f.source = rel;
        done.push(f);
    }
    Ok(TreeReport {
        files: done,
        skipped_empty: skipped,
        ignored,
    })
}
