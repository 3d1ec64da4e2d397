//! Package locations: `file://` URIs and plain paths (object-store URIs come with the storage
//! backends feature work).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;

use super::{ObjectStoreBackend, StorageBackend, StorageError};

/// A parsed package location.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PackageLocation {
    /// A directory on a local (or mounted: PVC, NFS) filesystem.
    Local(PathBuf),
}

impl PackageLocation {
    /// Parses `file:///abs/path`, `file://localhost/abs/path` or a plain path.
    pub fn parse(uri: &str) -> Result<Self, StorageError> {
        let invalid = |reason: &str| StorageError::InvalidLocation {
            uri: uri.into(),
            reason: reason.into(),
        };
        if uri.is_empty() {
            return Err(invalid("empty"));
        }
        if let Some(rest) = uri.strip_prefix("file://") {
            let url = url::Url::parse(uri).map_err(|_| invalid("not a valid file:// URL"))?;
            if !matches!(url.host_str(), None | Some("") | Some("localhost")) {
                return Err(invalid("file:// URLs must not name a remote host"));
            }
            let _ = rest;
            let p = url
                .to_file_path()
                .map_err(|_| invalid("file:// URL is not an absolute local path"))?;
            return Ok(Self::Local(p));
        }
        if let Some((scheme, _)) = uri.split_once("://") {
            return Err(invalid(&format!(
                "unsupported scheme {scheme:?} (this build reads file:// URIs and local paths)"
            )));
        }
        Ok(Self::Local(PathBuf::from(uri)))
    }
}

fn absolute(p: &Path) -> Result<PathBuf, StorageError> {
    std::path::absolute(p).map_err(|e| StorageError::InvalidLocation {
        uri: p.display().to_string(),
        reason: format!("cannot make absolute: {e}"),
    })
}

/// Opens a package location for reading, or for writing when `create` is set (a local
/// directory is created).
pub fn open_location(uri: &str, create: bool) -> Result<Arc<dyn StorageBackend>, StorageError> {
    match PackageLocation::parse(uri)? {
        PackageLocation::Local(path) => {
            let path = absolute(&path)?;
            if create {
                std::fs::create_dir_all(&path).map_err(|e| StorageError::InvalidLocation {
                    uri: uri.into(),
                    reason: format!("cannot create directory: {e}"),
                })?;
            }
            let meta = std::fs::metadata(&path).map_err(|e| StorageError::InvalidLocation {
                uri: uri.into(),
                reason: format!("cannot open package directory: {e}"),
            })?;
            if !meta.is_dir() {
                return Err(StorageError::InvalidLocation {
                    uri: uri.into(),
                    reason: "not a directory".into(),
                });
            }
            let fs = LocalFileSystem::new_with_prefix(&path).map_err(|e| {
                StorageError::InvalidLocation {
                    uri: uri.into(),
                    reason: format!("cannot open package directory: {e}"),
                }
            })?;
            Ok(Arc::new(ObjectStoreBackend::new(
                Arc::new(fs),
                StorePath::default(),
                format!("file://{}", path.display()),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(
            PackageLocation::parse("/a/b").unwrap(),
            PackageLocation::Local("/a/b".into())
        );
        assert_eq!(
            PackageLocation::parse("rel/p").unwrap(),
            PackageLocation::Local("rel/p".into())
        );
        assert_eq!(
            PackageLocation::parse("file:///a/b").unwrap(),
            PackageLocation::Local("/a/b".into())
        );
        assert_eq!(
            PackageLocation::parse("file://localhost/a%20b").unwrap(),
            PackageLocation::Local("/a b".into())
        );
        assert!(PackageLocation::parse("file://evil.example/a").is_err());
        assert!(PackageLocation::parse("gopher://x/y").is_err());
        assert!(PackageLocation::parse("").is_err());
    }
}
