//! What a pod asks for, read from its labels and annotations into a checked [`Ask`]: whether
//! it opted in, the package URI (a `secure+` form that parses as a package location), the
//! destination, the target containers and the profile. Parse, don't validate: the mutation
//! only ever sees an [`Ask`].

use serde_json::{Map, Value};

use crate::annotations::{
    CONTAINERS, DEFAULT_DESTINATION, DESTINATION, INJECT, KSERVE_SOURCE_URI, PROFILE, SIZE_LIMIT,
    SOURCE,
};
use crate::Refusal;

/// A checked request for injection. Only [`ask`] and [`ask_for`] make one, and its fields
/// cannot change after the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    source: String,
    destination: String,
    containers: Option<Vec<String>>,
    profile: Option<String>,
    size_limit: Option<String>,
}

impl Ask {
    /// The package, a `secure+` URI that maps onto a package location.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// An absolute, normal destination directory.
    pub fn destination(&self) -> &str {
        &self.destination
    }
    /// The containers that read the model (`None`: the default targets).
    pub fn containers(&self) -> Option<&[String]> {
        self.containers.as_deref()
    }
    /// The profile named (`None`: chosen by runtime class, else the default).
    pub fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
    }
    /// The model volume's `sizeLimit` asked for (a checked quantity).
    pub fn size_limit(&self) -> Option<&str> {
        self.size_limit.as_deref()
    }
    /// The same ask with `containers` as the targets (an LLMInferenceService's `main`).
    #[must_use]
    pub fn with_containers(mut self, containers: Option<Vec<String>>) -> Self {
        self.containers = containers;
        self
    }
}

/// How the pod reached the injection: on its own opt-in, or because its namespace opted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// Only a pod with `secure-model.io/inject: "true"` is injected.
    Pod,
    /// The namespace opted in: a pod that names a source is injected unless it says `"false"`.
    Namespace,
}

fn string<'a>(map: Option<&'a Map<String, Value>>, key: &str) -> Option<&'a str> {
    map?.get(key)?.as_str()
}

/// The opt-in value from the label, else the annotation.
fn opt_in(
    labels: Option<&Map<String, Value>>,
    annotations: Option<&Map<String, Value>>,
) -> Result<Option<bool>, Refusal> {
    match string(labels, INJECT).or_else(|| string(annotations, INJECT)) {
        None => Ok(None),
        Some(v) => match v.trim() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            other => Err(Refusal::BadOptIn {
                value: other.chars().take(64).collect(),
            }),
        },
    }
}

/// What the object with these labels and annotations asks for, in `scope`; `None` when it
/// does not ask for injection.
///
/// # Errors
/// A [`Refusal`] when it asks in a way that cannot be honoured (a malformed opt-in, source,
/// destination or container list).
pub fn ask(
    labels: Option<&Map<String, Value>>,
    annotations: Option<&Map<String, Value>>,
    scope: Scope,
) -> Result<Option<Ask>, Refusal> {
    // A KServe predictor pod names its package in KServe's own annotation (the
    // InferenceService's storageUri): an opted-in one need not repeat it.
    let source = string(annotations, SOURCE).or_else(|| string(annotations, KSERVE_SOURCE_URI));
    // A pod whose LocalModelCache holds a secure+ package cannot be served without the
    // loader: the cached copy is ciphertext.
    let secure_cache = crate::localmodel::is_secure_cache(labels, annotations);
    let wanted = match (opt_in(labels, annotations)?, scope) {
        (Some(v), _) => v,
        (None, _) if secure_cache => true,
        (None, Scope::Namespace) => source.is_some(),
        (None, Scope::Pod) => false,
    };
    if !wanted {
        return Ok(None);
    }
    let cache_source = annotations
        .and_then(|a| a.get(crate::annotations::LOCALMODEL_SOURCE_URI))
        .and_then(Value::as_str)
        .filter(|_| secure_cache);
    let source = source.or(cache_source).ok_or(Refusal::MissingSource)?;
    ask_for(source, annotations).map(Some)
}

/// The [`Ask`] for `source` with the other annotations in `annotations` (manual injection of
/// an LLMInferenceService takes its source from `spec.model.uri`).
///
/// # Errors
/// A [`Refusal`] for a malformed source, destination or container list.
pub fn ask_for(source: &str, annotations: Option<&Map<String, Value>>) -> Result<Ask, Refusal> {
    let source = check_source(source.trim())?;
    let destination =
        check_destination(string(annotations, DESTINATION).unwrap_or(DEFAULT_DESTINATION))?;
    let containers = string(annotations, CONTAINERS).map(|c| {
        c.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    });
    let profile = string(annotations, PROFILE)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from);
    let size_limit = string(annotations, SIZE_LIMIT)
        .map(|v| check_size_limit(v.trim()))
        .transpose()?;
    Ok(Ask {
        source,
        destination,
        containers: containers.filter(|c| !c.is_empty()),
        profile,
        size_limit,
    })
}

fn check_size_limit(value: &str) -> Result<String, Refusal> {
    if crate::profile::quantity_bytes(value).is_some() {
        Ok(value.to_string())
    } else {
        Err(Refusal::BadSizeLimit {
            value: value.chars().take(64).collect(),
            why: "not a Kubernetes quantity (e.g. 40Gi)".into(),
        })
    }
}

/// A `secure+` URI that maps onto a package location the init container can open.
///
/// # Errors
/// [`Refusal::BadSource`] saying what is wrong.
pub fn check_source(uri: &str) -> Result<String, Refusal> {
    use secure_model_core::storage::{redact_uri, PackageLocation};
    let bad = |reason: String| Refusal::BadSource {
        uri: redact_uri(uri),
        reason,
    };
    let forms = secure_model_kserve::uri::SECURE_SCHEMES
        .iter()
        .map(|(s, _)| *s)
        .collect::<Vec<_>>()
        .join(", ");
    if !secure_model_kserve::uri::SECURE_SCHEMES
        .iter()
        .any(|(s, _)| uri.starts_with(s))
    {
        return Err(bad(format!(
            "expected one of the secure+ forms ({forms}): publish the model with `secure-model pack` and name the package's secure+ URI"
        )));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains whitespace".into()));
    }
    let location = secure_model_kserve::uri::to_location(uri).map_err(|e| bad(e.to_string()))?;
    PackageLocation::parse(&location).map_err(|e| bad(e.to_string()))?;
    Ok(uri.to_string())
}

fn check_destination(path: &str) -> Result<String, Refusal> {
    let p = path.trim().trim_end_matches('/');
    let normal = p.starts_with('/')
        && !p.is_empty()
        && p.split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && !p.chars().any(char::is_control);
    if normal {
        Ok(p.to_string())
    } else {
        Err(Refusal::BadDestination {
            path: path.chars().take(256).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn opt_in_by_label_annotation_or_namespace() {
        let src = map(json!({SOURCE: "secure+s3://b/m"}));
        assert_eq!(ask(None, Some(&src), Scope::Pod).unwrap(), None);
        let a = ask(None, Some(&src), Scope::Namespace).unwrap().unwrap();
        assert_eq!(a.destination, "/mnt/models");
        let label = map(json!({INJECT: "true"}));
        assert!(ask(Some(&label), Some(&src), Scope::Pod).unwrap().is_some());
        let no = map(json!({INJECT: "false", SOURCE: "secure+s3://b/m"}));
        assert_eq!(ask(None, Some(&no), Scope::Namespace).unwrap(), None);
        let bad = map(json!({INJECT: "yes"}));
        assert!(matches!(
            ask(Some(&bad), Some(&src), Scope::Pod),
            Err(Refusal::BadOptIn { .. })
        ));
        assert_eq!(
            ask(Some(&label), None, Scope::Pod),
            Err(Refusal::MissingSource)
        );
    }

    #[test]
    fn sources_and_destinations_are_checked() {
        for ok in secure_model_kserve::csc::OUR_URI_FORMS {
            assert!(check_source(ok).is_ok(), "{ok}");
        }
        for bad in [
            "s3://b/m",
            "secure+s3://",
            "secure+ftp://x/y",
            "secure+s3://b/m x",
            "",
            "secure+web://",
        ] {
            assert!(
                matches!(check_source(bad), Err(Refusal::BadSource { .. })),
                "{bad}"
            );
        }
        let e = check_source("secure+web://u:p@host/x?sig=abc").err();
        if let Some(e) = e {
            assert!(!e.to_string().contains(":p@"), "{e}");
        }
        assert_eq!(check_destination("/mnt/models/").unwrap(), "/mnt/models");
        for bad in ["mnt", "/", "/a/../b", "/a//b", "", "/a/./b"] {
            assert!(check_destination(bad).is_err(), "{bad}");
        }
    }
}
