//! Caps on everything read from untrusted documents, checked before allocating.

/// Limits applied while reading a package. The defaults suit models up to 1 TiB per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest manifest (bundle JSON) accepted, bytes.
    pub max_manifest_bytes: u64,
    /// Largest keys file accepted, bytes.
    pub max_keys_file_bytes: u64,
    /// Most files in one package (or one plain model signature).
    pub max_files: u64,
    /// Most `predicate.resources` entries (files, or shards in `shards` serialization).
    pub max_resources: u64,
    /// Largest single plaintext file, bytes.
    pub max_file_bytes: u64,
    /// Largest total plaintext, bytes.
    pub max_total_bytes: u64,
    /// Longest path, bytes.
    pub max_path_bytes: u64,
    /// Deepest path, components.
    pub max_path_depth: u64,
    /// Most recipients in a keys file.
    pub max_recipients: u64,
    /// Largest wrapped DEK, bytes (KMS ciphertext blobs are a few hundred bytes).
    pub max_wrapped_dek_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_manifest_bytes: 16 << 20,
            max_keys_file_bytes: 1 << 20,
            max_files: 100_000,
            max_resources: 1_000_000,
            max_file_bytes: 1 << 40,
            max_total_bytes: 4 << 40,
            max_path_bytes: 1024,
            max_path_depth: 32,
            max_recipients: 64,
            max_wrapped_dek_bytes: 8192,
        }
    }
}

impl Limits {
    /// Sets the file-count cap.
    pub fn with_max_files(mut self, n: u64) -> Self {
        self.max_files = n;
        self
    }
    /// Sets the manifest size cap.
    pub fn with_max_manifest_bytes(mut self, n: u64) -> Self {
        self.max_manifest_bytes = n;
        self
    }
    /// Sets the per-file size cap.
    pub fn with_max_file_bytes(mut self, n: u64) -> Self {
        self.max_file_bytes = n;
        self
    }
    /// Sets the total size cap.
    pub fn with_max_total_bytes(mut self, n: u64) -> Self {
        self.max_total_bytes = n;
        self
    }
}
