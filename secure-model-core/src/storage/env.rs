//! The environment a storage backend is configured from: a snapshot of variables, with
//! KServe's storage-config secret (`STORAGE_CONFIG` merged with `STORAGE_OVERRIDE_CONFIG`)
//! applied the way KServe's own initializer applies it. A snapshot (rather than reading the
//! process environment everywhere) keeps configuration testable and explicit.

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

/// `STORAGE_CONFIG` keys of an `s3` entry and the variables they set (KServe's mapping). The
/// spec's `bucket` is not read here: KServe's webhook writes it into the storage URI.
const S3_STORAGE_SPEC: &[(&str, &str)] = &[
    ("endpoint_url", "AWS_ENDPOINT_URL"),
    ("access_key_id", "AWS_ACCESS_KEY_ID"),
    ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
    ("region", "AWS_DEFAULT_REGION"),
    ("ca_bundle", "AWS_CA_BUNDLE"),
    ("verify_ssl", "S3_VERIFY_SSL"),
    ("anonymous", "awsAnonymousCredential"),
];

impl StorageEnv {
    /// The process environment, with KServe's storage spec applied.
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] when `STORAGE_CONFIG`/`STORAGE_OVERRIDE_CONFIG` is not a
    /// JSON object (the message never contains the value: it holds credentials).
    pub fn from_process() -> Result<Self, StorageError> {
        Self::from_pairs(std::env::vars())
    }

    /// Variables from `pairs`, with KServe's storage spec applied.
    ///
    /// # Errors
    /// As [`StorageEnv::from_process`].
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, StorageError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut env = Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        };
        env.apply_storage_spec()?;
        Ok(env)
    }

    /// A variable, when set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean variable the way KServe reads them (`true`/`1`/`yes` vs `false`/`0`/`no`,
    /// case-insensitive); `None` when unset.
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] naming the variable for any other value.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, StorageError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" => Ok(Some(true)),
                "false" | "0" | "no" | "off" => Ok(Some(false)),
                _ => Err(StorageError::InvalidConfig {
                    name: name.into(),
                    reason: "expected true/false/1/0".into(),
                }),
            },
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

    fn apply_storage_spec(&mut self) -> Result<(), StorageError> {
        let parse = |name: &str,
                     text: &str|
         -> Result<serde_json::Map<String, serde_json::Value>, StorageError> {
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(m)) => Ok(m),
                _ => Err(StorageError::InvalidConfig {
                    name: name.into(),
                    reason: "not a JSON object".into(),
                }),
            }
        };
        let mut spec = match self.get("STORAGE_CONFIG") {
            Some(t) => parse("STORAGE_CONFIG", t)?,
            None => serde_json::Map::new(),
        };
        if let Some(t) = self.get("STORAGE_OVERRIDE_CONFIG") {
            for (k, v) in parse("STORAGE_OVERRIDE_CONFIG", t)? {
                spec.insert(k, v);
            }
        }
        if spec.get("type").and_then(|t| t.as_str()) != Some("s3") {
            return Ok(());
        }
        for (key, var) in S3_STORAGE_SPEC {
            let Some(v) = spec.get(*key) else { continue };
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => {
                    return Err(StorageError::InvalidConfig {
                        name: format!("STORAGE_CONFIG.{key}"),
                        reason: "expected a string".into(),
                    })
                }
            };
            self.vars.insert((*var).to_string(), text);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_spec_sets_kserve_variables_and_override_wins() {
        let env = StorageEnv::from_pairs([
            (
                "STORAGE_CONFIG",
                r#"{"type":"s3","access_key_id":"AK","secret_access_key":"SK","endpoint_url":"http://minio:9000","region":"eu-west-1","verify_ssl":"0","anonymous":"False","bucket":"models"}"#,
            ),
            ("STORAGE_OVERRIDE_CONFIG", r#"{"region":"us-east-2"}"#),
            ("AWS_DEFAULT_REGION", "ignored"),
        ])
        .unwrap();
        assert_eq!(env.get("AWS_ACCESS_KEY_ID"), Some("AK"));
        assert_eq!(env.get("AWS_SECRET_ACCESS_KEY"), Some("SK"));
        assert_eq!(env.get("AWS_ENDPOINT_URL"), Some("http://minio:9000"));
        assert_eq!(env.get("AWS_DEFAULT_REGION"), Some("us-east-2"));
        assert_eq!(env.flag("S3_VERIFY_SSL").unwrap(), Some(false));
        assert_eq!(env.flag("awsAnonymousCredential").unwrap(), Some(false));
    }

    #[test]
    fn non_s3_spec_is_ignored_and_bad_json_is_named_without_its_value() {
        let env = StorageEnv::from_pairs([("STORAGE_CONFIG", r#"{"type":"hdfs"}"#)]).unwrap();
        assert_eq!(env.get("AWS_ACCESS_KEY_ID"), None);
        let err = StorageEnv::from_pairs([("STORAGE_CONFIG", "{secret-ish")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("STORAGE_CONFIG"), "{msg}");
        assert!(!msg.contains("secret-ish"), "{msg}");
    }

    #[test]
    fn flags_and_debug() {
        let env =
            StorageEnv::from_pairs([("A", "TRUE"), ("B", "0"), ("C", "maybe"), ("K", "s3cr3t")])
                .unwrap();
        assert_eq!(env.flag("A").unwrap(), Some(true));
        assert_eq!(env.flag("B").unwrap(), Some(false));
        assert_eq!(env.flag("Z").unwrap(), None);
        assert!(env.flag("C").is_err());
        assert!(!format!("{env:?}").contains("s3cr3t"));
    }
}
