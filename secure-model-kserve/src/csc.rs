//! Facts of KServe's storage-initializer contract that our deployment and the injection
//! webhook depend on, encoded once (checked against KServe's own files in the tests when
//! `../shared/kserve` is present; see `tests/kserve_manifests.rs`).

/// The name KServe gives (and a ClusterStorageContainer must give) the storage-initializer
/// container; the KServe pod mutator recognises it by this name.
pub const STORAGE_INITIALIZER_CONTAINER: &str = "storage-initializer";

/// Where KServe mounts the model for the serving container.
pub const DEFAULT_MODEL_DIR: &str = "/mnt/models";

/// KServe's default ClusterStorageContainer (`config/storagecontainers/default.yaml`,
/// KServe 0.20): the URI prefixes it claims, in order.
pub const DEFAULT_CSC_PREFIXES: &[&str] = &[
    "gs://",
    "s3://",
    "hdfs://",
    "hf://",
    "modelscope://",
    "webhdfs://",
];

/// The same ClusterStorageContainer's URI regexes (Go RE2, searched anywhere in the URI like
/// `regexp.MatchString`), in order.
pub const DEFAULT_CSC_REGEXES: &[&str] = &[
    "https://(.+?).blob.core.windows.net/(.+)",
    "https://(.+?).file.core.windows.net/(.+)",
    "https?://(.+)/(.+)",
];

/// Every URI form our storage initializer documents (`docs/kserve.md`), one example each.
pub const OUR_URI_FORMS: &[&str] = &[
    "secure+s3://bucket/prefix",
    "secure+gs://bucket/prefix",
    "secure+az://account/container/prefix",
    "secure+web://models.example.com/packages/m1",
    "secure+web://models.example.com:8443/packages/m1",
    "secure+file:///mnt/pvc/packages/m1",
];

/// Key-provider types a `SECURE_MODEL_KEYS` specification may name in KServe deployments.
pub const KEY_PROVIDER_TYPES: &[&str] = &["local", "aws-kms", "kbs", "cdh"];

/// The variables of KServe's confidential mode (KServe v0.20+).
pub mod confidential {
    /// `true` turns the mode on.
    pub const ENABLED: &str = "CONFIDENTIAL_ENABLED";
    /// The key's resource, `kbs:///<repo>/<type>/<tag>`.
    pub const RESOURCE_ID: &str = "CONFIDENTIAL_RESOURCE_ID";
    /// SHA-256 of the single downloaded file (KServe's proposed pin).
    pub const VERIFICATION_DIGEST: &str = "VERIFICATION_DIGEST";
}
