//! Every setting of the binaries, once: its environment variable, command-line flag, value
//! kind and bounds, default and doc line. The parsers ([`crate::Source`]), the typed builders
//! ([`crate::build`]), `secure-model settings` and `docs/settings.md` all read this list.

/// The kind of value, with its bounds: how a value is parsed and validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), case-insensitive.
    Bool,
    /// An integer in `min..=max`.
    Count {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
    },
    /// Whole seconds in `min..=max`.
    Seconds {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
    },
    /// A byte count in `min..=max`.
    Bytes {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
    },
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A file path.
    Path,
    /// Comma-separated file paths (a flag may repeat).
    Paths,
    /// Comma-separated key specifications `TYPE:ARG` (a flag may repeat).
    KeySpecs,
    /// One SHA-256 digest: 64 hex characters, optionally `sha256:`.
    Digest,
    /// Comma-separated SHA-256 digests.
    Digests,
    /// An attester: `auto`, `sample`, `tsm[:DIR]`, `tdx`, `snp`, `cca`, `sev-guest[:DEVICE]`.
    Attester,
    /// A KBS resource `kbs:///<repo>/<type>/<tag>`.
    Resource,
    /// An `http(s)://` URL.
    Url,
    /// Text (PEM, log filters).
    Text,
    /// Read by the storage backends as KServe and the cloud SDKs define it (credentials and
    /// endpoints); passed through in the storage snapshot, validated where it is used.
    Passthrough,
}

impl Kind {
    /// The accepted values, for messages and docs.
    pub fn expected(&self) -> String {
        match self {
            Kind::Bool => secure_model_core::config::BOOL_EXPECTED.into(),
            Kind::Count { min, max } => format!("expected an integer from {min} to {max}"),
            Kind::Seconds { min, max } => {
                format!("expected whole seconds from {min} to {max}")
            }
            Kind::Bytes { min, max } => format!("expected a number of bytes from {min} to {max}"),
            Kind::Choice(words) => format!("expected one of {}", words.join(", ")),
            Kind::Path => "expected a file path".into(),
            Kind::Paths => "expected comma-separated file paths".into(),
            Kind::KeySpecs => "expected comma-separated key specifications TYPE:ARG".into(),
            Kind::Digest => "expected 64 hex characters (optionally prefixed sha256:)".into(),
            Kind::Digests => "expected comma-separated 64-hex-character digests".into(),
            Kind::Attester => {
                "unknown attester; expected auto, sample, tsm, tdx, snp, cca, sev-guest, tsm:DIR or sev-guest:DEVICE"
                    .into()
            }
            Kind::Resource => "expected kbs:///<repo>/<type>/<tag>".into(),
            Kind::Url => "expected an http(s):// URL".into(),
            Kind::Text | Kind::Passthrough => "any text".into(),
        }
    }
}

impl Kind {
    /// Whether `text` is a valid value: the rule [`crate::Source`] applies, so a flag checked
    /// by [`flag_value`] is accepted by the settings layer too.
    pub fn accepts(&self, text: &str) -> bool {
        let t = text.trim();
        let number = |min: u64, max: u64| t.parse::<u64>().is_ok_and(|n| (min..=max).contains(&n));
        match *self {
            Kind::Bool => secure_model_core::config::parse_bool(t).is_some(),
            Kind::Count { min, max } | Kind::Seconds { min, max } | Kind::Bytes { min, max } => {
                number(min, max)
            }
            Kind::Choice(words) => words.contains(&t),
            Kind::Digest => {
                secure_model_core::config::parse_digest_pin(&t.to_ascii_lowercase()).is_ok()
            }
            Kind::Digests => t
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .all(|d| secure_model_core::config::parse_digest_pin(d).is_ok()),
            Kind::Attester => secure_model_core::attest::AttesterChoice::parse(t).is_ok(),
            Kind::Resource => {
                t.starts_with("kbs:///") && secure_model_core::keys::ResourcePath::parse(t).is_ok()
            }
            Kind::Url => t.starts_with("http://") || t.starts_with("https://"),
            Kind::Path | Kind::Paths | Kind::KeySpecs | Kind::Text | Kind::Passthrough => true,
        }
    }
}

/// A clap value parser for `setting`'s flag: the registry's rule and message, so a flag and
/// its variable accept exactly the same values (a refused flag is a usage error, exit 2).
pub fn flag_value(
    setting: &'static Setting,
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        if setting.kind.accepts(text) {
            Ok(text.to_string())
        } else {
            Err(setting.kind.expected())
        }
    }
}

/// What a setting is about (the sections of `docs/settings.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Group {
    /// Who signs the packages we accept.
    Trust,
    /// Which keys unlock packages.
    Keys,
    /// How the KBS and CDH are reached, and attestation.
    Kbs,
    /// Ranged reads and concurrency.
    Transfer,
    /// Storage clients: timeouts, retries, CAs.
    Storage,
    /// Relaxations of the secure defaults.
    Danger,
    /// KServe's confidential mode.
    Confidential,
    /// Logs and the termination message.
    Output,
    /// The publisher's side (`pack`).
    Publish,
    /// Storage credentials and endpoints in KServe's and the cloud SDKs' names.
    StorageCredentials,
    /// Proxies, read by the HTTP clients themselves.
    Network,
}

impl Group {
    /// Section title.
    pub fn title(self) -> &'static str {
        match self {
            Group::Trust => "Trusted signers",
            Group::Keys => "Keys",
            Group::Kbs => "KBS, CDH and attestation",
            Group::Transfer => "Transfer tuning",
            Group::Storage => "Storage clients",
            Group::Danger => "Relaxations (danger)",
            Group::Confidential => "KServe confidential mode",
            Group::Output => "Logs and termination message",
            Group::Publish => "Publishing",
            Group::StorageCredentials => "Storage credentials (KServe's and the SDKs' variables)",
            Group::Network => "Network (read by the HTTP clients)",
        }
    }
}

/// Which binary reads a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Binary {
    /// `secure-model` (the CLI).
    Cli,
    /// `secure-model-initc` (the init container).
    Initc,
}

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setting {
    /// Environment variable.
    pub env: &'static str,
    /// Command-line flag of the CLI, when it has one (`--read-ahead`).
    pub flag: Option<&'static str>,
    /// Value kind and bounds.
    pub kind: Kind,
    /// Default, as text (empty: unset).
    pub default: &'static str,
    /// One line for the docs.
    pub doc: &'static str,
    /// Section.
    pub group: Group,
    /// Which binaries read it.
    pub binaries: &'static [Binary],
    /// Whether values may be credentials: never shown in messages.
    pub sensitive: bool,
}

const BOTH: &[Binary] = &[Binary::Cli, Binary::Initc];
const INITC: &[Binary] = &[Binary::Initc];
const CLI: &[Binary] = &[Binary::Cli];

const fn s(
    env: &'static str,
    flag: Option<&'static str>,
    kind: Kind,
    default: &'static str,
    group: Group,
    binaries: &'static [Binary],
    doc: &'static str,
) -> Setting {
    Setting {
        env,
        flag,
        kind,
        default,
        doc,
        group,
        binaries,
        sensitive: false,
    }
}

const fn secret(env: &'static str, doc: &'static str) -> Setting {
    Setting {
        env,
        flag: None,
        kind: Kind::Passthrough,
        default: "",
        doc,
        group: Group::StorageCredentials,
        binaries: BOTH,
        sensitive: true,
    }
}

const fn pass(env: &'static str, doc: &'static str) -> Setting {
    Setting {
        sensitive: false,
        ..secret(env, doc)
    }
}

const fn net(env: &'static str, doc: &'static str) -> Setting {
    Setting {
        group: Group::Network,
        sensitive: true,
        ..secret(env, doc)
    }
}

const TUNING: Kind = Kind::Count { min: 1, max: 256 };

/// `SECURE_MODEL_TRUSTED_KEYS`.
pub const TRUSTED_KEYS: Setting = s(
    "SECURE_MODEL_TRUSTED_KEYS",
    Some("--trusted-key"),
    Kind::Paths,
    "",
    Group::Trust,
    BOTH,
    "PEM files with the trusted signer public keys (comma-separated; the flag repeats)",
);
/// `SECURE_MODEL_TRUSTED_KEYS_PEM`.
pub const TRUSTED_KEYS_PEM: Setting = s("SECURE_MODEL_TRUSTED_KEYS_PEM", None, Kind::Text, "", Group::Trust, BOTH,
    "trusted signer public keys as PEM text (one or more PUBLIC KEY blocks), e.g. inline in a ClusterStorageContainer; combined with SECURE_MODEL_TRUSTED_KEYS");
/// `SECURE_MODEL_KEYS`.
pub const KEYS: Setting = s("SECURE_MODEL_KEYS", Some("--key"), Kind::KeySpecs, "", Group::Keys, BOTH,
    "key specifications to unlock with, e.g. local:/var/run/secrets/kek/kek.bin, aws-kms:alias/models, kbs:URL#repo/type/tag, cdh:repo/type/tag");
/// `SECURE_MODEL_MANIFEST_DIGEST`.
pub const MANIFEST_DIGEST: Setting = s(
    "SECURE_MODEL_MANIFEST_DIGEST",
    Some("--manifest-digest"),
    Kind::Digests,
    "",
    Group::Trust,
    BOTH,
    "manifest SHA-256 pins (anti-rollback), one per SRC DEST pair",
);
/// `SECURE_MODEL_ATTESTER`.
pub const ATTESTER: Setting = s(
    "SECURE_MODEL_ATTESTER",
    Some("--attester"),
    Kind::Attester,
    "auto",
    Group::Kbs,
    BOTH,
    "TEE interface producing evidence for kbs: keys and `attest` (docs/attestation.md)",
);
/// `SECURE_MODEL_KBS_CA`.
pub const KBS_CA: Setting = s(
    "SECURE_MODEL_KBS_CA",
    None,
    Kind::Path,
    "",
    Group::Kbs,
    BOTH,
    "PEM bundle trusted instead of the system roots for the KBS",
);
/// `SECURE_MODEL_KBS_TEE_KEY`.
pub const KBS_TEE_KEY: Setting = s(
    "SECURE_MODEL_KBS_TEE_KEY",
    None,
    Kind::Choice(&["ec", "rsa"]),
    "ec",
    Group::Kbs,
    BOTH,
    "ephemeral TEE key of the KBS session: ec (P-256) or rsa (RSA-2048)",
);
/// `SECURE_MODEL_KBS_TOKEN_FILE`.
pub const KBS_TOKEN_FILE: Setting = s(
    "SECURE_MODEL_KBS_TOKEN_FILE",
    None,
    Kind::Path,
    "",
    Group::Kbs,
    BOTH,
    "passport mode: the pre-issued attestation token (with SECURE_MODEL_KBS_TEE_KEY_FILE)",
);
/// `SECURE_MODEL_KBS_TEE_KEY_FILE`.
pub const KBS_TEE_KEY_FILE: Setting = s(
    "SECURE_MODEL_KBS_TEE_KEY_FILE",
    None,
    Kind::Path,
    "",
    Group::Kbs,
    BOTH,
    "passport mode: the PKCS#8 PEM TEE private key the token was issued for",
);
/// `SECURE_MODEL_KBS_INITDATA`.
pub const KBS_INITDATA: Setting = s(
    "SECURE_MODEL_KBS_INITDATA",
    None,
    Kind::Path,
    "",
    Group::Kbs,
    BOTH,
    "a file with the pod's init-data TOML, sent as the attest request's init-data",
);
/// `CDH_ADDR`.
pub const CDH_ADDR: Setting = s(
    "CDH_ADDR",
    None,
    Kind::Url,
    "http://127.0.0.1:8006",
    Group::Kbs,
    BOTH,
    "the Confidential Data Hub's address",
);
/// `SECURE_MODEL_RANGE_MIB`.
pub const RANGE_MIB: Setting = s(
    "SECURE_MODEL_RANGE_MIB",
    Some("--range-segments"),
    TUNING,
    "8",
    Group::Transfer,
    BOTH,
    "ciphertext segments (1 MiB each) per ranged GET; the flag's alias is --range-mib",
);
/// `SECURE_MODEL_READ_AHEAD`.
pub const READ_AHEAD: Setting = s(
    "SECURE_MODEL_READ_AHEAD",
    Some("--read-ahead"),
    TUNING,
    "8",
    Group::Transfer,
    BOTH,
    "most ranged GETs in flight per file (a cap: the number in flight adapts to the store)",
);
/// `SECURE_MODEL_FILE_CONCURRENCY`.
pub const FILE_CONCURRENCY: Setting = s(
    "SECURE_MODEL_FILE_CONCURRENCY",
    Some("--file-concurrency"),
    TUNING,
    "4",
    Group::Transfer,
    BOTH,
    "most files fetched and decrypted concurrently (a cap, like --read-ahead)",
);
/// `SECURE_MODEL_BUFFER_MIB`.
pub const BUFFER_MIB: Setting = s(
    "SECURE_MODEL_BUFFER_MIB",
    Some("--buffer-mib"),
    Kind::Count { min: 2, max: 4096 },
    "32",
    Group::Transfer,
    BOTH,
    "memory for ciphertext in flight, MiB (pooled segment buffers; bounds the ranged GETs in flight)",
);
/// `SECURE_MODEL_ADAPTIVE`.
pub const ADAPTIVE: Setting = s(
    "SECURE_MODEL_ADAPTIVE",
    Some("--adaptive"),
    Kind::Bool,
    "true",
    Group::Transfer,
    BOTH,
    "adapt the ranged GETs in flight to the store (grow while throughput grows, halve on 429/503 and retries); false keeps them at the caps",
);
/// `SECURE_MODEL_RANGE_ATTEMPTS`.
pub const RANGE_ATTEMPTS: Setting = s(
    "SECURE_MODEL_RANGE_ATTEMPTS",
    None,
    TUNING,
    "4",
    Group::Transfer,
    BOTH,
    "attempts per ranged GET on transient failures (after the client's own retries)",
);
/// `SECURE_MODEL_STORAGE_TIMEOUT_SECS`.
pub const STORAGE_TIMEOUT: Setting = s(
    "SECURE_MODEL_STORAGE_TIMEOUT_SECS",
    None,
    Kind::Seconds {
        min: 1,
        max: 86_400,
    },
    "60",
    Group::Storage,
    BOTH,
    "total timeout of one storage request, body included (a ranged GET is a few MiB)",
);
/// `SECURE_MODEL_STORAGE_CONNECT_TIMEOUT_SECS`.
pub const STORAGE_CONNECT_TIMEOUT: Setting = s(
    "SECURE_MODEL_STORAGE_CONNECT_TIMEOUT_SECS",
    None,
    Kind::Seconds { min: 1, max: 3_600 },
    "5",
    Group::Storage,
    BOTH,
    "connect timeout of the storage clients",
);
/// `SECURE_MODEL_STORAGE_FIRST_BYTE_TIMEOUT_SECS`.
pub const STORAGE_FIRST_BYTE_TIMEOUT: Setting = s(
    "SECURE_MODEL_STORAGE_FIRST_BYTE_TIMEOUT_SECS",
    None,
    Kind::Seconds { min: 1, max: 3_600 },
    "10",
    Group::Storage,
    BOTH,
    "longest wait for a storage response to start (retries included): a store that accepts connections but never answers fails in seconds; progress is logged every 5 s while waiting",
);
/// `SECURE_MODEL_STORAGE_MAX_RETRIES`.
pub const STORAGE_MAX_RETRIES: Setting = s(
    "SECURE_MODEL_STORAGE_MAX_RETRIES",
    None,
    Kind::Count { min: 0, max: 100 },
    "6",
    Group::Storage,
    BOTH,
    "retries of one storage request on transient failures (429, 5xx, resets)",
);
/// `SECURE_MODEL_STORAGE_RETRY_TIMEOUT_SECS`.
pub const STORAGE_RETRY_TIMEOUT: Setting = s(
    "SECURE_MODEL_STORAGE_RETRY_TIMEOUT_SECS",
    None,
    Kind::Seconds {
        min: 1,
        max: 86_400,
    },
    "120",
    Group::Storage,
    BOTH,
    "longest time spent retrying one storage request",
);
/// `SECURE_MODEL_CA_BUNDLE`.
pub const CA_BUNDLE: Setting = s(
    "SECURE_MODEL_CA_BUNDLE",
    None,
    Kind::Path,
    "",
    Group::Storage,
    BOTH,
    "PEM bundle of extra trusted CAs for every storage backend",
);
/// `SECURE_MODEL_ALLOW_DISK_PLAINTEXT`.
pub const ALLOW_DISK_PLAINTEXT: Setting = s(
    "SECURE_MODEL_ALLOW_DISK_PLAINTEXT",
    Some("--allow-disk-plaintext"),
    Kind::Bool,
    "false",
    Group::Danger,
    BOTH,
    "allow a destination that is not tmpfs/ramfs (unsafe in Kata pods: shared with the host)",
);
/// `SECURE_MODEL_ALLOW_SAMPLE_ATTESTER`.
pub const ALLOW_SAMPLE_ATTESTER: Setting = s(
    "SECURE_MODEL_ALLOW_SAMPLE_ATTESTER",
    Some("--allow-sample"),
    Kind::Bool,
    "false",
    Group::Danger,
    BOTH,
    "allow the sample attester (no TEE; development only)",
);
/// `SECURE_MODEL_ALLOW_HTTP`.
pub const ALLOW_HTTP: Setting = s(
    "SECURE_MODEL_ALLOW_HTTP",
    None,
    Kind::Bool,
    "false",
    Group::Danger,
    BOTH,
    "allow plain http:// package mirrors (tests, air gaps; integrity still holds)",
);
/// `SECURE_MODEL_KBS_ALLOW_HTTP`.
pub const KBS_ALLOW_HTTP: Setting = s(
    "SECURE_MODEL_KBS_ALLOW_HTTP",
    None,
    Kind::Bool,
    "false",
    Group::Danger,
    BOTH,
    "allow a plain http:// KBS (tests and loopback only)",
);
/// `CONFIDENTIAL_ENABLED`.
pub const CONFIDENTIAL_ENABLED: Setting = s("CONFIDENTIAL_ENABLED", None, Kind::Bool, "false", Group::Confidential, INITC,
    "KServe's confidential mode: the key of CONFIDENTIAL_RESOURCE_ID unlocks packages and KServe JWE files");
/// `CONFIDENTIAL_RESOURCE_ID`.
pub const CONFIDENTIAL_RESOURCE_ID: Setting = s(
    "CONFIDENTIAL_RESOURCE_ID",
    None,
    Kind::Resource,
    "",
    Group::Confidential,
    INITC,
    "the key's KBS resource, kbs:///<repo>/<type>/<tag> (required in confidential mode)",
);
/// `SECURE_MODEL_KBS_URL`.
pub const KBS_URL: Setting = s(
    "SECURE_MODEL_KBS_URL",
    None,
    Kind::Url,
    "",
    Group::Confidential,
    INITC,
    "confidential mode: fetch the key directly from this KBS instead of through the CDH",
);
/// `SECURE_MODEL_ALLOW_MIXED_JWE`.
pub const ALLOW_MIXED_JWE: Setting = s(
    "SECURE_MODEL_ALLOW_MIXED_JWE",
    None,
    Kind::Bool,
    "false",
    Group::Confidential,
    INITC,
    "confidential mode: accept unencrypted files next to JWE files",
);
/// `SECURE_MODEL_JWE_MAX_BYTES`.
pub const JWE_MAX_BYTES: Setting = s(
    "SECURE_MODEL_JWE_MAX_BYTES",
    None,
    Kind::Bytes {
        min: 1,
        max: 1 << 40,
    },
    "4294967296",
    Group::Confidential,
    INITC,
    "confidential mode: largest JWE file decrypted in memory",
);
/// `VERIFICATION_DIGEST`.
pub const VERIFICATION_DIGEST: Setting = s(
    "VERIFICATION_DIGEST",
    None,
    Kind::Digest,
    "",
    Group::Confidential,
    INITC,
    "confidential mode: SHA-256 of the single downloaded file (or of the package manifest)",
);
/// `SECURE_MODEL_LOG`.
pub const LOG: Setting = s("SECURE_MODEL_LOG", Some("--log"), Kind::Text, "", Group::Output, BOTH,
    "log filter (tracing syntax, e.g. info or secure_model_core=debug; default warn for the CLI, info for the init container); logs go to stderr");
/// `SECURE_MODEL_TERMINATION_LOG`.
pub const TERMINATION_LOG: Setting = s(
    "SECURE_MODEL_TERMINATION_LOG",
    None,
    Kind::Path,
    "/dev/termination-log",
    Group::Output,
    INITC,
    "where the one-line failure reason is written (KServe shows it)",
);
/// `NO_COLOR`.
pub const NO_COLOR: Setting = s("NO_COLOR", None, Kind::Text, "", Group::Output, BOTH,
    "any non-empty value turns colour off in logs (colour is used only on a terminal anyway); see no-color.org");
/// `SECURE_MODEL_SIGNING_KEY`.
pub const SIGNING_KEY: Setting = s(
    "SECURE_MODEL_SIGNING_KEY",
    Some("--signing-key"),
    Kind::Path,
    "",
    Group::Publish,
    CLI,
    "PKCS#8 PEM ECDSA P-256 private key that signs the manifest (pack)",
);

/// Every setting, in documentation order.
pub const SETTINGS: &[Setting] = &[
    TRUSTED_KEYS,
    TRUSTED_KEYS_PEM,
    MANIFEST_DIGEST,
    KEYS,
    ATTESTER,
    KBS_CA,
    KBS_TEE_KEY,
    KBS_TOKEN_FILE,
    KBS_TEE_KEY_FILE,
    KBS_INITDATA,
    CDH_ADDR,
    RANGE_MIB,
    READ_AHEAD,
    FILE_CONCURRENCY,
    BUFFER_MIB,
    ADAPTIVE,
    RANGE_ATTEMPTS,
    STORAGE_TIMEOUT,
    STORAGE_CONNECT_TIMEOUT,
    STORAGE_FIRST_BYTE_TIMEOUT,
    STORAGE_MAX_RETRIES,
    STORAGE_RETRY_TIMEOUT,
    CA_BUNDLE,
    ALLOW_DISK_PLAINTEXT,
    ALLOW_SAMPLE_ATTESTER,
    ALLOW_HTTP,
    KBS_ALLOW_HTTP,
    CONFIDENTIAL_ENABLED,
    CONFIDENTIAL_RESOURCE_ID,
    KBS_URL,
    ALLOW_MIXED_JWE,
    JWE_MAX_BYTES,
    VERIFICATION_DIGEST,
    LOG,
    TERMINATION_LOG,
    NO_COLOR,
    SIGNING_KEY,
    pass(
        "AWS_ENDPOINT_URL",
        "S3 (and KMS) endpoint URL; AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_KMS per service",
    ),
    pass(
        "S3_ENDPOINT",
        "KServe's S3 endpoint host[:port], with S3_USE_HTTPS",
    ),
    pass(
        "S3_USE_HTTPS",
        "KServe: whether S3_ENDPOINT uses HTTPS (default true)",
    ),
    pass(
        "S3_VERIFY_SSL",
        "KServe: false turns off TLS verification for S3 (logged)",
    ),
    pass(
        "S3_USER_VIRTUAL_BUCKET",
        "KServe: virtual-hosted-style bucket addressing (default path-style)",
    ),
    pass("AWS_DEFAULT_REGION", "S3/KMS region (also AWS_REGION)"),
    pass("AWS_CA_BUNDLE", "PEM bundle of CAs for S3"),
    pass("awsAnonymousCredential", "KServe: anonymous S3 access"),
    secret(
        "AWS_ACCESS_KEY_ID",
        "S3/KMS access key id (or IRSA / instance credentials)",
    ),
    secret("AWS_SECRET_ACCESS_KEY", "S3/KMS secret access key"),
    secret("AWS_SESSION_TOKEN", "S3/KMS session token"),
    secret(
        "STORAGE_CONFIG",
        "KServe's storage-config secret entry (JSON), mapped onto the S3 variables",
    ),
    secret(
        "STORAGE_OVERRIDE_CONFIG",
        "KServe: members overriding STORAGE_CONFIG",
    ),
    pass(
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GCS service-account file (or workload identity)",
    ),
    pass(
        "STORAGE_EMULATOR_HOST",
        "GCS emulator host:port (anonymous unless credentials are set)",
    ),
    pass("GCS_ANONYMOUS", "anonymous GCS access"),
    pass("GCS_CA_BUNDLE", "PEM bundle of CAs for GCS"),
    secret("AZURE_STORAGE_ACCESS_KEY", "Azure Blob shared key"),
    pass("AZURE_CLIENT_ID", "Azure client id (also AZ_CLIENT_ID)"),
    secret(
        "AZURE_CLIENT_SECRET",
        "Azure client secret (also AZ_CLIENT_SECRET)",
    ),
    pass("AZURE_TENANT_ID", "Azure tenant id (also AZ_TENANT_ID)"),
    secret("AZURE_STORAGE_SAS_TOKEN", "Azure SAS token"),
    pass(
        "AZURE_STORAGE_USE_EMULATOR",
        "Azure: use the Azurite emulator",
    ),
    pass("AZURE_STORAGE_ENDPOINT", "Azure Blob endpoint URL"),
    pass("AZURE_CA_BUNDLE", "PEM bundle of CAs for Azure Blob"),
    net(
        "HTTPS_PROXY",
        "proxy for HTTPS requests (also https_proxy); may carry credentials",
    ),
    net(
        "HTTP_PROXY",
        "proxy for plain HTTP requests (also http_proxy)",
    ),
    net(
        "NO_PROXY",
        "hosts that bypass the proxy (also no_proxy); list the CDH's 127.0.0.1",
    ),
];

/// The setting of `env`, if any.
pub fn by_env(env: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.env == env)
}

/// The setting of `flag` (`--read-ahead`), if any.
pub fn by_flag(flag: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.flag == Some(flag))
}

/// Prefixes that mark a variable as ours: an unknown variable with one is most likely a typo.
pub const OWN_PREFIXES: &[&str] = &["SECURE_MODEL_", "CONFIDENTIAL_"];

/// Variables with our prefixes that are not settings of the binaries: the test harness's
/// (`scripts/test.sh`, `secure-model-testkit`) and the example model server's.
pub const NOT_SETTINGS: &[&str] = &[
    "SECURE_MODEL_PYTHON",
    "SECURE_MODEL_PYENV_BIN",
    "SECURE_MODEL_VENV",
    "SECURE_MODEL_SKIP_SERVERS",
    "SECURE_MODEL_SKIP_INTEROP",
    "SECURE_MODEL_SERVER_LOGS",
    "SECURE_MODEL_KSERVE_REF",
    "SECURE_MODEL_S3RVER",
    "SECURE_MODEL_AZURITE",
    "SECURE_MODEL_NGINX",
    "SECURE_MODEL_PACKAGE",
];
