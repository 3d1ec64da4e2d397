//! Value kinds: how a setting's text becomes its typed value. One parser per kind, used for the
//! environment variable, the command-line flag and the default alike, so a value means the same
//! wherever it comes from. A setting's kind is part of its type ([`crate::registry::Setting`]),
//! so reading a setting as another kind does not compile.

use std::path::PathBuf;
use std::time::Duration;

use secure_model_core::attest::AttesterChoice;
use secure_model_core::keys::ResourcePath;

/// A kind of value.
pub trait Kind: Copy + Send + Sync + 'static {
    /// The typed value.
    type Value: Clone + Send + Sync + 'static;

    /// Parses `text` (already trimmed). `Err` is what is accepted, for the message.
    ///
    /// # Errors
    /// [`Kind::expected`] when `text` is not a value of this kind.
    fn parse(&self, text: &str) -> Result<Self::Value, String>;

    /// What is accepted, for messages.
    fn expected(&self) -> String;

    /// What the value looks like, for the docs (`integer 1..=256`, `path`...).
    fn describe(&self) -> String;

    /// How a refused value is shown in messages (key specifications are redacted, see
    /// [`KeySpecs`]); `None` hides it.
    fn shown(&self, text: &str) -> Option<String> {
        Some(text.chars().take(128).collect())
    }
}

/// A kind whose values are comma-separated lists (a flag may repeat; each occurrence may hold
/// several items too).
pub trait ListKind: Kind<Value = Vec<<Self as ListKind>::Item>> {
    /// One item.
    type Item: Clone + Send + Sync + 'static;
    /// Parses one item.
    ///
    /// # Errors
    /// [`Kind::expected`].
    fn parse_item(&self, text: &str) -> Result<Self::Item, String>;
}

fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

macro_rules! list_parse {
    () => {
        fn parse(&self, text: &str) -> Result<Self::Value, String> {
            split(text).map(|t| self.parse_item(t)).collect()
        }
    };
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), case-insensitive.
#[derive(Debug, Clone, Copy)]
pub struct Bool;

impl Kind for Bool {
    type Value = bool;
    fn parse(&self, text: &str) -> Result<bool, String> {
        secure_model_core::config::parse_bool(text).ok_or_else(|| self.expected())
    }
    fn expected(&self) -> String {
        secure_model_core::config::BOOL_EXPECTED.into()
    }
    fn describe(&self) -> String {
        "bool".into()
    }
}

fn bounded(text: &str, min: u64, max: u64) -> Option<u64> {
    text.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
}

/// An integer in `min..=max`.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    /// Smallest value.
    pub min: u64,
    /// Largest value.
    pub max: u64,
}

impl Kind for Count {
    type Value = u64;
    fn parse(&self, text: &str) -> Result<u64, String> {
        bounded(text, self.min, self.max).ok_or_else(|| self.expected())
    }
    fn expected(&self) -> String {
        format!("expected an integer from {} to {}", self.min, self.max)
    }
    fn describe(&self) -> String {
        format!("integer {}..={}", self.min, self.max)
    }
}

/// Whole seconds in `min..=max`.
#[derive(Debug, Clone, Copy)]
pub struct Seconds {
    /// Smallest value.
    pub min: u64,
    /// Largest value.
    pub max: u64,
}

impl Kind for Seconds {
    type Value = Duration;
    fn parse(&self, text: &str) -> Result<Duration, String> {
        bounded(text, self.min, self.max)
            .map(Duration::from_secs)
            .ok_or_else(|| self.expected())
    }
    fn expected(&self) -> String {
        format!("expected whole seconds from {} to {}", self.min, self.max)
    }
    fn describe(&self) -> String {
        format!("seconds {}..={}", self.min, self.max)
    }
}

/// A byte count in `min..=max`.
#[derive(Debug, Clone, Copy)]
pub struct Bytes {
    /// Smallest value.
    pub min: u64,
    /// Largest value.
    pub max: u64,
}

impl Kind for Bytes {
    type Value = u64;
    fn parse(&self, text: &str) -> Result<u64, String> {
        bounded(text, self.min, self.max).ok_or_else(|| self.expected())
    }
    fn expected(&self) -> String {
        format!(
            "expected a number of bytes from {} to {}",
            self.min, self.max
        )
    }
    fn describe(&self) -> String {
        format!("bytes {}..={}", self.min, self.max)
    }
}

/// One of these words.
#[derive(Debug, Clone, Copy)]
pub struct Choice(pub &'static [&'static str]);

impl Kind for Choice {
    type Value = &'static str;
    fn parse(&self, text: &str) -> Result<&'static str, String> {
        self.0
            .iter()
            .find(|w| **w == text)
            .copied()
            .ok_or_else(|| self.expected())
    }
    fn expected(&self) -> String {
        format!("expected one of {}", self.0.join(", "))
    }
    fn describe(&self) -> String {
        self.0.join(" \\| ")
    }
}

/// A file path.
#[derive(Debug, Clone, Copy)]
pub struct File;

impl Kind for File {
    type Value = PathBuf;
    fn parse(&self, text: &str) -> Result<PathBuf, String> {
        Ok(PathBuf::from(text))
    }
    fn expected(&self) -> String {
        "expected a file path".into()
    }
    fn describe(&self) -> String {
        "path".into()
    }
}

/// Comma-separated file paths.
#[derive(Debug, Clone, Copy)]
pub struct Files;

impl Kind for Files {
    type Value = Vec<PathBuf>;
    list_parse!();
    fn expected(&self) -> String {
        "expected comma-separated file paths".into()
    }
    fn describe(&self) -> String {
        "paths, comma-separated".into()
    }
}

impl ListKind for Files {
    type Item = PathBuf;
    fn parse_item(&self, text: &str) -> Result<PathBuf, String> {
        File.parse(text)
    }
}

/// Comma-separated key specifications `TYPE:ARG`. Refused values are shown redacted: an
/// operator may paste a key where a specification belongs.
#[derive(Debug, Clone, Copy)]
pub struct KeySpecs;

impl Kind for KeySpecs {
    type Value = Vec<String>;
    list_parse!();
    fn expected(&self) -> String {
        "expected comma-separated key specifications TYPE:ARG, e.g. local:/keys/kek.bin".into()
    }
    fn describe(&self) -> String {
        "key specs, comma-separated".into()
    }
    fn shown(&self, text: &str) -> Option<String> {
        Some(
            split(text)
                .map(secure_model_core::keys::spec::shown_spec)
                .collect::<Vec<_>>()
                .join(","),
        )
    }
}

impl ListKind for KeySpecs {
    type Item = String;
    /// Every item is accepted here: a malformed specification is refused where providers are
    /// built (`secure_model_core::keys`), whose errors show it redacted. A refusal here would
    /// be a usage error, and clap echoes the refused value, which may be a pasted key.
    fn parse_item(&self, text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }
}

/// One SHA-256 digest: 64 hex characters, optionally prefixed `sha256:` (either case).
#[derive(Debug, Clone, Copy)]
pub struct Digest;

impl Kind for Digest {
    type Value = [u8; 32];
    fn parse(&self, text: &str) -> Result<[u8; 32], String> {
        secure_model_core::config::parse_digest_pin(&text.to_ascii_lowercase())
            .map_err(|_| self.expected())
    }
    fn expected(&self) -> String {
        "expected 64 hex characters (optionally prefixed sha256:)".into()
    }
    fn describe(&self) -> String {
        "sha256 hex".into()
    }
}

/// Comma-separated SHA-256 digests.
#[derive(Debug, Clone, Copy)]
pub struct Digests;

impl Kind for Digests {
    type Value = Vec<[u8; 32]>;
    list_parse!();
    fn expected(&self) -> String {
        "expected comma-separated 64-hex-character digests".into()
    }
    fn describe(&self) -> String {
        "sha256 hex, comma-separated".into()
    }
}

impl ListKind for Digests {
    type Item = [u8; 32];
    fn parse_item(&self, text: &str) -> Result<[u8; 32], String> {
        Digest.parse(text).map_err(|_| self.expected())
    }
}

/// An attester: `auto`, `sample`, `tsm[:DIR]`, `tdx`, `snp`, `cca`, `sev-guest[:DEVICE]`.
#[derive(Debug, Clone, Copy)]
pub struct Attester;

impl Kind for Attester {
    type Value = AttesterChoice;
    fn parse(&self, text: &str) -> Result<AttesterChoice, String> {
        AttesterChoice::parse(text).map_err(|_| self.expected())
    }
    fn expected(&self) -> String {
        "unknown attester; expected auto, sample, tsm, tdx, snp, cca, sev-guest, tsm:DIR or sev-guest:DEVICE".into()
    }
    fn describe(&self) -> String {
        "attester".into()
    }
}

/// A KBS resource `kbs:///<repo>/<type>/<tag>`.
#[derive(Debug, Clone, Copy)]
pub struct Resource;

impl Kind for Resource {
    type Value = ResourcePath;
    fn parse(&self, text: &str) -> Result<ResourcePath, String> {
        if !text.starts_with("kbs:///") {
            return Err(self.expected());
        }
        ResourcePath::parse(text).map_err(|_| self.expected())
    }
    fn expected(&self) -> String {
        "expected kbs:///<repo>/<type>/<tag>".into()
    }
    fn describe(&self) -> String {
        "kbs:///repo/type/tag".into()
    }
}

/// An `http(s)://` URL.
#[derive(Debug, Clone, Copy)]
pub struct Url;

impl Kind for Url {
    type Value = url::Url;
    fn parse(&self, text: &str) -> Result<url::Url, String> {
        url::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| self.expected())
    }
    fn expected(&self) -> String {
        "expected an http(s):// URL".into()
    }
    fn describe(&self) -> String {
        "URL".into()
    }
}

/// Text (PEM, log filters, identities).
#[derive(Debug, Clone, Copy)]
pub struct Text;

impl Kind for Text {
    type Value = String;
    fn parse(&self, text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }
    fn expected(&self) -> String {
        "any text".into()
    }
    fn describe(&self) -> String {
        "text".into()
    }
}

/// A socket address `IP:PORT` (`0.0.0.0:8443`, `[::]:8443`).
#[derive(Debug, Clone, Copy)]
pub struct SocketAddr;

impl Kind for SocketAddr {
    type Value = std::net::SocketAddr;
    fn parse(&self, text: &str) -> Result<std::net::SocketAddr, String> {
        text.parse().map_err(|_| self.expected())
    }
    fn expected(&self) -> String {
        "expected an address IP:PORT, e.g. 0.0.0.0:8443".into()
    }
    fn describe(&self) -> String {
        "IP:PORT".into()
    }
}

/// A credential or other value defined by a cloud SDK or KServe (a key, a token, a host):
/// passed on as text, never shown.
#[derive(Debug, Clone, Copy)]
pub struct Credential;

impl Kind for Credential {
    type Value = String;
    fn parse(&self, text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }
    fn expected(&self) -> String {
        "any text".into()
    }
    fn describe(&self) -> String {
        "as the SDK defines it".into()
    }
    fn shown(&self, _: &str) -> Option<String> {
        None
    }
}

/// A host, `host:port` or URL of a storage endpoint; `http://` only with the plain-HTTP
/// relaxation (checked where the endpoint is used).
#[derive(Debug, Clone, Copy)]
pub struct Endpoint;

impl Kind for Endpoint {
    type Value = String;
    fn parse(&self, text: &str) -> Result<String, String> {
        if text.contains(char::is_whitespace) {
            return Err(self.expected());
        }
        Ok(text.trim_end_matches('/').to_string())
    }
    fn expected(&self) -> String {
        "expected a host, host:port or http(s):// URL".into()
    }
    fn describe(&self) -> String {
        "host[:port] or URL".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parser_per_kind() {
        assert_eq!(Count { min: 1, max: 4 }.parse("4"), Ok(4));
        assert!(Count { min: 1, max: 4 }.parse("5").is_err());
        assert_eq!(
            Seconds { min: 1, max: 9 }.parse("3"),
            Ok(Duration::from_secs(3))
        );
        assert_eq!(Choice(&["ec", "rsa"]).parse("rsa"), Ok("rsa"));
        assert_eq!(
            Files.parse("a.pem, b.pem,,").unwrap(),
            [PathBuf::from("a.pem"), PathBuf::from("b.pem")]
        );
        assert!(Digest.parse(&format!("SHA256:{}", "AB".repeat(32))).is_ok());
        assert!(Url.parse("127.0.0.1:8006").is_err());
        assert!(KeySpecs.parse("local:/k").is_ok());
    }

    #[test]
    fn key_specs_are_shown_redacted() {
        let kek = "ab".repeat(32);
        let shown = KeySpecs.shown(&format!("local:/k,{kek}")).unwrap();
        assert!(
            !shown.contains(&kek) && shown.starts_with("local:/k,"),
            "{shown}"
        );
        assert_eq!(Credential.shown("s3cr3t"), None);
    }
}
