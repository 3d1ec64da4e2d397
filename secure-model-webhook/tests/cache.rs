//! Caches of ciphertext (docs/cache-kubernetes.md): a profile's `nodeCache` (a `hostPath`
//! mounted into the loader only, `SECURE_MODEL_CACHE_DIR`), its checks, and KServe's
//! LocalModelCache (the claim taken off the server and read by the loader) in both orders
//! with KServe's pod mutator, idempotent; every injected pod validated against the strict
//! Kubernetes schemas when the interop venv is there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

mod common;

use common::{apply, assert_guarantees, deploy_docs, init_container, profiles, vllm_pod};
use secure_model_testkit::k8s::{errors, K8sSchemas};
use secure_model_webhook::admission::patch_for;
use secure_model_webhook::localmodel::storage_key;
use secure_model_webhook::mutation::InjectError;
use secure_model_webhook::profile::{ProfileError, Profiles};
use secure_model_webhook::request::Scope;
use secure_model_webhook::Refusal;
use serde_json::{json, Value};

/// The example profiles with a node cache (deploy/webhook/examples/profiles-node-cache.yaml).
fn cache_profiles() -> Profiles {
    let text = std::fs::read_to_string(
        secure_model_testkit::repo().join("deploy/webhook/examples/profiles-node-cache.yaml"),
    )
    .unwrap();
    Profiles::parse(&text).unwrap()
}

fn inject(pod: &Value, profiles: &Profiles, scope: Scope) -> Option<Value> {
    patch_for(pod, profiles, scope)
        .unwrap()
        .map(|(ops, _, _)| apply(pod, &ops))
}

fn refusal(pod: &Value, profiles: &Profiles, scope: Scope) -> Refusal {
    match patch_for(pod, profiles, scope) {
        Err(InjectError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Injecting `out` again changes nothing (the API server's reinvocation).
fn assert_idempotent(out: &Value, profiles: &Profiles, scope: Scope) {
    assert!(
        patch_for(out, profiles, scope).unwrap().is_none(),
        "a second injection changed {out:#}"
    );
}

fn mounts(c: &Value) -> Vec<Value> {
    c["volumeMounts"].as_array().cloned().unwrap_or_default()
}

fn volume<'a>(spec: &'a Value, name: &str) -> &'a Value {
    spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume {name}: {spec:#}"))
}

fn env<'a>(c: &'a Value, name: &str) -> Option<&'a Value> {
    c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == name)
}

/// No container but the loader mounts a volume of `kind` (`hostPath`,
/// `persistentVolumeClaim`).
fn only_the_loader_mounts(spec: &Value, kind: &str) {
    let names: Vec<&str> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v.get(kind).is_some())
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(!names.is_empty(), "no {kind} volume in {spec:#}");
    let others = spec["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .chain(spec["containers"].as_array().unwrap());
    for c in others {
        for m in mounts(c) {
            assert!(
                !names.contains(&m["name"].as_str().unwrap()),
                "{} mounts the {kind} volume {m}",
                c["name"]
            );
        }
    }
}

fn schema_check(pod: &Value) {
    if std::env::var_os("SMTEST_PYTHON").is_none() {
        return;
    }
    let Some(schemas) = K8sSchemas::load() else {
        return;
    };
    let e = errors(&schemas.for_kind("Pod", "v1"), pod);
    assert!(e.is_empty(), "{e:#?}");
}

fn cached_pod() -> Value {
    let mut pod = vllm_pod(json!({"secure-model.io/profile": "cached"}));
    // A sidecar that must never see the cache.
    pod["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "istio-proxy", "image": "istio/proxyv2:1.24.0"}));
    pod
}

#[test]
fn the_node_cache_is_mounted_into_the_loader_only() {
    let profiles = cache_profiles();
    let pod = cached_pod();
    let out = inject(&pod, &profiles, Scope::Pod).unwrap();
    let spec = &out["spec"];
    assert_guarantees(spec, "/mnt/models");
    assert_eq!(
        volume(spec, "secure-model-node-cache"),
        &json!({"name": "secure-model-node-cache", "hostPath": {"path": "/var/cache/secure-model", "type": "DirectoryOrCreate"}})
    );
    let ic = init_container(spec);
    let m = mounts(ic)
        .into_iter()
        .find(|m| m["name"] == "secure-model-node-cache")
        .unwrap();
    assert_eq!(
        m,
        json!({"name": "secure-model-node-cache", "mountPath": "/var/cache/secure-model"}),
        "read-write, at the fixed path"
    );
    assert_eq!(
        env(ic, "SECURE_MODEL_CACHE_DIR").unwrap()["value"],
        "/var/cache/secure-model"
    );
    assert_eq!(
        env(ic, "SECURE_MODEL_CACHE_MAX_BYTES").unwrap()["value"],
        "214748364800"
    );
    only_the_loader_mounts(spec, "hostPath");
    for c in spec["containers"].as_array().unwrap() {
        assert!(env(c, "SECURE_MODEL_CACHE_DIR").is_none(), "{c}");
    }
    // Both variables are settings of the init container, with values it accepts.
    for var in ["SECURE_MODEL_CACHE_DIR", "SECURE_MODEL_CACHE_MAX_BYTES"] {
        use secure_model_settings::registry::{by_env, Binary};
        let setting = by_env(var).unwrap_or_else(|| panic!("{var} is no setting"));
        assert!(setting.binaries().contains(&Binary::Initc), "{var}");
        let value = env(ic, var).unwrap()["value"].as_str().unwrap();
        assert!(
            setting.accepts(value),
            "{var}={value}: {}",
            setting.expected()
        );
    }
    // The hardened context is unchanged: the cache needs no privilege in the pod.
    assert_eq!(ic["securityContext"]["runAsUser"], 65532);
    assert_eq!(ic["securityContext"]["readOnlyRootFilesystem"], true);
    assert_idempotent(&out, &profiles, Scope::Pod);
    schema_check(&out);
    // The profile without nodeCache adds no hostPath and no cache variable.
    let plain = inject(&vllm_pod(json!({})), &profiles, Scope::Pod).unwrap();
    assert!(!plain.to_string().contains("hostPath"));
    assert!(!plain.to_string().contains("SECURE_MODEL_CACHE"));
}

#[test]
fn the_node_cache_without_a_size_bound_sets_only_the_directory() {
    let text = std::fs::read_to_string(
        secure_model_testkit::repo().join("deploy/webhook/examples/profiles-node-cache.yaml"),
    )
    .unwrap()
    .replace("          maxSize: 200Gi\n", "");
    let profiles = Profiles::parse(&text).unwrap();
    let out = inject(&cached_pod(), &profiles, Scope::Pod).unwrap();
    let ic = init_container(&out["spec"]);
    assert!(env(ic, "SECURE_MODEL_CACHE_DIR").is_some());
    assert!(env(ic, "SECURE_MODEL_CACHE_MAX_BYTES").is_none());
}

fn profile_with(node_cache: &str, extra_env: &str) -> Result<Profiles, ProfileError> {
    Profiles::parse(&format!(
        r#"
profiles:
  p:
    image: ghcr.io/example/secure-model-initc:0.1.0
    env:
      SECURE_MODEL_KEYS: aws-kms:alias/secure-model
      SECURE_MODEL_TRUSTED_KEYS: /var/run/secure-model/trust/signer.pub.pem
{extra_env}
{node_cache}
"#
    ))
}

#[test]
fn unsafe_host_paths_and_sizes_are_refused_with_what_to_change() {
    let ok = profile_with(
        "    nodeCache: {hostPath: /mnt/disks/ssd0/secure-model/, maxSize: 1Ti}",
        "",
    )
    .unwrap();
    let cache = ok.get(Some("p")).unwrap().node_cache().unwrap();
    assert_eq!(cache.host_path(), "/mnt/disks/ssd0/secure-model");
    assert_eq!(cache.max_size_bytes(), Some(1 << 40));
    for (path, says) in [
        ("var/cache/x", "absolute"),
        ("/", "root directory"),
        ("//", "root directory"),
        ("/var/cache/../../etc", "'..'"),
        ("/var/cache/./x", "'..'"),
        ("/var//cache", "'..'"),
        ("/proc", "/proc"),
        ("/sys/fs/cgroup/x", "/sys"),
        ("/dev/shm/cache", "/dev"),
        ("/etc/secure-model", "/etc"),
        ("/var/run/secure-model", "/var/run"),
        ("/run/x", "/run"),
        ("/var/lib/kubelet/pods", "/var/lib/kubelet"),
        ("/var/lib/containerd/x", "/var/lib/containerd"),
        ("/var", "contains"),
        ("/var/lib", "contains"),
        ("/usr/local/cache", "/usr"),
        ("/root/cache", "/root"),
        ("/var/cache/secure model", "whitespace"),
    ] {
        let e = profile_with(&format!("    nodeCache: {{hostPath: {path:?}}}"), "").unwrap_err();
        let text = secure_model_core::chain_message(&e);
        assert!(
            text.contains("nodeCache.hostPath") && text.contains(says),
            "{path}: {text}"
        );
    }
    for size in ["abc", "1k", "500m", "-1Gi", "4GB"] {
        let e = profile_with(
            &format!("    nodeCache: {{hostPath: /var/cache/secure-model, maxSize: {size:?}}}"),
            "",
        )
        .unwrap_err();
        let text = secure_model_core::chain_message(&e);
        assert!(text.contains("nodeCache.maxSize"), "{size}: {text}");
    }
    // The cache variables come only with the mount.
    for var in ["SECURE_MODEL_CACHE_DIR", "SECURE_MODEL_CACHE_MAX_BYTES"] {
        let e = profile_with("", &format!("      {var}: /var/cache/secure-model")).unwrap_err();
        let text = secure_model_core::chain_message(&e);
        assert!(
            text.contains(var) && text.contains("nodeCache"),
            "{var}: {text}"
        );
    }
    // Unknown fields are errors.
    assert!(profile_with("    nodeCache: {hostPath: /var/cache/x, path: /y}", "").is_err());
    // A secret volume over the cache's mount.
    let e = profile_with(
        "    nodeCache: {hostPath: /var/cache/secure-model}\n    secretVolumes: [{name: kek, secretName: kek, mountPath: /var/cache/secure-model/kek}]",
        "",
    )
    .unwrap_err();
    assert!(secure_model_core::chain_message(&e).contains("secretVolumes[0]"));
}

#[test]
fn a_destination_over_the_cache_mount_is_refused() {
    let profiles = cache_profiles();
    let pod = vllm_pod(
        json!({"secure-model.io/profile": "cached", "secure-model.io/destination": "/var/cache"}),
    );
    let r = refusal(&pod, &profiles, Scope::Pod);
    assert!(matches!(r, Refusal::ReservedDestination { .. }), "{r}");
    assert!(r.to_string().contains("/var/cache/secure-model"), "{r}");
}

// --- KServe LocalModelCache -------------------------------------------------------------

const CACHE_URI: &str = "secure+s3://models/sklearn";
const PVC: &str = "sklearn-cache-gpu-nodes";

/// An InferenceService predictor pod as KServe's controller creates it when a LocalModelCache
/// holds its model (KServe @ aaac4e29, `setLocalModelLabel` in inference_service_defaults.go):
/// the cache's label and annotations, the storage URI in KServe's internal annotation,
/// before any pod mutator ran.
fn localmodel_pod(storage_uri: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "sklearn-predictor-abc",
            "namespace": "serving",
            "labels": {
                "serving.kserve.io/inferenceservice": "sklearn",
                "component": "predictor",
                "internal.serving.kserve.io/localmodel": "sklearn-cache",
                "secure-model.io/inject": "true"
            },
            "annotations": {
                "internal.serving.kserve.io/storage-initializer-sourceuri": storage_uri,
                "internal.serving.kserve.io/localmodel-sourceuri": CACHE_URI,
                "internal.serving.kserve.io/localmodel-pvc-name": PVC
            }
        },
        "spec": {
            "containers": [
                {"name": "kserve-container", "image": "kserve/sklearnserver:v0.20.0",
                 "args": ["--model_dir=/mnt/models"]},
                {"name": "transformer-container", "image": "example/transformer:1"}
            ]
        }
    })
}

/// What KServe's pod mutator does to such a pod (`InjectStorageInitializer` →
/// `CommonStorageInitialization`): nothing when an init container named
/// `storage-initializer` is there; else the URI becomes
/// `pvc://<pvc>/models/<storageKey><rest>` and the claim (volume `kserve-pvc-source`) is
/// mounted at /mnt/models into kserve-container and transformer-container, no initializer.
fn kserve_mutator(pod: &Value) -> Value {
    let mut pod = pod.clone();
    let has_initializer = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["name"] == "storage-initializer");
    if has_initializer {
        return pod;
    }
    let ann = &pod["metadata"]["annotations"];
    let src = ann["internal.serving.kserve.io/storage-initializer-sourceuri"]
        .as_str()
        .unwrap();
    let cache = ann["internal.serving.kserve.io/localmodel-sourceuri"]
        .as_str()
        .unwrap();
    let mut rest = src.strip_prefix(cache).unwrap_or(src).to_string();
    if !rest.starts_with('/') {
        rest.insert(0, '/');
    }
    let pvc_path = format!("models/{}{rest}", storage_key(cache));
    for c in pod["spec"]["containers"].as_array_mut().unwrap() {
        if c["name"] == "kserve-container" || c["name"] == "transformer-container" {
            let m = json!({"name": "kserve-pvc-source", "mountPath": "/mnt/models", "subPath": pvc_path, "readOnly": true});
            match c["volumeMounts"].as_array_mut() {
                Some(l) => l.push(m),
                None => c["volumeMounts"] = json!([m]),
            }
        }
    }
    let v = json!({"name": "kserve-pvc-source", "persistentVolumeClaim": {"claimName": PVC}});
    match pod["spec"]["volumes"].as_array_mut() {
        Some(l) => l.push(v),
        None => pod["spec"]["volumes"] = json!([v]),
    }
    pod
}

/// The loader reads the package from the claim, read-only, at `sub_path`; no serving
/// container mounts the claim; the server gets the memory-backed model.
fn assert_cached(spec: &Value, sub_path: &str) -> String {
    assert_guarantees(spec, "/mnt/models");
    let ic = init_container(spec);
    assert_eq!(
        ic["args"],
        json!(["secure+file:///var/cache/secure-model-pvc", "/mnt/models"])
    );
    let m = mounts(ic)
        .into_iter()
        .find(|m| m["mountPath"] == "/var/cache/secure-model-pvc")
        .unwrap();
    assert_eq!(m["readOnly"], true);
    assert_eq!(m["subPath"], sub_path);
    let name = m["name"].as_str().unwrap().to_string();
    assert_eq!(
        volume(spec, &name)["persistentVolumeClaim"]["claimName"],
        PVC
    );
    only_the_loader_mounts(spec, "persistentVolumeClaim");
    for c in spec["containers"].as_array().unwrap() {
        let at_models: Vec<Value> = mounts(c)
            .into_iter()
            .filter(|m| m["mountPath"] == "/mnt/models")
            .collect();
        if c["name"] == "kserve-container" {
            assert_eq!(
                at_models,
                [
                    json!({"name": "secure-model-plaintext", "mountPath": "/mnt/models", "readOnly": true})
                ]
            );
        }
    }
    name
}

#[test]
fn localmodelcache_our_webhook_first() {
    let profiles = profiles();
    let key = storage_key(CACHE_URI);
    let pod = localmodel_pod(CACHE_URI);
    let out = inject(&pod, &profiles, Scope::Pod).unwrap();
    let volume = assert_cached(&out["spec"], &format!("models/{key}"));
    assert_eq!(volume, "secure-model-localmodel");
    assert_eq!(
        out["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "secure-model-localmodel")
            .unwrap()["persistentVolumeClaim"]["readOnly"],
        true
    );
    schema_check(&out);
    // KServe's mutator then finds our storage-initializer and adds nothing (so the API
    // server does not reinvoke us); reinvoked anyway, we change nothing.
    let after = kserve_mutator(&out);
    assert_eq!(after, out);
    assert_idempotent(&after, &profiles, Scope::Pod);
}

#[test]
fn localmodelcache_kserve_first() {
    let profiles = profiles();
    let key = storage_key(CACHE_URI);
    let kserved = kserve_mutator(&localmodel_pod(CACHE_URI));
    // What stock KServe serves: the claim (ciphertext) straight into the server.
    assert_eq!(
        kserved["spec"]["containers"][0]["volumeMounts"][0]["name"],
        "kserve-pvc-source"
    );
    let (ops, _, warnings) = patch_for(&kserved, &profiles, Scope::Pod).unwrap().unwrap();
    let out = apply(&kserved, &ops);
    let volume = assert_cached(&out["spec"], &format!("models/{key}"));
    assert_eq!(volume, "kserve-pvc-source", "KServe's volume is reused");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("kserve-container, transformer-container")),
        "{warnings:?}"
    );
    // The transformer keeps running, without the claim and without the model (it reads
    // none unless the pod names it in secure-model.io/containers).
    assert!(mounts(&out["spec"]["containers"][1]).is_empty());
    schema_check(&out);
    // The API server reinvokes KServe's mutator (reinvocationPolicy: IfNeeded): it finds our
    // storage-initializer and adds nothing; reinvoked, we change nothing.
    let after = kserve_mutator(&out);
    assert_eq!(after, out);
    assert_idempotent(&after, &profiles, Scope::Pod);
}

#[test]
fn localmodelcache_subdirectories_and_the_node_cache() {
    let key = storage_key(CACHE_URI);
    let uri = format!("{CACHE_URI}/v2/");
    let mut pod = localmodel_pod(&uri);
    pod["metadata"]["annotations"]["secure-model.io/profile"] = json!("cached");
    let profiles = cache_profiles();
    for order in ["ours first", "kserve first"] {
        let start = if order == "ours first" {
            pod.clone()
        } else {
            kserve_mutator(&pod)
        };
        let out = inject(&start, &profiles, Scope::Pod).unwrap();
        assert_cached(&out["spec"], &format!("models/{key}/v2"));
        let ic = init_container(&out["spec"]);
        assert!(env(ic, "SECURE_MODEL_CACHE_DIR").is_some(), "{order}");
        only_the_loader_mounts(&out["spec"], "hostPath");
        assert_idempotent(&kserve_mutator(&out), &profiles, Scope::Pod);
    }
}

#[test]
fn an_llminferenceservice_pod_with_a_localmodelcache_reads_it_too() {
    // With spec.storageInitializer.enabled: false (the webhook form), KServe's LLMInferenceService
    // controller skips its LocalModelCache rewrite (workload_storage.go) but propagates the
    // cache's label and annotations to the pod template (propagateDeploymentMetadata): the pod
    // names its package in secure-model.io/source.
    let mut pod = vllm_pod(json!({
        "secure-model.io/source": format!("{CACHE_URI}/qwen"),
        "internal.serving.kserve.io/localmodel-sourceuri": CACHE_URI,
        "internal.serving.kserve.io/localmodel-pvc-name": PVC
    }));
    pod["metadata"]["labels"]["internal.serving.kserve.io/localmodel"] = json!("sklearn-cache");
    let out = inject(&pod, &profiles(), Scope::Pod).unwrap();
    let spec = &out["spec"];
    assert_guarantees(spec, "/mnt/models");
    let m = mounts(init_container(spec))
        .into_iter()
        .find(|m| m["mountPath"] == "/var/cache/secure-model-pvc")
        .unwrap();
    assert_eq!(
        m["subPath"],
        format!("models/{}/qwen", storage_key(CACHE_URI))
    );
    only_the_loader_mounts(spec, "persistentVolumeClaim");
    assert_idempotent(&out, &profiles(), Scope::Pod);
}

#[test]
fn a_secure_localmodelcache_opts_the_pod_in_within_an_opted_in_namespace() {
    let profiles = profiles();
    let mut pod = localmodel_pod(CACHE_URI);
    pod["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("secure-model.io/inject");
    pod["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("internal.serving.kserve.io/storage-initializer-sourceuri");
    let out = inject(&pod, &profiles, Scope::Namespace).unwrap();
    assert_cached(&out["spec"], &format!("models/{}", storage_key(CACHE_URI)));
    // The explicit opt-out still wins.
    pod["metadata"]["annotations"]["secure-model.io/inject"] = json!("false");
    assert!(patch_for(&pod, &profiles, Scope::Namespace)
        .unwrap()
        .is_none());
}

#[test]
fn broken_localmodelcache_markers_are_refused() {
    let profiles = profiles();
    let cases: [(&str, Value, &str); 3] = [
        (
            "no claim",
            json!({"internal.serving.kserve.io/localmodel-pvc-name": null}),
            "localmodel-pvc-name annotation is missing",
        ),
        (
            "plain cache",
            json!({"internal.serving.kserve.io/localmodel-sourceuri": "s3://models/sklearn"}),
            "no secure+ package",
        ),
        (
            "other package",
            json!({"internal.serving.kserve.io/storage-initializer-sourceuri": "secure+s3://other/m"}),
            "not under the cache's sourceModelUri",
        ),
    ];
    for (what, change, says) in cases {
        let mut pod = localmodel_pod(CACHE_URI);
        let ann = pod["metadata"]["annotations"].as_object_mut().unwrap();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                ann.remove(k);
            } else {
                ann.insert(k.clone(), v.clone());
            }
        }
        let r = refusal(&pod, &profiles, Scope::Pod);
        assert!(
            matches!(r, Refusal::LocalModel { .. }) && r.to_string().contains(says),
            "{what}: {r}"
        );
    }
    // A storage URI that climbs out of the cached directory (refused as a source already).
    let mut pod = localmodel_pod("secure+s3://models/sklearn/../x");
    let _ = refusal(&pod, &profiles, Scope::Pod);
    pod["metadata"]["annotations"]["secure-model.io/source"] = json!(CACHE_URI);
    let r = refusal(&pod, &profiles, Scope::Pod);
    assert!(r.to_string().contains("not a normal relative path"), "{r}");
    // A destination over the claim's mount.
    let mut pod = localmodel_pod(CACHE_URI);
    pod["metadata"]["annotations"]["secure-model.io/destination"] =
        json!("/var/cache/secure-model-pvc/plain");
    assert!(matches!(
        refusal(&pod, &profiles, Scope::Pod),
        Refusal::ReservedDestination { .. }
    ));
}

#[test]
fn the_cache_manifests_validate_against_the_strict_schemas() {
    let docs = deploy_docs("cache/warm-daemonset.yaml");
    let ds = docs.iter().find(|d| d["kind"] == "DaemonSet").unwrap();
    let spec = &ds["spec"]["template"]["spec"];
    // Every warm step is the init container image's keyless `--warm-cache` mode on the same
    // hostPath and size limit as the profile.
    let host = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|v| v["hostPath"]["path"].as_str())
        .unwrap();
    let cached = cache_profiles();
    let profile = cached.get(Some("cached")).unwrap();
    assert_eq!(host, profile.node_cache().unwrap().host_path());
    let steps = spec["initContainers"].as_array().unwrap();
    assert_eq!(steps[0]["name"], "prepare");
    let prepare = steps[0]["command"].to_string();
    assert!(prepare.contains("65532:65532"), "{prepare}");
    let bytes = profile
        .node_cache()
        .unwrap()
        .max_size_bytes()
        .unwrap()
        .to_string();
    for c in steps.iter().skip(1) {
        let cmd: Vec<&str> = c["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            cmd,
            ["/usr/local/bin/secure-model-initc", "--warm-cache"],
            "{c}"
        );
        assert_eq!(c["args"].as_array().map(Vec::len), Some(1), "{c}");
        assert_eq!(
            env(c, "SECURE_MODEL_CACHE_DIR").map(|e| &e["value"]),
            Some(&json!("/var/cache/secure-model"))
        );
        assert_eq!(
            env(c, "SECURE_MODEL_CACHE_MAX_BYTES").map(|e| &e["value"]),
            Some(&json!(bytes))
        );
        assert_eq!(c["securityContext"]["runAsUser"], 65532);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        // Ciphertext only: the warm step never holds a key to unwrap.
        assert!(env(c, "SECURE_MODEL_KEYS").is_none(), "{c}");
    }
    if std::env::var_os("SMTEST_PYTHON").is_none() {
        return;
    }
    let Some(schemas) = K8sSchemas::load() else {
        return;
    };
    for doc in docs
        .iter()
        .chain(&deploy_docs("webhook/examples/profiles-node-cache.yaml"))
    {
        let v = schemas.for_kind(
            doc["kind"].as_str().unwrap(),
            doc["apiVersion"].as_str().unwrap(),
        );
        let e = errors(&v, doc);
        assert!(e.is_empty(), "{}: {e:#?}", doc["kind"]);
    }
}
