//! Reading a package into process memory: [`PackageReader`], a package whose manifest a
//! trusted signer signed and whose DEK matched the signed commitment, and [`LoadedModel`],
//! every file of one. Both hand out a file's bytes only after every signed digest of the file
//! (or of each of its shards) matched; a file that fails is zeroed and never returned.

use std::collections::BTreeMap;
use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use super::phases::PhaseTimings;
use super::sink::{ForwardPool, ForwardSink, Forwarded, MemorySink};
use super::{LoadError, Loader};
use crate::storage::StorageBackend;
use crate::verify::{UnlockedManifest, VerifiedFile, VerifiedManifest};

/// A package opened by [`Loader::open`]: signature verified, structure checked, the data key
/// released and matched against the signed commitment. Read files with
/// [`PackageReader::read_file`] or, several at once, [`PackageReader::read`], or into buffers
/// of the caller's with [`PackageReader::read_into`]: the bytes come back only when every
/// signed digest of the file matched. `Debug` shows no key.
pub struct PackageReader {
    loader: Loader,
    store: Arc<dyn StorageBackend>,
    unlocked: Arc<UnlockedManifest>,
    recipient: String,
}

impl std::fmt::Debug for PackageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageReader")
            .field("location", &self.store.location())
            .field("model_id", &self.unlocked.manifest().model_id())
            .field("recipient", &self.recipient)
            .finish_non_exhaustive()
    }
}

impl PackageReader {
    pub(super) fn new(
        loader: Loader,
        store: Arc<dyn StorageBackend>,
        unlocked: Arc<UnlockedManifest>,
        recipient: String,
    ) -> Self {
        Self {
            loader,
            store,
            unlocked,
            recipient,
        }
    }

    /// The verified manifest: files, sizes, signer.
    pub fn manifest(&self) -> &VerifiedManifest {
        self.unlocked.manifest()
    }

    /// The recipient whose key unlocked the package (`provider:key_ref`).
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// The file at model path `path`.
    ///
    /// # Errors
    /// [`LoadError::NotInPackage`].
    pub fn file(&self, path: &str) -> Result<&VerifiedFile, LoadError> {
        self.manifest()
            .files()
            .iter()
            .find(|f| f.path() == path)
            .ok_or_else(|| LoadError::NotInPackage {
                path: path.escape_debug().to_string(),
            })
    }

    /// Decrypts the files at `paths` (concurrently, as a pull does) into memory allocated once
    /// at each file's signed size, and returns their bytes in the order of `paths` when every
    /// one verified: AEAD, every signed digest. On failure nothing is returned and whatever was
    /// decrypted is zeroed.
    ///
    /// # Errors
    /// [`LoadError::NotInPackage`], [`LoadError::TooLargeForMemory`] when the allocator
    /// refuses, and every failure of a pull.
    pub async fn read(&self, paths: &[&str]) -> Result<Vec<Zeroizing<Vec<u8>>>, LoadError> {
        let work = paths
            .iter()
            .map(|p| {
                let f = self.file(p)?;
                Ok((f.clone(), MemorySink::new(f.plaintext_size(), f.path())?))
            })
            .collect::<Result<Vec<_>, LoadError>>()?;
        let (out, _) = self
            .loader
            .decrypt_into(
                &self.store,
                &self.unlocked,
                work,
                &mut PhaseTimings::default(),
            )
            .await?;
        Ok(out)
    }

    /// Decrypts each file of `targets` (model path, buffer of exactly the file's signed
    /// plaintext size) straight into its buffer, concurrently as [`PackageReader::read`]
    /// does, with no whole-file buffer of its own: plaintext travels range by range (a
    /// bounded queue of 8 ranges) from the decryption threads to this task,
    /// which copies it into place. Returns `Ok` only when every file verified (AEAD, every
    /// signed digest, every byte delivered); otherwise, and when the future is dropped before
    /// it completes, every buffer is zeroed before the borrow ends, so the caller never sees
    /// plaintext that did not verify.
    ///
    /// The copies run on the task that polls this future: call it from a thread that may
    /// block (`block_on`, `spawn_blocking`) when the files are large.
    ///
    /// # Errors
    /// [`LoadError::NotInPackage`]; [`LoadError::Internal`] when a buffer is not its file's
    /// signed size; every failure of [`PackageReader::read`].
    ///
    /// # Cancel safety
    /// Dropping the future zeroes every buffer.
    pub async fn read_into(&self, targets: &mut [(&str, &mut [u8])]) -> Result<(), LoadError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(FORWARD_QUEUE);
        let pool = ForwardPool::default();
        let mut sizes = Vec::with_capacity(targets.len());
        let mut work = Vec::with_capacity(targets.len());
        for (i, (path, buf)) in targets.iter().enumerate() {
            let f = self.file(path)?;
            if buf.len() as u64 != f.plaintext_size() {
                return Err(LoadError::Internal {
                    what: "a read_into buffer is not its file's signed size",
                });
            }
            sizes.push(f.plaintext_size());
            work.push((
                f.clone(),
                ForwardSink::new(i, tx.clone(), pool.clone(), f.path()),
            ));
        }
        drop(tx);
        let mut guard = ZeroUnlessVerified {
            targets,
            verified: false,
        };
        let mut delivered = vec![0u64; sizes.len()];
        let mut phases = PhaseTimings::default();
        let decrypt = self
            .loader
            .decrypt_into(&self.store, &self.unlocked, work, &mut phases);
        tokio::pin!(decrypt);
        loop {
            tokio::select! {
                biased;
                Some(m) = rx.recv() => deliver(guard.targets, &mut delivered, &pool, m)?,
                r = &mut decrypt => {
                    r?;
                    break;
                }
            }
        }
        // Every write of a verified file was queued before its digest completed: what is left
        // in the queue is delivered now, and nothing more can come.
        while let Ok(m) = rx.try_recv() {
            deliver(guard.targets, &mut delivered, &pool, m)?;
        }
        if delivered != sizes {
            return Err(LoadError::Internal {
                what: "verified plaintext was not delivered in full",
            });
        }
        guard.verified = true;
        Ok(())
    }

    /// The bytes of the file at `path`, once every signed digest of it matched.
    ///
    /// # Errors
    /// As [`PackageReader::read`].
    pub async fn read_file(&self, path: &str) -> Result<Zeroizing<Vec<u8>>, LoadError> {
        self.read(&[path]).await?.pop().ok_or(LoadError::Internal {
            what: "a read of one file returned none",
        })
    }

    /// Every file, as a [`LoadedModel`].
    ///
    /// # Errors
    /// As [`PackageReader::read`].
    pub async fn into_loaded(self) -> Result<LoadedModel, LoadError> {
        let m = self.manifest();
        let paths: Vec<&str> = m.files().iter().map(|f| f.path()).collect();
        let buffers = self.read(&paths).await?;
        let files: BTreeMap<String, Zeroizing<Vec<u8>>> = paths
            .iter()
            .map(|p| (*p).to_string())
            .zip(buffers)
            .collect();
        tracing::info!(
            model = m.model_name(),
            files = files.len(),
            bytes = m.total_plaintext(),
            recipient = %self.recipient,
            "model verified and decrypted into memory"
        );
        Ok(LoadedModel {
            model_id: m.model_id().to_string(),
            model_name: m.model_name().to_string(),
            manifest_digest: hex::encode(m.digest()),
            signer: m.signer().to_string(),
            recipient: self.recipient.clone(),
            files,
        })
    }
}

/// How many decrypted ranges [`PackageReader::read_into`] lets wait for their copy.
const FORWARD_QUEUE: usize = 8;

/// The caller's buffers of [`PackageReader::read_into`]: zeroed when dropped before every
/// file verified (an error, or the future dropped).
struct ZeroUnlessVerified<'t, 'p, 'b> {
    targets: &'t mut [(&'p str, &'b mut [u8])],
    verified: bool,
}

impl Drop for ZeroUnlessVerified<'_, '_, '_> {
    fn drop(&mut self) {
        if !self.verified {
            for (_, buf) in self.targets.iter_mut() {
                buf.zeroize();
            }
        }
    }
}

/// Copies one forwarded range into its buffer, or answers a read-back from it.
fn deliver(
    targets: &mut [(&str, &mut [u8])],
    delivered: &mut [u64],
    pool: &ForwardPool,
    m: Forwarded,
) -> Result<(), LoadError> {
    let outside = || LoadError::Internal {
        what: "forwarded plaintext outside its buffer",
    };
    let span = |offset: u64, len: usize| -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(offset).ok()?;
        Some(start..start.checked_add(len)?)
    };
    match m {
        Forwarded::Write { file, offset, data } => {
            let (_, buf) = targets.get_mut(file).ok_or_else(outside)?;
            let range = span(offset, data.len()).ok_or_else(outside)?;
            buf.get_mut(range)
                .ok_or_else(outside)?
                .copy_from_slice(&data);
            let n = delivered.get_mut(file).ok_or_else(outside)?;
            *n = n.saturating_add(data.len() as u64);
            pool.give_back(data);
        }
        Forwarded::Read {
            file,
            offset,
            len,
            reply,
        } => {
            let copy = targets
                .get(file)
                .zip(span(offset, len))
                .and_then(|((_, buf), range)| buf.get(range))
                .map(|b| Zeroizing::new(b.to_vec()));
            // A requester that gave up has its own error to report.
            let _ = reply.send(copy);
        }
    }
    Ok(())
}

/// A package verified and decrypted into process memory by [`Loader::load_in_memory`]. Every
/// file's plaintext SHA-256 matched the signed manifest. The buffers are zeroed when dropped;
/// `Debug` shows paths and sizes only.
#[non_exhaustive]
pub struct LoadedModel {
    /// Package id.
    pub model_id: String,
    /// Model name from the manifest subject.
    pub model_name: String,
    /// Hex SHA-256 of the manifest object.
    pub manifest_digest: String,
    /// The trusted signer that verified: its key hint, `x509:` and the leaf subject, or
    /// `sigstore:` and the identity.
    pub signer: String,
    /// Recipient whose key unlocked the package (`provider:key_ref`).
    pub recipient: String,
    /// Plaintext of every file, by model path (`/`-separated, as signed).
    pub files: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl LoadedModel {
    /// The plaintext of the file at model path `path`.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|v| v.as_slice())
    }
    /// Total plaintext bytes.
    pub fn plaintext_bytes(&self) -> u64 {
        self.files.values().map(|v| v.len() as u64).sum()
    }
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: BTreeMap<&str, usize> = self
            .files
            .iter()
            .map(|(k, v)| (k.as_str(), v.len()))
            .collect();
        f.debug_struct("LoadedModel")
            .field("model_id", &self.model_id)
            .field("model_name", &self.model_name)
            .field("manifest_digest", &self.manifest_digest)
            .field("signer", &self.signer)
            .field("recipient", &self.recipient)
            .field("file_sizes", &sizes)
            .finish()
    }
}
