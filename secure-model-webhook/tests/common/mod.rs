//! What the webhook's test files share: the profiles of deploy/webhook/profiles.yaml (the
//! shipped ConfigMap), pods built from real specs, and patch application.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test; each test file uses a part"
)]

use secure_model_testkit::k8s::{load_yaml, yaml_docs};
use secure_model_testkit::repo;
use secure_model_webhook::profile::Profiles;
use serde_json::{json, Value};

/// The `profiles.yaml` key of the shipped ConfigMap.
pub fn deploy_profiles_text() -> String {
    let cm = load_yaml(&repo().join("deploy/webhook/profiles.yaml"));
    cm["data"]["profiles.yaml"].as_str().unwrap().to_string()
}

/// The shipped profiles.
pub fn profiles() -> Profiles {
    Profiles::parse(&deploy_profiles_text()).unwrap()
}

/// Every document of a file under deploy/.
pub fn deploy_docs(rel: &str) -> Vec<Value> {
    yaml_docs(&std::fs::read_to_string(repo().join("deploy").join(rel)).unwrap())
}

/// A vLLM pod that asks for injection with `annotations` added to the source.
pub fn vllm_pod(extra: Value) -> Value {
    let mut annotations = json!({"secure-model.io/source": "secure+s3://models/llama/v1"});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        annotations[k] = v;
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "vllm",
            "namespace": "models",
            "labels": {"app": "vllm", "secure-model.io/inject": "true"},
            "annotations": annotations
        },
        "spec": {
            "containers": [{
                "name": "vllm",
                "image": "vllm/vllm-openai:v0.11.0",
                "args": ["--model=/mnt/models"],
                "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]
            }],
            "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
        }
    })
}

/// The vLLM pod with a PersistentVolumeClaim mounted at the destination (must be refused).
pub fn pod_with_disk_at_destination() -> Value {
    let mut pod = vllm_pod(json!({}));
    pod["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "cache", "persistentVolumeClaim": {"claimName": "models"}}));
    pod["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "cache", "mountPath": "/mnt/models", "readOnly": true}));
    pod
}

/// A KServe predictor pod as KServe's pod mutator leaves it for our ClusterStorageContainer
/// (the `storage-initializer` added by KServe, `kserve-provision-location` memory-backed).
pub fn kserve_predictor_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "sklearn-secure-predictor-00001-deployment-abc",
            "namespace": "models",
            "labels": {"serving.kserve.io/inferenceservice": "sklearn-secure", "secure-model.io/inject": "true"},
            "annotations": {"secure-model.io/source": "secure+s3://models/sklearn/v1"}
        },
        "spec": {
            "initContainers": [{
                "name": "storage-initializer",
                "image": "ghcr.io/example/secure-model-initc:0.1.0",
                "args": ["secure+s3://models/sklearn/v1", "/mnt/models"],
                "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}]
            }],
            "containers": [{
                "name": "kserve-container",
                "image": "kserve/sklearnserver:v0.15.0",
                "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": true}]
            }],
            "volumes": [{"name": "kserve-provision-location", "emptyDir": {"medium": "Memory"}}]
        }
    })
}

/// The upstream LLMInferenceService sample (`../shared/kserve`), or the same object encoded
/// here when the reference files are absent.
pub fn llmisvc_sample() -> Value {
    if let Some(r) = secure_model_testkit::k8s::kserve_ref() {
        let p = r.join("llmisvc-sample-single-gpu.yaml");
        if p.is_file() {
            return load_yaml(&p);
        }
    }
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": "qwen3-coder-tool-calling"},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8", "name": "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8"},
            "replicas": 1,
            "router": {"route": {}, "scheduler": {}},
            "template": {"containers": [{
                "name": "main",
                "image": "ghcr.io/llm-d/llm-d-cuda:v0.9.0",
                "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}}}],
                "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}
            }]}
        }
    })
}

/// `doc` with `ops` applied.
pub fn apply(doc: &Value, ops: &[json_patch::PatchOperation]) -> Value {
    let mut out = doc.clone();
    json_patch::patch(&mut out, ops).unwrap();
    out
}

/// The pod template (or pod spec) of an object.
pub fn init_container(spec: &Value) -> &Value {
    let ic = spec["initContainers"].as_array().unwrap();
    &ic[0]
}

/// The loader's guarantees on an injected pod spec: our init container first, hardened, the
/// model in a memory-backed emptyDir at `dest`, mounted read-only by every other container.
pub fn assert_guarantees(spec: &Value, dest: &str) {
    let ic = init_container(spec);
    assert_eq!(ic["name"], "storage-initializer", "{spec:#}");
    assert_eq!(ic["args"][1], dest);
    let sc = &ic["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    let volume = ic["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == dest)
        .expect("the init container mounts the destination")["name"]
        .as_str()
        .unwrap()
        .to_string();
    let v = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == volume.as_str())
        .unwrap();
    assert_eq!(v["emptyDir"]["medium"], "Memory", "{v}");
    let others = spec["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .chain(spec["containers"].as_array().unwrap());
    for c in others {
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            if m["name"] == volume.as_str() || m["mountPath"] == dest {
                assert_eq!(m["readOnly"], true, "{}: {m}", c["name"]);
                assert_eq!(m["name"], volume.as_str(), "{}: {m}", c["name"]);
            }
        }
    }
}

/// An `admission.k8s.io/v1` AdmissionReview of a pod CREATE, as the API server sends it.
pub fn pod_review(uid: &str, pod: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": pod["metadata"]["namespace"].as_str().unwrap_or("models"),
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["system:serviceaccounts"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// The pod a workload's controller creates from its template (`template` = metadata + spec).
pub fn pod_from_template(name: &str, namespace: &str, template: &Value) -> Value {
    let mut meta = template["metadata"].clone();
    if meta.is_null() {
        meta = json!({});
    }
    meta["generateName"] = json!(format!("{name}-"));
    meta["namespace"] = json!(namespace);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]})
}

/// KServe's default LLMInferenceServiceConfig template's pod spec (`../shared/kserve`), or the
/// parts of it the tests need, encoded here (container `main` serving /mnt/models, its
/// volumes), when the reference files are absent.
pub fn llmisvc_default_template() -> Value {
    if let Some(r) = secure_model_testkit::k8s::kserve_ref() {
        let p = r.join("llmisvc-config-llm-template.yaml");
        if p.is_file() {
            return load_yaml(&p)["spec"]["template"].clone();
        }
    }
    json!({
        "containers": [{
            "name": "main",
            "image": "ghcr.io/llm-d/llm-d-cuda:v0.9.0",
            "command": ["/bin/bash", "-c", "exec vllm serve /mnt/models --port 8000", "--"],
            "volumeMounts": [
                {"mountPath": "/home", "name": "home"},
                {"mountPath": "/dev/shm", "name": "dshm"},
                {"mountPath": "/models", "name": "model-cache"}
            ]
        }],
        "volumes": [
            {"name": "home", "emptyDir": {}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
            {"name": "model-cache", "emptyDir": {}}
        ]
    })
}

/// The pod KServe's controller makes of an LLMInferenceService: its `spec.template` merged
/// over the default template (containers by name, field by field; the template's volumes),
/// with `spec.labels` and `spec.annotations` on the pod (as the controller's `PropagateMap`).
pub fn pod_from_llmisvc(isvc: &Value) -> Value {
    let mut spec = llmisvc_default_template();
    for c in isvc["spec"]["template"]["containers"].as_array().unwrap() {
        let containers = spec["containers"].as_array_mut().unwrap();
        match containers.iter_mut().find(|b| b["name"] == c["name"]) {
            Some(base) => {
                for (k, v) in c.as_object().unwrap() {
                    base[k] = v.clone();
                }
            }
            None => containers.push(c.clone()),
        }
    }
    let mut labels = json!({"app.kubernetes.io/name": isvc["metadata"]["name"]});
    for (k, v) in isvc["spec"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        labels[k] = v;
    }
    let template = json!({"metadata": {"labels": labels, "annotations": isvc["spec"]["annotations"]}, "spec": spec});
    pod_from_template(
        &format!("{}-kserve", isvc["metadata"]["name"].as_str().unwrap()),
        "models",
        &template,
    )
}

/// The upstream LLMInferenceService sample in the webhook form: KServe's initializer off, the
/// opt-in label, the source and the target container in `spec.labels` / `spec.annotations`.
pub fn llmisvc_sample_webhook_form() -> Value {
    let mut isvc = llmisvc_sample();
    let uri = "secure+s3://models/qwen3-coder/v1";
    isvc["spec"]["model"]["uri"] = json!(uri);
    isvc["spec"]["storageInitializer"] = json!({"enabled": false});
    isvc["spec"]["labels"] = json!({"secure-model.io/inject": "true"});
    isvc["spec"]["annotations"] =
        json!({"secure-model.io/source": uri, "secure-model.io/containers": "main"});
    isvc
}

/// A Knative (Serverless) InferenceService predictor pod as KServe's pod mutator leaves it
/// with its stock storage initializer (KServe @ aaac4e29: `storage_initializer_injector.go`,
/// Knative's `queue-proxy`): the `storage-initializer` writing `kserve-provision-location`, a
/// disk `emptyDir: {}`, mounted read-only by `kserve-container`; the InferenceService's
/// `storageUri` in KServe's internal annotation; the opt-in label from the InferenceService.
pub fn kserve_knative_pod(storage_uri: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "sklearn-iris-predictor-00001-deployment-7d9f-abcde",
            "namespace": "models",
            "labels": {
                "app": "sklearn-iris-predictor-00001",
                "component": "predictor",
                "serving.kserve.io/inferenceservice": "sklearn-iris",
                "serving.knative.dev/revision": "sklearn-iris-predictor-00001",
                "secure-model.io/inject": "true"
            },
            "annotations": {
                "internal.serving.kserve.io/storage-initializer-sourceuri": storage_uri,
                "kubectl.kubernetes.io/default-container": "kserve-container"
            }
        },
        "spec": {
            "serviceAccountName": "sa",
            "initContainers": [{
                "name": "storage-initializer",
                "image": "kserve/storage-initializer:v0.20.0",
                "args": [storage_uri, "/mnt/models"],
                "env": [
                    {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "mysecret", "key": "AWS_ACCESS_KEY_ID"}}},
                    {"name": "S3_ENDPOINT", "value": "s3.amazonaws.com"}
                ],
                "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}]
            }],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": "kserve/sklearnserver:v0.20.0",
                    "args": ["--model_name=sklearn-iris", "--model_dir=/mnt/models", "--http_port=8080"],
                    "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": true}]
                },
                {
                    "name": "queue-proxy",
                    "image": "gcr.io/knative-releases/knative.dev/serving/cmd/queue@sha256:0000",
                    "ports": [{"name": "queue-port", "containerPort": 8012}]
                }
            ],
            "volumes": [{"name": "kserve-provision-location", "emptyDir": {}}]
        }
    })
}

/// The same predictor in KServe's Standard (RawDeployment) mode: no queue-proxy, no Knative
/// labels.
pub fn kserve_standard_pod(storage_uri: &str) -> Value {
    let mut pod = kserve_knative_pod(storage_uri);
    pod["metadata"]["labels"] = json!({
        "app": "isvc.sklearn-iris-predictor",
        "component": "predictor",
        "serving.kserve.io/inferenceservice": "sklearn-iris",
        "secure-model.io/inject": "true"
    });
    pod["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = json!("Standard");
    pod["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    pod
}
