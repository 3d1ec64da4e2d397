//! The webhook as a cluster operator meets it: KServe's real predictor pods (a foreign
//! initializer taken over, ours repaired), an impostor refused, least privilege for sidecars,
//! order among other injectors' init containers, excluded namespaces, TEE runtime classes,
//! the size-limit annotation, and the shipped ConfigMap as a profiles file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

mod common;

use common::{
    apply, assert_guarantees, kserve_knative_pod, kserve_standard_pod, pod_review, profiles,
    vllm_pod,
};
use secure_model_webhook::admission::{patch_for, review, Verdict};
use secure_model_webhook::mutation::InjectError;
use secure_model_webhook::profile::Profiles;
use secure_model_webhook::request::Scope;
use secure_model_webhook::Refusal;
use serde_json::{json, Value};

const OURS: &str = "ghcr.io/example/secure-model-initc:0.1.0";

fn injected(pod: &Value) -> (Value, String, Vec<String>) {
    let (ops, profile, notes) = patch_for(pod, &profiles(), Scope::Pod)
        .unwrap()
        .expect("a patch");
    (apply(pod, &ops), profile, notes)
}

fn refused(pod: &Value) -> Refusal {
    match patch_for(pod, &profiles(), Scope::Pod) {
        Err(InjectError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|l| l.iter().map(|c| c["name"].as_str().unwrap()).collect())
        .unwrap_or_default()
}

fn mounts_model(c: &Value) -> bool {
    c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["mountPath"] == "/mnt/models")
}

#[test]
fn kserves_stock_initializer_is_taken_over_in_both_modes() {
    for pod in [
        kserve_knative_pod("secure+s3://models/sklearn/v1"),
        kserve_standard_pod("secure+s3://models/sklearn/v1"),
    ] {
        let (out, profile, notes) = injected(&pod);
        let spec = &out["spec"];
        assert_guarantees(spec, "/mnt/models");
        assert_eq!(profile, "default");
        assert_eq!(names(&spec["initContainers"]), ["storage-initializer"]);
        let ic = &spec["initContainers"][0];
        assert_eq!(ic["image"], OURS, "KServe's image is gone");
        assert_eq!(ic["args"][0], "secure+s3://models/sklearn/v1");
        // KServe's own model volume, now memory-backed.
        assert_eq!(
            spec["volumes"],
            json!([{"name": "kserve-provision-location", "emptyDir": {"medium": "Memory", "sizeLimit": "4Gi"}}])
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("kserve/storage-initializer")),
            "{notes:?}"
        );
        // Only the server reads the model; Knative's queue-proxy gets nothing.
        for c in spec["containers"].as_array().unwrap() {
            assert_eq!(mounts_model(c), c["name"] == "kserve-container", "{c}");
        }
        assert_eq!(
            out["metadata"]["annotations"]["secure-model.io/injected"],
            "default"
        );
        // A second admission (KServe's reinvocation, or ours) leaves it alone.
        assert!(patch_for(&out, &profiles(), Scope::Pod).unwrap().is_none());
    }
}

#[test]
fn a_plain_storage_uri_is_refused_saying_how_to_publish() {
    let r = refused(&kserve_knative_pod("s3://my-bucket/models/iris"));
    let m = r.to_string();
    assert!(matches!(r, Refusal::BadSource { .. }), "{m}");
    assert!(
        m.contains("secure-model pack") && m.contains("secure+"),
        "{m}"
    );
}

#[test]
fn our_initializer_from_the_cluster_storage_container_is_repaired_not_reinjected() {
    // KServe injected our image from our ClusterStorageContainer, on its disk emptyDir.
    let mut pod = kserve_standard_pod("secure+s3://models/sklearn/v1");
    pod["spec"]["initContainers"][0]["image"] = json!(OURS);
    let (out, _, notes) = injected(&pod);
    assert_eq!(
        names(&out["spec"]["initContainers"]),
        ["storage-initializer"]
    );
    assert_eq!(
        out["spec"]["initContainers"][0]["env"],
        pod["spec"]["initContainers"][0]["env"]
    );
    assert_eq!(out["spec"]["volumes"][0]["emptyDir"]["medium"], "Memory");
    assert!(
        notes.iter().any(|n| n.contains("memory-backed")),
        "{notes:?}"
    );
    // With the volume already in memory there is nothing to do.
    assert!(patch_for(&out, &profiles(), Scope::Pod).unwrap().is_none());
}

#[test]
fn an_impostor_named_storage_initializer_is_refused() {
    let mut pod = vllm_pod(json!({}));
    pod["spec"]["initContainers"] = json!([{
        "name": "storage-initializer",
        "image": "busybox:1.36",
        "command": ["sh", "-c", "cp -r /seed/* /mnt/models/"],
        "volumeMounts": [{"name": "models", "mountPath": "/mnt/models"}]
    }]);
    pod["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "models", "hostPath": {"path": "/var/models"}}));
    let r = refused(&pod);
    assert!(matches!(r, Refusal::ForeignInitializer { .. }), "{r}");
    let m = r.to_string();
    assert!(
        m.contains("busybox:1.36") && m.contains("remove or rename"),
        "{m}"
    );
    // Without any volume at the destination either: still not ours, still refused.
    pod["spec"]["initContainers"][0]["volumeMounts"] = json!([]);
    assert!(matches!(refused(&pod), Refusal::ForeignInitializer { .. }));
}

#[test]
fn only_the_serving_container_gets_the_model_unless_named() {
    let mut pod = vllm_pod(json!({}));
    let containers = pod["spec"]["containers"].as_array_mut().unwrap();
    containers.insert(0, json!({"name": "istio-proxy", "image": "istio/proxyv2"}));
    containers.push(json!({"name": "statsd-exporter", "image": "prom/statsd-exporter"}));
    containers.push(json!({"name": "queue-proxy", "image": "knative/queue"}));
    let (out, _, _) = injected(&pod);
    let got: Vec<&str> = out["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| mounts_model(c))
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        ["vllm"],
        "the first container that is no known sidecar"
    );
    // Named explicitly, a sidecar gets it too.
    pod["metadata"]["annotations"]["secure-model.io/containers"] = json!("vllm,statsd-exporter");
    let (out, _, _) = injected(&pod);
    let got: Vec<&str> = out["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| mounts_model(c))
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["vllm", "statsd-exporter"]);
}

#[test]
fn a_profile_may_name_its_default_containers() {
    let text = common::deploy_profiles_text().replace(
        "    modelSizeLimit: 4Gi\n",
        "    modelSizeLimit: 4Gi\n    defaultContainers: [sidecar-reader]\n",
    );
    assert!(text.contains("defaultContainers"));
    let profiles = Profiles::parse(&text).unwrap();
    let mut pod = vllm_pod(json!({}));
    pod["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar-reader", "image": "x"}));
    let (ops, _, _) = patch_for(&pod, &profiles, Scope::Pod).unwrap().unwrap();
    let out = apply(&pod, &ops);
    assert!(!mounts_model(&out["spec"]["containers"][0]));
    assert!(mounts_model(&out["spec"]["containers"][1]));
}

#[test]
fn ours_stays_first_among_init_containers_after_other_injectors() {
    let mut pod = vllm_pod(json!({}));
    pod["spec"]["initContainers"] = json!([{"name": "fetch-config", "image": "busybox"}]);
    let (out, _, _) = injected(&pod);
    assert_eq!(
        names(&out["spec"]["initContainers"]),
        ["storage-initializer", "fetch-config"]
    );
    // An injector sorting after ours puts its init container first; on reinvocation ours goes
    // back in front.
    let mut later = out.clone();
    later["spec"]["initContainers"]
        .as_array_mut()
        .unwrap()
        .insert(
            0,
            json!({"name": "vault-agent-init", "image": "hashicorp/vault"}),
        );
    let (again, _, notes) = injected(&later);
    assert_eq!(
        names(&again["spec"]["initContainers"]),
        ["storage-initializer", "vault-agent-init", "fetch-config"]
    );
    assert!(notes.iter().any(|n| n.contains("moved")), "{notes:?}");
    assert!(patch_for(&again, &profiles(), Scope::Pod)
        .unwrap()
        .is_none());
}

#[test]
fn with_a_native_sidecar_mesh_ours_runs_after_the_proxy() {
    // Istio in native-sidecar mode (its injector sorts after ours and reorders: validation,
    // proxy, then the rest), then our reinvocation.
    let mut pod = vllm_pod(json!({}));
    let (out, _, _) = injected(&pod);
    let ours = out["spec"]["initContainers"][0].clone();
    pod = out;
    pod["spec"]["initContainers"] = json!([
        {"name": "istio-validation", "image": "istio/proxyv2"},
        {"name": "istio-proxy", "image": "istio/proxyv2", "restartPolicy": "Always"},
        ours
    ]);
    assert!(
        patch_for(&pod, &profiles(), Scope::Pod).unwrap().is_none(),
        "after the native proxy is ours' place: no move"
    );
    // Classic Istio: istio-init (iptables) runs last, after ours; ours stays first.
    let mut classic = pod.clone();
    classic["spec"]["initContainers"] = json!([
        pod["spec"]["initContainers"][2].clone(),
        {"name": "istio-init", "image": "istio/proxyv2"}
    ]);
    assert!(patch_for(&classic, &profiles(), Scope::Pod)
        .unwrap()
        .is_none());
    // A fresh pod that already has the native proxy gets ours right after it.
    let mut fresh = vllm_pod(json!({}));
    fresh["spec"]["initContainers"] = json!([
        {"name": "linkerd-init", "image": "linkerd/proxy-init"},
        {"name": "linkerd-proxy", "image": "linkerd/proxy", "restartPolicy": "Always"},
        {"name": "fetch-config", "image": "busybox"}
    ]);
    let (out, _, _) = injected(&fresh);
    assert_eq!(
        names(&out["spec"]["initContainers"]),
        [
            "linkerd-init",
            "linkerd-proxy",
            "storage-initializer",
            "fetch-config"
        ]
    );
}

#[test]
fn excluded_namespaces_are_allowed_unchanged_with_a_warning() {
    let mut pod = vllm_pod(json!({}));
    pod["metadata"]["namespace"] = json!("kube-system");
    let body = serde_json::to_vec(&pod_review("u1", &pod)).unwrap();
    let a = review(&body, &profiles(), Scope::Pod).unwrap();
    assert!(matches!(a.verdict, Verdict::Excluded(_)), "{:?}", a.verdict);
    let r = &a.review["response"];
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none());
    assert!(
        r["warnings"][0].as_str().unwrap().contains("kube-system"),
        "{r}"
    );
    // The shipped profiles exclude the webhook's own namespace too.
    assert!(profiles().excludes_namespace("secure-model-system"));
    assert!(!profiles().excludes_namespace("models"));
}

#[test]
fn tee_runtime_classes_choose_and_constrain_the_profile() {
    // A pod in a TEE runtime class, naming no profile, gets the TEE profile.
    let mut pod = vllm_pod(json!({}));
    pod["spec"]["runtimeClassName"] = json!("kata-qemu-tdx");
    let (_, profile, _) = injected(&pod);
    assert_eq!(profile, "confidential");
    // Naming the non-TEE profile is saying otherwise: allowed.
    let mut named = pod.clone();
    named["metadata"]["annotations"]["secure-model.io/profile"] = json!("default");
    assert_eq!(injected(&named).1, "default");
    // A known TEE class no profile serves is refused, not given keys without attestation.
    pod["spec"]["runtimeClassName"] = json!("kata-qemu-cca");
    let r = refused(&pod);
    assert!(matches!(r, Refusal::NoTeeProfile { .. }), "{r}");
    assert!(r.to_string().contains("runtimeClassNames"), "{r}");
    // A pod outside a TEE cannot pick the TEE profile.
    let mut outside = vllm_pod(json!({"secure-model.io/profile": "confidential"}));
    outside["spec"]["runtimeClassName"] = json!("runc");
    let r = refused(&outside);
    assert!(matches!(r, Refusal::RuntimeClassNotAllowed { .. }), "{r}");
    assert!(r.to_string().contains("kata-qemu-tdx"), "{r}");
}

#[test]
fn the_size_limit_annotation_is_bounded_by_the_profile() {
    let (out, _, _) = injected(&vllm_pod(json!({"secure-model.io/size-limit": "2Gi"})));
    let vol = out["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "secure-model-plaintext")
        .unwrap()
        .clone();
    assert_eq!(vol["emptyDir"]["sizeLimit"], "2Gi");
    let r = refused(&vllm_pod(json!({"secure-model.io/size-limit": "40Gi"})));
    assert!(r.to_string().contains("modelSizeLimit 4Gi"), "{r}");
    let r = refused(&vllm_pod(json!({"secure-model.io/size-limit": "lots"})));
    assert!(matches!(r, Refusal::BadSizeLimit { .. }), "{r}");
}

#[test]
fn the_shipped_configmap_is_a_profiles_file() {
    let text =
        std::fs::read_to_string(secure_model_testkit::repo().join("deploy/webhook/profiles.yaml"))
            .unwrap();
    let p = Profiles::parse(&text).unwrap();
    assert_eq!(p.names(), ["confidential", "default"]);
    let e = Profiles::parse("kind: ConfigMap\ndata: {other: x}\n").unwrap_err();
    assert!(e.to_string().contains("profiles.yaml"), "{e}");
}
