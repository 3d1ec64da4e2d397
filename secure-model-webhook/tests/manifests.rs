//! The deployment artifacts: `deploy/webhook/` (Deployment, Service, PDB, NetworkPolicy,
//! MutatingWebhookConfiguration, profiles ConfigMap, cert-manager objects), the vLLM
//! Deployment example and the LLMInferenceService examples in `deploy/kserve/`. Kubernetes
//! objects are validated against the strict schemas of kubernetes-validate (unknown fields are
//! errors); LLMInferenceServices against KServe's CRD in `../shared/kserve` when present, and
//! against the facts encoded in the crate always.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

mod common;

use common::{deploy_docs, deploy_profiles_text, profiles};
use secure_model_testkit::k8s::{
    crd_identity, errors, kserve_ref, load_yaml, strict, yaml_docs, K8sSchemas,
};
use secure_model_webhook::annotations::{INJECT, LLMISVC_MAIN_CONTAINER, NAMESPACE_LABEL, SOURCE};
use secure_model_webhook::workload::{inject_yaml, Outcome, LLMISVC_POD_SPECS};
use serde_json::{json, Value};

fn webhook_docs() -> Vec<Value> {
    let mut all = Vec::new();
    for f in [
        "webhook/webhook.yaml",
        "webhook/poddisruptionbudget.yaml",
        "webhook/annotation-only-warning.yaml",
        "webhook/certificate.yaml",
        "webhook/mutatingwebhookconfiguration.yaml",
        "webhook/profiles.yaml",
        "webhook/examples/vllm-deployment.yaml",
    ] {
        all.extend(deploy_docs(f));
    }
    all
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn kubernetes_objects_validate_against_the_strict_schemas() {
    let Some(schemas) = K8sSchemas::load() else {
        return;
    };
    let mut checked = 0;
    for doc in webhook_docs() {
        let api = doc["apiVersion"].as_str().unwrap();
        if api.starts_with("cert-manager.io/") {
            continue;
        }
        let v = schemas.for_kind(doc["kind"].as_str().unwrap(), api);
        let e = errors(&v, &doc);
        assert!(e.is_empty(), "{}: {e:#?}", doc["kind"]);
        checked += 1;
    }
    assert!(checked >= 11, "{checked}");
    // And what the webhook makes of the vLLM example.
    let text = std::fs::read_to_string(
        secure_model_testkit::repo().join("deploy/webhook/examples/vllm-deployment.yaml"),
    )
    .unwrap();
    let (out, _) = inject_yaml(&text, &profiles()).unwrap();
    let out: Value = serde_norway::from_str(&out).unwrap();
    let e = errors(&schemas.for_kind("Deployment", "apps/v1"), &out);
    assert!(e.is_empty(), "{e:#?}");
}

#[test]
fn the_schema_validation_catches_mistakes() {
    let Some(schemas) = K8sSchemas::load() else {
        return;
    };
    let (out, _) = inject_yaml(
        &serde_norway::to_string(&common::vllm_pod(json!({}))).unwrap(),
        &profiles(),
    )
    .unwrap();
    let good: Value = serde_norway::from_str(&out).unwrap();
    let pod = schemas.for_kind("Pod", "v1");
    assert!(errors(&pod, &good).is_empty());
    let mut bad = good.clone();
    bad["spec"]["initContainers"][0]["volumeMountz"] = json!([]);
    assert!(!errors(&pod, &bad).is_empty(), "misspelt field");
    let mut bad = good.clone();
    bad["spec"]["volumes"][1]["emptyDir"]["medium"] = json!(1);
    assert!(!errors(&pod, &bad).is_empty(), "wrong type");
    let mut bad = good.clone();
    bad["spec"]["initContainers"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    assert!(!errors(&pod, &bad).is_empty(), "name is required");
    let mwc = schemas.for_kind(
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
    );
    let mut cfg = deploy_docs("webhook/mutatingwebhookconfiguration.yaml")[0].clone();
    assert!(errors(&mwc, &cfg).is_empty());
    cfg["webhooks"][0]["failurPolicy"] = json!("Fail");
    assert!(!errors(&mwc, &cfg).is_empty());
}

#[test]
fn the_webhook_configuration_fails_closed_and_is_scoped() {
    let docs = deploy_docs("webhook/mutatingwebhookconfiguration.yaml");
    let cfg = docs[0].clone();
    assert_eq!(
        cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "secure-model-system/secure-model-webhook"
    );
    // The API server calls mutating webhooks in the order of their configurations' names
    // (k8s.io/apiserver mutating_webhook_manager.go, sort by name): ours before KServe's pod
    // mutator and the meshes' injectors.
    let ours = cfg["metadata"]["name"].as_str().unwrap();
    let kserve = secure_model_testkit::k8s::kserve_ref()
        .map(|r| r.join("kserve-webhook-manifests.yaml"))
        .filter(|p| p.is_file())
        .map(|p| {
            secure_model_testkit::k8s::yaml_docs(&std::fs::read_to_string(p).unwrap())
                .into_iter()
                .find(|d| d["kind"] == "MutatingWebhookConfiguration")
                .unwrap()["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap_or_else(|| "inferenceservice.serving.kserve.io".to_string());
    for other in [
        kserve.as_str(),
        "istio-sidecar-injector",
        "linkerd-proxy-injector-webhook-config",
    ] {
        assert!(ours < other, "{ours} must sort before {other}");
    }
    let hooks = cfg["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2);
    let paths: Vec<&str> = hooks
        .iter()
        .map(|h| h["clientConfig"]["service"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/mutate", "/mutate/namespace"],
        "the server's routes"
    );
    for h in hooks {
        assert_eq!(h["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(h["failurePolicy"], "Fail");
        assert_eq!(h["sideEffects"], "None");
        assert_eq!(h["reinvocationPolicy"], "IfNeeded");
        assert!(h["timeoutSeconds"].as_u64().unwrap() <= 10);
        assert_eq!(h["rules"][0]["resources"], json!(["pods"]));
        assert_eq!(h["rules"][0]["operations"], json!(["CREATE"]));
        let excluded = h["namespaceSelector"]["matchExpressions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == "kubernetes.io/metadata.name")
            .unwrap();
        assert_eq!(excluded["operator"], "NotIn");
        assert_eq!(
            excluded["values"],
            json!([
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "secure-model-system"
            ])
        );
        assert_eq!(h["clientConfig"]["service"]["name"], "secure-model-webhook");
    }
    assert_eq!(hooks[0]["objectSelector"]["matchLabels"][INJECT], "true");
    assert_eq!(
        hooks[1]["objectSelector"]["matchExpressions"][0]["key"],
        INJECT
    );
    assert_eq!(
        hooks[1]["namespaceSelector"]["matchExpressions"][0]["key"],
        NAMESPACE_LABEL
    );
    // The Service and the Certificate match the configuration.
    let all = webhook_docs();
    let svc = of_kind(&all, "Service")[0];
    assert_eq!(svc["metadata"]["namespace"], "secure-model-system");
    assert_eq!(svc["spec"]["ports"][0]["port"], 443);
    let certs = of_kind(&all, "Certificate");
    let serving = certs
        .iter()
        .find(|c| c["metadata"]["name"] == "secure-model-webhook")
        .unwrap();
    assert!(serving["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .contains(&json!("secure-model-webhook.secure-model-system.svc")));
    let dep = of_kind(&all, "Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "secure-model-webhook")
        .unwrap();
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        serving["spec"]["secretName"]
    );
    assert_eq!(dep["spec"]["replicas"], 2);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        of_kind(&all, "PodDisruptionBudget")[0]["spec"]["minAvailable"],
        1
    );
    let np = of_kind(&all, "NetworkPolicy")[0];
    assert_eq!(
        np["spec"]["egress"],
        json!([]),
        "the webhook needs no egress"
    );
    // The ConfigMap's profiles are the ones the tests use, and they parse.
    assert!(!deploy_profiles_text().is_empty());
    assert_eq!(profiles().names().len(), 2);
}

fn llmisvc_validator(r: &std::path::Path) -> (String, jsonschema::Validator) {
    let crd = load_yaml(&r.join("serving.kserve.io_llminferenceservices.minimal.yaml"));
    let (api, kind, _, version) = crd_identity(&crd);
    assert_eq!(kind, "LLMInferenceService");
    let mut schema = version["schema"]["openAPIV3Schema"].clone();
    strict(&mut schema);
    (api, jsonschema::validator_for(&schema).unwrap())
}

fn llmisvc_examples() -> Vec<(&'static str, Value)> {
    ["kserve/llmisvc-webhook.yaml", "kserve/llmisvc-manual.yaml"]
        .into_iter()
        .map(|f| (f, deploy_docs(f).remove(0)))
        .collect()
}

#[test]
fn llminferenceservice_examples_validate_against_the_crd() {
    let examples = llmisvc_examples();
    for (f, d) in &examples {
        assert_eq!(d["spec"]["storageInitializer"]["enabled"], false, "{f}");
        assert!(
            d["spec"]["model"]["uri"]
                .as_str()
                .unwrap()
                .starts_with("secure+"),
            "{f}"
        );
    }
    let Some(r) = kserve_ref() else { return };
    let (api, v) = llmisvc_validator(&r);
    for (f, d) in &examples {
        assert_eq!(d["apiVersion"], api.as_str(), "{f}");
        let e = errors(&v, d);
        assert!(e.is_empty(), "{f}: {e:#?}");
    }
    // The injected upstream sample too, and the validator catches a misspelling.
    let mut sample = common::llmisvc_sample();
    sample["spec"]["model"]["uri"] = json!("secure+s3://models/q/v1");
    let (out, _) = inject_yaml(&serde_norway::to_string(&sample).unwrap(), &profiles()).unwrap();
    let out: Value = serde_norway::from_str(&out).unwrap();
    assert!(errors(&v, &out).is_empty(), "{:#?}", errors(&v, &out));
    let mut bad = out.clone();
    bad["spec"]["template"]["initContainers"][0]["volumeMountz"] = json!([]);
    assert!(!errors(&v, &bad).is_empty());
    let mut bad = out;
    bad["spec"]["storageInitializer"]["enabled"] = json!("false");
    assert!(!errors(&v, &bad).is_empty());
}

#[test]
fn the_manual_form_is_what_inject_prints_and_the_webhook_form_asks() {
    let examples = llmisvc_examples();
    let (_, webhook) = &examples[0];
    let (_, manual) = &examples[1];
    // Strip what injection adds from the manual form: injecting that gives the file back.
    let mut bare = manual.clone();
    let t = bare["spec"]["template"].as_object_mut().unwrap();
    t.remove("initContainers");
    t.remove("volumes");
    bare["spec"]["template"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("volumeMounts");
    bare["spec"]
        .as_object_mut()
        .unwrap()
        .remove("storageInitializer");
    let (out, reports) =
        inject_yaml(&serde_norway::to_string(&bare).unwrap(), &profiles()).unwrap();
    assert!(matches!(reports[0].outcome, Outcome::Injected { .. }));
    assert_eq!(serde_norway::from_str::<Value>(&out).unwrap(), *manual);
    // The manual form is already injected.
    let (_, reports) = inject_yaml(&serde_norway::to_string(manual).unwrap(), &profiles()).unwrap();
    assert_eq!(reports[0].outcome, Outcome::AlreadyInjected);
    // The webhook form opts its pods in through what KServe copies onto them.
    assert_eq!(webhook["spec"]["labels"][INJECT], "true");
    assert_eq!(
        webhook["spec"]["annotations"][SOURCE],
        webhook["spec"]["model"]["uri"]
    );
}

#[test]
fn encoded_llminferenceservice_facts_match_kserve() {
    let Some(r) = kserve_ref() else { return };
    let crd = load_yaml(&r.join("serving.kserve.io_llminferenceservices.minimal.yaml"));
    let (_, _, _, version) = crd_identity(&crd);
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    for at in LLMISVC_POD_SPECS {
        let mut s = spec;
        for part in at.trim_start_matches("/spec/").split('/') {
            s = &s["properties"][part];
        }
        for field in ["containers", "initContainers", "volumes"] {
            assert!(
                s["properties"][field].is_object(),
                "{at}.{field} in the CRD"
            );
        }
    }
    assert_eq!(
        spec["properties"]["storageInitializer"]["properties"]["enabled"]["type"],
        "boolean"
    );
    // KServe's default template serves `main` from /mnt/models.
    let template = load_yaml(&r.join("llmisvc-config-llm-template.yaml"));
    let main = &template["spec"]["template"]["containers"][0];
    assert_eq!(main["name"], LLMISVC_MAIN_CONTAINER);
    let cmd = main["command"].to_string();
    assert!(cmd.contains("vllm serve /mnt/models"), "the model path");
    // KServe's pod mutator reinvokes and skips pods with an init container of our name.
    let hooks =
        yaml_docs(&std::fs::read_to_string(r.join("kserve-webhook-manifests.yaml")).unwrap());
    let mutator = hooks[0]["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["clientConfig"]["service"]["path"] == "/mutate-pods")
        .unwrap();
    assert_eq!(mutator["reinvocationPolicy"], "IfNeeded");
}
