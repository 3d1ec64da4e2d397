//! Storage settings: the variables of KServe and of each cloud SDK (declared in the registry)
//! turned into the core's typed per-backend configuration, once. This is the only place that
//! knows those names. It also decides the storage relaxations the configuration implies:
//!
//! - an `http://` S3 endpoint (`AWS_ENDPOINT_URL[_S3]`, `S3_ENDPOINT` with `S3_USE_HTTPS=false`)
//!   and `S3_VERIFY_SSL=false` are accepted as KServe accepts them (the user's explicit choice),
//!   mapped onto the plain-http-storage and unverified-storage-tls relaxations, which warn when
//!   they take effect;
//! - an `http://` GCS or Azure endpoint would carry a bearer token, shared key or SAS in clear
//!   text: refused unless `SECURE_MODEL_ALLOW_HTTP` opts in.
//!
//! Where each backend's credentials come from is worked out here too ([`Credentials`]), for the
//! doctor and for hints.

use secure_model_core::danger::{Relaxation, Relaxations};
use secure_model_core::storage::config::{AmazonS3ConfigKey, AzureConfigKey, GoogleConfigKey};
use secure_model_core::storage::{AzureConfig, GcsConfig, S3Config, StorageSettings, Tls};

use crate::registry::{self as r, Setting};
use crate::source::{SettingError, Source};
use crate::SettingsError;

/// Where one backend's credentials come from, in words (never their values).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// Found in the configuration: how.
    Configured(&'static str),
    /// None configured: what could still supply them at run time.
    Missing(&'static str),
}

/// Where each backend's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credentials {
    /// S3.
    pub s3: CredentialSource,
    /// GCS.
    pub gcs: CredentialSource,
    /// Azure Blob.
    pub azure: CredentialSource,
}

/// The storage configuration of a run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Storage {
    /// What the core's clients are built from (relaxations included).
    pub settings: StorageSettings,
    /// Where credentials come from.
    pub credentials: Credentials,
}

/// `src` with KServe's storage-config secret applied to its environment, as KServe's own
/// initializer applies it (each mapped member overwrites its variable).
fn with_storage_config(src: &Source) -> Result<Source, SettingsError> {
    let vars = secure_model_kserve::storage_config::variables(
        src.get(&r::STORAGE_CONFIG)?.as_deref(),
        src.get(&r::STORAGE_OVERRIDE_CONFIG)?.as_deref(),
    )?;
    Ok(vars
        .into_iter()
        .fold(src.clone(), |s, (name, value)| s.with_env_var(name, value)))
}

/// The storage configuration of `src`, with the relaxations `relax` already grants (those of
/// the operator's own settings) and those the storage variables imply.
///
/// # Errors
/// A malformed value naming its variable; an `http://` GCS or Azure endpoint without
/// `SECURE_MODEL_ALLOW_HTTP`; a malformed storage-config secret.
pub fn storage(src: &Source, relax: Relaxations) -> Result<Storage, SettingsError> {
    let src = &with_storage_config(src)?;
    let general = src.get(&r::CA_BUNDLE)?;
    let tls = |specific: &Setting<r::File>| -> Result<Tls, SettingError> {
        Ok(match src.get(specific)?.or_else(|| general.clone()) {
            Some(ca) => Tls::default().with_ca_bundle(ca),
            None => Tls::default(),
        })
    };
    let (s3, relax) = s3(src, tls(&r::AWS_CA_BUNDLE)?, relax)?;
    let explicit_http = src.flag_on(&r::ALLOW_HTTP)?;
    let gcs = gcs(src, tls(&r::GCS_CA_BUNDLE)?, explicit_http)?;
    let azure = azure(src, tls(&r::AZURE_CA_BUNDLE)?, explicit_http)?;
    let d = StorageSettings::default();
    let mut settings = StorageSettings::default()
        .with_s3(s3)
        .with_gcs(gcs)
        .with_azure(azure)
        .with_http(match general {
            Some(ca) => Tls::default().with_ca_bundle(ca),
            None => Tls::default(),
        })
        .with_timeout(src.get_or(&r::STORAGE_TIMEOUT, d.timeout)?)
        .with_retries(
            usize_of(src.get(&r::STORAGE_MAX_RETRIES)?, d.max_retries),
            src.get_or(&r::STORAGE_RETRY_TIMEOUT, d.retry_timeout)?,
        )
        .with_relaxations(relax);
    settings.connect_timeout = src.get_or(&r::STORAGE_CONNECT_TIMEOUT, d.connect_timeout)?;
    settings.first_byte_timeout =
        src.get_or(&r::STORAGE_FIRST_BYTE_TIMEOUT, d.first_byte_timeout)?;
    settings.stall_timeout = src.get_or(&r::STORAGE_STALL_TIMEOUT, d.stall_timeout)?;
    Ok(Storage {
        credentials: credentials(src, &settings)?,
        settings,
    })
}

/// The storage client settings of `src` alone, with the operator's relaxations (for tools and
/// tests that only open locations; a binary run resolves everything at once with
/// [`crate::Settings::from_source`]).
///
/// # Errors
/// As [`storage`].
pub fn storage_settings(src: &Source) -> Result<StorageSettings, SettingsError> {
    Ok(storage(src, crate::resolve::relaxations(src)?)?.settings)
}

fn usize_of(n: Option<u64>, fallback: usize) -> usize {
    n.and_then(|n| usize::try_from(n).ok()).unwrap_or(fallback)
}

fn invalid(src: &Source, setting: &dyn r::AnySetting, reason: &str) -> SettingError {
    SettingError::Conflict {
        reason: format!("{}: {reason}", src.name(setting)),
    }
}

/// `text` as a URL; a bare `host[:port]` gets `scheme`.
fn endpoint_url(
    src: &Source,
    setting: &Setting<r::Endpoint>,
    text: &str,
    scheme: &str,
) -> Result<url::Url, SettingError> {
    let full = if text.contains("://") {
        text.to_string()
    } else {
        format!("{scheme}://{text}")
    };
    url::Url::parse(&full)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| invalid(src, setting, "not a valid http(s) URL or host[:port]"))
}

/// The S3 endpoint (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, or KServe's `S3_ENDPOINT` with
/// `S3_USE_HTTPS`) and, for plain HTTP, what turned it on.
fn s3_endpoint(src: &Source) -> Result<Option<(url::Url, &'static str)>, SettingError> {
    for (setting, origin) in [
        (
            &r::AWS_ENDPOINT_URL_S3,
            "AWS_ENDPOINT_URL_S3 (an http:// S3 endpoint, accepted as KServe does)",
        ),
        (
            &r::AWS_ENDPOINT_URL,
            "AWS_ENDPOINT_URL (an http:// S3 endpoint, accepted as KServe does)",
        ),
    ] {
        if let Some(t) = src.get(setting)? {
            return Ok(Some((endpoint_url(src, setting, &t, "https")?, origin)));
        }
    }
    let Some(host) = src.get(&r::S3_ENDPOINT)? else {
        return Ok(None);
    };
    let https = src.get_or(&r::S3_USE_HTTPS, true)?;
    let origin = if host.contains("://") {
        "S3_ENDPOINT (an http:// S3 endpoint, accepted as KServe does)"
    } else {
        "S3_USE_HTTPS=false (KServe's variable)"
    };
    let scheme = if https { "https" } else { "http" };
    Ok(Some((
        endpoint_url(src, &r::S3_ENDPOINT, &host, scheme)?,
        origin,
    )))
}

/// The S3 options each variable sets.
const S3_OPTIONS: [(&Setting<r::Credential>, AmazonS3ConfigKey); 3] = [
    (&r::AWS_ACCESS_KEY_ID, AmazonS3ConfigKey::AccessKeyId),
    (
        &r::AWS_SECRET_ACCESS_KEY,
        AmazonS3ConfigKey::SecretAccessKey,
    ),
    (&r::AWS_SESSION_TOKEN, AmazonS3ConfigKey::Token),
];
const S3_TEXT_OPTIONS: [(&Setting<r::Text>, AmazonS3ConfigKey); 5] = [
    (&r::AWS_ROLE_ARN, AmazonS3ConfigKey::RoleArn),
    (
        &r::AWS_ROLE_SESSION_NAME,
        AmazonS3ConfigKey::RoleSessionName,
    ),
    (
        &r::AWS_CONTAINER_CREDENTIALS_RELATIVE_URI,
        AmazonS3ConfigKey::ContainerCredentialsRelativeUri,
    ),
    (
        &r::AWS_CONTAINER_CREDENTIALS_FULL_URI,
        AmazonS3ConfigKey::ContainerCredentialsFullUri,
    ),
    (
        &r::AWS_METADATA_ENDPOINT,
        AmazonS3ConfigKey::MetadataEndpoint,
    ),
];
const S3_FILE_OPTIONS: [(&Setting<r::File>, AmazonS3ConfigKey); 2] = [
    (
        &r::AWS_WEB_IDENTITY_TOKEN_FILE,
        AmazonS3ConfigKey::WebIdentityTokenFile,
    ),
    (
        &r::AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
        AmazonS3ConfigKey::ContainerAuthorizationTokenFile,
    ),
];

fn s3(
    src: &Source,
    mut tls: Tls,
    mut relax: Relaxations,
) -> Result<(S3Config, Relaxations), SettingError> {
    let mut c = S3Config::default();
    for (setting, key) in S3_OPTIONS {
        if let Some(v) = src.get(setting)? {
            c = c.with(key, v);
        }
    }
    for (setting, key) in S3_TEXT_OPTIONS {
        if let Some(v) = src.get(setting)? {
            c = c.with(key, v);
        }
    }
    for (setting, key) in S3_FILE_OPTIONS {
        if let Some(v) = src.get(setting)? {
            c = c.with(key, v.display().to_string());
        }
    }
    if let Some(region) = src
        .get(&r::AWS_REGION)?
        .or(src.get(&r::AWS_DEFAULT_REGION)?)
    {
        c = c.with(AmazonS3ConfigKey::Region, region);
    }
    if let Some((url, origin)) = s3_endpoint(src)? {
        if url.scheme() == "http" {
            relax = relax.allow(Relaxation::PlainHttpStorage, origin);
        }
        c = c.with_endpoint(url);
    }
    if !src.get_or(&r::S3_VERIFY_SSL, true)? {
        tls = tls.skipping_verification();
        relax = relax.allow(
            Relaxation::UnverifiedStorageTls,
            "S3_VERIFY_SSL=false (KServe's variable)",
        );
    }
    let c = c
        .with_virtual_hosted_style(src.flag_on(&r::S3_USER_VIRTUAL_BUCKET)?)
        .with_anonymous(src.flag_on(&r::AWS_ANONYMOUS_CREDENTIAL)?)
        .with_tls(tls);
    Ok((c, relax))
}

/// Refuses a plain-HTTP endpoint of a backend whose credentials are bearer tokens, shared keys
/// or SAS tokens, unless `SECURE_MODEL_ALLOW_HTTP` opts in.
fn refuse_plain_http(
    src: &Source,
    setting: &dyn r::AnySetting,
    url: &url::Url,
    explicit: bool,
    what: &str,
) -> Result<(), SettingError> {
    if url.scheme() != "http" || explicit {
        return Ok(());
    }
    Err(SettingError::Conflict {
        reason: format!(
            "{} is plain http:// ({url}): {what} would cross in clear text; use https://, or for an emulator or test set {}=true",
            src.name(setting),
            src.name(&r::ALLOW_HTTP)
        ),
    })
}

fn gcs(src: &Source, tls: Tls, explicit_http: bool) -> Result<GcsConfig, SettingError> {
    let mut c = GcsConfig::default();
    let creds = src.get(&r::GOOGLE_APPLICATION_CREDENTIALS)?;
    if let Some(p) = &creds {
        c = c.with(
            GoogleConfigKey::ApplicationCredentials,
            p.display().to_string(),
        );
    }
    if let Some(p) = src.get(&r::GOOGLE_SERVICE_ACCOUNT)? {
        c = c.with(GoogleConfigKey::ServiceAccount, p.display().to_string());
    }
    if let Some(k) = src.get(&r::GOOGLE_SERVICE_ACCOUNT_KEY)? {
        c = c.with(GoogleConfigKey::ServiceAccountKey, k);
    }
    // STORAGE_EMULATOR_HOST is the variable Google's own client libraries use for emulators.
    let emulator = src.get(&r::STORAGE_EMULATOR_HOST)?;
    let base = match (&emulator, src.get(&r::GCS_ENDPOINT)?) {
        (Some(host), _) => Some((&r::STORAGE_EMULATOR_HOST, host.clone())),
        (None, Some(ep)) => Some((&r::GCS_ENDPOINT, ep)),
        (None, None) => None,
    };
    if let Some((setting, text)) = base {
        let url = endpoint_url(src, setting, &text, "http")?;
        refuse_plain_http(src, setting, &url, explicit_http, "the GCS bearer token")?;
        c = c.with_base_url(url);
    }
    let anonymous = src.flag_on(&r::GCS_ANONYMOUS)? || (emulator.is_some() && creds.is_none());
    Ok(c.with_anonymous(anonymous).with_tls(tls))
}

fn first_of<K: r::Kind + std::fmt::Debug>(
    src: &Source,
    settings: [&Setting<K>; 2],
) -> Result<Option<K::Value>, SettingError> {
    for s in settings {
        if let Some(v) = src.get(s)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn azure(src: &Source, tls: Tls, explicit_http: bool) -> Result<AzureConfig, SettingError> {
    let mut c = AzureConfig::default();
    if let Some(k) = src.get(&r::AZURE_STORAGE_ACCESS_KEY)? {
        c = c.with(AzureConfigKey::AccessKey, k);
    }
    if let Some(id) = first_of(src, [&r::AZURE_CLIENT_ID, &r::AZ_CLIENT_ID])? {
        c = c.with(AzureConfigKey::ClientId, id);
    }
    if let Some(secret) = first_of(src, [&r::AZURE_CLIENT_SECRET, &r::AZ_CLIENT_SECRET])? {
        c = c.with(AzureConfigKey::ClientSecret, secret);
    }
    if let Some(t) = first_of(src, [&r::AZURE_TENANT_ID, &r::AZ_TENANT_ID])? {
        c = c.with(AzureConfigKey::AuthorityId, t);
    }
    if let Some(sas) = src.get(&r::AZURE_STORAGE_SAS_TOKEN)? {
        c = c.with(AzureConfigKey::SasKey, sas.trim_start_matches('?'));
    }
    if let Some(p) = src.get(&r::AZURE_FEDERATED_TOKEN_FILE)? {
        c = c.with(AzureConfigKey::FederatedTokenFile, p.display().to_string());
    }
    if let Some(h) = src.get(&r::AZURE_AUTHORITY_HOST)? {
        c = c.with(AzureConfigKey::AuthorityHost, h);
    }
    let what = "the Azure shared key, SAS or bearer token";
    if let Some(ep) = src.get(&r::AZURE_STORAGE_ENDPOINT)? {
        let url = endpoint_url(src, &r::AZURE_STORAGE_ENDPOINT, &ep, "https")?;
        refuse_plain_http(src, &r::AZURE_STORAGE_ENDPOINT, &url, explicit_http, what)?;
        c = c.with_endpoint(url);
    } else if src.flag_on(&r::AZURE_STORAGE_USE_EMULATOR)? {
        let base = src.get_or(&r::AZURITE_BLOB_STORAGE_URL, String::new())?;
        let url = endpoint_url(src, &r::AZURITE_BLOB_STORAGE_URL, &base, "http")?;
        refuse_plain_http(
            src,
            &r::AZURE_STORAGE_USE_EMULATOR,
            &url,
            explicit_http,
            what,
        )?;
        c = c.with_emulator(url);
    }
    Ok(c.with_tls(tls))
}

/// Where each backend's credentials come from, by the settings that supply them (in the
/// precedence the clients apply).
fn credentials(src: &Source, s: &StorageSettings) -> Result<Credentials, SettingError> {
    let given = |setting: &dyn r::AnySetting| src.is_given(setting);
    let s3 = if s.s3.anonymous() {
        CredentialSource::Configured("anonymous (awsAnonymousCredential)")
    } else if given(&r::STORAGE_CONFIG) && s.s3.option(&AmazonS3ConfigKey::AccessKeyId).is_some() {
        CredentialSource::Configured("KServe's storage-config secret (STORAGE_CONFIG)")
    } else if given(&r::AWS_ACCESS_KEY_ID) && given(&r::AWS_SECRET_ACCESS_KEY) {
        CredentialSource::Configured("environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
    } else if given(&r::AWS_WEB_IDENTITY_TOKEN_FILE) && given(&r::AWS_ROLE_ARN) {
        CredentialSource::Configured(
            "web identity / IRSA (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)",
        )
    } else if given(&r::AWS_CONTAINER_CREDENTIALS_FULL_URI)
        || given(&r::AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)
    {
        CredentialSource::Configured("container credentials endpoint (EKS Pod Identity / ECS)")
    } else {
        CredentialSource::Missing("only the instance metadata service (IMDS) could supply them: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or STORAGE_CONFIG, IRSA, or awsAnonymousCredential=true for a public bucket)")
    };
    let gcs = if given(&r::GOOGLE_APPLICATION_CREDENTIALS) {
        CredentialSource::Configured("service-account file (GOOGLE_APPLICATION_CREDENTIALS)")
    } else if given(&r::GOOGLE_SERVICE_ACCOUNT) || given(&r::GOOGLE_SERVICE_ACCOUNT_KEY) {
        CredentialSource::Configured("service account (GOOGLE_SERVICE_ACCOUNT[_KEY])")
    } else if s.gcs.anonymous() {
        CredentialSource::Configured("anonymous (emulator or GCS_ANONYMOUS)")
    } else {
        CredentialSource::Missing("only workload identity (the metadata server) could supply them: set GOOGLE_APPLICATION_CREDENTIALS")
    };
    let azure = if given(&r::AZURE_STORAGE_ACCESS_KEY) {
        CredentialSource::Configured("shared key (AZURE_STORAGE_ACCESS_KEY)")
    } else if given(&r::AZURE_STORAGE_SAS_TOKEN) {
        CredentialSource::Configured("SAS token (AZURE_STORAGE_SAS_TOKEN)")
    } else if s.azure.option(&AzureConfigKey::ClientSecret).is_some() {
        CredentialSource::Configured(
            "client secret (AZURE_CLIENT_ID / AZURE_CLIENT_SECRET / AZURE_TENANT_ID)",
        )
    } else if given(&r::AZURE_FEDERATED_TOKEN_FILE) {
        CredentialSource::Configured("workload identity (AZURE_FEDERATED_TOKEN_FILE)")
    } else if s.azure.emulator().is_some() {
        CredentialSource::Configured("the Azurite emulator")
    } else {
        CredentialSource::Missing("only a managed identity could supply them: set AZURE_STORAGE_ACCESS_KEY, AZURE_STORAGE_SAS_TOKEN or a client secret")
    };
    Ok(Credentials { s3, gcs, azure })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Environment;

    fn storage_of(pairs: &[(&str, &str)]) -> Result<Storage, SettingsError> {
        storage(
            &Source::new(Environment::from_pairs(pairs.iter().copied())),
            Relaxations::NONE,
        )
    }

    #[test]
    fn kserve_s3_variables_map_onto_typed_options_and_the_gate() {
        let s = storage_of(&[
            ("S3_ENDPOINT", "minio:9000"),
            ("S3_USE_HTTPS", "0"),
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ])
        .unwrap();
        let s3 = &s.settings.s3;
        assert_eq!(s3.endpoint().unwrap().as_str(), "http://minio:9000/");
        assert_eq!(s3.option(&AmazonS3ConfigKey::Region), Some("eu-west-1"));
        assert_eq!(
            s.settings.relax.origin(Relaxation::PlainHttpStorage),
            Some("S3_USE_HTTPS=false (KServe's variable)")
        );
        let https = storage_of(&[("S3_ENDPOINT", "minio:9000")]).unwrap();
        assert_eq!(
            https.settings.s3.endpoint().unwrap().as_str(),
            "https://minio:9000/"
        );
        assert!(!https.settings.relax.plain_http_storage());
        let s = storage_of(&[
            ("S3_ENDPOINT", "minio:9000"),
            ("AWS_ENDPOINT_URL", "http://other:1/"),
            ("S3_VERIFY_SSL", "false"),
        ])
        .unwrap();
        assert_eq!(
            s.settings.s3.endpoint().unwrap().as_str(),
            "http://other:1/"
        );
        assert!(s.settings.s3.tls().skip_verify);
        assert!(s.settings.relax.unverified_storage_tls());
    }

    #[test]
    fn plain_http_gcs_and_azure_need_the_explicit_opt_in() {
        for pairs in [
            &[("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")][..],
            &[("AZURE_STORAGE_USE_EMULATOR", "true")][..],
            &[("AZURE_STORAGE_ENDPOINT", "http://azurite:10000/acct")][..],
        ] {
            let e = storage_of(pairs).unwrap_err().to_string();
            assert!(
                e.contains("SECURE_MODEL_ALLOW_HTTP") && e.contains("clear text"),
                "{e}"
            );
            let mut with = pairs.to_vec();
            with.push(("SECURE_MODEL_ALLOW_HTTP", "true"));
            storage_of(&with).unwrap();
        }
    }

    #[test]
    fn the_storage_secret_is_applied_and_never_echoed() {
        let s = storage_of(&[(
            "STORAGE_CONFIG",
            r#"{"type":"s3","access_key_id":"AK","secret_access_key":"SK"}"#,
        )])
        .unwrap();
        assert_eq!(
            s.settings.s3.option(&AmazonS3ConfigKey::AccessKeyId),
            Some("AK")
        );
        assert_eq!(
            s.credentials.s3,
            CredentialSource::Configured("KServe's storage-config secret (STORAGE_CONFIG)")
        );
        let e = storage_of(&[("STORAGE_CONFIG", "{s3cr3t")]).unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!(!format!("{:?}", s.settings).contains("SK"));
    }
}
