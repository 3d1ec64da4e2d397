//! KServe's storage-config secret: `STORAGE_CONFIG` (one entry of the `storage-config`
//! secret, JSON) merged with `STORAGE_OVERRIDE_CONFIG`, mapped onto the variables KServe's own
//! initializer sets for an `s3` entry. The settings layer applies them to its snapshot of the
//! environment before the storage configuration is built.

use secure_model_core::storage::StorageError;

/// `STORAGE_CONFIG` keys of an `s3` entry and the variables they set (KServe's mapping). The
/// spec's `bucket` is not read here: KServe's webhook writes it into the storage URI.
pub const S3_STORAGE_SPEC: &[(&str, &str)] = &[
    ("endpoint_url", "AWS_ENDPOINT_URL"),
    ("access_key_id", "AWS_ACCESS_KEY_ID"),
    ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
    ("region", "AWS_DEFAULT_REGION"),
    ("ca_bundle", "AWS_CA_BUNDLE"),
    ("verify_ssl", "S3_VERIFY_SSL"),
    ("anonymous", "awsAnonymousCredential"),
];

/// The variable holding the storage spec.
pub const STORAGE_CONFIG: &str = "STORAGE_CONFIG";
/// The variable whose members override the spec's.
pub const STORAGE_OVERRIDE_CONFIG: &str = "STORAGE_OVERRIDE_CONFIG";

fn object(
    name: &str,
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, StorageError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        // Never the value in the message: it holds credentials.
        _ => Err(StorageError::InvalidConfig {
            name: name.into(),
            reason: "not a JSON object".into(),
        }),
    }
}

/// The variables KServe's initializer sets from a storage spec: `storage_config` (the
/// `STORAGE_CONFIG` entry) with the members of `override_config` (`STORAGE_OVERRIDE_CONFIG`)
/// over it. Only a spec of `type` `s3` sets any; each mapped key gives its variable's value,
/// which overwrites the variable.
///
/// # Errors
/// [`StorageError::InvalidConfig`] naming the variable (never its value) when a spec is not
/// a JSON object or a mapped member is not a string, boolean or number.
pub fn variables(
    storage_config: Option<&str>,
    override_config: Option<&str>,
) -> Result<Vec<(&'static str, String)>, StorageError> {
    let mut spec = match storage_config.filter(|t| !t.trim().is_empty()) {
        Some(t) => object(STORAGE_CONFIG, t)?,
        None => serde_json::Map::new(),
    };
    if let Some(t) = override_config.filter(|t| !t.trim().is_empty()) {
        for (k, v) in object(STORAGE_OVERRIDE_CONFIG, t)? {
            spec.insert(k, v);
        }
    }
    if spec.get("type").and_then(|t| t.as_str()) != Some("s3") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (key, var) in S3_STORAGE_SPEC {
        let Some(v) = spec.get(*key) else { continue };
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Err(StorageError::InvalidConfig {
                    name: format!("{STORAGE_CONFIG}.{key}"),
                    reason: "expected a string".into(),
                })
            }
        };
        out.push((*var, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn applied(pairs: &[(&str, &str)]) -> Result<BTreeMap<String, String>, StorageError> {
        let mut vars: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let set = variables(
            vars.get(STORAGE_CONFIG).map(String::as_str),
            vars.get(STORAGE_OVERRIDE_CONFIG).map(String::as_str),
        )?;
        for (k, v) in set {
            vars.insert(k.to_string(), v);
        }
        Ok(vars)
    }

    #[test]
    fn storage_spec_sets_kserve_variables_and_override_wins() {
        let env = applied(&[
            (
                "STORAGE_CONFIG",
                r#"{"type":"s3","access_key_id":"AK","secret_access_key":"SK","endpoint_url":"http://minio:9000","region":"eu-west-1","verify_ssl":"0","anonymous":"False","bucket":"models"}"#,
            ),
            ("STORAGE_OVERRIDE_CONFIG", r#"{"region":"us-east-2"}"#),
            ("AWS_DEFAULT_REGION", "ignored"),
        ])
        .unwrap();
        let get = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(get("AWS_ACCESS_KEY_ID"), Some("AK"));
        assert_eq!(get("AWS_SECRET_ACCESS_KEY"), Some("SK"));
        assert_eq!(get("AWS_ENDPOINT_URL"), Some("http://minio:9000"));
        assert_eq!(get("AWS_DEFAULT_REGION"), Some("us-east-2"));
        assert_eq!(get("S3_VERIFY_SSL"), Some("0"));
        assert_eq!(get("awsAnonymousCredential"), Some("False"));
    }

    #[test]
    fn non_s3_spec_is_ignored_and_bad_json_is_named_without_its_value() {
        let env = applied(&[("STORAGE_CONFIG", r#"{"type":"hdfs"}"#)]).unwrap();
        assert_eq!(env.get("AWS_ACCESS_KEY_ID"), None);
        let err = applied(&[("STORAGE_CONFIG", "{secret-ish")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("STORAGE_CONFIG"), "{msg}");
        assert!(!msg.contains("secret-ish"), "{msg}");
        let err = applied(&[("STORAGE_CONFIG", r#"{"type":"s3","region":["x"]}"#)]).unwrap_err();
        assert!(err.to_string().contains("STORAGE_CONFIG.region"), "{err}");
    }
}
