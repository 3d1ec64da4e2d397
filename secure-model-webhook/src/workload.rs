//! Manual injection (`secure-model-webhook inject -f`): where the pod specs of each kind of
//! object are (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, `List`, and
//! KServe's LLMInferenceService through `spec.template`, `spec.worker` and
//! `spec.prefill.{template,worker}`), and the injection of one YAML stream of documents. The
//! command itself is the opt-in: every object that names a source is injected unless it says
//! `secure-model.io/inject: "false"`. Pure: text in, text out.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::annotations::{CONTAINERS, INJECT, LLMISVC_MAIN_CONTAINER, SOURCE};
use crate::mutation::{self, Decision, InjectError, PodAt};
use crate::profile::Profiles;
use crate::request::{self, Scope};
use crate::Refusal;

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Injected with this profile.
    Injected {
        /// The profile applied.
        profile: String,
    },
    /// It already had a `storage-initializer`.
    AlreadyInjected,
    /// It names no source (or opted out).
    NotAsked,
    /// A kind without a pod template: passed through unchanged.
    Unsupported,
}

/// One object's outcome, for the report on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// `Kind/name`.
    pub object: String,
    /// What happened.
    pub outcome: Outcome,
}

/// Manual injection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManualError {
    /// A document is not YAML.
    #[error("document {index}: not valid YAML")]
    Yaml {
        /// 1-based document number.
        index: usize,
        /// The cause.
        #[source]
        source: serde_norway::Error,
    },
    /// An object asked for injection that must be refused, or could not be injected.
    #[error("document {index} ({object}): {source}")]
    Inject {
        /// 1-based document number.
        index: usize,
        /// `Kind/name`.
        object: String,
        /// Why.
        #[source]
        source: InjectError,
    },
    /// The computed patch does not apply (a defect: the operations are computed from the
    /// same document).
    #[error("document {index} ({object}): the injection patch does not apply")]
    Apply {
        /// 1-based document number.
        index: usize,
        /// `Kind/name`.
        object: String,
        /// The cause.
        #[source]
        source: json_patch::PatchError,
    },
    /// The result cannot be written as YAML.
    #[error("cannot write the injected YAML")]
    Write(#[source] serde_norway::Error),
}

/// Where a kind keeps its pod template, relative to the object (`None`: no pod template).
pub fn pod_template_of(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some(""),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => Some("/spec/template"),
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// The pod specs of an LLMInferenceService that serve the model (present ones only).
pub const LLMISVC_POD_SPECS: &[&str] = &[
    "/spec/template",
    "/spec/worker",
    "/spec/prefill/template",
    "/spec/prefill/worker",
];

fn object_name(doc: &Value) -> String {
    format!(
        "{}/{}",
        doc["kind"].as_str().unwrap_or("?"),
        doc.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
    )
}

/// The operations that inject one object (empty for an object not asking), and its outcome.
///
/// # Errors
/// [`InjectError`] when the object asks for injection and must be refused.
pub fn plan_object(
    doc: &Value,
    profiles: &Profiles,
) -> Result<(Vec<json_patch::PatchOperation>, Outcome), InjectError> {
    let kind = doc["kind"].as_str().unwrap_or("");
    if kind == "LLMInferenceService" {
        return plan_llmisvc(doc, profiles);
    }
    let Some(base) = pod_template_of(kind) else {
        return Ok((Vec::new(), Outcome::Unsupported));
    };
    let at = PodAt::template(base);
    let meta = at.metadata.as_ref().and_then(|m| doc.pointer(m.as_str()));
    let labels = meta.and_then(|m| m["labels"].as_object());
    let annotations = meta.and_then(|m| m["annotations"].as_object());
    let Some(ask) = request::ask(labels, annotations, Scope::Namespace)? else {
        return Ok((Vec::new(), Outcome::NotAsked));
    };
    match mutation::inject(doc, &at, &ask, profiles)? {
        Decision::Patch { ops, profile, .. } => Ok((ops, Outcome::Injected { profile })),
        _ => Ok((Vec::new(), Outcome::AlreadyInjected)),
    }
}

/// The annotations of an LLMInferenceService: its own, overridden by `spec.annotations` (the
/// ones KServe copies onto its pods).
fn llmisvc_annotations(doc: &Value) -> Map<String, Value> {
    let mut all = doc
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(spec) = doc.pointer("/spec/annotations").and_then(Value::as_object) {
        all.extend(spec.clone());
    }
    all
}

/// The `secure+` source an LLMInferenceService names (annotation, else `spec.model.uri`);
/// `None` when it names none or opts out.
fn llmisvc_source<'a>(doc: &'a Value, annotations: &'a Map<String, Value>) -> Option<&'a str> {
    let uri = doc.pointer("/spec/model/uri").and_then(Value::as_str);
    let source = annotations.get(SOURCE).and_then(Value::as_str).or(uri)?;
    let label = doc
        .pointer("/spec/labels")
        .and_then(|l| l.get(INJECT))
        .and_then(Value::as_str);
    let opted_out =
        annotations.get(INJECT).and_then(Value::as_str) == Some("false") || label == Some("false");
    (!opted_out && source.starts_with("secure+")).then_some(source)
}

fn plan_llmisvc(
    doc: &Value,
    profiles: &Profiles,
) -> Result<(Vec<json_patch::PatchOperation>, Outcome), InjectError> {
    let annotations = llmisvc_annotations(doc);
    let Some(source) = llmisvc_source(doc, &annotations) else {
        return Ok((Vec::new(), Outcome::NotAsked));
    };
    let ask = request::ask_for(source, Some(&annotations))?;
    if doc.pointer("/spec/template").is_none_or(Value::is_null) {
        return Err(Refusal::malformed(
            "an LLMInferenceService needs spec.template.containers (with the `main` container) for its init container",
        )
        .into());
    }
    let (mut ops, profile) =
        inject_llmisvc_specs(doc, &ask, profiles, annotations.contains_key(CONTAINERS))?;
    let Some(profile) = profile.filter(|_| !ops.is_empty()) else {
        return Ok((Vec::new(), Outcome::AlreadyInjected));
    };
    ops.push(disable_kserve_initializer(doc));
    Ok((ops, Outcome::Injected { profile }))
}

/// The operations for every pod spec of an LLMInferenceService that is not yet injected;
/// without a containers annotation the target is `main` where a spec has one.
fn inject_llmisvc_specs(
    doc: &Value,
    ask: &request::Ask,
    profiles: &Profiles,
    containers_named: bool,
) -> Result<(Vec<json_patch::PatchOperation>, Option<String>), InjectError> {
    let mut ops = Vec::new();
    let mut applied = None;
    for spec_at in LLMISVC_POD_SPECS {
        let Some(spec) = doc.pointer(spec_at).filter(|s| !s.is_null()) else {
            continue;
        };
        let mut ask = ask.clone();
        if !containers_named {
            let has_main = spec["containers"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["name"] == LLMISVC_MAIN_CONTAINER));
            ask = ask.with_containers(has_main.then(|| vec![LLMISVC_MAIN_CONTAINER.to_string()]));
        }
        if let Decision::Patch {
            ops: p, profile, ..
        } = mutation::inject(doc, &PodAt::bare(spec_at), &ask, profiles)?
        {
            ops.extend(p);
            applied = Some(profile);
        }
    }
    Ok((ops, applied))
}

/// `spec.storageInitializer.enabled: false`: KServe's own initializer would not accept a
/// `secure+` URI, and ours replaces it (kserve/kserve#5326).
fn disable_kserve_initializer(doc: &Value) -> json_patch::PatchOperation {
    use json_patch::jsonptr::PointerBuf;
    let (path, value) = match doc["spec"].get("storageInitializer") {
        Some(v) if v.is_object() => (
            PointerBuf::from_tokens(["spec", "storageInitializer", "enabled"]),
            Value::Bool(false),
        ),
        _ => (
            PointerBuf::from_tokens(["spec", "storageInitializer"]),
            serde_json::json!({ "enabled": false }),
        ),
    };
    json_patch::PatchOperation::Add(json_patch::AddOperation { path, value })
}

/// Injects one object in place (a `List`'s items one by one).
///
/// # Errors
/// As [`plan_object`], and [`ManualError::Apply`].
fn inject_value(
    doc: &mut Value,
    index: usize,
    profiles: &Profiles,
    reports: &mut Vec<Report>,
) -> Result<(), ManualError> {
    if doc["kind"] == "List" {
        if let Some(items) = doc.get_mut("items").and_then(Value::as_array_mut) {
            for item in items {
                inject_value(item, index, profiles, reports)?;
            }
        }
        return Ok(());
    }
    let object = object_name(doc);
    let (ops, outcome) = plan_object(doc, profiles).map_err(|source| ManualError::Inject {
        index,
        object: object.clone(),
        source,
    })?;
    json_patch::patch(doc, &ops).map_err(|source| ManualError::Apply {
        index,
        object: object.clone(),
        source,
    })?;
    reports.push(Report { object, outcome });
    Ok(())
}

/// Injects every object of a YAML stream (`---`-separated documents) and writes the result
/// as YAML, one document per input document, with a report per object.
///
/// # Errors
/// [`ManualError`] naming the document and object.
pub fn inject_yaml(text: &str, profiles: &Profiles) -> Result<(String, Vec<Report>), ManualError> {
    let mut out = String::new();
    let mut reports = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let mut doc =
            Value::deserialize(de).map_err(|source| ManualError::Yaml { index, source })?;
        if doc.is_null() {
            continue;
        }
        inject_value(&mut doc, index, profiles, &mut reports)?;
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(&serde_norway::to_string(&doc).map_err(ManualError::Write)?);
    }
    Ok((out, reports))
}
