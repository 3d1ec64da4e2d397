//! Typed configuration of each storage backend, in `object_store`'s own config-key enums
//! ([`AmazonS3ConfigKey`], [`GoogleConfigKey`], [`AzureConfigKey`]) plus the few things the
//! library decides itself: the endpoint (which the plain-HTTP gate inspects), addressing style,
//! anonymous access and TLS. The caller's settings layer builds these from wherever its
//! configuration lives; the library reads no environment and knows no variable name.
//!
//! Values may be credentials: `Debug` shows the keys set, never a value, and values are zeroed
//! when dropped.

use std::path::PathBuf;

pub use object_store::aws::AmazonS3ConfigKey;
pub use object_store::azure::AzureConfigKey;
pub use object_store::gcp::GoogleConfigKey;
use zeroize::Zeroizing;

/// TLS of one backend's client: an extra CA bundle, and whether to skip certificate
/// verification (refused unless the `unverified-storage-tls` relaxation is on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tls {
    /// PEM bundle of CAs trusted besides the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// Skip certificate verification (a relaxation; logged when it takes effect).
    pub skip_verify: bool,
}

impl Tls {
    /// Trusts the CAs of the PEM bundle at `path` too.
    #[must_use]
    pub fn with_ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }

    /// Asks to skip certificate verification (honoured only with the relaxation).
    #[must_use]
    pub fn skipping_verification(mut self) -> Self {
        self.skip_verify = true;
        self
    }
}

/// Options of one backend: `(key, value)` pairs in `object_store`'s enum.
struct Options<K>(Vec<(K, Zeroizing<String>)>);

impl<K> Default for Options<K> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: Clone> Clone for Options<K> {
    fn clone(&self) -> Self {
        Self(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Zeroizing::new(v.to_string())))
                .collect(),
        )
    }
}

impl<K: std::fmt::Debug> std::fmt::Debug for Options<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl<K: PartialEq> Options<K> {
    fn set(&mut self, key: K, value: String) {
        self.0.retain(|(k, _)| *k != key);
        self.0.push((key, Zeroizing::new(value)));
    }

    fn get(&self, key: &K) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn iter(&self) -> impl Iterator<Item = (&K, &str)> {
        self.0.iter().map(|(k, v)| (k, v.as_str()))
    }
}

/// S3 (AWS or any S3-compatible store).
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    options: Options<AmazonS3ConfigKey>,
    endpoint: Option<url::Url>,
    virtual_hosted: bool,
    anonymous: bool,
    tls: Tls,
}

impl S3Config {
    /// Sets an option (credentials, region, web identity...). The endpoint, the bucket and
    /// client options are not options here: [`S3Config::with_endpoint`], the location and
    /// [`Tls`] set them, and such keys given here are ignored.
    #[must_use]
    pub fn with(mut self, key: AmazonS3ConfigKey, value: impl Into<String>) -> Self {
        self.options.set(key, value.into());
        self
    }

    /// A custom endpoint (an S3-compatible store); `http://` needs the plain-HTTP relaxation.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: url::Url) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// Virtual-hosted-style addressing (the bucket in the host name).
    #[must_use]
    pub fn with_virtual_hosted_style(mut self, on: bool) -> Self {
        self.virtual_hosted = on;
        self
    }

    /// Anonymous access: requests are not signed.
    #[must_use]
    pub fn with_anonymous(mut self, on: bool) -> Self {
        self.anonymous = on;
        self
    }

    /// TLS of the client.
    #[must_use]
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// The value of an option, when set.
    pub fn option(&self, key: &AmazonS3ConfigKey) -> Option<&str> {
        self.options.get(key)
    }

    /// The custom endpoint.
    pub fn endpoint(&self) -> Option<&url::Url> {
        self.endpoint.as_ref()
    }

    /// Whether requests go unsigned.
    pub fn anonymous(&self) -> bool {
        self.anonymous
    }

    /// Whether addressing is virtual-hosted style.
    pub fn virtual_hosted(&self) -> bool {
        self.virtual_hosted
    }

    /// TLS of the client.
    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    pub(super) fn options(&self) -> impl Iterator<Item = (&AmazonS3ConfigKey, &str)> {
        self.options.iter().filter(|(k, _)| {
            !matches!(
                k,
                AmazonS3ConfigKey::Endpoint
                    | AmazonS3ConfigKey::Bucket
                    | AmazonS3ConfigKey::Client(_)
            )
        })
    }
}

/// Google Cloud Storage.
#[derive(Debug, Clone, Default)]
pub struct GcsConfig {
    options: Options<GoogleConfigKey>,
    base_url: Option<url::Url>,
    anonymous: bool,
    tls: Tls,
}

impl GcsConfig {
    /// Sets an option (service account file or key, application credentials...). The base URL,
    /// bucket and client options are set elsewhere and ignored here.
    #[must_use]
    pub fn with(mut self, key: GoogleConfigKey, value: impl Into<String>) -> Self {
        self.options.set(key, value.into());
        self
    }

    /// The service's base URL (an emulator); `http://` needs the plain-HTTP relaxation.
    #[must_use]
    pub fn with_base_url(mut self, url: url::Url) -> Self {
        self.base_url = Some(url);
        self
    }

    /// Anonymous access: requests carry no bearer token.
    #[must_use]
    pub fn with_anonymous(mut self, on: bool) -> Self {
        self.anonymous = on;
        self
    }

    /// TLS of the client.
    #[must_use]
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// The value of an option, when set.
    pub fn option(&self, key: &GoogleConfigKey) -> Option<&str> {
        self.options.get(key)
    }

    /// The base URL, when not Google's.
    pub fn base_url(&self) -> Option<&url::Url> {
        self.base_url.as_ref()
    }

    /// Whether requests are anonymous.
    pub fn anonymous(&self) -> bool {
        self.anonymous
    }

    /// TLS of the client.
    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    pub(super) fn options(&self) -> impl Iterator<Item = (&GoogleConfigKey, &str)> {
        self.options.iter().filter(|(k, _)| {
            !matches!(
                k,
                GoogleConfigKey::BaseUrl | GoogleConfigKey::Bucket | GoogleConfigKey::Client(_)
            )
        })
    }
}

/// Azure Blob Storage.
#[derive(Debug, Clone, Default)]
pub struct AzureConfig {
    options: Options<AzureConfigKey>,
    endpoint: Option<url::Url>,
    emulator: Option<url::Url>,
    tls: Tls,
}

impl AzureConfig {
    /// Sets an option (shared key, client secret, SAS, workload identity...). The endpoint,
    /// emulator, account, container and client options are set elsewhere and ignored here.
    #[must_use]
    pub fn with(mut self, key: AzureConfigKey, value: impl Into<String>) -> Self {
        self.options.set(key, value.into());
        self
    }

    /// The Blob endpoint URL (the account's, or a private one); `http://` needs the plain-HTTP
    /// relaxation.
    #[must_use]
    pub fn with_endpoint(mut self, url: url::Url) -> Self {
        self.endpoint = Some(url);
        self
    }

    /// The Azurite emulator at `base` (the account is appended to the path); `http://` needs
    /// the plain-HTTP relaxation.
    #[must_use]
    pub fn with_emulator(mut self, base: url::Url) -> Self {
        self.emulator = Some(base);
        self
    }

    /// TLS of the client.
    #[must_use]
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// The value of an option, when set.
    pub fn option(&self, key: &AzureConfigKey) -> Option<&str> {
        self.options.get(key)
    }

    /// The endpoint, when set.
    pub fn endpoint(&self) -> Option<&url::Url> {
        self.endpoint.as_ref()
    }

    /// The emulator's base URL, when set.
    pub fn emulator(&self) -> Option<&url::Url> {
        self.emulator.as_ref()
    }

    /// TLS of the client.
    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    pub(super) fn options(&self) -> impl Iterator<Item = (&AzureConfigKey, &str)> {
        self.options.iter().filter(|(k, _)| {
            !matches!(
                k,
                AzureConfigKey::Endpoint
                    | AzureConfigKey::UseEmulator
                    | AzureConfigKey::AccountName
                    | AzureConfigKey::ContainerName
                    | AzureConfigKey::Client(_)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_keys_never_values() {
        let s3 = S3Config::default()
            .with(AmazonS3ConfigKey::SecretAccessKey, "s3cr3t")
            .with(AmazonS3ConfigKey::SecretAccessKey, "s3cr3t-2");
        let shown = format!("{s3:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("SecretAccessKey"),
            "{shown}"
        );
        assert_eq!(
            s3.option(&AmazonS3ConfigKey::SecretAccessKey),
            Some("s3cr3t-2")
        );
        let az = AzureConfig::default().with(AzureConfigKey::SasKey, "sig=abc");
        assert!(!format!("{az:?}").contains("sig=abc"));
    }

    #[test]
    fn gate_relevant_keys_are_not_options() {
        let s3 = S3Config::default()
            .with(AmazonS3ConfigKey::Endpoint, "http://x")
            .with(
                AmazonS3ConfigKey::Client(object_store::ClientConfigKey::AllowHttp),
                "true",
            )
            .with(AmazonS3ConfigKey::Region, "eu-west-1");
        let keys: Vec<_> = s3.options().map(|(k, _)| *k).collect();
        assert_eq!(keys, [AmazonS3ConfigKey::Region]);
        assert!(s3.endpoint().is_none());
    }
}
