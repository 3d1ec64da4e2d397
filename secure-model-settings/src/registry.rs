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
    /// A socket address `IP:PORT` (`0.0.0.0:8443`, `[::]:8443`).
    SocketAddr,
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
            Kind::SocketAddr => "expected an address IP:PORT, e.g. 0.0.0.0:8443".into(),
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
            Kind::SocketAddr => t.parse::<std::net::SocketAddr>().is_ok(),
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
    /// The injection webhook's server and its profiles file.
    Webhook,
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
            Group::Webhook => "Injection webhook (secure-model-webhook)",
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
    /// `secure-model-webhook` (the injection webhook and `inject`).
    Webhook,
}

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setting {
    /// Environment variable.
    pub env: &'static str,
    /// Command-line flag of the binaries that read it, when it has one (`--read-ahead`).
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
const WEBHOOK: &[Binary] = &[Binary::Webhook];
const ALL: &[Binary] = &[Binary::Cli, Binary::Initc, Binary::Webhook];

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
/// `SECURE_MODEL_TRUST_POLICY`.
pub const TRUST_POLICY: Setting = s("SECURE_MODEL_TRUST_POLICY", Some("--trust-policy"), Kind::Path, "", Group::Trust, BOTH,
    "a JSON trust policy file listing several signers (keys, certificate roots, Sigstore identities; docs/signing.md); combined with the other trust settings");
/// `SECURE_MODEL_TRUSTED_CERT_ROOTS`.
pub const TRUSTED_CERT_ROOTS: Setting = s("SECURE_MODEL_TRUSTED_CERT_ROOTS", Some("--trusted-cert-roots"), Kind::Paths, "", Group::Trust, BOTH,
    "PEM bundles of root CA certificates (comma-separated; the flag repeats): a signature whose certificate chain leads to one is trusted (model_signing sign certificate)");
/// `SECURE_MODEL_TRUSTED_CERT_ROOTS_PEM`.
pub const TRUSTED_CERT_ROOTS_PEM: Setting = s("SECURE_MODEL_TRUSTED_CERT_ROOTS_PEM", None, Kind::Text, "", Group::Trust, BOTH,
    "root CA certificates as PEM text (CERTIFICATE blocks), e.g. inline in a ClusterStorageContainer: one more certificate-chain signer");
/// `SECURE_MODEL_TRUSTED_CERT_SUBJECT`.
pub const TRUSTED_CERT_SUBJECT: Setting = s("SECURE_MODEL_TRUSTED_CERT_SUBJECT", Some("--trusted-cert-subject"), Kind::Text, "", Group::Trust, BOTH,
    "with the certificate roots: require this leaf subject, RFC 4514 as verify-signature prints it (e.g. CN=signer,O=Example)");
/// `SECURE_MODEL_TRUSTED_CERT_IDENTITY`.
pub const TRUSTED_CERT_IDENTITY: Setting = s("SECURE_MODEL_TRUSTED_CERT_IDENTITY", Some("--trusted-cert-identity"), Kind::Text, "", Group::Trust, BOTH,
    "with the certificate roots: require a leaf subject alternative name (email, URI or DNS name) equal to this");
/// `SECURE_MODEL_SIGSTORE_IDENTITY`.
pub const SIGSTORE_IDENTITY: Setting = s("SECURE_MODEL_SIGSTORE_IDENTITY", Some("--sigstore-identity"), Kind::Text, "", Group::Trust, BOTH,
    "trust Sigstore keyless signatures whose certificate identity (email or URI) equals this; needs SECURE_MODEL_SIGSTORE_ISSUER");
/// `SECURE_MODEL_SIGSTORE_IDENTITY_REGEX`.
pub const SIGSTORE_IDENTITY_REGEX: Setting = s("SECURE_MODEL_SIGSTORE_IDENTITY_REGEX", Some("--sigstore-identity-regex"), Kind::Text, "", Group::Trust, BOTH,
    "as SECURE_MODEL_SIGSTORE_IDENTITY, an anchored regular expression (RE2 syntax) instead of an exact value");
/// `SECURE_MODEL_SIGSTORE_ISSUER`.
pub const SIGSTORE_ISSUER: Setting = s("SECURE_MODEL_SIGSTORE_ISSUER", Some("--sigstore-issuer"), Kind::Url, "", Group::Trust, BOTH,
    "the OIDC issuer of the Sigstore identity, exact (e.g. https://accounts.google.com, https://token.actions.githubusercontent.com)");
/// `SECURE_MODEL_SIGSTORE_TRUSTED_ROOT`.
pub const SIGSTORE_TRUSTED_ROOT: Setting = s("SECURE_MODEL_SIGSTORE_TRUSTED_ROOT", Some("--sigstore-trusted-root"), Kind::Path, "", Group::Trust, BOTH,
    "a Sigstore trusted_root.json (or ClientTrustConfig) for a private Sigstore instance; default: the public-good root built into the binary");
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
    "32",
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
    "16",
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
pub const LOG: Setting = s("SECURE_MODEL_LOG", Some("--log"), Kind::Text, "", Group::Output, ALL,
    "log filter (tracing syntax, e.g. info or secure_model_core=debug; default warn for the CLI, info for the init container and the webhook); logs go to stderr");
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
    "PKCS#8 PEM ECDSA private key that signs the manifest (pack): P-256, or P-256/P-384 with SECURE_MODEL_SIGNING_CERTIFICATE",
);
/// `SECURE_MODEL_SIGNING_CERTIFICATE`.
pub const SIGNING_CERTIFICATE: Setting = s("SECURE_MODEL_SIGNING_CERTIFICATE", Some("--signing-certificate"), Kind::Path, "", Group::Publish, CLI,
    "the signing key's leaf certificate (PEM): pack signs with the certificate chain instead of a bare key (model_signing sign certificate form)");
/// `SECURE_MODEL_CERTIFICATE_CHAIN`.
pub const CERTIFICATE_CHAIN: Setting = s("SECURE_MODEL_CERTIFICATE_CHAIN", Some("--certificate-chain"), Kind::Paths, "", Group::Publish, CLI,
    "PEM files of the intermediate CA certificates written into the bundle after the leaf (comma-separated; the flag repeats)");
/// `SECURE_MODEL_WEBHOOK_LISTEN`.
pub const WEBHOOK_LISTEN: Setting = s(
    "SECURE_MODEL_WEBHOOK_LISTEN",
    Some("--listen"),
    Kind::SocketAddr,
    "0.0.0.0:8443",
    Group::Webhook,
    WEBHOOK,
    "address the webhook's HTTPS server listens on",
);
/// `SECURE_MODEL_WEBHOOK_TLS_CERT`.
pub const WEBHOOK_TLS_CERT: Setting = s(
    "SECURE_MODEL_WEBHOOK_TLS_CERT",
    Some("--tls-cert"),
    Kind::Path,
    "/etc/secure-model-webhook/tls/tls.crt",
    Group::Webhook,
    WEBHOOK,
    "PEM certificate chain of the webhook's server certificate (reloaded when it changes)",
);
/// `SECURE_MODEL_WEBHOOK_TLS_KEY`.
pub const WEBHOOK_TLS_KEY: Setting = s(
    "SECURE_MODEL_WEBHOOK_TLS_KEY",
    Some("--tls-key"),
    Kind::Path,
    "/etc/secure-model-webhook/tls/tls.key",
    Group::Webhook,
    WEBHOOK,
    "PEM private key (PKCS#8, SEC1 or PKCS#1) of the server certificate (reloaded with it)",
);
/// `SECURE_MODEL_WEBHOOK_PROFILES`.
pub const WEBHOOK_PROFILES: Setting = s(
    "SECURE_MODEL_WEBHOOK_PROFILES",
    Some("--profiles"),
    Kind::Path,
    "/etc/secure-model-webhook/profiles/profiles.yaml",
    Group::Webhook,
    WEBHOOK,
    "the injection profiles file (YAML; docs/webhook.md); the server reloads it when it changes",
);
/// `SECURE_MODEL_WEBHOOK_RELOAD_SECS`.
pub const WEBHOOK_RELOAD_SECS: Setting = s(
    "SECURE_MODEL_WEBHOOK_RELOAD_SECS",
    None,
    Kind::Seconds { min: 1, max: 3_600 },
    "5",
    Group::Webhook,
    WEBHOOK,
    "how often the certificate, key and profiles files are checked for changes",
);
/// `SECURE_MODEL_WEBHOOK_MAX_BODY`.
pub const WEBHOOK_MAX_BODY: Setting = s(
    "SECURE_MODEL_WEBHOOK_MAX_BODY",
    None,
    Kind::Bytes {
        min: 4_096,
        max: 64 << 20,
    },
    "4194304",
    Group::Webhook,
    WEBHOOK,
    "largest AdmissionReview body accepted (413 beyond)",
);
/// `SECURE_MODEL_WEBHOOK_TIMEOUT_SECS`.
pub const WEBHOOK_TIMEOUT_SECS: Setting = s(
    "SECURE_MODEL_WEBHOOK_TIMEOUT_SECS",
    None,
    Kind::Seconds { min: 1, max: 30 },
    "10",
    Group::Webhook,
    WEBHOOK,
    "time allowed for a TLS handshake, for reading a request's headers and body, and for answering",
);
/// `SECURE_MODEL_WEBHOOK_SHUTDOWN_SECS`.
pub const WEBHOOK_SHUTDOWN_SECS: Setting = s(
    "SECURE_MODEL_WEBHOOK_SHUTDOWN_SECS",
    None,
    Kind::Seconds { min: 1, max: 300 },
    "20",
    Group::Webhook,
    WEBHOOK,
    "on SIGTERM: /readyz fails at once, in-flight requests get this long to finish",
);

/// Every setting, in documentation order.
pub const SETTINGS: &[Setting] = &[
    TRUSTED_KEYS,
    TRUSTED_KEYS_PEM,
    TRUST_POLICY,
    TRUSTED_CERT_ROOTS,
    TRUSTED_CERT_ROOTS_PEM,
    TRUSTED_CERT_SUBJECT,
    TRUSTED_CERT_IDENTITY,
    SIGSTORE_IDENTITY,
    SIGSTORE_IDENTITY_REGEX,
    SIGSTORE_ISSUER,
    SIGSTORE_TRUSTED_ROOT,
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
    SIGNING_CERTIFICATE,
    CERTIFICATE_CHAIN,
    WEBHOOK_LISTEN,
    WEBHOOK_TLS_CERT,
    WEBHOOK_TLS_KEY,
    WEBHOOK_PROFILES,
    WEBHOOK_RELOAD_SECS,
    WEBHOOK_MAX_BODY,
    WEBHOOK_TIMEOUT_SECS,
    WEBHOOK_SHUTDOWN_SECS,
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

/// The setting variable closest to `name` (edit distance at most 3), for "did you mean"
/// messages.
pub fn closest_env(name: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .map(|s| (distance(name, s.env), s.env))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, env)| env)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
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
    "SECURE_MODEL_KUBE_APISERVER",
    "SECURE_MODEL_ETCD",
    "SECURE_MODEL_KUBE_DIR",
];
