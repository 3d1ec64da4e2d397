//! `pack`: encrypt, hash and sign a model directory into a package.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::PackError;
use crate::crypto::streaming::{StreamEncryptor, StreamParams};
use crate::crypto::{dek_commitment, random_fill, DataKey, Digest, HashAlgorithm, Sha256};
use crate::format::{
    compare_paths, file_associated_data, shard_name, validate_path, Aead, EncryptedFile,
    EncryptionSection, Hashing, KeysFile, Limits, Predicate, Resource, Statement, Subject,
    SubjectDigest, DEFAULT_IGNORE_PATHS, ENCRYPTION_FORMAT, IN_TOTO_STATEMENT_TYPE, KEYS_OBJECT,
    MANIFEST_OBJECT, MODEL_SIGNING_PREDICATE_TYPE,
};
use crate::keys::{KeyProvider, WrapContext};
use crate::loader::Progress;
use crate::storage::{ObjectWriter, StorageBackend};
use crate::verify::{sign_statement, StatementSigner};

/// Packing options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PackOptions {
    /// Streaming AEAD parameters (default: 1 MiB segments).
    pub params: StreamParams,
    /// Model name in the statement subject (default: the directory name).
    pub model_name: Option<String>,
    /// Files encrypted concurrently.
    pub file_concurrency: usize,
    /// How plaintext is hashed for the signature (default: SHA-256 by files, what upstream
    /// `model_signing` writes by default and what its `verify` CLI re-hashes with).
    pub hashing: Hashing,
    /// Progress receiver (plaintext bytes).
    pub progress: Option<Arc<dyn Progress>>,
    /// After uploading, read every object back and compare its SHA-256 with what was sent
    /// (default: compare sizes only, one HEAD per object).
    pub verify_upload: bool,
}

impl Default for PackOptions {
    fn default() -> Self {
        Self {
            params: StreamParams::PACKAGE,
            model_name: None,
            file_concurrency: 2,
            hashing: Hashing::files(HashAlgorithm::Sha256),
            progress: None,
            verify_upload: false,
        }
    }
}

impl PackOptions {
    /// Sets the streaming parameters.
    pub fn with_params(mut self, params: StreamParams) -> Self {
        self.params = params;
        self
    }
    /// Sets the plaintext hashing (algorithm; files or shards).
    pub fn with_hashing(mut self, hashing: Hashing) -> Self {
        self.hashing = hashing;
        self
    }
    /// Sets a progress receiver.
    pub fn with_progress(mut self, p: Arc<dyn Progress>) -> Self {
        self.progress = Some(p);
        self
    }
    /// Reads every uploaded object back and compares its SHA-256 (not only its size).
    pub fn with_verify_upload(mut self, on: bool) -> Self {
        self.verify_upload = on;
        self
    }
    /// Sets the model name.
    pub fn with_model_name(mut self, name: impl Into<String>) -> Self {
        self.model_name = Some(name.into());
        self
    }
}

/// What `pack` wrote.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct PackReport {
    /// Package id.
    pub model_id: String,
    /// Model name.
    pub model_name: String,
    /// Files packed.
    pub files: usize,
    /// Plaintext bytes.
    pub plaintext_bytes: u64,
    /// Ciphertext bytes.
    pub ciphertext_bytes: u64,
    /// Hex SHA-256 of the manifest object (pin it to prevent rollback).
    pub manifest_digest: String,
    /// Recipients (`provider:key_ref`).
    pub recipients: Vec<String>,
    /// Signer key hint.
    pub signer: String,
    /// Top-level git paths of the model directory that were left out, as `model_signing`
    /// leaves them out by default (`.git`, `.gitattributes`, `.github`, `.gitignore`).
    pub ignored: Vec<String>,
}

/// The top-level git paths present in `model_dir` that packing leaves out.
pub fn ignored_paths(model_dir: &Path) -> Vec<String> {
    DEFAULT_IGNORE_PATHS
        .iter()
        .filter(|p| model_dir.join(p).symlink_metadata().is_ok())
        .map(|p| p.to_string())
        .collect()
}

fn dir_err(path: &Path, reason: impl Into<String>, source: Option<std::io::Error>) -> PackError {
    PackError::ModelDir {
        path: path.display().to_string(),
        reason: reason.into(),
        source,
    }
}

/// Lists the regular files of a model directory as sorted relative POSIX paths, skipping the
/// paths `model_signing` ignores by default. Symlinks, special files and non-UTF-8 names are
/// refused.
pub fn scan_model_dir(root: &Path) -> Result<Vec<(String, PathBuf)>, PackError> {
    let meta = std::fs::metadata(root).map_err(|e| dir_err(root, "cannot open", Some(e)))?;
    if !meta.is_dir() {
        return Err(dir_err(root, "not a directory", None));
    }
    let limits = Limits::default();
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| dir_err(&dir, "cannot list", Some(e)))?;
        for entry in entries {
            let entry = entry.map_err(|e| dir_err(&dir, "cannot list", Some(e)))?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| dir_err(&dir.join(&n), "file name is not UTF-8", None))?;
            if rel.is_empty() && DEFAULT_IGNORE_PATHS.contains(&name.as_str()) {
                continue;
            }
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let ft = entry
                .file_type()
                .map_err(|e| dir_err(&entry.path(), "cannot stat", Some(e)))?;
            if ft.is_symlink() {
                return Err(dir_err(
                    &entry.path(),
                    "symbolic links are not allowed in a model",
                    None,
                ));
            } else if ft.is_dir() {
                stack.push((entry.path(), child_rel));
            } else if ft.is_file() {
                validate_path(&child_rel, &limits)
                    .map_err(|e| dir_err(&entry.path(), e.to_string(), None))?;
                out.push((child_rel, entry.path()));
            } else {
                return Err(dir_err(
                    &entry.path(),
                    "not a regular file or directory",
                    None,
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(dir_err(root, "contains no files", None));
    }
    out.sort_by(|a, b| compare_paths(&a.0, &b.0));
    Ok(out)
}

/// A `Write` that hashes what passes through and hands it to the async uploader in chunks.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    hasher: Sha256,
    len: u64,
}

const UPLOAD_CHUNK: usize = 8 << 20;

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(data);
        self.len += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= UPLOAD_CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::replace(
                &mut self.buf,
                Vec::with_capacity(UPLOAD_CHUNK),
            ));
            self.tx
                .blocking_send(chunk)
                .map_err(|_| std::io::Error::other("upload stopped"))?;
        }
        Ok(())
    }
}

struct Encrypted {
    pt_digests: Vec<Digest>,
    pt_len: u64,
    ct_sha: [u8; 32],
    ct_len: u64,
}

/// Reads `src`, encrypts it into chunks sent on `tx`, and hashes plaintext and ciphertext.
/// Blocking: runs on the blocking pool.
fn encrypt_blocking(
    src: &Path,
    dek: &DataKey,
    ad: &[u8],
    params: StreamParams,
    hashing: Hashing,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    progress: Option<Arc<dyn Progress>>,
) -> Result<Encrypted, PackError> {
    let mut f = std::fs::File::open(src).map_err(|e| dir_err(src, "cannot read", Some(e)))?;
    let w = ChannelWriter {
        tx,
        buf: Vec::with_capacity(UPLOAD_CHUNK),
        hasher: Sha256::new(),
        len: 0,
    };
    let mut enc = StreamEncryptor::new(dek, ad, params, w)?;
    let mut pt_hash = hashing.file_hasher();
    let mut pt_len = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| dir_err(src, "cannot read", Some(e)))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).ok_or(PackError::Internal {
            what: "read length",
        })?;
        pt_hash.update(chunk);
        enc.update(chunk)?;
        pt_len += n as u64;
        if let Some(p) = &progress {
            p.advance(n as u64);
        }
    }
    let w = enc.finish()?;
    Ok(Encrypted {
        pt_digests: pt_hash.finish(),
        pt_len,
        ct_sha: w.hasher.finish(),
        ct_len: w.len,
    })
}

/// What every file's encryption shares.
struct PackContext<'a> {
    store: &'a dyn StorageBackend,
    dek: Arc<DataKey>,
    model_id: &'a str,
    params: StreamParams,
    hashing: Hashing,
    progress: Option<Arc<dyn Progress>>,
}

/// Encrypts `src` (model path `rel`) into the object `object`, hashing the plaintext with the
/// pack's hashing and the ciphertext with SHA-256.
async fn encrypt_file(
    cx: &PackContext<'_>,
    rel: &str,
    src: &Path,
    object: &str,
) -> Result<Encrypted, PackError> {
    let store = cx.store;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    let ad = file_associated_data(cx.model_id, rel);
    let src = src.to_path_buf();
    let (dek, params, hashing, progress) = (
        Arc::clone(&cx.dek),
        cx.params,
        cx.hashing,
        cx.progress.clone(),
    );
    let task = tokio::task::spawn_blocking(move || {
        encrypt_blocking(&src, &dek, &ad, params, hashing, tx, progress)
    });
    // Up to one chunk of ciphertext (8 MiB) goes up in a single PUT; more in a multipart
    // upload.
    let first = rx.recv().await;
    let second = match first {
        Some(_) => rx.recv().await,
        None => None,
    };
    let Some(second) = second else {
        drop(rx);
        let enc = task.await.map_err(|_| PackError::Internal {
            what: "encryption task panicked",
        })??;
        store.put(object, first.unwrap_or_default()).await?;
        return Ok(enc);
    };
    let mut upload: Box<dyn ObjectWriter> = store.put_multipart(object).await?;
    let mut started = Ok(());
    for chunk in first.into_iter().chain([second]) {
        if let Err(e) = upload.write(chunk).await {
            started = Err(e);
            break;
        }
    }
    let uploaded = match started {
        Ok(()) => upload_chunks(upload, &mut rx).await,
        Err(e) => Err((upload, e)),
    };
    drop(rx);
    let res = task.await.map_err(|_| PackError::Internal {
        what: "encryption task panicked",
    });
    match (uploaded, res) {
        (Ok(upload), Ok(Ok(enc))) => {
            upload.finish().await?;
            Ok(enc)
        }
        (Err((upload, e)), _) => {
            let _ = upload.abort().await;
            Err(e.into())
        }
        (Ok(upload), Ok(Err(e)) | Err(e)) => {
            let _ = upload.abort().await;
            Err(e)
        }
    }
}

/// Writes every chunk the encryptor sends into `upload`; on a storage error, returns it with
/// the writer (to abort) and stops reading, which stops the encryptor.
async fn upload_chunks(
    mut upload: Box<dyn ObjectWriter>,
    rx: &mut tokio::sync::mpsc::Receiver<Bytes>,
) -> Result<Box<dyn ObjectWriter>, (Box<dyn ObjectWriter>, crate::storage::StorageError)> {
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = upload.write(chunk).await {
            return Err((upload, e));
        }
    }
    Ok(upload)
}

/// Packs `model_dir` into `store`: encrypts every file under a fresh DEK (Tink streaming AEAD,
/// associated data binding `model_id` and path), signs the OpenSSF model-signing manifest with
/// our encryption section, and wraps the DEK for each recipient. Writes the data objects, then
/// `keys.json`, then `manifest.sig` last, so a package without a manifest is incomplete.
pub async fn pack(
    model_dir: &Path,
    store: &dyn StorageBackend,
    signer: &dyn StatementSigner,
    recipients: &[Arc<dyn KeyProvider>],
    opts: &PackOptions,
) -> Result<PackReport, PackError> {
    if recipients.is_empty() {
        return Err(PackError::NoRecipients);
    }
    // Refuse duplicate recipients before any work is done.
    for (i, r) in recipients.iter().enumerate() {
        if recipients
            .iter()
            .skip(i + 1)
            .any(|o| o.recipient() == r.recipient())
        {
            return Err(PackError::RecipientExists {
                recipient: r.recipient().to_string(),
            });
        }
    }
    let files = scan_model_dir(model_dir)?;
    if opts.hashing.shard_size().is_some() {
        if let Some((rel, src)) = files.iter().find(|(rel, _)| rel.contains(':')) {
            return Err(dir_err(
                src,
                format!("{rel:?} contains ':', which a shard name (path:start:end) cannot hold; sign by files instead"),
                None,
            ));
        }
    }
    for object in [MANIFEST_OBJECT, KEYS_OBJECT] {
        if crate::storage::exists(store, object).await? {
            return Err(PackError::PackageExists {
                location: store.location().to_string(),
            });
        }
    }
    match pack_objects(model_dir, &files, store, signer, recipients, opts).await {
        Ok(r) => Ok(r),
        Err(e) => {
            // Leave the destination as it was: remove whatever this run uploaded (best
            // effort; the manifest is written last, so a partial package never verifies).
            let mut objects: Vec<String> = (0..files.len()).map(data_object).collect();
            objects.push(KEYS_OBJECT.into());
            objects.push(MANIFEST_OBJECT.into());
            for o in objects {
                if let Err(d) = store.delete(&o).await {
                    tracing::warn!(object = %o, error = %d, "could not remove an object of the failed pack");
                }
            }
            Err(e)
        }
    }
}

/// The model name: the option, else the directory's name.
fn model_name(model_dir: &Path, opts: &PackOptions) -> String {
    match &opts.model_name {
        Some(n) => n.clone(),
        None => std::path::absolute(model_dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "model".into()),
    }
}

/// Encrypts every file (`file_concurrency` at a time) into `data/NNNNNN` and returns the
/// results in file order.
async fn encrypt_files(
    cx: &PackContext<'_>,
    files: &[(String, PathBuf)],
    file_concurrency: usize,
) -> Result<Vec<Encrypted>, PackError> {
    let mut done: Vec<(usize, Encrypted)> = futures::stream::iter(files.iter().enumerate())
        .map(|(i, (rel, src))| async move {
            let e = encrypt_file(cx, rel, src, &data_object(i)).await?;
            Ok::<_, PackError>((i, e))
        })
        .buffer_unordered(file_concurrency.max(1))
        .try_collect()
        .await?;
    done.sort_by_key(|(i, _)| *i);
    if done.len() != files.len() {
        return Err(PackError::Internal {
            what: "missing file result",
        });
    }
    Ok(done.into_iter().map(|(_, e)| e).collect())
}

/// Object key of file `i`.
fn data_object(i: usize) -> String {
    format!("data/{i:06}")
}

/// The model-signing resources of one file: the file, or its shards (none when it is empty).
fn file_resources(rel: &str, e: &Encrypted, hashing: &Hashing) -> Vec<Resource> {
    let algorithm = hashing.resource_algorithm();
    let names: Vec<String> = match hashing.shard_size() {
        None => vec![rel.to_string()],
        Some(z) => (0..e.pt_len.div_ceil(z))
            .map(|k| shard_name(rel, k * z, ((k + 1) * z).min(e.pt_len)))
            .collect(),
    };
    names
        .into_iter()
        .zip(&e.pt_digests)
        .map(|(name, d)| Resource {
            name,
            digest: d.to_hex(),
            algorithm: algorithm.clone(),
        })
        .collect()
}

/// The signed statement of the encrypted files: OpenSSF model-signing resources plus our
/// encryption section.
fn statement(
    name: &str,
    files: &[(String, PathBuf)],
    results: &[Encrypted],
    model_id: &str,
    dek: &DataKey,
    opts: &PackOptions,
) -> Result<Statement, PackError> {
    let params = opts.params;
    let mut resources = Vec::with_capacity(files.len());
    let mut enc_files = Vec::with_capacity(files.len());
    let mut subject = Sha256::new();
    for (i, ((rel, _), e)) in files.iter().zip(results).enumerate() {
        if params.ciphertext_len(e.pt_len) != Some(e.ct_len) {
            return Err(PackError::Internal {
                what: "ciphertext length mismatch",
            });
        }
        let res = file_resources(rel, e, &opts.hashing);
        if res.len() != e.pt_digests.len() {
            return Err(PackError::Internal {
                what: "digest count differs from the shard count",
            });
        }
        for d in &e.pt_digests {
            subject.update(d.as_bytes());
        }
        resources.extend(res);
        enc_files.push(EncryptedFile {
            path: rel.clone(),
            object: data_object(i),
            plaintext_size: e.pt_len,
            ciphertext_size: e.ct_len,
            ciphertext_sha256: hex::encode(e.ct_sha),
        });
    }
    Ok(Statement {
        type_: IN_TOTO_STATEMENT_TYPE.into(),
        subject: vec![Subject {
            name: name.to_string(),
            digest: SubjectDigest {
                sha256: hex::encode(subject.finish()),
            },
        }],
        predicate_type: MODEL_SIGNING_PREDICATE_TYPE.into(),
        predicate: Predicate {
            resources,
            serialization: opts
                .hashing
                .to_serialization(DEFAULT_IGNORE_PATHS.iter().map(|s| s.to_string()).collect()),
            encryption: Some(encryption_section(enc_files, model_id, dek, params)),
        },
    })
}

/// Our `predicate.secure_model` section for `files`.
fn encryption_section(
    files: Vec<EncryptedFile>,
    model_id: &str,
    dek: &DataKey,
    params: StreamParams,
) -> EncryptionSection {
    EncryptionSection {
        format: ENCRYPTION_FORMAT.into(),
        model_id: model_id.to_string(),
        aead: Aead {
            scheme: Aead::SCHEME.into(),
            hkdf_hash: "SHA256".into(),
            derived_key_size: 32,
            ciphertext_segment_size: params.segment_size(),
        },
        dek_commitment: hex::encode(dek_commitment(dek, model_id)),
        files,
    }
}

/// Wraps the DEK for every recipient and writes `keys.json`, then the signed manifest last (a
/// package without a manifest is incomplete). Returns the manifest's hex SHA-256.
async fn write_documents(
    store: &dyn StorageBackend,
    statement: &Statement,
    signer: &dyn StatementSigner,
    recipients: &[Arc<dyn KeyProvider>],
    dek: &DataKey,
    model_id: &str,
    read_back: bool,
) -> Result<String, PackError> {
    let manifest = sign_statement(statement, signer)?;
    // Never write a manifest readers refuse (e.g. tiny shards of a big model exceed the
    // manifest size or resource count caps): check it as a reader does.
    crate::verify::parse_unverified(&manifest, &Limits::default())?;
    let mut keys = KeysFile::new(model_id);
    let ctx = WrapContext::new(model_id);
    for r in recipients {
        super::add_recipient(&mut keys, r.as_ref(), dek, &ctx).await?;
    }
    put_checked(store, KEYS_OBJECT, Bytes::from(keys.to_bytes()), read_back).await?;
    let digest = hex::encode(crate::crypto::sha256(&manifest));
    // Last: a package is whole only once its manifest is there.
    put_checked(store, MANIFEST_OBJECT, Bytes::from(manifest), read_back).await?;
    Ok(digest)
}

async fn pack_objects(
    model_dir: &Path,
    files: &[(String, PathBuf)],
    store: &dyn StorageBackend,
    signer: &dyn StatementSigner,
    recipients: &[Arc<dyn KeyProvider>],
    opts: &PackOptions,
) -> Result<PackReport, PackError> {
    let model_name = model_name(model_dir, opts);
    let mut id = [0u8; 16];
    random_fill(&mut id)?;
    let model_id = hex::encode(id);
    let dek = Arc::new(DataKey::generate()?);
    if let Some(p) = &opts.progress {
        let total = files
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        p.start(total);
    }
    let cx = PackContext {
        store,
        dek: Arc::clone(&dek),
        model_id: &model_id,
        params: opts.params,
        hashing: opts.hashing,
        progress: opts.progress.clone(),
    };
    let mut results = encrypt_files(&cx, files, opts.file_concurrency).await?;
    // A re-upload is not progress: the bar already counted the file.
    let quiet = PackContext {
        progress: None,
        ..cx
    };
    check_data_uploads(&quiet, files, opts.verify_upload, &mut results).await?;
    let statement = statement(&model_name, files, &results, &model_id, &dek, opts)?;
    let digest = write_documents(
        store,
        &statement,
        signer,
        recipients,
        &dek,
        &model_id,
        opts.verify_upload,
    )
    .await?;
    if let Some(p) = &opts.progress {
        p.finish();
    }
    let pt_total = results.iter().map(|e| e.pt_len).sum();
    tracing::info!(model_id = %model_id, files = files.len(), bytes = pt_total, manifest_sha256 = %digest, "package written");
    Ok(PackReport {
        model_id,
        model_name,
        files: files.len(),
        plaintext_bytes: pt_total,
        ciphertext_bytes: results.iter().map(|e| e.ct_len).sum(),
        manifest_digest: digest,
        recipients: recipients
            .iter()
            .map(|r| r.recipient().to_string())
            .collect(),
        signer: signer.describe(),
        ignored: ignored_paths(model_dir),
    })
}

/// Uploads tried per object before a mismatch fails the pack.
const UPLOAD_ATTEMPTS: u32 = 3;

/// What the store holds for `object`, compared with what was uploaded (`len` bytes of SHA-256
/// `sha`): `None` when it matches, else a description of what is there. Sizes by HEAD; the
/// SHA-256 too, reading the object back, when `read_back`.
async fn stored_mismatch(
    store: &dyn StorageBackend,
    object: &str,
    len: u64,
    sha: &[u8; 32],
    read_back: bool,
) -> Result<Option<(String, String)>, PackError> {
    let size = store.head(object).await?;
    if size != len {
        return Ok(Some((format!("{len} bytes"), format!("{size} bytes"))));
    }
    if !read_back {
        return Ok(None);
    }
    let mut body = store.get_range_stream(object, 0..len).await?;
    let mut h = Sha256::new();
    while let Some(chunk) = body.next().await {
        h.update(&chunk?);
    }
    let got = h.finish();
    Ok((got != *sha).then(|| {
        (
            format!("SHA-256 {}", hex::encode(sha)),
            format!("SHA-256 {}", hex::encode(got)),
        )
    }))
}

/// Checks every data object the store kept against what was encrypted and uploaded (a store
/// may answer an upload before it has the bytes: s3rver once kept 0 bytes of one object of
/// 3,003 while acknowledging it). A mismatched file is encrypted and uploaded again (a fresh
/// stream, so a fresh nonce prefix) up to [`UPLOAD_ATTEMPTS`] in all; then the pack fails.
async fn check_data_uploads(
    cx: &PackContext<'_>,
    files: &[(String, PathBuf)],
    read_back: bool,
    results: &mut [Encrypted],
) -> Result<(), PackError> {
    let store = cx.store;
    for (i, ((rel, src), enc)) in files.iter().zip(results.iter_mut()).enumerate() {
        let object = data_object(i);
        let mut attempt = 1;
        while let Some((expected, actual)) =
            stored_mismatch(store, &object, enc.ct_len, &enc.ct_sha, read_back).await?
        {
            if attempt >= UPLOAD_ATTEMPTS {
                return Err(upload_mismatch(store, &object, expected, actual, attempt));
            }
            tracing::warn!(object = %object, expected = %expected, stored = %actual, attempt, "the store did not keep what was uploaded; uploading again");
            *enc = encrypt_file(cx, rel, src, &object).await?;
            attempt += 1;
        }
    }
    Ok(())
}

/// PUTs a small document and checks what the store kept, retrying as [`check_data_uploads`].
async fn put_checked(
    store: &dyn StorageBackend,
    object: &str,
    data: Bytes,
    read_back: bool,
) -> Result<(), PackError> {
    let sha = crate::crypto::sha256(&data);
    let mut attempt = 1;
    loop {
        store.put(object, data.clone()).await?;
        let Some((expected, actual)) =
            stored_mismatch(store, object, data.len() as u64, &sha, read_back).await?
        else {
            return Ok(());
        };
        if attempt >= UPLOAD_ATTEMPTS {
            return Err(upload_mismatch(store, object, expected, actual, attempt));
        }
        tracing::warn!(object, expected = %expected, stored = %actual, attempt, "the store did not keep what was uploaded; uploading again");
        attempt += 1;
    }
}

fn upload_mismatch(
    store: &dyn StorageBackend,
    object: &str,
    expected: String,
    actual: String,
    attempts: u32,
) -> PackError {
    PackError::UploadMismatch {
        object: object.to_string(),
        location: store.location().to_string(),
        expected,
        actual,
        attempts,
    }
}
