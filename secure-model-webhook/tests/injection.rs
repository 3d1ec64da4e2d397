//! The injection as a pure function: every workload kind, every refusal, the profiles file's
//! checks, idempotence and the memory-only guarantee as properties, and every injected object
//! validated against the strict Kubernetes JSON Schemas (kubernetes-validate, in the interop
//! venv) and, for LLMInferenceService, against KServe's CRD (`../shared/kserve` when present).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

mod common;

use common::{
    apply, assert_guarantees, init_container, kserve_predictor_pod, llmisvc_sample, profiles,
    vllm_pod,
};
use proptest::prelude::*;
use secure_model_testkit::k8s::{errors, K8sSchemas};
use secure_model_webhook::admission::patch_for;
use secure_model_webhook::profile::{ProfileError, Profiles};
use secure_model_webhook::request::Scope;
use secure_model_webhook::workload::{inject_yaml, Outcome};
use secure_model_webhook::Refusal;
use serde_json::{json, Value};

fn inject_pod(pod: &Value) -> Result<Option<Value>, secure_model_webhook::mutation::InjectError> {
    Ok(patch_for(pod, &profiles(), Scope::Pod)?.map(|(ops, _, _)| apply(pod, &ops)))
}

fn refusal(pod: &Value) -> Refusal {
    match patch_for(pod, &profiles(), Scope::Pod) {
        Err(secure_model_webhook::mutation::InjectError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_pod_gets_the_loader() {
    let pod = vllm_pod(json!({}));
    let out = inject_pod(&pod).unwrap().unwrap();
    let spec = &out["spec"];
    assert_guarantees(spec, "/mnt/models");
    let ic = init_container(spec);
    assert_eq!(ic["image"], "ghcr.io/example/secure-model-initc:0.1.0");
    assert_eq!(
        ic["args"],
        json!(["secure+s3://models/llama/v1", "/mnt/models"])
    );
    let env = ic["env"].as_array().unwrap();
    let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
    for n in [
        "SECURE_MODEL_KEYS",
        "SECURE_MODEL_TRUSTED_KEYS_PEM",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
    // Credentials by reference only.
    let secret = env
        .iter()
        .find(|e| e["name"] == "AWS_SECRET_ACCESS_KEY")
        .unwrap();
    assert!(secret.get("value").is_none());
    assert_eq!(
        secret["valueFrom"]["secretKeyRef"]["name"],
        "secure-model-s3"
    );
    assert_eq!(ic["resources"]["limits"]["memory"], "4Gi");
    assert_eq!(
        spec["containers"][0]["volumeMounts"][1],
        json!({"name": "secure-model-plaintext", "mountPath": "/mnt/models", "readOnly": true})
    );
    let vol = &spec["volumes"][1];
    assert_eq!(
        vol,
        &json!({"name": "secure-model-plaintext", "emptyDir": {"medium": "Memory", "sizeLimit": "4Gi"}})
    );
    assert_eq!(
        out["metadata"]["annotations"]["secure-model.io/injected"],
        "default"
    );
    // The user's own fields are untouched.
    assert_eq!(
        spec["containers"][0]["args"],
        pod["spec"]["containers"][0]["args"]
    );
    // A second admission is a no-op.
    assert_eq!(inject_pod(&out).unwrap(), None);
}

#[test]
fn options_destination_containers_and_profile() {
    let mut pod = vllm_pod(json!({
        "secure-model.io/destination": "/models/llama",
        "secure-model.io/containers": "vllm",
        "secure-model.io/profile": "confidential",
    }));
    pod["spec"]["runtimeClassName"] = json!("kata-qemu-snp");
    pod["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "proxy", "image": "envoyproxy/envoy:v1.31.0"}));
    pod["spec"]["initContainers"] = json!([{"name": "warmup", "image": "busybox"}]);
    let out = inject_pod(&pod).unwrap().unwrap();
    let spec = &out["spec"];
    assert_guarantees(spec, "/models/llama");
    assert_eq!(
        spec["initContainers"][1]["name"], "warmup",
        "ours runs first"
    );
    assert!(
        spec["containers"][1].get("volumeMounts").is_none(),
        "proxy is no target"
    );
    let keys = init_container(spec)["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "SECURE_MODEL_KEYS")
        .unwrap()["value"]
        .clone();
    assert_eq!(keys, "cdh:kbs:///default/secure-model/kek");
    assert_eq!(
        out["metadata"]["annotations"]["secure-model.io/injected"],
        "confidential"
    );
}

#[test]
fn an_existing_memory_volume_at_the_destination_is_reused() {
    let mut pod = vllm_pod(json!({}));
    pod["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "model", "emptyDir": {"medium": "Memory"}}));
    pod["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "model", "mountPath": "/mnt/models/", "readOnly": true}));
    let out = inject_pod(&pod).unwrap().unwrap();
    assert_guarantees(&out["spec"], "/mnt/models");
    assert_eq!(
        out["spec"]["volumes"].as_array().unwrap().len(),
        2,
        "no new volume"
    );
    assert_eq!(
        init_container(&out["spec"])["volumeMounts"][0]["name"],
        "model"
    );
}

#[test]
fn pods_that_do_not_ask_and_kserve_pods_are_left_alone() {
    let mut pod = vllm_pod(json!({}));
    pod["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("secure-model.io/inject");
    assert_eq!(inject_pod(&pod).unwrap(), None, "no opt-in in pod scope");
    let in_ns = patch_for(&pod, &profiles(), Scope::Namespace).unwrap();
    assert!(
        in_ns.is_some(),
        "the namespace opted in and the pod names a source"
    );
    pod["metadata"]["annotations"]["secure-model.io/inject"] = json!("false");
    assert!(patch_for(&pod, &profiles(), Scope::Namespace)
        .unwrap()
        .is_none());
    // KServe's pod mutator already added our ClusterStorageContainer's initializer.
    assert_eq!(inject_pod(&kserve_predictor_pod()).unwrap(), None);
}

#[test]
fn refusals_say_what_to_change() {
    type Mutate = fn(&mut Value);
    let cases: Vec<(&str, Mutate, &str)> = vec![
        (
            "disk-backed volume at the destination",
            |p| {
                p["spec"]["volumes"].as_array_mut().unwrap().push(
                    json!({"name": "cache", "persistentVolumeClaim": {"claimName": "models"}}),
                );
                p["spec"]["containers"][0]["volumeMounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "cache", "mountPath": "/mnt/models"}));
            },
            "not a memory-backed emptyDir",
        ),
        (
            "disk emptyDir at the destination",
            |p| {
                p["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "cache", "emptyDir": {}}));
                p["spec"]["containers"][0]["volumeMounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "cache", "mountPath": "/mnt/models", "readOnly": true}));
            },
            "medium: Memory",
        ),
        (
            "unknown profile",
            |p| {
                p["metadata"]["annotations"]["secure-model.io/profile"] = json!("gold");
            },
            "unknown profile \"gold\"",
        ),
        (
            "malformed source",
            |p| {
                p["metadata"]["annotations"]["secure-model.io/source"] = json!("s3://models/llama");
            },
            "secure+ forms",
        ),
        (
            "source without bucket",
            |p| {
                p["metadata"]["annotations"]["secure-model.io/source"] = json!("secure+s3://");
            },
            "not a package URI",
        ),
        (
            "runtime class outside the TEE list",
            |p| {
                p["metadata"]["annotations"]["secure-model.io/profile"] = json!("confidential");
                p["spec"]["runtimeClassName"] = json!("runc");
            },
            "requires a TEE",
        ),
        (
            "no runtime class with a TEE profile",
            |p| {
                p["metadata"]["annotations"]["secure-model.io/profile"] = json!("confidential");
            },
            "runtimeClassName is unset",
        ),
        (
            "app container mounts the model writable",
            |p| {
                p["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "model", "emptyDir": {"medium": "Memory"}}));
                p["spec"]["containers"][0]["volumeMounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "model", "mountPath": "/mnt/models"}));
            },
            "add readOnly: true",
        ),
        (
            "sidecar writes our volume elsewhere",
            |p| {
                p["spec"]["volumes"].as_array_mut().unwrap().push(
                    json!({"name": "secure-model-plaintext", "emptyDir": {"medium": "Memory"}}),
                );
                p["spec"]["containers"].as_array_mut().unwrap().push(json!({"name": "side", "image": "x", "volumeMounts": [{"name": "secure-model-plaintext", "mountPath": "/data"}]}));
            },
            "writable",
        ),
        (
            "our volume name taken by a disk volume",
            |p| {
                p["spec"]["volumes"].as_array_mut().unwrap().push(
                    json!({"name": "secure-model-plaintext", "hostPath": {"path": "/var/models"}}),
                );
            },
            "rename it",
        ),
        (
            "unknown target container",
            |p| {
                p["metadata"]["annotations"]["secure-model.io/containers"] = json!("vllm,llm");
            },
            "names \"llm\"",
        ),
        (
            "relative destination",
            |p| {
                p["metadata"]["annotations"]["secure-model.io/destination"] = json!("models");
            },
            "absolute path",
        ),
        (
            "bad opt-in value",
            |p| {
                p["metadata"]["labels"]["secure-model.io/inject"] = json!("yes");
            },
            "expected \"true\" or \"false\"",
        ),
        (
            "opt-in without a source",
            |p| {
                p["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove("secure-model.io/source");
            },
            "annotation is missing",
        ),
        (
            "two volumes at the destination",
            |p| {
                p["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "a", "emptyDir": {"medium": "Memory"}}));
                p["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "b", "emptyDir": {"medium": "Memory"}}));
                p["spec"]["containers"][0]["volumeMounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "a", "mountPath": "/mnt/models", "readOnly": true}));
                p["spec"]["containers"].as_array_mut().unwrap().push(json!({"name": "c", "image": "x", "volumeMounts": [{"name": "b", "mountPath": "/mnt/models", "readOnly": true}]}));
            },
            "both mounted",
        ),
        (
            "spec is no object",
            |p| {
                p["spec"] = json!([1]);
            },
            "not a pod spec object",
        ),
        (
            "containers is no list",
            |p| {
                p["spec"]["containers"] = json!({"name": "x"});
            },
            "spec.containers: invalid type: map, expected a sequence",
        ),
        (
            "a container's volumeMounts is no list (a fuzz finding: the patch appended to it)",
            |p| {
                p["spec"]["containers"][0]["volumeMounts"] = json!("secure-model.io/injected");
            },
            "spec.containers[0].volumeMounts: invalid type: string",
        ),
        (
            "an init container is no object",
            |p| {
                p["spec"]["initContainers"] = json!(["busybox"]);
            },
            "spec.initContainers[0]: invalid type: string",
        ),
    ];
    for (what, mutate, expect) in cases {
        let mut pod = vllm_pod(json!({}));
        mutate(&mut pod);
        let msg = refusal(&pod).to_string();
        assert!(msg.contains(expect), "{what}: {msg}");
    }
}

#[test]
fn inject_refuses_metadata_it_cannot_annotate() {
    // `mutation::inject` is public and takes the ask from its caller, so the metadata it
    // annotates need not be where the ask came from: a shape a patch cannot extend is refused.
    use secure_model_webhook::mutation::{inject, InjectError, PodAt};
    let ask = secure_model_webhook::request::ask_for("secure+s3://models/llama/v1", None).unwrap();
    let profiles = profiles();
    for (meta, expect) in [
        (json!("x"), "metadata: invalid type: string"),
        (
            json!({"annotations": ["x"]}),
            "metadata.annotations: invalid type: sequence",
        ),
    ] {
        let mut pod = vllm_pod(json!({}));
        pod["metadata"] = meta;
        match inject(&pod, &PodAt::template("/"), &ask, &profiles) {
            Err(InjectError::Refused(r)) => assert!(r.to_string().contains(expect), "{r}"),
            other => panic!("expected a refusal naming {expect}, got {other:?}"),
        }
    }
}

fn workload(kind: &str, api_version: &str, template: &Value) -> Value {
    let t = json!({"metadata": template["metadata"], "spec": template["spec"]});
    let selector = json!({"matchLabels": {"app": "vllm"}});
    let spec = match kind {
        "Pod" => return template.clone(),
        "Deployment" | "ReplicaSet" | "DaemonSet" => json!({"selector": selector, "template": t}),
        "StatefulSet" => json!({"selector": selector, "serviceName": "vllm", "template": t}),
        "Job" => {
            let mut t = t;
            t["spec"]["restartPolicy"] = json!("Never");
            json!({"template": t})
        }
        "CronJob" => {
            let mut t = t;
            t["spec"]["restartPolicy"] = json!("OnFailure");
            json!({"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": t}}})
        }
        _ => unreachable!(),
    };
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "vllm", "namespace": "models"}, "spec": spec})
}

const KINDS: &[(&str, &str, &str)] = &[
    ("Pod", "v1", "/spec"),
    ("Deployment", "apps/v1", "/spec/template/spec"),
    ("StatefulSet", "apps/v1", "/spec/template/spec"),
    ("DaemonSet", "apps/v1", "/spec/template/spec"),
    ("ReplicaSet", "apps/v1", "/spec/template/spec"),
    ("Job", "batch/v1", "/spec/template/spec"),
    (
        "CronJob",
        "batch/v1",
        "/spec/jobTemplate/spec/template/spec",
    ),
];

#[test]
fn every_workload_kind_is_injected_valid_and_idempotent() {
    let schemas = K8sSchemas::load();
    let mut pod = vllm_pod(json!({}));
    pod["metadata"].as_object_mut().unwrap().remove("namespace");
    let mut stream = String::new();
    for (kind, api, spec_at) in KINDS {
        let obj = workload(kind, api, &pod);
        let yaml = serde_norway::to_string(&obj).unwrap();
        let (out, reports) = inject_yaml(&yaml, &profiles()).unwrap();
        assert_eq!(reports.len(), 1);
        assert!(
            matches!(reports[0].outcome, Outcome::Injected { .. }),
            "{kind}"
        );
        let injected: Value = serde_norway::from_str(&out).unwrap();
        assert_guarantees(injected.pointer(spec_at).unwrap(), "/mnt/models");
        if let Some(s) = &schemas {
            let v = s.for_kind(kind, api);
            let e = errors(&v, &injected);
            assert!(e.is_empty(), "{kind}: {e:#?}");
            assert!(
                errors(&v, &obj).is_empty(),
                "{kind}: the input is valid too"
            );
        }
        // Idempotent: injecting the output changes nothing.
        let (again, reports) = inject_yaml(&out, &profiles()).unwrap();
        assert_eq!(again, out, "{kind}");
        assert_eq!(reports[0].outcome, Outcome::AlreadyInjected);
        stream.push_str("---\n");
        stream.push_str(&yaml);
    }
    // One stream of every kind plus objects without a pod template.
    stream.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n");
    let (out, reports) = inject_yaml(&stream, &profiles()).unwrap();
    assert_eq!(reports.len(), KINDS.len() + 1);
    assert_eq!(reports.last().unwrap().outcome, Outcome::Unsupported);
    assert_eq!(out.matches("\n---\n").count() + 1, KINDS.len() + 1);
    // A List is injected item by item.
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [workload("Deployment", "apps/v1", &pod)]});
    let (out, _) = inject_yaml(&serde_norway::to_string(&list).unwrap(), &profiles()).unwrap();
    let out: Value = serde_norway::from_str(&out).unwrap();
    assert_guarantees(&out["items"][0]["spec"]["template"]["spec"], "/mnt/models");
}

#[test]
fn a_refused_workload_is_an_error_naming_the_document() {
    let mut pod = vllm_pod(json!({"secure-model.io/profile": "nope"}));
    pod["metadata"].as_object_mut().unwrap().remove("namespace");
    let y = serde_norway::to_string(&workload("Deployment", "apps/v1", &pod)).unwrap();
    let text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{y}");
    let e = inject_yaml(&text, &profiles()).unwrap_err();
    let msg = secure_model_core::chain_message(&e);
    assert!(
        msg.contains("document 2 (Deployment/vllm)") && msg.contains("unknown profile"),
        "{msg}"
    );
    let e = inject_yaml("a: [", &profiles()).unwrap_err();
    assert!(e.to_string().contains("document 1"), "{e}");
}

#[test]
fn the_llminferenceservice_sample_is_injected_in_its_template() {
    let mut isvc = llmisvc_sample();
    isvc["spec"]["model"]["uri"] = json!("secure+s3://models/qwen3-coder/v1");
    let (out, reports) =
        inject_yaml(&serde_norway::to_string(&isvc).unwrap(), &profiles()).unwrap();
    assert!(matches!(reports[0].outcome, Outcome::Injected { .. }));
    let out: Value = serde_norway::from_str(&out).unwrap();
    assert_eq!(out["spec"]["storageInitializer"], json!({"enabled": false}));
    let t = &out["spec"]["template"];
    assert_guarantees(t, "/mnt/models");
    assert_eq!(
        init_container(t)["args"][0],
        "secure+s3://models/qwen3-coder/v1"
    );
    assert_eq!(t["containers"][0]["name"], "main");
    // The worker and prefill pod specs are injected too, when present.
    let mut multi = isvc.clone();
    multi["spec"]["worker"] = isvc["spec"]["template"].clone();
    multi["spec"]["prefill"] = json!({"template": isvc["spec"]["template"].clone()});
    multi["spec"]["storageInitializer"] = json!({"enabled": true});
    let (out, _) = inject_yaml(&serde_norway::to_string(&multi).unwrap(), &profiles()).unwrap();
    let out: Value = serde_norway::from_str(&out).unwrap();
    for p in ["/spec/template", "/spec/worker", "/spec/prefill/template"] {
        assert_guarantees(out.pointer(p).unwrap(), "/mnt/models");
    }
    assert_eq!(out["spec"]["storageInitializer"]["enabled"], false);
    // A model that is no secure-model package is left alone.
    let (same, reports) = inject_yaml(
        &serde_norway::to_string(&llmisvc_sample()).unwrap(),
        &profiles(),
    )
    .unwrap();
    assert_eq!(reports[0].outcome, Outcome::NotAsked);
    assert_eq!(
        serde_norway::from_str::<Value>(&same).unwrap(),
        llmisvc_sample()
    );
}

#[test]
fn the_shipped_profiles_parse_and_bad_profiles_are_named() {
    assert_eq!(profiles().names(), ["confidential", "default"]);
    let base = "profiles:\n  p:\n    image: x\n    env:\n      SECURE_MODEL_KEYS: aws-kms:alias/k\n      SECURE_MODEL_TRUSTED_KEYS: /t/k.pem\n";
    assert!(Profiles::parse(base).is_ok());
    let cases: &[(&str, &str)] = &[
        ("      SECURE_MODEL_KEY: local:/k\n", "SECURE_MODEL_KEY is not a setting of secure-model-initc (did you mean SECURE_MODEL_KEYS?)"),
        ("      AWS_SECRET_ACCESS_KEY: abc\n", "is a credential: give it under secretEnv"),
        ("      SECURE_MODEL_ALLOW_DISK_PLAINTEXT: \"true\"\n", "may not be set by a profile"),
        ("      SECURE_MODEL_READ_AHEAD: \"999\"\n", "expected an integer from 1 to 256"),
        ("      SECURE_MODEL_TRUSTED_KEYS_PEM: nope\n", "SECURE_MODEL_TRUSTED_KEYS_PEM holds no usable public key"),
        ("    requireTee: true\n", "runtimeClassNames is empty"),
        ("    modelSizeLimit: 4GB\n", "modelSizeLimit: \"4GB\" is not a Kubernetes quantity"),
        ("    imagePullPolicy: Sometimes\n", "does not parse"),
        ("    imagePulPolicy: Always\n", "unknown field `imagePulPolicy`"),
        ("    secretEnv:\n      AWS_ACCESS_KEY_ID: {name: s}\n", "does not parse"),
    ];
    for (extra, expect) in cases {
        let text = format!("{base}{extra}");
        let e = secure_model_core::chain_message(&Profiles::parse(&text).unwrap_err());
        assert!(e.contains(expect), "{extra}: {e}");
    }
    let no_keys = "profiles:\n  p:\n    image: x\n    env: {SECURE_MODEL_TRUSTED_KEYS: /k.pem}\n";
    assert!(Profiles::parse(no_keys)
        .unwrap_err()
        .to_string()
        .contains("p"));
    assert!(matches!(
        Profiles::parse("profiles: {}\n"),
        Err(ProfileError::Empty)
    ));
    let two = format!("defaultProfile: q\n{base}");
    assert!(matches!(
        Profiles::parse(&two),
        Err(ProfileError::UnknownDefault { .. })
    ));
    let Err(ProfileError::Invalid { problem, .. }) = Profiles::parse(&base.replace("  p:", "  P:"))
    else {
        panic!("a profile name must be a DNS label");
    };
    assert!(problem.to_string().contains("DNS label"));
}

#[test]
fn a_profile_names_a_signer_in_any_trust_policy_form() {
    let with = |env: &str| {
        format!("profiles:\n  p:\n    image: x\n    env:\n      SECURE_MODEL_KEYS: aws-kms:alias/k\n{env}")
    };
    let signers = [
        "      SECURE_MODEL_TRUSTED_KEYS: /t/k.pem\n",
        "      SECURE_MODEL_TRUSTED_CERT_ROOTS: /t/roots.pem\n",
        "      SECURE_MODEL_TRUST_POLICY: /t/policy.json\n",
        "      SECURE_MODEL_SIGSTORE_IDENTITY: https://github.com/o/r/.github/workflows/sign.yml@refs/heads/main\n      SECURE_MODEL_SIGSTORE_ISSUER: https://token.actions.githubusercontent.com\n",
        "      SECURE_MODEL_SIGSTORE_IDENTITY_REGEX: ^https://github.com/o/.*$\n      SECURE_MODEL_SIGSTORE_ISSUER: https://token.actions.githubusercontent.com\n",
    ];
    for env in signers {
        assert!(Profiles::parse(&with(env)).is_ok(), "{env}");
    }
    // Settings that narrow a signer are not a signer of their own.
    for env in [
        "",
        "      SECURE_MODEL_TRUSTED_CERT_SUBJECT: CN=signer\n",
        "      SECURE_MODEL_SIGSTORE_ISSUER: https://accounts.google.com\n",
    ] {
        let e = secure_model_core::chain_message(&Profiles::parse(&with(env)).unwrap_err());
        assert!(e.contains("no trusted signer"), "{env}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Pods that load the package in-process (`--load-format secure-model`, docs/python.md)

/// The vLLM pod started with the `secure_model` load format (`args` as given).
fn in_process_pod(args: Value) -> Value {
    let mut pod = vllm_pod(json!({}));
    pod["spec"]["containers"][0]["args"] = args;
    pod
}

/// A profile with a KEK file, trusted keys in a Secret volume, S3 credentials from a Secret
/// and a node cache.
fn kek_profiles() -> Profiles {
    Profiles::parse(
        "profiles:\n  kek:\n    image: ghcr.io/example/secure-model-initc:0.1.0\n    env:\n      SECURE_MODEL_KEYS: local:/var/run/secure-model/kek/kek.bin\n      SECURE_MODEL_TRUSTED_KEYS: /var/run/secure-model/trust/signer.pub.pem\n    secretEnv:\n      AWS_SECRET_ACCESS_KEY: {name: s3, key: secret}\n    secretVolumes:\n      - {name: kek, secretName: model-kek, mountPath: /var/run/secure-model/kek}\n      - {name: trust, secretName: signer, mountPath: /var/run/secure-model/trust}\n    resources: {limits: {memory: 4Gi}}\n    nodeCache: {hostPath: /mnt/disks/ssd0/secure-model}\n",
    )
    .unwrap()
}

fn env_names(c: &Value) -> Vec<&str> {
    c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

#[test]
fn an_in_process_pod_gets_no_loader_but_the_profiles_settings() {
    let forms = [
        json!(["serve", "/tmp/c", "--load-format", "secure-model"]),
        json!(["serve", "/tmp/c", "--load-format=secure-model"]),
        json!(["python", "-m", "secure_model.vllm", "serve", "secure+s3://models/llama/v1"]),
        json!(["python -m secure_model.vllm prepare \"$PKG\" /tmp/c && exec vllm serve /tmp/c --load-format secure-model --model-loader-extra-config \"{\\\"source\\\": \\\"$PKG\\\"}\""]),
    ];
    for args in forms {
        let pod = in_process_pod(args.clone());
        let (ops, profile, notes) = patch_for(&pod, &profiles(), Scope::Pod).unwrap().unwrap();
        assert_eq!(profile, "default");
        assert!(notes[0].contains("no init container"), "{notes:?}");
        let out = apply(&pod, &ops);
        let spec = &out["spec"];
        assert!(spec.get("initContainers").is_none(), "{args}: {spec:#}");
        assert_eq!(spec["volumes"], pod["spec"]["volumes"], "no model volume");
        let c = &spec["containers"][0];
        assert_eq!(
            c["volumeMounts"], pod["spec"]["containers"][0]["volumeMounts"],
            "no model mount"
        );
        assert_eq!(c["args"], args, "the command line is the user's");
        assert!(
            c.get("resources").is_none(),
            "the loader's limits are the init container's"
        );
        assert!(c.get("securityContext").is_none());
        // The init container's variables, in its order, credentials by reference only.
        let injected = inject_pod(&vllm_pod(json!({}))).unwrap().unwrap();
        assert_eq!(c["env"], init_container(&injected["spec"])["env"]);
        let names = env_names(c);
        for n in [
            "SECURE_MODEL_KEYS",
            "SECURE_MODEL_TRUSTED_KEYS_PEM",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(names.contains(&n), "{names:?}");
        }
        let secret = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "AWS_SECRET_ACCESS_KEY")
            .unwrap();
        assert!(secret.get("value").is_none());
        assert_eq!(
            out["metadata"]["annotations"]["secure-model.io/injected"],
            "default"
        );
        // A second admission changes nothing.
        assert_eq!(inject_pod(&out).unwrap(), None);
    }
    // The same pod without the load format gets the loader, as before.
    let plain = in_process_pod(json!([
        "serve",
        "/mnt/models",
        "--load-format",
        "safetensors"
    ]));
    assert_guarantees(&inject_pod(&plain).unwrap().unwrap()["spec"], "/mnt/models");
}

#[test]
fn an_in_process_container_gets_the_secret_volumes_read_only_and_nothing_else() {
    let mut pod = in_process_pod(json!(["--load-format", "secure-model"]));
    pod["metadata"]["annotations"]["secure-model.io/containers"] = json!("vllm");
    pod["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "metrics", "image": "prom/exporter"}));
    let profiles = kek_profiles();
    let (ops, _, notes) = patch_for(&pod, &profiles, Scope::Pod).unwrap().unwrap();
    assert!(notes[0].contains("node cache"), "{notes:?}");
    let out = apply(&pod, &ops);
    let spec = &out["spec"];
    assert_eq!(
        spec["volumes"],
        json!([
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
            {"name": "kek", "secret": {"secretName": "model-kek"}},
            {"name": "trust", "secret": {"secretName": "signer"}},
        ]),
        "the Secrets, no hostPath, no model volume"
    );
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        json!([
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "kek", "mountPath": "/var/run/secure-model/kek", "readOnly": true},
            {"name": "trust", "mountPath": "/var/run/secure-model/trust", "readOnly": true},
        ])
    );
    assert_eq!(
        env_names(&spec["containers"][0]),
        [
            "SECURE_MODEL_KEYS",
            "SECURE_MODEL_TRUSTED_KEYS",
            "AWS_SECRET_ACCESS_KEY"
        ],
        "no cache variable"
    );
    assert_eq!(
        spec["containers"][1],
        json!({"name": "metrics", "image": "prom/exporter"}),
        "a sidecar gets nothing"
    );
    assert!(spec.get("initContainers").is_none());
    assert!(patch_for(&out, &profiles, Scope::Pod).unwrap().is_none());
    // Without volumes or env at all, the lists are created.
    let mut bare = in_process_pod(json!(["--load-format=secure-model"]));
    bare["spec"].as_object_mut().unwrap().remove("volumes");
    bare["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("volumeMounts");
    let (ops, _, _) = patch_for(&bare, &profiles, Scope::Pod).unwrap().unwrap();
    let out = apply(&bare, &ops);
    assert_eq!(out["spec"]["volumes"].as_array().unwrap().len(), 2);
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(patch_for(&out, &profiles, Scope::Pod).unwrap().is_none());
}

#[test]
fn an_in_process_pod_is_checked_like_any_other() {
    type Mutate = fn(&mut Value);
    let cases: Vec<(&str, Mutate, &str)> = vec![
        (
            "a storage-initializer as well",
            |p| {
                p["spec"]["initContainers"] = json!([{"name": "storage-initializer", "image": "kserve/storage-initializer:v0.15.0", "args": ["s3://b/m", "/mnt/models"]}]);
            },
            "needs no init container, but the pod also has init container \"storage-initializer\"",
        ),
        (
            "a serving container that reads the directory next to one that loads in-process",
            |p| {
                p["metadata"]["annotations"]["secure-model.io/containers"] = json!("vllm,tgi");
                p["spec"]["containers"].as_array_mut().unwrap().push(
                    json!({"name": "tgi", "image": "tgi", "args": ["--model-id", "/mnt/models"]}),
                );
            },
            "the containers chosen for the model are vllm, tgi",
        ),
        (
            "a variable of the profile set otherwise by the container",
            |p| {
                p["spec"]["containers"][0]["env"] =
                    json!([{"name": "SECURE_MODEL_KEYS", "value": "local:/mine"}]);
            },
            "container \"vllm\" sets SECURE_MODEL_KEYS itself",
        ),
        (
            "the TEE profile outside a TEE",
            |p| {
                p["metadata"]["annotations"]["secure-model.io/profile"] = json!("confidential");
            },
            "requires a TEE",
        ),
        (
            "a LocalModelCache",
            |p| {
                p["metadata"]["labels"]["internal.serving.kserve.io/localmodel"] = json!("llama");
                p["metadata"]["annotations"]["internal.serving.kserve.io/localmodel-sourceuri"] =
                    json!("secure+s3://models/llama/v1");
                p["metadata"]["annotations"]["internal.serving.kserve.io/localmodel-pvc-name"] =
                    json!("llama-gpu");
            },
            "only secure-model's init container reads a LocalModelCache copy",
        ),
    ];
    for (what, mutate, expect) in cases {
        let mut pod = in_process_pod(json!(["--load-format", "secure-model"]));
        mutate(&mut pod);
        let msg = refusal(&pod).to_string();
        assert!(msg.contains(expect), "{what}: {msg}");
    }
    // The container's own value equal to the profile's is kept (a manual injection ran).
    let mut pod = in_process_pod(json!(["--load-format", "secure-model"]));
    pod["spec"]["containers"][0]["env"] =
        json!([{"name": "SECURE_MODEL_KEYS", "value": "aws-kms:alias/secure-model"}]);
    let out = inject_pod(&pod).unwrap().unwrap();
    let keys = env_names(&out["spec"]["containers"][0])
        .iter()
        .filter(|n| **n == "SECURE_MODEL_KEYS")
        .count();
    assert_eq!(keys, 1);
    // The profile's Secret volumes: a pod volume of that name from elsewhere, or a mount at
    // their path, is refused.
    let profiles = kek_profiles();
    let mut taken = in_process_pod(json!(["--load-format", "secure-model"]));
    taken["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "kek", "emptyDir": {}}));
    let e = patch_for(&taken, &profiles, Scope::Pod)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("already has a volume named \"kek\" that is not the Secret \"model-kek\""),
        "{e}"
    );
    let mut mounted = in_process_pod(json!(["--load-format", "secure-model"]));
    mounted["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "dshm", "mountPath": "/var/run/secure-model/trust/"}));
    let e = patch_for(&mounted, &profiles, Scope::Pod)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("already has a mount at /var/run/secure-model/trust/ that is not the profile's Secret volume \"trust\""),
        "{e}"
    );
}

#[test]
fn an_in_process_workload_and_llminferenceservice_are_valid_and_idempotent() {
    let schemas = K8sSchemas::load();
    let mut pod = in_process_pod(json!(["--load-format", "secure-model"]));
    pod["metadata"].as_object_mut().unwrap().remove("namespace");
    let obj = workload("Deployment", "apps/v1", &pod);
    let (out, reports) = inject_yaml(&serde_norway::to_string(&obj).unwrap(), &profiles()).unwrap();
    assert!(matches!(reports[0].outcome, Outcome::Injected { .. }));
    let injected: Value = serde_norway::from_str(&out).unwrap();
    let t = &injected["spec"]["template"]["spec"];
    assert!(t.get("initContainers").is_none());
    assert!(env_names(&t["containers"][0]).contains(&"SECURE_MODEL_KEYS"));
    if let Some(s) = &schemas {
        let e = errors(&s.for_kind("Deployment", "apps/v1"), &injected);
        assert!(e.is_empty(), "{e:#?}");
    }
    let (again, reports) = inject_yaml(&out, &profiles()).unwrap();
    assert_eq!(again, out);
    assert_eq!(reports[0].outcome, Outcome::AlreadyInjected);
    // An LLMInferenceService whose `main` loads in-process: no init container, KServe's own
    // initializer off, `main` configured.
    let mut isvc = llmisvc_sample();
    isvc["spec"]["model"]["uri"] = json!("secure+s3://models/qwen3-coder/v1");
    isvc["spec"]["template"]["containers"][0]["args"] = json!([
        "--load-format",
        "secure-model",
        "--model-loader-extra-config",
        "{\"source\": \"secure+s3://models/qwen3-coder/v1\"}"
    ]);
    let (out, reports) =
        inject_yaml(&serde_norway::to_string(&isvc).unwrap(), &profiles()).unwrap();
    assert!(matches!(reports[0].outcome, Outcome::Injected { .. }));
    let out: Value = serde_norway::from_str(&out).unwrap();
    assert_eq!(out["spec"]["storageInitializer"], json!({"enabled": false}));
    let t = &out["spec"]["template"];
    assert!(t.get("initContainers").is_none(), "{t:#}");
    assert!(t.get("volumes").is_none());
    let names = env_names(&t["containers"][0]);
    assert!(
        names.contains(&"HF_TOKEN") && names.contains(&"SECURE_MODEL_KEYS"),
        "{names:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Properties

fn arb_volume() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"emptyDir": {"medium": "Memory"}})),
        Just(json!({"emptyDir": {}})),
        Just(json!({"persistentVolumeClaim": {"claimName": "c"}})),
        Just(json!({"hostPath": {"path": "/x"}})),
        Just(json!({"configMap": {"name": "c"}})),
    ]
}

fn arb_mount() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["v0", "v1", "v2", "secure-model-plaintext"]),
        prop::sample::select(vec!["/mnt/models", "/mnt/models/", "/data", "/mnt"]),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(n, p, ro)| {
            let mut m = json!({"name": n, "mountPath": p});
            if let Some(ro) = ro {
                m["readOnly"] = json!(ro);
            }
            m
        })
}

fn arb_container(prefix: &'static str) -> impl Strategy<Value = Value> {
    (0u8..4, prop::collection::vec(arb_mount(), 0..3)).prop_map(move |(i, mounts)| {
        let mut c = json!({"name": format!("{prefix}{i}"), "image": "x"});
        if !mounts.is_empty() {
            c["volumeMounts"] = json!(mounts);
        }
        c
    })
}

fn arb_pod() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(arb_container("app"), 1..4),
        prop::collection::vec(arb_container("init"), 0..3),
        prop::collection::vec((prop::sample::select(vec!["v0", "v1", "v2", "secure-model-plaintext"]), arb_volume()), 0..4),
        prop::sample::select(vec!["/mnt/models", "/data"]),
        prop::option::of(prop::sample::select(vec!["kata-qemu-snp", "runc"])),
        prop::sample::select(vec!["default", "confidential"]),
    )
        .prop_map(|(containers, inits, vols, dest, class, profile)| {
            let mut volumes: Vec<Value> = Vec::new();
            for (name, mut v) in vols {
                if volumes.iter().all(|x| x["name"] != name) {
                    v["name"] = json!(name);
                    volumes.push(v);
                }
            }
            let mut pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "labels": {"secure-model.io/inject": "true"}, "annotations": {
                    "secure-model.io/source": "secure+s3://b/m", "secure-model.io/destination": dest,
                    "secure-model.io/profile": profile}},
                "spec": {"containers": containers}
            });
            if !inits.is_empty() {
                pod["spec"]["initContainers"] = json!(inits);
            }
            if !volumes.is_empty() {
                pod["spec"]["volumes"] = json!(volumes);
            }
            if let Some(c) = class {
                pod["spec"]["runtimeClassName"] = json!(c);
            }
            pod
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the pod, injection either refuses or yields a pod where the model volume is a
    /// memory-backed emptyDir that no other container can write; a second injection is a no-op.
    #[test]
    fn injection_keeps_the_model_in_memory_and_is_idempotent(pod in arb_pod()) {
        let profiles = profiles();
        match patch_for(&pod, &profiles, Scope::Pod) {
            Err(_) => {}
            Ok(None) => prop_assert!(false, "an opted-in pod is injected or refused"),
            Ok(Some((ops, _, _))) => {
                let out = apply(&pod, &ops);
                let dest = pod["metadata"]["annotations"]["secure-model.io/destination"].as_str().unwrap();
                assert_guarantees(&out["spec"], dest);
                prop_assert!(patch_for(&out, &profiles, Scope::Pod).unwrap().is_none());
            }
        }
    }

    /// The admission handler answers any bytes without panicking.
    #[test]
    fn reviews_of_arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = secure_model_webhook::admission::review(&body, &profiles(), Scope::Pod);
    }
}
