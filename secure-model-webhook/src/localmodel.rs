//! KServe's LocalModelCache as it reaches a pod, read into a checked [`LocalModel`]: the
//! label and annotations KServe's InferenceService defaulter sets when a cache holds the
//! model, the PersistentVolumeClaim and the sub-directory of it the cached copy is in. Names
//! only: what the injection does with it is [`crate::mutation`]'s.
//!
//! Facts (KServe @ aaac4e29, docs/cache-kubernetes.md): the download Job writes
//! `sourceModelUri` into the PVC at `models/<storageKey>`, `storageKey` being the first 16
//! hex digits of SHA-256(`sourceModelUri`); KServe's pod mutator
//! (`storage_initializer_injector.go`, `InjectStorageInitializer`) turns the pod's storage URI
//! into `pvc://<pvc>/models/<storageKey><rest>`, `rest` being what the storage URI has beyond
//! `sourceModelUri`. For a `secure+` cache the copy is a ciphertext package
//! (`secure-model mirror`), read by our loader, never by the server.

use std::collections::BTreeMap;

use crate::annotations::{
    KSERVE_SOURCE_URI, LOCALMODEL_LABEL, LOCALMODEL_MOUNT_PATH, LOCALMODEL_PVC_NAME,
    LOCALMODEL_SOURCE_URI, SOURCE,
};
use crate::Refusal;

/// A LocalModelCache copy of the pod's package, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalModel {
    cache: String,
    pvc: String,
    sub_path: String,
}

impl LocalModel {
    /// The LocalModelCache's name (the label's value).
    pub fn cache(&self) -> &str {
        &self.cache
    }
    /// The PersistentVolumeClaim holding the copy.
    pub fn pvc(&self) -> &str {
        &self.pvc
    }
    /// The package's directory in the claim, relative (`models/<storageKey>[/<rest>]`).
    pub fn sub_path(&self) -> &str {
        &self.sub_path
    }
    /// The source our loader reads instead of the store: the claim's directory, mounted at
    /// [`LOCALMODEL_MOUNT_PATH`].
    pub fn source(&self) -> String {
        format!("secure+file://{LOCALMODEL_MOUNT_PATH}")
    }
}

/// KServe's `storageKey` of a LocalModelCache `sourceModelUri`: the first 16 hex digits of
/// its SHA-256.
pub fn storage_key(source_model_uri: &str) -> String {
    secure_model_core::crypto::sha256(source_model_uri.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `labels` and `annotations` carry a LocalModelCache whose `sourceModelUri` is a
/// `secure+` package (such a pod asks for the secure loader even without naming a source).
pub fn is_secure_cache(
    labels: Option<&serde_json::Map<String, serde_json::Value>>,
    annotations: Option<&serde_json::Map<String, serde_json::Value>>,
) -> bool {
    let has_label = labels.is_some_and(|l| l.contains_key(LOCALMODEL_LABEL));
    let secure = annotations
        .and_then(|a| a.get(LOCALMODEL_SOURCE_URI))
        .and_then(serde_json::Value::as_str)
        .is_some_and(|u| u.trim().starts_with("secure+"));
    has_label && secure
}

/// The LocalModelCache copy the pod with these labels and annotations is to read; `None`
/// when the pod carries no LocalModelCache label.
///
/// # Errors
/// [`Refusal::LocalModel`] when the markers are incomplete or do not describe a `secure+`
/// package under the pod's storage URI.
pub fn detect(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<Option<LocalModel>, Refusal> {
    let Some(cache) = labels.and_then(|l| l.get(LOCALMODEL_LABEL)) else {
        return Ok(None);
    };
    let get = |k: &str| annotations.and_then(|a| a.get(k)).map(|v| v.trim());
    let bad = |why: String| Refusal::LocalModel {
        cache: cache.chars().take(253).collect(),
        why,
    };
    let source = get(LOCALMODEL_SOURCE_URI)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(format!("the {LOCALMODEL_SOURCE_URI} annotation is missing")))?;
    if !source.starts_with("secure+") {
        return Err(bad(format!(
            "its sourceModelUri {:?} is no secure+ package: cache the package's secure+ URI, or set serving.kserve.io/disable-localmodel on the InferenceService",
            secure_model_core::storage::redact_uri(source)
        )));
    }
    let pvc = get(LOCALMODEL_PVC_NAME)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad(format!("the {LOCALMODEL_PVC_NAME} annotation is missing")))?;
    if pvc.len() > 253 || !pvc.split('.').all(crate::profile::is_dns_label) {
        return Err(bad(format!(
            "{LOCALMODEL_PVC_NAME} {pvc:?} is not a claim name"
        )));
    }
    // KServe strips the cache's URI off the storage URI; what is left is a directory in the
    // cached copy. An InferenceService pod names its storage URI in KServe's annotation; an
    // LLMInferenceService pod (its controller propagates the cache's label and annotations to
    // the pod template) in ours.
    let storage_uri = get(KSERVE_SOURCE_URI)
        .or_else(|| get(SOURCE))
        .unwrap_or(source);
    let rest = storage_uri.strip_prefix(source).ok_or_else(|| {
        bad(format!(
            "the storage URI is not under the cache's sourceModelUri {:?}",
            secure_model_core::storage::redact_uri(source)
        ))
    })?;
    let rest = rest.trim_matches('/');
    if !rest.is_empty()
        && rest
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.chars().any(char::is_control))
    {
        return Err(bad(format!(
            "the storage URI's path below the cache's, {rest:?}, is not a normal relative path"
        )));
    }
    let mut sub_path = format!("models/{}", storage_key(source));
    if !rest.is_empty() {
        sub_path.push('/');
        sub_path.push_str(rest);
    }
    Ok(Some(LocalModel {
        cache: cache.clone(),
        pvc: pvc.to_string(),
        sub_path,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_key_is_kserves() {
        // printf %s 'secure+s3://models/llama/v1' | sha256sum | cut -c1-16
        assert_eq!(
            storage_key("secure+s3://models/llama/v1"),
            "76a2f971db399a4b"
        );
        assert_eq!(storage_key(""), "e3b0c44298fc1c14");
    }
}
