//! Reading a package into process memory: [`PackageReader`], a package whose manifest a
//! trusted signer signed and whose DEK matched the signed commitment, and [`LoadedModel`],
//! every file of one. Both hand out a file's bytes only after every signed digest of the file
//! (or of each of its shards) matched; a file that fails is zeroed and never returned.

use std::collections::BTreeMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::phases::PhaseTimings;
use super::sink::MemorySink;
use super::{LoadError, Loader};
use crate::storage::StorageBackend;
use crate::verify::{UnlockedManifest, VerifiedFile, VerifiedManifest};

/// A package opened by [`Loader::open`]: signature verified, structure checked, the data key
/// released and matched against the signed commitment. Read files with
/// [`PackageReader::read_file`] or, several at once, [`PackageReader::read`]: the bytes come
/// back only when every signed digest of the file matched. `Debug` shows no key.
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
