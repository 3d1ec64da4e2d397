//! The webhook's AdmissionReview requests: what the Kubernetes API server, and anyone who can
//! reach the webhook's port, sends it.

use std::sync::OnceLock;

use base64::Engine as _;
use secure_model_webhook::admission::{review, Verdict};
use secure_model_webhook::profile::Profiles;
use secure_model_webhook::request::Scope;
use serde_json::{json, Value};

/// Two profiles: a plain one (the default) and one that requires a TEE runtime class.
const PROFILES: &str = "defaultProfile: default
profiles:
  default:
    image: ghcr.io/example/secure-model-initc:0.1.0
    env:
      SECURE_MODEL_KEYS: aws-kms:alias/secure-model
      SECURE_MODEL_TRUSTED_KEYS: /var/run/secure-model/trust/signer.pub.pem
    modelSizeLimit: 4Gi
  tee:
    image: ghcr.io/example/secure-model-initc:0.1.0
    requireTee: true
    runtimeClassNames: [kata-qemu-tdx]
    env:
      SECURE_MODEL_KEYS: cdh:kbs:///default/secure-model/kek
      SECURE_MODEL_TRUSTED_KEYS: /var/run/secure-model/trust/signer.pub.pem
";

fn profiles() -> &'static Profiles {
    static P: OnceLock<Profiles> = OnceLock::new();
    P.get_or_init(|| Profiles::parse(PROFILES).expect("the harness's profiles parse"))
}

/// A pod CREATE request for `object`, as the API server sends it.
fn envelope(object: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "models",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object,
            "dryRun": false,
        }
    })
}

/// An AdmissionReview body (selector bit 1 clear), or a pod object the harness wraps in a
/// CREATE request (bit 1 set); bit 0 picks the scope (pod label or namespace opt-in). Checks:
/// the answer is an `admission.k8s.io/v1` response for the request's uid; a refusal says why
/// on one line; an injection's patch is base64 JSON Patch that applies to the pod, and the
/// patched pod is left alone when reviewed again (injection is idempotent).
pub fn admission(data: &[u8]) {
    let Some((selector, rest)) = super::split_selector(data) else {
        return;
    };
    let scope = if selector & 1 == 0 {
        Scope::Pod
    } else {
        Scope::Namespace
    };
    let body = if selector & 2 == 0 {
        rest.to_vec()
    } else {
        let Ok(object) = serde_json::from_slice::<Value>(rest) else {
            return;
        };
        envelope(&object).to_string().into_bytes()
    };
    match review(&body, profiles(), scope) {
        Ok(answer) => check_answer(&body, &answer.review, &answer.verdict, scope),
        Err(e) => crate::check::message(&e),
    }
}

fn check_answer(body: &[u8], answer: &Value, verdict: &Verdict, scope: Scope) {
    let request: Value = serde_json::from_slice(body).expect("a reviewed body is JSON");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer}");
    assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
    let response = &answer["response"];
    assert_eq!(
        response.get("uid"),
        request.pointer("/request/uid"),
        "{answer}"
    );
    match verdict {
        Verdict::Unchanged => {
            assert_eq!(response["allowed"], true, "{answer}");
            assert!(response.get("patch").is_none_or(Value::is_null), "{answer}");
        }
        Verdict::Denied(message) => {
            assert_eq!(response["allowed"], false, "{answer}");
            assert!(
                !message.chars().any(char::is_control),
                "control character in a refusal: {message:?}"
            );
        }
        Verdict::Injected(..) => check_patch(&request, response, scope),
        _ => {}
    }
}

fn check_patch(request: &Value, response: &Value, scope: Scope) {
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let patch = response["patch"]
        .as_str()
        .expect("an injection has a patch");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .expect("the patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("the patch is JSON Patch");
    let mut pod = request
        .pointer("/request/object")
        .cloned()
        .expect("an injected request has an object");
    json_patch::patch(&mut pod, &patch).expect("the patch applies to the pod");
    let again = envelope(&pod).to_string();
    let second =
        review(again.as_bytes(), profiles(), scope).expect("the patched pod is reviewable");
    assert_eq!(
        second.verdict,
        Verdict::Unchanged,
        "a second review of the injected pod changed it: {pod}"
    );
}
