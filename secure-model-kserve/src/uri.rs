//! KServe `storageUri` forms of our packages. A ClusterStorageContainer claims URIs by prefix
//! or regex; ours are `secure+s3://`, `secure+gs://`, `secure+az://`, `secure+web://` (HTTPS)
//! and `secure+file://`. None contains `http`, so no entry of KServe's default
//! ClusterStorageContainer (whose regex `https?://(.+)/(.+)` is matched anywhere in the
//! string) can claim them. Each maps onto a plain location of the core.

use std::borrow::Cow;
use std::sync::Arc;

use secure_model_core::storage::{
    open_location, redact_uri, StorageBackend, StorageError, StorageSettings,
};

/// Our URI schemes and the plain scheme each maps to.
pub const SECURE_SCHEMES: &[(&str, &str)] = &[
    ("secure+s3://", "s3://"),
    ("secure+gs://", "gs://"),
    ("secure+az://", "az://"),
    ("secure+web://", "https://"),
    ("secure+file://", "file://"),
];

fn known() -> String {
    SECURE_SCHEMES
        .iter()
        .map(|(s, _)| *s)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The plain location of `uri`: a `secure+` URI mapped onto its store scheme, any other URI
/// unchanged.
///
/// # Errors
/// [`StorageError::InvalidLocation`] for an unknown `secure+` scheme.
pub fn to_location(uri: &str) -> Result<Cow<'_, str>, StorageError> {
    if !uri.starts_with("secure+") {
        return Ok(Cow::Borrowed(uri));
    }
    let (secure, plain) = SECURE_SCHEMES
        .iter()
        .find(|(s, _)| uri.starts_with(s))
        .ok_or_else(|| StorageError::InvalidLocation {
            uri: redact_uri(uri),
            reason: format!("unknown secure+ scheme (known: {})", known()),
        })?;
    let rest = uri.get(secure.len()..).unwrap_or("");
    Ok(Cow::Owned(format!("{plain}{rest}")))
}

/// Opens a KServe storage URI (or a plain location) with the core's [`open_location`];
/// messages name the URI as given.
///
/// # Errors
/// As [`open_location`].
pub fn open(
    uri: &str,
    create: bool,
    settings: &StorageSettings,
) -> Result<Arc<dyn StorageBackend>, StorageError> {
    let location = to_location(uri)?;
    open_location(&location, create, settings).map_err(|e| match e {
        StorageError::InvalidLocation { reason, .. } if location != uri => {
            StorageError::InvalidLocation {
                uri: redact_uri(uri),
                reason,
            }
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secure_model_core::storage::PackageLocation;

    fn parsed(uri: &str) -> PackageLocation {
        PackageLocation::parse(&to_location(uri).unwrap()).unwrap()
    }

    #[test]
    fn secure_schemes_map_onto_plain_locations() {
        assert_eq!(
            parsed("secure+s3://b/models/m1"),
            PackageLocation::parse("s3://b/models/m1").unwrap()
        );
        assert_eq!(
            parsed("secure+az://acct/c/p/q"),
            PackageLocation::parse("az://acct/c/p/q").unwrap()
        );
        assert!(matches!(
            parsed("secure+web://mirror.example:8443/m"),
            PackageLocation::Http { url } if url.as_str() == "https://mirror.example:8443/m"
        ));
        assert_eq!(
            parsed("secure+file:///mnt/pvc/m"),
            PackageLocation::Local("/mnt/pvc/m".into())
        );
        assert_eq!(to_location("s3://b/p").unwrap(), "s3://b/p");
    }

    #[test]
    fn unknown_and_bad_uris_are_named_without_credentials() {
        let e = to_location("secure+ftp://x/y").unwrap_err().to_string();
        assert!(
            e.contains("secure+ftp://x/y") && e.contains("secure+s3://"),
            "{e}"
        );
        let e = open("secure+s3://", false, &StorageSettings::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("secure+s3://") && e.contains("bucket"), "{e}");
        let e = open(
            "secure+web://u:p@host/x?sig=abc",
            false,
            &StorageSettings::default(),
        );
        if let Err(e) = e {
            let e = e.to_string();
            assert!(!e.contains(":p@") && !e.contains("sig=abc"), "{e}");
        }
    }
}
