//! A plain KServe-style download in confidential mode: list every object under the location,
//! download into a private staging directory inside the (memory-backed) destination, check
//! `VERIFICATION_DIGEST` and the mixed-content rule, then obtain the key and decrypt each JWE
//! file into a second staging directory that is published atomically.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt as _, TryStreamExt as _};
use ring::digest;
use tokio::io::AsyncWriteExt as _;

use super::{
    decrypt_vec, has_jwe_suffix, looks_like_jwe, output_path, KserveJweError, KserveKey,
    DEFAULT_MAX_JWE_BYTES, JWE_MAGIC,
};
use secure_model_core::danger::Relaxations;
use secure_model_core::format::{Limits, ModelPath};
use secure_model_core::keys::cdh::CdhClient;
use secure_model_core::keys::kbs::KbsClient;
use secure_model_core::keys::{BrokeredResource, ResourceBroker, ResourcePath};
use secure_model_core::loader::{FsKind, Staging};
use secure_model_core::storage::{ObjectInfo, StorageBackend};

/// Mode of every published file, decrypted or passed through (directories are 0755).
pub const PUBLISHED_MODE: u32 = 0o644;

/// Policy and tuning of [`stage_download`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JweDownloadOptions {
    /// Largest JWE file decrypted (it is read whole into memory). Default 4 GiB.
    pub max_jwe_bytes: u64,
    /// Accept a download where some files are not encrypted (logged with their names).
    pub allow_mixed: bool,
    /// `VERIFICATION_DIGEST`: SHA-256 of the single downloaded file (the ciphertext), checked
    /// before the key is requested.
    pub verification_digest: Option<[u8; 32]>,
    /// Relaxations (disk plaintext).
    pub relax: Relaxations,
    /// Most objects in one download.
    pub max_files: u64,
    /// Bytes per ranged read.
    pub chunk_bytes: u64,
    /// Objects downloaded concurrently.
    pub file_concurrency: usize,
}

impl Default for JweDownloadOptions {
    fn default() -> Self {
        Self {
            max_jwe_bytes: DEFAULT_MAX_JWE_BYTES,
            allow_mixed: false,
            verification_digest: None,
            relax: Relaxations::NONE,
            max_files: Limits::default().max_files,
            chunk_bytes: 8 << 20,
            file_concurrency: 4,
        }
    }
}

impl JweDownloadOptions {
    /// Sets [`JweDownloadOptions::max_jwe_bytes`].
    pub fn max_jwe_bytes(mut self, n: u64) -> Self {
        self.max_jwe_bytes = n;
        self
    }
    /// Sets [`JweDownloadOptions::allow_mixed`].
    pub fn allow_mixed(mut self, yes: bool) -> Self {
        self.allow_mixed = yes;
        self
    }
    /// Sets [`JweDownloadOptions::verification_digest`].
    pub fn verification_digest(mut self, digest: Option<[u8; 32]>) -> Self {
        self.verification_digest = digest;
        self
    }
    /// Sets [`JweDownloadOptions::relax`].
    pub fn with_relaxations(mut self, relax: Relaxations) -> Self {
        self.relax = relax;
        self
    }
}

/// Where the KServe JWE key comes from: a broker's resource `kbs:///<repo>/<type>/<tag>`
/// (through the Confidential Data Hub or directly from a KBS, after attestation; possibly
/// shared with the `kbs` recipient of packages, so the pod attests once), or a key already
/// known. Fetched at most once per instance, only when there is something to decrypt.
#[derive(Debug)]
pub struct ResourceKey {
    resource: Option<Arc<BrokeredResource>>,
    key: tokio::sync::OnceCell<KserveKey>,
}

impl ResourceKey {
    /// The key in `resource`, which other users may share.
    pub fn from_resource(resource: Arc<BrokeredResource>) -> Self {
        Self {
            resource: Some(resource),
            key: tokio::sync::OnceCell::new(),
        }
    }

    /// Through the CoCo Confidential Data Hub (KServe's own `CDHSecretResolver` path).
    pub fn via_cdh(cdh: CdhClient, resource: ResourcePath) -> Self {
        Self::from_resource(BrokeredResource::new(ResourceBroker::Cdh(cdh), resource))
    }

    /// Directly from a Trustee KBS with `client` (attesting on first use).
    pub fn direct(client: KbsClient, resource: ResourcePath) -> Self {
        Self::from_resource(BrokeredResource::new(
            ResourceBroker::Kbs(Box::new(client)),
            resource,
        ))
    }

    /// A key already known (tests, tools).
    pub fn fixed(key: KserveKey) -> Self {
        Self {
            resource: None,
            key: tokio::sync::OnceCell::new_with(Some(key)),
        }
    }

    /// The resource, when fetched from a broker.
    pub fn resource(&self) -> Option<&ResourcePath> {
        self.resource.as_deref().map(BrokeredResource::path)
    }

    /// The key, fetched and parsed ([`KserveKey::parse`]) on first use.
    ///
    /// # Errors
    /// [`KserveJweError::Key`] when the broker fails; [`KserveJweError::InvalidKey`].
    pub async fn key(&self) -> Result<&KserveKey, KserveJweError> {
        self.key
            .get_or_try_init(|| async {
                let resource = self.resource.as_ref().ok_or(KserveJweError::InvalidKey {
                    reason: "internal: no key source",
                })?;
                let key = KserveKey::parse(resource.get().await?)?;
                tracing::info!(resource = %resource.path().uri(), form = ?key.form(), "KServe JWE key obtained");
                Ok(key)
            })
            .await
    }
}

/// What a KServe JWE download did.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct DownloadReport {
    /// Location downloaded.
    pub source: String,
    /// Destination directory.
    pub destination: PathBuf,
    /// Filesystem kind of the destination.
    pub destination_fs: FsKind,
    /// Objects downloaded.
    pub files: usize,
    /// Of which JWE files decrypted.
    pub decrypted: usize,
    /// Of which unencrypted files passed through (only with `allow_mixed`).
    pub unencrypted: Vec<String>,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// Bytes written to the destination.
    pub output_bytes: u64,
    /// Hex SHA-256 checked against `VERIFICATION_DIGEST`, when set.
    pub verified_digest: Option<String>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// A decrypted download in a staging directory, not yet visible. Dropping it removes
/// everything; [`StagedDownload::publish`] moves it into place.
#[derive(Debug)]
pub struct StagedDownload {
    staging: Staging,
    report: DownloadReport,
}

impl StagedDownload {
    /// What was staged.
    pub fn report(&self) -> &DownloadReport {
        &self.report
    }
    /// Moves the staged files into the destination (all or nothing).
    ///
    /// # Errors
    /// [`KserveJweError::Load`] when publishing fails (nothing is left published).
    pub fn publish(self) -> Result<DownloadReport, KserveJweError> {
        self.staging.publish()?;
        Ok(self.report)
    }
}

#[derive(Debug)]
struct Entry {
    /// Object key (and the download's path in the ciphertext staging directory).
    key: ModelPath,
    size: u64,
    output: ModelPath,
}

#[derive(Debug)]
struct Fetched {
    sha256: [u8; 32],
    magic: bool,
}

fn mkdirs(path: &Path, mode: u32) -> Result<(), KserveJweError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|source| KserveJweError::Io {
            path: path.display().to_string(),
            action: "cannot create staging directory",
            source,
        })
}

async fn fetch(
    store: Arc<dyn StorageBackend>,
    entry: &Entry,
    path: PathBuf,
    chunk: u64,
) -> Result<Fetched, KserveJweError> {
    if let Some(parent) = path.parent() {
        mkdirs(parent, 0o700)?;
    }
    let io = |action| {
        let p = path.display().to_string();
        move |source| KserveJweError::Io {
            path: p,
            action,
            source,
        }
    };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .await
        .map_err(io("cannot create staging file"))?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut head = Vec::with_capacity(JWE_MAGIC.len());
    let mut at = 0u64;
    while at < entry.size {
        let end = entry.size.min(at.saturating_add(chunk.max(1)));
        let bytes = store.get_range(entry.key.as_str(), at..end).await?;
        ctx.update(&bytes);
        if head.len() < JWE_MAGIC.len() {
            let need = JWE_MAGIC.len() - head.len();
            head.extend(bytes.iter().take(need));
        }
        file.write_all(&bytes)
            .await
            .map_err(io("cannot write staging file"))?;
        at = end;
    }
    file.flush()
        .await
        .map_err(io("cannot write staging file"))?;
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(ctx.finish().as_ref());
    Ok(Fetched {
        sha256,
        magic: looks_like_jwe(&head),
    })
}

/// Decrypts staged JWE `from` into new file `to`, removing `from` as soon as it is read so
/// the tmpfs holds the ciphertext or the plaintext of a file, not both. Returns the plaintext
/// size.
fn decrypt_staged(
    name: &str,
    from: &Path,
    to: &Path,
    key: &KserveKey,
    max: u64,
) -> Result<u64, KserveJweError> {
    let io = |p: &Path, action| {
        let p = p.display().to_string();
        move |source| KserveJweError::Io {
            path: p,
            action,
            source,
        }
    };
    let size = std::fs::metadata(from)
        .map_err(io(from, "cannot stat staging file"))?
        .len();
    if size > max {
        return Err(KserveJweError::TooLarge {
            path: name.into(),
            size,
            max,
        });
    }
    let text = std::fs::read(from).map_err(io(from, "cannot read staging file"))?;
    std::fs::remove_file(from).map_err(io(from, "cannot remove staging file"))?;
    let plain = decrypt_vec(name, text, key, max)?;
    if let Some(parent) = to.parent() {
        mkdirs(parent, 0o755)?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PUBLISHED_MODE)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(to)
        .map_err(io(to, "cannot create staging file"))?;
    f.write_all(&plain)
        .map_err(io(to, "cannot write staging file"))?;
    Ok(plain.len() as u64)
}

/// A file and a directory of the same name (`a` and `a/b`) cannot both be published.
fn refuse_file_and_directory(outputs: &BTreeMap<String, String>) -> Result<(), KserveJweError> {
    for (out, src) in outputs {
        let dir = format!("{out}/");
        if let Some((other, osrc)) = outputs.range(dir.clone()..).next() {
            if other.starts_with(&dir) {
                return Err(KserveJweError::NameCollision {
                    first: src.clone(),
                    second: osrc.clone(),
                    output: out.clone(),
                });
            }
        }
    }
    Ok(())
}

fn plan(
    location: &str,
    objects: Vec<ObjectInfo>,
    opts: &JweDownloadOptions,
) -> Result<Vec<Entry>, KserveJweError> {
    if objects.is_empty() {
        return Err(KserveJweError::Listing {
            location: location.into(),
            reason: "no object found (is the storage URI right?)".into(),
        });
    }
    if objects.len() as u64 > opts.max_files {
        return Err(KserveJweError::Listing {
            location: location.into(),
            reason: format!(
                "{} objects, more than the limit of {}",
                objects.len(),
                opts.max_files
            ),
        });
    }
    let limits = Limits::default();
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    let mut entries = Vec::with_capacity(objects.len());
    for o in objects {
        let invalid = |source| KserveJweError::InvalidPath {
            key: o.key.escape_debug().to_string(),
            source,
        };
        let key = ModelPath::new(&o.key, &limits).map_err(invalid)?;
        let output = ModelPath::new(output_path(&o.key), &limits).map_err(invalid)?;
        if has_jwe_suffix(&o.key) && o.size > opts.max_jwe_bytes {
            return Err(KserveJweError::TooLarge {
                path: o.key,
                size: o.size,
                max: opts.max_jwe_bytes,
            });
        }
        if let Some(first) = outputs.insert(output.to_string(), o.key.clone()) {
            return Err(KserveJweError::NameCollision {
                first,
                second: o.key,
                output: output.to_string(),
            });
        }
        entries.push(Entry {
            key,
            size: o.size,
            output,
        });
    }
    refuse_file_and_directory(&outputs)?;
    if opts.verification_digest.is_some() && entries.len() != 1 {
        return Err(KserveJweError::DigestNeedsSingleFile {
            files: entries.len(),
        });
    }
    Ok(entries)
}

/// Which downloaded files are encrypted (`.jwe` suffix or content starting with `eyJ`, as KServe
/// decides), and the unencrypted ones: none encrypted is refused, and unencrypted files next to
/// encrypted ones unless allowed.
fn classify(
    entries: &[Entry],
    fetched: &[Fetched],
    opts: &JweDownloadOptions,
) -> Result<(Vec<bool>, Vec<String>), KserveJweError> {
    let encrypted: Vec<bool> = entries
        .iter()
        .zip(fetched)
        .map(|(e, f)| has_jwe_suffix(e.key.as_str()) || f.magic)
        .collect();
    let n_enc = encrypted.iter().filter(|x| **x).count();
    let plain: Vec<String> = entries
        .iter()
        .zip(&encrypted)
        .filter(|(_, enc)| !**enc)
        .map(|(e, _)| e.key.to_string())
        .collect();
    if n_enc == 0 {
        return Err(KserveJweError::NothingEncrypted {
            files: entries.len(),
        });
    }
    if !plain.is_empty() {
        if !opts.allow_mixed {
            return Err(KserveJweError::MixedContent {
                encrypted: n_enc,
                plain: plain.len(),
                examples: plain.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
            });
        }
        tracing::warn!(unencrypted = ?plain, "passing unencrypted files through next to JWE files (SECURE_MODEL_ALLOW_MIXED_JWE)");
    }
    Ok((encrypted, plain))
}

/// Checks `VERIFICATION_DIGEST` (when set) against the single downloaded file; returns the
/// digest checked.
fn check_verification_digest(
    entries: &[Entry],
    fetched: &[Fetched],
    opts: &JweDownloadOptions,
) -> Result<Option<String>, KserveJweError> {
    let Some(expected) = opts.verification_digest else {
        return Ok(None);
    };
    // plan() guarantees exactly one entry.
    let actual = fetched.first().map(|f| f.sha256).unwrap_or_default();
    let path = entries
        .first()
        .map(|e| e.key.to_string())
        .unwrap_or_default();
    if actual != expected {
        return Err(KserveJweError::DigestMismatch {
            path,
            expected: hex::encode(expected),
            actual: hex::encode(actual),
        });
    }
    tracing::info!(file = %path, sha256 = %hex::encode(actual), "VERIFICATION_DIGEST matches the downloaded ciphertext");
    Ok(Some(hex::encode(actual)))
}

/// Decrypts each JWE file (one at a time, off the async reactor) into the output staging
/// directory and moves the allowed unencrypted files there; returns the bytes staged.
async fn publishable(
    entries: &[Entry],
    encrypted: &[bool],
    downloads: &Staging,
    staging: &Staging,
    key: &KserveKey,
    opts: &JweDownloadOptions,
) -> Result<u64, KserveJweError> {
    let mut output_bytes = 0u64;
    for (e, enc) in entries.iter().zip(encrypted) {
        let from = downloads.path_of(&e.key);
        let to = staging.path_of(&e.output);
        if !*enc {
            if let Some(parent) = to.parent() {
                mkdirs(parent, 0o755)?;
            }
            // Downloads are staged private (0600); published files are 0644 like the
            // decrypted ones, so a model server running as another UID can read every file.
            std::fs::set_permissions(&from, std::fs::Permissions::from_mode(PUBLISHED_MODE))
                .map_err(|source| KserveJweError::Io {
                    path: e.key.to_string(),
                    action: "cannot set the mode of a staged file",
                    source,
                })?;
            std::fs::rename(&from, &to).map_err(|source| KserveJweError::Io {
                path: e.key.to_string(),
                action: "cannot move staged file",
                source,
            })?;
            output_bytes += e.size;
            continue;
        }
        let (k, name, max) = (key.duplicate(), e.key.to_string(), opts.max_jwe_bytes);
        let n = tokio::task::spawn_blocking(move || decrypt_staged(&name, &from, &to, &k, max))
            .await
            .map_err(|_| KserveJweError::Io {
                path: e.key.to_string(),
                action: "decryption task failed",
                source: std::io::Error::other("task panicked or was cancelled"),
            })??;
        tracing::info!(file = %e.key, output = %e.output, bytes = n, "decrypted");
        output_bytes += n;
    }
    Ok(output_bytes)
}

/// Stages a plain KServe-style download of every object under `store` into `dest`, in
/// KServe's confidential mode:
///
/// 1. list every object; refuse unsafe names, two objects with one output name, more than
///    [`JweDownloadOptions::max_files`], a `.jwe` object over the memory cap;
/// 2. check that `dest` is memory-backed (unless allowed) and holds none of the outputs;
/// 3. download everything into a private staging directory inside `dest`, hashing;
/// 4. classify: a file is encrypted when its name ends in `.jwe` or its content starts with
///    `eyJ` (as KServe does). No encrypted file is refused; unencrypted files next to
///    encrypted ones are refused unless [`JweDownloadOptions::allow_mixed`];
/// 5. check [`JweDownloadOptions::verification_digest`] on the downloaded bytes;
/// 6. only now obtain the key, and decrypt each JWE file (one at a time, off the async
///    reactor) into the output staging directory, dropping `.jwe` from the name.
///
/// Nothing is visible in `dest` until [`StagedDownload::publish`]; on any error every staged
/// byte is removed.
///
/// # Errors
/// Every [`KserveJweError`] kind above, storage and destination errors.
pub async fn stage_download(
    store: Arc<dyn StorageBackend>,
    dest: &Path,
    key: &ResourceKey,
    opts: &JweDownloadOptions,
) -> Result<StagedDownload, KserveJweError> {
    let started = Instant::now();
    let location = store.location().to_string();
    let entries = plan(&location, store.list("").await?, opts)?;
    let outputs = entries.iter().map(|e| e.output.clone()).collect();
    let staging = Staging::prepare(dest, outputs, opts.relax).await?;
    let fs = staging.fs_kind();
    // The ciphertext goes to a second staging directory that is never published.
    let downloads = Staging::prepare(dest, Vec::new(), opts.relax).await?;
    tracing::info!(source = %location, files = entries.len(), "downloading KServe confidential-mode files");

    let fetched: Vec<Fetched> = futures::stream::iter(entries.iter())
        .map(|e| {
            fetch(
                Arc::clone(&store),
                e,
                downloads.path_of(&e.key),
                opts.chunk_bytes,
            )
        })
        .buffered(opts.file_concurrency.max(1))
        .try_collect()
        .await?;
    let downloaded_bytes = entries.iter().map(|e| e.size).sum();

    let (encrypted, plain) = classify(&entries, &fetched, opts)?;
    let verified_digest = check_verification_digest(&entries, &fetched, opts)?;
    let key = key.key().await?;
    let output_bytes = publishable(&entries, &encrypted, &downloads, &staging, key, opts).await?;
    drop(downloads);
    let report = DownloadReport {
        source: location,
        destination: dest.to_path_buf(),
        destination_fs: fs,
        files: entries.len(),
        decrypted: encrypted.iter().filter(|e| **e).count(),
        unencrypted: plain,
        downloaded_bytes,
        output_bytes,
        verified_digest,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(StagedDownload { staging, report })
}
