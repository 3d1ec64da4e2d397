//! The credentials snapshot a storage backend is configured from: variables with the names
//! KServe and the cloud SDKs use (`AWS_*`, `S3_*`, `GOOGLE_*`, `AZURE_*`...), captured by the
//! binary's settings layer (which also applies KServe's storage-config secret) and passed in.
//! The library never reads the process environment itself.

use std::collections::BTreeMap;

use super::StorageError;

/// A snapshot of configuration variables.
#[derive(Clone, Default)]
pub struct StorageEnv {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for StorageEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be credentials: show names only.
        f.debug_struct("StorageEnv")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl StorageEnv {
    /// A snapshot of `pairs`.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A variable, when set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean variable, by the one rule of [`crate::config::parse_bool`]; `None` when
    /// unset.
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] naming the variable for any other value.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, StorageError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                crate::config::parse_bool(v)
                    .map(Some)
                    .ok_or_else(|| StorageError::InvalidConfig {
                        name: name.into(),
                        reason: crate::config::BOOL_EXPECTED.into(),
                    })
            }
        }
    }

    /// Variables whose name starts with `prefix` (case-insensitive), for forwarding to a
    /// builder's own configuration keys.
    pub(crate) fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars.iter().filter_map(move |(k, v)| {
            let upper = k.to_ascii_uppercase();
            (upper.starts_with(prefix) && !v.is_empty()).then_some((k.as_str(), v.as_str()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_debug() {
        let env =
            StorageEnv::from_pairs([("A", "TRUE"), ("B", "0"), ("C", "maybe"), ("K", "s3cr3t")]);
        assert_eq!(env.flag("A").unwrap(), Some(true));
        assert_eq!(env.flag("B").unwrap(), Some(false));
        assert_eq!(env.flag("Z").unwrap(), None);
        assert!(env.flag("C").is_err());
        assert!(!format!("{env:?}").contains("s3cr3t"));
    }
}
