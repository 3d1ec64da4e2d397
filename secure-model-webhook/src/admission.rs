//! One `admission.k8s.io/v1` AdmissionReview in, one out: kube-core's request and response
//! types around [`crate::mutation`], with the response's `patch` written as base64 (the
//! documented wire format; kube-core serializes the bytes as a JSON number array,
//! kube-rs/kube#1781). Pure: bytes in, JSON out; the server only moves bytes.

use base64::Engine as _;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube_core::DynamicObject;
use serde_json::Value;

use crate::mutation::{self, Decision, InjectError, PodAt};
use crate::profile::Profiles;
use crate::request::{self, Scope};

/// The AdmissionReview version served.
pub const API_VERSION: &str = kube_core::admission::META_API_VERSION_V1;

/// A request that is no AdmissionReview this webhook can answer (HTTP 400).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BadReview {
    /// The body is not UTF-8 (RFC 8259 §8.1: JSON exchanged between systems is UTF-8).
    #[error("the body is not UTF-8 JSON")]
    NotUtf8(#[source] std::str::Utf8Error),
    /// The body is not an AdmissionReview.
    #[error("the body is not an AdmissionReview")]
    Json(#[source] serde_json::Error),
    /// Another `apiVersion` or `kind`.
    #[error("expected kind AdmissionReview, apiVersion {API_VERSION}; got kind {kind:?}, apiVersion {api_version:?} (set admissionReviewVersions: [\"v1\"])")]
    Version {
        /// The kind sent.
        kind: String,
        /// The apiVersion sent.
        api_version: String,
    },
    /// No `request` member.
    #[error("the AdmissionReview has no request")]
    NoRequest,
    /// The response could not be encoded (a defect).
    #[error("cannot encode the AdmissionReview response")]
    Encode(#[source] serde_json::Error),
}

/// What the review decided, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Allowed with a patch (profile applied), and what else was done (take-over, repairs:
    /// logged as warnings and sent to the client as admission warnings).
    Injected(String, Vec<String>),
    /// Allowed unchanged.
    Unchanged,
    /// Allowed unchanged because the pod's namespace is excluded from injection (logged, and a
    /// warning to the client).
    Excluded(String),
    /// Denied with this message.
    Denied(String),
}

/// The answer: the AdmissionReview JSON to send and what it decided.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Answer {
    /// The response AdmissionReview.
    pub review: Value,
    /// The decision.
    pub verdict: Verdict,
    /// `namespace/name` (or `generateName`) of the pod, for logs.
    pub object: String,
}

/// Answers one AdmissionReview body. Pod CREATE requests are injected (or refused); other
/// operations are allowed unchanged; other resources are denied (the webhook's rules are
/// wrong).
///
/// # Errors
/// [`BadReview`] for a body that is no `admission.k8s.io/v1` AdmissionReview request.
pub fn review(body: &[u8], profiles: &Profiles, scope: Scope) -> Result<Answer, BadReview> {
    // serde_json skips members it does not know without checking their UTF-8; check it all
    // first so that what the webhook accepts is JSON to every other reader too.
    let body = std::str::from_utf8(body).map_err(BadReview::NotUtf8)?;
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_str(body).map_err(BadReview::Json)?;
    if review.types.api_version != API_VERSION || review.types.kind != "AdmissionReview" {
        return Err(BadReview::Version {
            kind: review.types.kind,
            api_version: review.types.api_version,
        });
    }
    let req: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| BadReview::NoRequest)?;
    let object = describe(&req);
    let (response, verdict) = decide(&req, profiles, scope);
    Ok(Answer {
        review: to_wire(response)?,
        verdict,
        object,
    })
}

fn describe(req: &AdmissionRequest<DynamicObject>) -> String {
    let name = req
        .object
        .as_ref()
        .and_then(|o| o.metadata.name.clone().or(o.metadata.generate_name.clone()))
        .unwrap_or_else(|| req.name.clone());
    format!("{}/{}", req.namespace.as_deref().unwrap_or(""), name)
}

fn deny(req: &AdmissionRequest<DynamicObject>, message: String) -> (AdmissionResponse, Verdict) {
    let mut r = AdmissionResponse::from(req).deny(&message);
    r.result.code = 403;
    r.result.reason = "Forbidden".into();
    (r, Verdict::Denied(message))
}

fn decide(
    req: &AdmissionRequest<DynamicObject>,
    profiles: &Profiles,
    scope: Scope,
) -> (AdmissionResponse, Verdict) {
    let allow = || (AdmissionResponse::from(req), Verdict::Unchanged);
    let k = &req.kind;
    if (k.group.as_str(), k.version.as_str(), k.kind.as_str()) != ("", "v1", "Pod") {
        let got = format!("{}/{} {}", k.group, k.version, k.kind);
        return deny(req, format!("secure-model-webhook mutates pods only, got {got}: fix the MutatingWebhookConfiguration's rules (resources: [pods], operations: [CREATE])"));
    }
    if req.operation != Operation::Create {
        return allow();
    }
    let Some(object) = &req.object else {
        return deny(req, "the AdmissionReview request has no object".into());
    };
    let object = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => return deny(req, format!("cannot read the pod: {e}")),
    };
    if let Some(ns) = req
        .namespace
        .as_deref()
        .filter(|n| profiles.excludes_namespace(n))
    {
        return excluded(req, ns);
    }
    match patch_for(&object, profiles, scope) {
        Ok(None) => allow(),
        Ok(Some((ops, profile, notes))) => {
            match AdmissionResponse::from(req).with_patch(json_patch::Patch(ops)) {
                Ok(mut r) => {
                    if !notes.is_empty() {
                        r.warnings = Some(
                            notes
                                .iter()
                                .map(|n| format!("secure-model-webhook: {n}"))
                                .collect(),
                        );
                    }
                    (r, Verdict::Injected(profile, notes))
                }
                Err(e) => deny(req, format!("cannot encode the patch: {e}")),
            }
        }
        Err(e) => deny(
            req,
            format!(
                "secure-model injection refused: {}",
                secure_model_core::chain_message(&e)
            ),
        ),
    }
}

/// A pod of an excluded namespace is allowed unchanged, with a warning. The webhook checks
/// the namespace itself: the configuration's exclusion by `kubernetes.io/metadata.name`
/// excludes nothing on API servers before 1.21.
fn excluded(
    req: &AdmissionRequest<DynamicObject>,
    namespace: &str,
) -> (AdmissionResponse, Verdict) {
    let message = format!(
        "secure-model-webhook: namespace {namespace:?} is excluded from injection (excludedNamespaces of the profiles file); the pod is created without the secure loader"
    );
    let mut r = AdmissionResponse::from(req);
    r.warnings = Some(vec![message.clone()]);
    (r, Verdict::Excluded(message))
}

/// What a patched pod got: the operations, the profile applied and what else was done.
pub type Patched = (Vec<json_patch::PatchOperation>, String, Vec<String>);

/// The operations for a pod object in `scope`, the profile applied and the notes; `None` when
/// it does not ask or is already injected.
///
/// # Errors
/// [`InjectError`] when the pod must be refused.
pub fn patch_for(
    pod: &Value,
    profiles: &Profiles,
    scope: Scope,
) -> Result<Option<Patched>, InjectError> {
    let meta = &pod["metadata"];
    let Some(ask) = request::ask(
        meta["labels"].as_object(),
        meta["annotations"].as_object(),
        scope,
    )?
    else {
        return Ok(None);
    };
    match mutation::inject(pod, &PodAt::template(""), &ask, profiles)? {
        Decision::Patch {
            ops,
            profile,
            notes,
        } => Ok(Some((
            ops,
            profile,
            notes.iter().map(ToString::to_string).collect(),
        ))),
        _ => Ok(None),
    }
}

/// The response AdmissionReview as JSON, `patch` as a base64 string.
///
/// # Errors
/// [`BadReview::Encode`].
pub fn to_wire(mut response: AdmissionResponse) -> Result<Value, BadReview> {
    let patch = response.patch.take();
    let mut review = serde_json::to_value(response.into_review()).map_err(BadReview::Encode)?;
    if let (Some(p), Some(r)) = (
        patch,
        review.get_mut("response").and_then(Value::as_object_mut),
    ) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(p);
        r.insert("patch".into(), Value::String(encoded));
    }
    Ok(review)
}

/// A well-formed refusal for a request whose body could not be read (no `uid` to echo).
pub fn invalid(message: &str) -> Value {
    let review = AdmissionResponse::invalid(message).into_review();
    serde_json::to_value(review).unwrap_or_else(|_| {
        serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": "AdmissionReview",
            "response": { "uid": "", "allowed": false, "status": { "message": message } }
        })
    })
}
