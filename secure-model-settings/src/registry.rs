//! Every setting of the binaries, declared once: its environment variable, command-line flag,
//! value kind and bounds, default and doc line. The declaration yields both the typed constant
//! (`TRUSTED_KEYS: Setting<Files>`) and the list [`SETTINGS`]; the parsers
//! ([`crate::Source`]), the resolved configuration ([`crate::resolve`]), `secure-model
//! settings` and `docs/settings.md` all read it. A setting's kind is part of its type:
//!
//! ```compile_fail
//! # use secure_model_settings::{registry::TRUSTED_KEYS, Environment, Source};
//! let src = Source::new(Environment::default());
//! // TRUSTED_KEYS is a list of paths; reading it as a number does not compile.
//! let n: Option<u64> = src.get(&TRUSTED_KEYS).unwrap();
//! ```

pub use crate::kind::{
    Attester, Bool, Bytes, Choice, Count, Credential, Digest, Digests, Endpoint, File, Files,
    KeySpecs, Kind, ListKind, Resource, Seconds, SocketAddr, Text, Url,
};

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
    /// S3 credentials and endpoints in KServe's and the AWS SDK's names.
    S3,
    /// GCS credentials and endpoints.
    Gcs,
    /// Azure Blob credentials and endpoints.
    Azure,
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
            Group::S3 => "S3 (KServe's and the AWS SDK's variables)",
            Group::Gcs => "Google Cloud Storage",
            Group::Azure => "Azure Blob Storage",
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

/// One setting whose values are of kind `K`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Setting<K: Kind> {
    /// Environment variable.
    pub env: &'static str,
    /// Command-line flag of the binaries that read it, when it has one (`--read-ahead`).
    pub flag: Option<&'static str>,
    /// Value kind and bounds.
    pub kind: K,
    /// Default, as text (empty: unset); parsed by the kind like any value.
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

/// A setting of any kind, for lists and lookups by name.
pub trait AnySetting: Sync + std::fmt::Debug {
    /// Environment variable.
    fn env(&self) -> &'static str;
    /// Command-line flag, when it has one.
    fn flag(&self) -> Option<&'static str>;
    /// Default, as text (empty: unset).
    fn default_text(&self) -> &'static str;
    /// One line for the docs.
    fn doc(&self) -> &'static str;
    /// Section.
    fn group(&self) -> Group;
    /// Which binaries read it.
    fn binaries(&self) -> &'static [Binary];
    /// Whether values may be credentials.
    fn sensitive(&self) -> bool;
    /// What the value looks like (`integer 1..=256`).
    fn describe(&self) -> String;
    /// What is accepted, for messages.
    fn expected(&self) -> String;
    /// Whether `text` is a value of the setting's kind: the parser of [`crate::Source`].
    fn accepts(&self, text: &str) -> bool;
}

impl<K: Kind + std::fmt::Debug> AnySetting for Setting<K> {
    fn env(&self) -> &'static str {
        self.env
    }
    fn flag(&self) -> Option<&'static str> {
        self.flag
    }
    fn default_text(&self) -> &'static str {
        self.default
    }
    fn doc(&self) -> &'static str {
        self.doc
    }
    fn group(&self) -> Group {
        self.group
    }
    fn binaries(&self) -> &'static [Binary] {
        self.binaries
    }
    fn sensitive(&self) -> bool {
        self.sensitive
    }
    fn describe(&self) -> String {
        self.kind.describe()
    }
    fn expected(&self) -> String {
        self.kind.expected()
    }
    fn accepts(&self, text: &str) -> bool {
        self.kind.parse(text.trim()).is_ok()
    }
}

/// A clap value parser for `setting`'s flag: the kind's parser, so a flag and its variable
/// accept exactly the same values and the flag arrives typed (a refused flag is a usage error,
/// exit 2). Key specifications are checked later, where a refusal can be shown redacted.
pub fn flag_value<K: Kind + std::fmt::Debug>(
    setting: &'static Setting<K>,
) -> impl Fn(&str) -> Result<K::Value, String> + Clone + Send + Sync + 'static {
    move |text: &str| setting.kind.parse(text.trim())
}

/// A clap value parser for one item of a list setting's flag (`--trusted-key A --trusted-key
/// B`, each also split at commas by clap's `value_delimiter`).
pub fn flag_item<K: ListKind + std::fmt::Debug>(
    setting: &'static Setting<K>,
) -> impl Fn(&str) -> Result<K::Item, String> + Clone + Send + Sync + 'static {
    move |text: &str| setting.kind.parse_item(text.trim())
}

const BOTH: &[Binary] = &[Binary::Cli, Binary::Initc];
const INITC: &[Binary] = &[Binary::Initc];
const CLI: &[Binary] = &[Binary::Cli];
const WEBHOOK: &[Binary] = &[Binary::Webhook];
const ALL: &[Binary] = &[Binary::Cli, Binary::Initc, Binary::Webhook];

const fn s<K: Kind>(
    env: &'static str,
    flag: Option<&'static str>,
    kind: K,
    default: &'static str,
    group: Group,
    binaries: &'static [Binary],
    doc: &'static str,
) -> Setting<K> {
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

/// A variable of a storage backend (KServe's or its SDK's name), read by both binaries.
const fn store<K: Kind>(env: &'static str, kind: K, group: Group, doc: &'static str) -> Setting<K> {
    s(env, None, kind, "", group, BOTH, doc)
}

/// A storage credential: never shown.
const fn secret(env: &'static str, group: Group, doc: &'static str) -> Setting<Credential> {
    Setting {
        sensitive: true,
        ..store(env, Credential, group, doc)
    }
}

const fn net(env: &'static str, doc: &'static str) -> Setting<Credential> {
    secret(env, Group::Network, doc)
}

const TUNING: Count = Count { min: 1, max: 256 };

/// Declares each setting once: the typed constant and its place in [`SETTINGS`].
macro_rules! settings {
    ($( $(#[$meta:meta])* $name:ident : $kind:ty = $init:expr ;)*) => {
        $( $(#[$meta])* pub const $name: Setting<$kind> = $init; )*
        /// Every setting, in documentation order.
        pub static SETTINGS: &[&dyn AnySetting] = &[$(&$name),*];
    };
}

settings! {
    /// `SECURE_MODEL_TRUSTED_KEYS`.
    TRUSTED_KEYS: Files = s("SECURE_MODEL_TRUSTED_KEYS",
    Some("--trusted-key"),
    Files,
    "",
    Group::Trust,
    BOTH,
    "PEM files with the trusted signer public keys (comma-separated; the flag repeats)",);
    /// `SECURE_MODEL_TRUSTED_KEYS_PEM`.
    TRUSTED_KEYS_PEM: Text = s("SECURE_MODEL_TRUSTED_KEYS_PEM", None, Text, "", Group::Trust, BOTH,
    "trusted signer public keys as PEM text (one or more PUBLIC KEY blocks), e.g. inline in a ClusterStorageContainer; combined with SECURE_MODEL_TRUSTED_KEYS");
    /// `SECURE_MODEL_TRUST_POLICY`.
    TRUST_POLICY: File = s("SECURE_MODEL_TRUST_POLICY", Some("--trust-policy"), File, "", Group::Trust, BOTH,
    "a JSON trust policy file listing several signers (keys, certificate roots, Sigstore identities; docs/signing.md); combined with the other trust settings");
    /// `SECURE_MODEL_TRUSTED_CERT_ROOTS`.
    TRUSTED_CERT_ROOTS: Files = s("SECURE_MODEL_TRUSTED_CERT_ROOTS", Some("--trusted-cert-roots"), Files, "", Group::Trust, BOTH,
    "PEM bundles of root CA certificates (comma-separated; the flag repeats): a signature whose certificate chain leads to one is trusted (model_signing sign certificate)");
    /// `SECURE_MODEL_TRUSTED_CERT_ROOTS_PEM`.
    TRUSTED_CERT_ROOTS_PEM: Text = s("SECURE_MODEL_TRUSTED_CERT_ROOTS_PEM", None, Text, "", Group::Trust, BOTH,
    "root CA certificates as PEM text (CERTIFICATE blocks), e.g. inline in a ClusterStorageContainer: one more certificate-chain signer");
    /// `SECURE_MODEL_TRUSTED_CERT_SUBJECT`.
    TRUSTED_CERT_SUBJECT: Text = s("SECURE_MODEL_TRUSTED_CERT_SUBJECT", Some("--trusted-cert-subject"), Text, "", Group::Trust, BOTH,
    "with the certificate roots: require this leaf subject, RFC 4514 as verify-signature prints it (e.g. CN=signer,O=Example)");
    /// `SECURE_MODEL_TRUSTED_CERT_IDENTITY`.
    TRUSTED_CERT_IDENTITY: Text = s("SECURE_MODEL_TRUSTED_CERT_IDENTITY", Some("--trusted-cert-identity"), Text, "", Group::Trust, BOTH,
    "with the certificate roots: require a leaf subject alternative name (email, URI or DNS name) equal to this");
    /// `SECURE_MODEL_SIGSTORE_IDENTITY`.
    SIGSTORE_IDENTITY: Text = s("SECURE_MODEL_SIGSTORE_IDENTITY", Some("--sigstore-identity"), Text, "", Group::Trust, BOTH,
    "trust Sigstore keyless signatures whose certificate identity (email or URI) equals this; needs SECURE_MODEL_SIGSTORE_ISSUER");
    /// `SECURE_MODEL_SIGSTORE_IDENTITY_REGEX`.
    SIGSTORE_IDENTITY_REGEX: Text = s("SECURE_MODEL_SIGSTORE_IDENTITY_REGEX", Some("--sigstore-identity-regex"), Text, "", Group::Trust, BOTH,
    "as SECURE_MODEL_SIGSTORE_IDENTITY, an anchored regular expression (RE2 syntax) instead of an exact value");
    /// `SECURE_MODEL_SIGSTORE_ISSUER`.
    SIGSTORE_ISSUER: Url = s("SECURE_MODEL_SIGSTORE_ISSUER", Some("--sigstore-issuer"), Url, "", Group::Trust, BOTH,
    "the OIDC issuer of the Sigstore identity, exact (e.g. https://accounts.google.com, https://token.actions.githubusercontent.com)");
    /// `SECURE_MODEL_SIGSTORE_TRUSTED_ROOT`.
    SIGSTORE_TRUSTED_ROOT: File = s("SECURE_MODEL_SIGSTORE_TRUSTED_ROOT", Some("--sigstore-trusted-root"), File, "", Group::Trust, BOTH,
    "a Sigstore trusted_root.json (or ClientTrustConfig) for a private Sigstore instance; default: the public-good root built into the binary");
    /// `SECURE_MODEL_KEYS`.
    KEYS: KeySpecs = s("SECURE_MODEL_KEYS", Some("--key"), KeySpecs, "", Group::Keys, BOTH,
    "key specifications to unlock with, e.g. local:/var/run/secrets/kek/kek.bin, aws-kms:alias/models, kbs:URL#repo/type/tag, cdh:repo/type/tag");
    /// `SECURE_MODEL_MANIFEST_DIGEST`.
    MANIFEST_DIGEST: Digests = s("SECURE_MODEL_MANIFEST_DIGEST",
    Some("--manifest-digest"),
    Digests,
    "",
    Group::Trust,
    BOTH,
    "manifest SHA-256 pins (anti-rollback), one per SRC DEST pair",);
    /// `SECURE_MODEL_ATTESTER`.
    ATTESTER: Attester = s("SECURE_MODEL_ATTESTER",
    Some("--attester"),
    Attester,
    "auto",
    Group::Kbs,
    BOTH,
    "TEE interface producing evidence for kbs: keys and `attest` (docs/attestation.md); the flag is `attest`'s only: pull, verify, doctor and the init container read the variable",);
    /// `SECURE_MODEL_KBS_CA`.
    KBS_CA: File = s("SECURE_MODEL_KBS_CA",
    None,
    File,
    "",
    Group::Kbs,
    BOTH,
    "PEM bundle trusted instead of the system roots for the KBS",);
    /// `SECURE_MODEL_KBS_TEE_KEY`.
    KBS_TEE_KEY: Choice = s("SECURE_MODEL_KBS_TEE_KEY",
    None,
    Choice(&["ec", "rsa"]),
    "ec",
    Group::Kbs,
    BOTH,
    "ephemeral TEE key of the KBS session: ec (P-256) or rsa (RSA-2048)",);
    /// `SECURE_MODEL_KBS_TOKEN_FILE`.
    KBS_TOKEN_FILE: File = s("SECURE_MODEL_KBS_TOKEN_FILE",
    None,
    File,
    "",
    Group::Kbs,
    BOTH,
    "passport mode: the pre-issued attestation token (with SECURE_MODEL_KBS_TEE_KEY_FILE)",);
    /// `SECURE_MODEL_KBS_TEE_KEY_FILE`.
    KBS_TEE_KEY_FILE: File = s("SECURE_MODEL_KBS_TEE_KEY_FILE",
    None,
    File,
    "",
    Group::Kbs,
    BOTH,
    "passport mode: the PKCS#8 PEM TEE private key the token was issued for",);
    /// `SECURE_MODEL_KBS_INITDATA`.
    KBS_INITDATA: File = s("SECURE_MODEL_KBS_INITDATA",
    None,
    File,
    "",
    Group::Kbs,
    BOTH,
    "a file with the pod's init-data TOML, sent as the attest request's init-data",);
    /// `SECURE_MODEL_KBS_TIMEOUT_SECS`.
    KBS_TIMEOUT: Seconds = s("SECURE_MODEL_KBS_TIMEOUT_SECS",
    None,
    Seconds { min: 1, max: 3_600 },
    "60",
    Group::Kbs,
    BOTH,
    "timeout of one KBS request (auth, attest, resource; connect included): a KBS that accepts connections but never answers fails after this; attestation with a remote verifier can take seconds, so keep it well above the usual attest time (doctor's probe waits at most 10 s)",);
    /// `CDH_ADDR`.
    CDH_ADDR: Url = s("CDH_ADDR",
    None,
    Url,
    "http://127.0.0.1:8006",
    Group::Kbs,
    BOTH,
    "the Confidential Data Hub's address",);
    /// `SECURE_MODEL_RANGE_MIB`.
    RANGE_MIB: Count = s("SECURE_MODEL_RANGE_MIB",
    Some("--range-segments"),
    TUNING,
    "8",
    Group::Transfer,
    BOTH,
    "ciphertext segments (1 MiB each) per ranged GET; the flag's alias is --range-mib",);
    /// `SECURE_MODEL_READ_AHEAD`.
    READ_AHEAD: Count = s("SECURE_MODEL_READ_AHEAD",
    Some("--read-ahead"),
    TUNING,
    "32",
    Group::Transfer,
    BOTH,
    "most ranged GETs in flight per file (a cap: the number in flight adapts to the store)",);
    /// `SECURE_MODEL_FILE_CONCURRENCY`.
    FILE_CONCURRENCY: Count = s("SECURE_MODEL_FILE_CONCURRENCY",
    Some("--file-concurrency"),
    TUNING,
    "4",
    Group::Transfer,
    BOTH,
    "most files fetched and decrypted concurrently (a cap, like --read-ahead)",);
    /// `SECURE_MODEL_BUFFER_MIB`.
    BUFFER_MIB: Count = s("SECURE_MODEL_BUFFER_MIB",
    Some("--buffer-mib"),
    Count { min: 2, max: 4096 },
    "16",
    Group::Transfer,
    BOTH,
    "memory for ciphertext in flight, MiB (pooled segment buffers; bounds the ranged GETs in flight)",);
    /// `SECURE_MODEL_CACHE_DIR`.
    CACHE_DIR: File = s("SECURE_MODEL_CACHE_DIR",
    Some("--cache"),
    File,
    "",
    Group::Transfer,
    BOTH,
    "a node-local directory of cached ciphertext objects (docs/cache.md): a pull reads an object there when its copy hashes to the signed digest, else reads the origin and adds it; corrupt copies are removed and refetched; a read-only directory is used for hits only",);
    /// `SECURE_MODEL_CACHE_MAX_BYTES`.
    CACHE_MAX_BYTES: Bytes = s("SECURE_MODEL_CACHE_MAX_BYTES",
    Some("--cache-max-bytes"),
    Bytes { min: 1, max: u64::MAX },
    "",
    Group::Transfer,
    BOTH,
    "with SECURE_MODEL_CACHE_DIR: after adding objects, evict the least recently used until the cache holds at most this many bytes",);
    /// `SECURE_MODEL_ADAPTIVE`.
    ADAPTIVE: Bool = s("SECURE_MODEL_ADAPTIVE",
    Some("--adaptive"),
    Bool,
    "true",
    Group::Transfer,
    BOTH,
    "adapt the ranged GETs in flight to the store (grow while throughput grows, halve on 429/503 and retries); false keeps them at the caps",);
    /// `SECURE_MODEL_RANGE_ATTEMPTS`.
    RANGE_ATTEMPTS: Count = s("SECURE_MODEL_RANGE_ATTEMPTS",
    None,
    TUNING,
    "4",
    Group::Transfer,
    BOTH,
    "attempts per ranged GET on transient failures (after the client's own retries)",);
    /// `SECURE_MODEL_STORAGE_TIMEOUT_SECS`.
    STORAGE_TIMEOUT: Seconds = s("SECURE_MODEL_STORAGE_TIMEOUT_SECS",
    None,
    Seconds {
        min: 1,
        max: 86_400,
    },
    "60",
    Group::Storage,
    BOTH,
    "total timeout of one storage request, body included (a ranged GET is a few MiB)",);
    /// `SECURE_MODEL_STORAGE_CONNECT_TIMEOUT_SECS`.
    STORAGE_CONNECT_TIMEOUT: Seconds = s("SECURE_MODEL_STORAGE_CONNECT_TIMEOUT_SECS",
    None,
    Seconds { min: 1, max: 3_600 },
    "5",
    Group::Storage,
    BOTH,
    "connect timeout of the storage clients",);
    /// `SECURE_MODEL_STORAGE_FIRST_BYTE_TIMEOUT_SECS`.
    STORAGE_FIRST_BYTE_TIMEOUT: Seconds = s("SECURE_MODEL_STORAGE_FIRST_BYTE_TIMEOUT_SECS",
    None,
    Seconds { min: 1, max: 3_600 },
    "10",
    Group::Storage,
    BOTH,
    "longest wait for a storage response to start (retries included): a store that accepts connections but never answers fails in seconds; progress is logged every 5 s while waiting",);
    /// `SECURE_MODEL_STORAGE_STALL_TIMEOUT_SECS`.
    STORAGE_STALL_TIMEOUT: Seconds = s("SECURE_MODEL_STORAGE_STALL_TIMEOUT_SECS",
    None,
    Seconds { min: 1, max: 3_600 },
    "5",
    Group::Storage,
    BOTH,
    "longest pause inside a response body: a body that stops is resumed once from the first byte not received; a second stall (or no answer to the resumed request within the first-byte timeout) fails the pull",);
    /// `SECURE_MODEL_STORAGE_MAX_RETRIES`.
    STORAGE_MAX_RETRIES: Count = s("SECURE_MODEL_STORAGE_MAX_RETRIES",
    None,
    Count { min: 0, max: 100 },
    "6",
    Group::Storage,
    BOTH,
    "retries of one storage request on transient failures (429, 5xx, resets)",);
    /// `SECURE_MODEL_STORAGE_RETRY_TIMEOUT_SECS`.
    STORAGE_RETRY_TIMEOUT: Seconds = s("SECURE_MODEL_STORAGE_RETRY_TIMEOUT_SECS",
    None,
    Seconds {
        min: 1,
        max: 86_400,
    },
    "120",
    Group::Storage,
    BOTH,
    "longest time spent retrying one storage request",);
    /// `SECURE_MODEL_CA_BUNDLE`.
    CA_BUNDLE: File = s("SECURE_MODEL_CA_BUNDLE",
    None,
    File,
    "",
    Group::Storage,
    BOTH,
    "PEM bundle of extra trusted CAs for every storage backend",);
    /// `SECURE_MODEL_ALLOW_DISK_PLAINTEXT`.
    ALLOW_DISK_PLAINTEXT: Bool = s("SECURE_MODEL_ALLOW_DISK_PLAINTEXT",
    Some("--allow-disk-plaintext"),
    Bool,
    "false",
    Group::Danger,
    BOTH,
    "allow a destination that is not tmpfs/ramfs (unsafe in Kata pods: shared with the host)",);
    /// `SECURE_MODEL_ALLOW_SAMPLE_ATTESTER`.
    ALLOW_SAMPLE_ATTESTER: Bool = s("SECURE_MODEL_ALLOW_SAMPLE_ATTESTER",
    Some("--allow-sample"),
    Bool,
    "false",
    Group::Danger,
    BOTH,
    "allow the sample attester (no TEE; development only), with SECURE_MODEL_ATTESTER=sample; the flag is `attest`'s only: pull, verify, doctor and the init container read the variable",);
    /// `SECURE_MODEL_ALLOW_HTTP`.
    ALLOW_HTTP: Bool = s("SECURE_MODEL_ALLOW_HTTP",
    None,
    Bool,
    "false",
    Group::Danger,
    BOTH,
    "allow plain http:// to object stores and package mirrors (tests, emulators, air gaps): needed for http:// GCS and Azure endpoints and http:// mirrors; integrity still holds, but the store can be read and impersonated on the wire and credentials sent to it cross in clear",);
    /// `SECURE_MODEL_KBS_ALLOW_HTTP`.
    KBS_ALLOW_HTTP: Bool = s("SECURE_MODEL_KBS_ALLOW_HTTP",
    None,
    Bool,
    "false",
    Group::Danger,
    BOTH,
    "allow a plain http:// KBS (tests and loopback only)",);
    /// `CONFIDENTIAL_ENABLED`.
    CONFIDENTIAL_ENABLED: Bool = s("CONFIDENTIAL_ENABLED", None, Bool, "false", Group::Confidential, INITC,
    "KServe's confidential mode: the key of CONFIDENTIAL_RESOURCE_ID unlocks packages and KServe JWE files");
    /// `CONFIDENTIAL_RESOURCE_ID`.
    CONFIDENTIAL_RESOURCE_ID: Resource = s("CONFIDENTIAL_RESOURCE_ID",
    None,
    Resource,
    "",
    Group::Confidential,
    INITC,
    "the key's KBS resource, kbs:///<repo>/<type>/<tag> (required in confidential mode)",);
    /// `SECURE_MODEL_KBS_URL`.
    KBS_URL: Url = s("SECURE_MODEL_KBS_URL",
    None,
    Url,
    "",
    Group::Confidential,
    INITC,
    "confidential mode: fetch the key directly from this KBS instead of through the CDH",);
    /// `SECURE_MODEL_ALLOW_MIXED_JWE`.
    ALLOW_MIXED_JWE: Bool = s("SECURE_MODEL_ALLOW_MIXED_JWE",
    None,
    Bool,
    "false",
    Group::Confidential,
    INITC,
    "confidential mode: accept unencrypted files next to JWE files",);
    /// `SECURE_MODEL_JWE_MAX_BYTES`.
    JWE_MAX_BYTES: Bytes = s("SECURE_MODEL_JWE_MAX_BYTES",
    None,
    Bytes {
        min: 1,
        max: 1 << 40,
    },
    "4294967296",
    Group::Confidential,
    INITC,
    "confidential mode: largest JWE file decrypted in memory",);
    /// `VERIFICATION_DIGEST`.
    VERIFICATION_DIGEST: Digest = s("VERIFICATION_DIGEST",
    None,
    Digest,
    "",
    Group::Confidential,
    INITC,
    "confidential mode: SHA-256 of the single downloaded file (or of the package manifest)",);
    /// `SECURE_MODEL_LOG`.
    LOG: Text = s("SECURE_MODEL_LOG", Some("--log"), Text, "", Group::Output, ALL,
    "log filter (tracing syntax, e.g. info or secure_model_core=debug; default warn for the CLI, info for the init container and the webhook); logs go to stderr");
    /// `SECURE_MODEL_TERMINATION_LOG`.
    TERMINATION_LOG: File = s("SECURE_MODEL_TERMINATION_LOG",
    None,
    File,
    "/dev/termination-log",
    Group::Output,
    INITC,
    "where the one-line failure reason is written (KServe shows it)",);
    /// `NO_COLOR`.
    NO_COLOR: Text = s("NO_COLOR", None, Text, "", Group::Output, BOTH,
    "any non-empty value turns colour off in logs (colour is used only on a terminal anyway); see no-color.org");
    /// `SECURE_MODEL_SIGNING_KEY`.
    SIGNING_KEY: File = s("SECURE_MODEL_SIGNING_KEY",
    Some("--signing-key"),
    File,
    "",
    Group::Publish,
    CLI,
    "PKCS#8 PEM ECDSA private key that signs the manifest (pack): P-256, or P-256/P-384 with SECURE_MODEL_SIGNING_CERTIFICATE",);
    /// `SECURE_MODEL_SIGNING_CERTIFICATE`.
    SIGNING_CERTIFICATE: File = s("SECURE_MODEL_SIGNING_CERTIFICATE", Some("--signing-certificate"), File, "", Group::Publish, CLI,
    "the signing key's leaf certificate (PEM): pack signs with the certificate chain instead of a bare key (model_signing sign certificate form)");
    /// `SECURE_MODEL_CERTIFICATE_CHAIN`.
    CERTIFICATE_CHAIN: Files = s("SECURE_MODEL_CERTIFICATE_CHAIN", Some("--certificate-chain"), Files, "", Group::Publish, CLI,
    "PEM files of the intermediate CA certificates written into the bundle after the leaf (comma-separated; the flag repeats)");
    /// `SECURE_MODEL_WEBHOOK_LISTEN`.
    WEBHOOK_LISTEN: SocketAddr = s("SECURE_MODEL_WEBHOOK_LISTEN",
    Some("--listen"),
    SocketAddr,
    "0.0.0.0:8443",
    Group::Webhook,
    WEBHOOK,
    "address the webhook's HTTPS server listens on",);
    /// `SECURE_MODEL_WEBHOOK_TLS_CERT`.
    WEBHOOK_TLS_CERT: File = s("SECURE_MODEL_WEBHOOK_TLS_CERT",
    Some("--tls-cert"),
    File,
    "/etc/secure-model-webhook/tls/tls.crt",
    Group::Webhook,
    WEBHOOK,
    "PEM certificate chain of the webhook's server certificate (reloaded when it changes)",);
    /// `SECURE_MODEL_WEBHOOK_TLS_KEY`.
    WEBHOOK_TLS_KEY: File = s("SECURE_MODEL_WEBHOOK_TLS_KEY",
    Some("--tls-key"),
    File,
    "/etc/secure-model-webhook/tls/tls.key",
    Group::Webhook,
    WEBHOOK,
    "PEM private key (PKCS#8, SEC1 or PKCS#1) of the server certificate (reloaded with it)",);
    /// `SECURE_MODEL_WEBHOOK_PROFILES`.
    WEBHOOK_PROFILES: File = s("SECURE_MODEL_WEBHOOK_PROFILES",
    Some("--profiles"),
    File,
    "/etc/secure-model-webhook/profiles/profiles.yaml",
    Group::Webhook,
    WEBHOOK,
    "the injection profiles file (YAML; docs/webhook.md); the server reloads it when it changes",);
    /// `SECURE_MODEL_WEBHOOK_RELOAD_SECS`.
    WEBHOOK_RELOAD_SECS: Seconds = s("SECURE_MODEL_WEBHOOK_RELOAD_SECS",
    None,
    Seconds { min: 1, max: 3_600 },
    "5",
    Group::Webhook,
    WEBHOOK,
    "how often the certificate, key and profiles files are checked for changes",);
    /// `SECURE_MODEL_WEBHOOK_MAX_BODY`.
    WEBHOOK_MAX_BODY: Bytes = s("SECURE_MODEL_WEBHOOK_MAX_BODY",
    None,
    Bytes {
        min: 4_096,
        max: 64 << 20,
    },
    "4194304",
    Group::Webhook,
    WEBHOOK,
    "largest AdmissionReview body accepted (413 beyond)",);
    /// `SECURE_MODEL_WEBHOOK_TIMEOUT_SECS`.
    WEBHOOK_TIMEOUT_SECS: Seconds = s("SECURE_MODEL_WEBHOOK_TIMEOUT_SECS",
    None,
    Seconds { min: 1, max: 30 },
    "10",
    Group::Webhook,
    WEBHOOK,
    "time allowed for a TLS handshake, for reading a request's headers and body, and for answering",);
    /// `SECURE_MODEL_WEBHOOK_SHUTDOWN_SECS`.
    WEBHOOK_SHUTDOWN_SECS: Seconds = s("SECURE_MODEL_WEBHOOK_SHUTDOWN_SECS",
    None,
    Seconds { min: 1, max: 300 },
    "20",
    Group::Webhook,
    WEBHOOK,
    "on SIGTERM: /readyz fails at once, in-flight requests get this long to finish",);
    /// `AWS_ACCESS_KEY_ID`.
    AWS_ACCESS_KEY_ID: Credential = secret("AWS_ACCESS_KEY_ID", Group::S3, "S3 access key id (or web identity / IRSA, container or instance credentials)");
    /// `AWS_SECRET_ACCESS_KEY`.
    AWS_SECRET_ACCESS_KEY: Credential = secret("AWS_SECRET_ACCESS_KEY", Group::S3, "S3 secret access key");
    /// `AWS_SESSION_TOKEN`.
    AWS_SESSION_TOKEN: Credential = secret("AWS_SESSION_TOKEN", Group::S3, "S3 session token");
    /// `AWS_REGION`.
    AWS_REGION: Text = store("AWS_REGION", Text, Group::S3, "S3 region (default us-east-1)");
    /// `AWS_DEFAULT_REGION`.
    AWS_DEFAULT_REGION: Text = store("AWS_DEFAULT_REGION", Text, Group::S3, "S3 region when AWS_REGION is unset (KServe writes this one)");
    /// `AWS_ENDPOINT_URL_S3`.
    AWS_ENDPOINT_URL_S3: Endpoint = store("AWS_ENDPOINT_URL_S3", Endpoint, Group::S3, "S3 endpoint URL (wins over AWS_ENDPOINT_URL); http:// is accepted as KServe does and logged as the plain-http-storage relaxation");
    /// `AWS_ENDPOINT_URL`.
    AWS_ENDPOINT_URL: Endpoint = store("AWS_ENDPOINT_URL", Endpoint, Group::S3, "S3 (and KMS) endpoint URL; http:// is accepted as KServe does and logged as the plain-http-storage relaxation");
    /// `S3_ENDPOINT`.
    S3_ENDPOINT: Endpoint = store("S3_ENDPOINT", Endpoint, Group::S3, "KServe's S3 endpoint host[:port], with S3_USE_HTTPS");
    /// `S3_USE_HTTPS`.
    S3_USE_HTTPS: Bool = s("S3_USE_HTTPS", None, Bool, "true", Group::S3, BOTH, "KServe: whether S3_ENDPOINT speaks HTTPS; false is accepted as KServe does and logged as the plain-http-storage relaxation");
    /// `S3_VERIFY_SSL`.
    S3_VERIFY_SSL: Bool = s("S3_VERIFY_SSL", None, Bool, "true", Group::S3, BOTH, "KServe: false turns off TLS certificate verification for S3, accepted as KServe does and logged as the unverified-storage-tls relaxation");
    /// `S3_USER_VIRTUAL_BUCKET`.
    S3_USER_VIRTUAL_BUCKET: Bool = s("S3_USER_VIRTUAL_BUCKET", None, Bool, "false", Group::S3, BOTH, "KServe: virtual-hosted-style bucket addressing (default path-style)");
    /// `awsAnonymousCredential`.
    AWS_ANONYMOUS_CREDENTIAL: Bool = s("awsAnonymousCredential", None, Bool, "false", Group::S3, BOTH, "KServe: anonymous S3 access (requests are not signed)");
    /// `AWS_CA_BUNDLE`.
    AWS_CA_BUNDLE: File = store("AWS_CA_BUNDLE", File, Group::S3, "PEM bundle of CAs for S3 (instead of SECURE_MODEL_CA_BUNDLE)");
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`.
    AWS_WEB_IDENTITY_TOKEN_FILE: File = store("AWS_WEB_IDENTITY_TOKEN_FILE", File, Group::S3, "web identity (IRSA): the token file, with AWS_ROLE_ARN");
    /// `AWS_ROLE_ARN`.
    AWS_ROLE_ARN: Text = store("AWS_ROLE_ARN", Text, Group::S3, "web identity (IRSA): the role to assume");
    /// `AWS_ROLE_SESSION_NAME`.
    AWS_ROLE_SESSION_NAME: Text = store("AWS_ROLE_SESSION_NAME", Text, Group::S3, "web identity: the session name");
    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: Text = store("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", Text, Group::S3, "ECS task credentials endpoint path");
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    AWS_CONTAINER_CREDENTIALS_FULL_URI: Text = store("AWS_CONTAINER_CREDENTIALS_FULL_URI", Text, Group::S3, "container credentials endpoint (EKS Pod Identity), with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`.
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: File = store("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", File, Group::S3, "container credentials (EKS Pod Identity): the token file");
    /// `AWS_METADATA_ENDPOINT`.
    AWS_METADATA_ENDPOINT: Text = store("AWS_METADATA_ENDPOINT", Text, Group::S3, "instance metadata endpoint (default http://169.254.169.254)");
    /// `STORAGE_CONFIG`.
    STORAGE_CONFIG: Credential = secret("STORAGE_CONFIG", Group::S3, "KServe's storage-config secret entry (JSON); an s3 entry sets the S3 variables as KServe's initializer does");
    /// `STORAGE_OVERRIDE_CONFIG`.
    STORAGE_OVERRIDE_CONFIG: Credential = secret("STORAGE_OVERRIDE_CONFIG", Group::S3, "KServe: members overriding STORAGE_CONFIG");
    /// `GOOGLE_APPLICATION_CREDENTIALS`.
    GOOGLE_APPLICATION_CREDENTIALS: File = store("GOOGLE_APPLICATION_CREDENTIALS", File, Group::Gcs, "GCS service-account or authorized-user file (or workload identity)");
    /// `GOOGLE_SERVICE_ACCOUNT`.
    GOOGLE_SERVICE_ACCOUNT: File = store("GOOGLE_SERVICE_ACCOUNT", File, Group::Gcs, "GCS service-account JSON file");
    /// `GOOGLE_SERVICE_ACCOUNT_KEY`.
    GOOGLE_SERVICE_ACCOUNT_KEY: Credential = secret("GOOGLE_SERVICE_ACCOUNT_KEY", Group::Gcs, "GCS service-account key as JSON text");
    /// `STORAGE_EMULATOR_HOST`.
    STORAGE_EMULATOR_HOST: Endpoint = store("STORAGE_EMULATOR_HOST", Endpoint, Group::Gcs, "GCS emulator host:port (http:// unless a scheme is given; anonymous unless credentials are set); plain HTTP needs SECURE_MODEL_ALLOW_HTTP");
    /// `GCS_ENDPOINT`.
    GCS_ENDPOINT: Endpoint = store("GCS_ENDPOINT", Endpoint, Group::Gcs, "GCS base URL when STORAGE_EMULATOR_HOST is unset; plain HTTP needs SECURE_MODEL_ALLOW_HTTP");
    /// `GCS_ANONYMOUS`.
    GCS_ANONYMOUS: Bool = s("GCS_ANONYMOUS", None, Bool, "false", Group::Gcs, BOTH, "anonymous GCS access (no bearer token)");
    /// `GCS_CA_BUNDLE`.
    GCS_CA_BUNDLE: File = store("GCS_CA_BUNDLE", File, Group::Gcs, "PEM bundle of CAs for GCS (instead of SECURE_MODEL_CA_BUNDLE)");
    /// `AZURE_STORAGE_ACCESS_KEY`.
    AZURE_STORAGE_ACCESS_KEY: Credential = secret("AZURE_STORAGE_ACCESS_KEY", Group::Azure, "Azure Blob shared key");
    /// `AZURE_STORAGE_SAS_TOKEN`.
    AZURE_STORAGE_SAS_TOKEN: Credential = secret("AZURE_STORAGE_SAS_TOKEN", Group::Azure, "Azure SAS token (query string, with or without the leading ?)");
    /// `AZURE_CLIENT_ID`.
    AZURE_CLIENT_ID: Text = store("AZURE_CLIENT_ID", Text, Group::Azure, "Azure client id (service principal or workload identity)");
    /// `AZ_CLIENT_ID`.
    AZ_CLIENT_ID: Text = store("AZ_CLIENT_ID", Text, Group::Azure, "KServe's older name of AZURE_CLIENT_ID");
    /// `AZURE_CLIENT_SECRET`.
    AZURE_CLIENT_SECRET: Credential = secret("AZURE_CLIENT_SECRET", Group::Azure, "Azure client secret (with AZURE_CLIENT_ID and AZURE_TENANT_ID)");
    /// `AZ_CLIENT_SECRET`.
    AZ_CLIENT_SECRET: Credential = secret("AZ_CLIENT_SECRET", Group::Azure, "KServe's older name of AZURE_CLIENT_SECRET");
    /// `AZURE_TENANT_ID`.
    AZURE_TENANT_ID: Text = store("AZURE_TENANT_ID", Text, Group::Azure, "Azure tenant id");
    /// `AZ_TENANT_ID`.
    AZ_TENANT_ID: Text = store("AZ_TENANT_ID", Text, Group::Azure, "KServe's older name of AZURE_TENANT_ID");
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    AZURE_FEDERATED_TOKEN_FILE: File = store("AZURE_FEDERATED_TOKEN_FILE", File, Group::Azure, "workload identity: the federated token file (with AZURE_CLIENT_ID and AZURE_TENANT_ID)");
    /// `AZURE_AUTHORITY_HOST`.
    AZURE_AUTHORITY_HOST: Text = store("AZURE_AUTHORITY_HOST", Text, Group::Azure, "Azure AD authority host (sovereign clouds)");
    /// `AZURE_STORAGE_ENDPOINT`.
    AZURE_STORAGE_ENDPOINT: Endpoint = store("AZURE_STORAGE_ENDPOINT", Endpoint, Group::Azure, "Azure Blob endpoint URL; plain HTTP needs SECURE_MODEL_ALLOW_HTTP");
    /// `AZURE_STORAGE_USE_EMULATOR`.
    AZURE_STORAGE_USE_EMULATOR: Bool = s("AZURE_STORAGE_USE_EMULATOR", None, Bool, "false", Group::Azure, BOTH, "use the Azurite emulator (at AZURITE_BLOB_STORAGE_URL); plain HTTP needs SECURE_MODEL_ALLOW_HTTP");
    /// `AZURITE_BLOB_STORAGE_URL`.
    AZURITE_BLOB_STORAGE_URL: Endpoint = s("AZURITE_BLOB_STORAGE_URL", None, Endpoint, "http://127.0.0.1:10000", Group::Azure, BOTH, "the Azurite emulator's blob URL");
    /// `AZURE_CA_BUNDLE`.
    AZURE_CA_BUNDLE: File = store("AZURE_CA_BUNDLE", File, Group::Azure, "PEM bundle of CAs for Azure Blob (instead of SECURE_MODEL_CA_BUNDLE)");
    /// `HTTPS_PROXY`.
    HTTPS_PROXY: Credential = net("HTTPS_PROXY", "proxy for HTTPS requests (also https_proxy); may carry credentials");
    /// `HTTP_PROXY`.
    HTTP_PROXY: Credential = net("HTTP_PROXY", "proxy for plain HTTP requests (also http_proxy)");
    /// `NO_PROXY`.
    NO_PROXY: Credential = net("NO_PROXY", "hosts that bypass the proxy (also no_proxy); list the CDH's 127.0.0.1");
}

/// The setting of `env`, if any.
pub fn by_env(env: &str) -> Option<&'static dyn AnySetting> {
    SETTINGS.iter().copied().find(|s| s.env() == env)
}

/// The setting of `flag` (`--read-ahead`), if any.
pub fn by_flag(flag: &str) -> Option<&'static dyn AnySetting> {
    SETTINGS.iter().copied().find(|s| s.flag() == Some(flag))
}

/// The setting variable closest to `name` (edit distance at most 3), for "did you mean"
/// messages.
pub fn closest_env(name: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .map(|s| (distance(name, s.env()), s.env()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_defaults_parse() {
        let mut envs = std::collections::BTreeSet::new();
        let mut flags = std::collections::BTreeSet::new();
        for s in SETTINGS {
            assert!(envs.insert(s.env()), "{} declared twice", s.env());
            if let Some(f) = s.flag() {
                assert!(flags.insert(f), "{f} declared twice");
            }
            if !s.default_text().is_empty() {
                assert!(
                    s.accepts(s.default_text()),
                    "{}: default {:?}",
                    s.env(),
                    s.default_text()
                );
            }
        }
        assert_eq!(by_env("SECURE_MODEL_KEYS").map(|s| s.env()), Some(KEYS.env));
        assert_eq!(
            by_flag("--read-ahead").map(|s| s.env()),
            Some(READ_AHEAD.env)
        );
        assert_eq!(closest_env("SECURE_MODEL_KEY"), Some("SECURE_MODEL_KEYS"));
    }
}
