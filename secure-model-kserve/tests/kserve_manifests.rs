//! The KServe deployment artifacts in `deploy/kserve/`: every manifest against KServe's own
//! schemas (the ClusterStorageContainer CRD's `openAPIV3Schema`, the InferenceService types of
//! KServe's generated OpenAPI document, the InferenceService CRD's group/version/scope), and the
//! KServe rules our storage initializer depends on:
//! container name `storage-initializer`, no `args`, URI formats that are ours only, none of our
//! schemes claimed by KServe's default ClusterStorageContainer (whose regex is searched anywhere
//! in the URI, like Go's `regexp.MatchString`), memory-backed model volumes in confidential pods.
//!
//! The KServe reference files are read from `SMTEST_KSERVE_REF` (default
//! `<repo>/../shared/kserve`). Without them the schema checks are skipped with a notice, and the
//! structural rules still run on the facts encoded below.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;
use secure_model_testkit::k8s::{crd_identity, errors, kserve_ref, load_yaml, strict, yaml_docs};
use secure_model_testkit::repo;
use serde_json::{json, Value};

use secure_model_kserve::csc::{
    DEFAULT_CSC_PREFIXES, DEFAULT_CSC_REGEXES, KEY_PROVIDER_TYPES, OUR_URI_FORMS,
    STORAGE_INITIALIZER_CONTAINER,
};

/// (file name, document) for every manifest in deploy/kserve.
fn manifests() -> Vec<(String, Value)> {
    let dir = repo().join("deploy/kserve");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let docs = yaml_docs(&std::fs::read_to_string(&f).unwrap());
        assert!(!docs.is_empty(), "{name}: no YAML document");
        for d in docs {
            out.push((name.clone(), d));
        }
    }
    out
}

fn of_kind<'a>(all: &'a [(String, Value)], kind: &str) -> Vec<&'a (String, Value)> {
    all.iter().filter(|(_, d)| d["kind"] == kind).collect()
}

/// KServe's matching: `prefix` with strings.HasPrefix, `regex` with an unanchored search.
fn format_matches(format: &Value, uri: &str) -> bool {
    if let Some(p) = format["prefix"].as_str() {
        if uri.starts_with(p) {
            return true;
        }
    }
    if let Some(r) = format["regex"].as_str() {
        if Regex::new(r).unwrap().is_match(uri) {
            return true;
        }
    }
    false
}

fn default_csc_formats() -> Vec<Value> {
    DEFAULT_CSC_PREFIXES
        .iter()
        .map(|p| json!({ "prefix": p }))
        .chain(DEFAULT_CSC_REGEXES.iter().map(|r| json!({ "regex": r })))
        .collect()
}

fn default_csc_claims(uri: &str) -> bool {
    default_csc_formats().iter().any(|f| format_matches(f, uri))
}

fn env_of<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
}

/// Every storage URI an InferenceService names.
fn isvc_uris(isvc: &Value) -> Vec<String> {
    let p = &isvc["spec"]["predictor"];
    let mut out = Vec::new();
    if let Some(u) = p["model"]["storageUri"].as_str() {
        out.push(u.to_string());
    }
    for s in p["storageUris"].as_array().into_iter().flatten() {
        out.push(s["uri"].as_str().unwrap().to_string());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Schema helpers

fn csc_validator(r: &Path) -> jsonschema::Validator {
    let crd = load_yaml(&r.join("serving.kserve.io_clusterstoragecontainers.full.yaml"));
    let (_, _, _, version) = crd_identity(&crd);
    let mut schema = version["schema"]["openAPIV3Schema"].clone();
    strict(&mut schema);
    jsonschema::validator_for(&schema).unwrap()
}

/// The corev1.Container schema, taken from the ClusterStorageContainer CRD (it embeds one), for
/// the `v1.Container` definitions KServe's OpenAPI document references but does not contain.
fn container_schema(r: &Path) -> Value {
    let crd = load_yaml(&r.join("serving.kserve.io_clusterstoragecontainers.full.yaml"));
    let (_, _, _, version) = crd_identity(&crd);
    version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["container"].clone()
}

fn isvc_validator(r: &Path) -> jsonschema::Validator {
    let swagger: Value =
        serde_json::from_slice(&std::fs::read(r.join("kserve-openapi-swagger.json")).unwrap())
            .unwrap();
    let mut defs = swagger["definitions"].as_object().unwrap().clone();
    let mut text = serde_json::to_string(&swagger["definitions"]).unwrap();
    text.push_str(&serde_json::to_string(&swagger["paths"]).unwrap());
    // Definitions the document references but does not hold (Kubernetes and Knative types).
    let missing: BTreeSet<String> = Regex::new(r##""\$ref":"#/definitions/([^"]+)""##)
        .unwrap()
        .captures_iter(&text)
        .map(|c| c[1].to_string())
        .filter(|n| !defs.contains_key(n))
        .collect();
    assert!(missing.contains("v1.Container"), "{missing:?}");
    for n in missing {
        let s = match n.as_str() {
            "v1.Container" => container_schema(r),
            "v1.ObjectMeta" => json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            }),
            "v1.Volume" => json!({
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}}
            }),
            _ => json!({}),
        };
        defs.insert(n, s);
    }
    let mut definitions = Value::Object(defs);
    strict(&mut definitions);
    // ObjectMeta and Volume above are partial: let their other fields through.
    definitions["v1.ObjectMeta"]["additionalProperties"] = Value::Bool(true);
    definitions["v1.Volume"]["additionalProperties"] = Value::Bool(true);
    let schema = json!({
        "$ref": "#/definitions/v1beta1.InferenceService",
        "definitions": definitions,
    });
    jsonschema::validator_for(&schema).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn the_encoded_default_csc_matches_the_reference_files() {
    let Some(r) = kserve_ref() else { return };
    for f in [
        "clusterstoragecontainer-default.kustomize.yaml",
        "clusterstoragecontainer-default.helm.yaml",
    ] {
        let d = load_yaml(&r.join(f));
        assert_eq!(
            d["spec"]["supportedUriFormats"].as_array().unwrap(),
            &default_csc_formats(),
            "{f}: the default CSC's formats changed; update DEFAULT_CSC_* and re-check our schemes"
        );
    }
}

#[test]
fn matching_semantics_are_kserves() {
    // The default regex is searched anywhere in the string, so a scheme containing "http"
    // would be claimed by the default initializer too; ours are not.
    assert!(default_csc_claims("s3://b/k"));
    assert!(default_csc_claims("xhttps://a/b"));
    assert!(default_csc_claims("secure+https://host/path"));
    assert!(default_csc_claims("https://acct.blob.core.windows.net/c/p"));
    assert!(!default_csc_claims("secure+s3://b/k"));
    // Our prefix does not claim theirs.
    assert!(!format_matches(
        &json!({"prefix": "secure+s3://"}),
        "s3://b/k"
    ));
}

#[test]
fn none_of_our_schemes_is_claimed_by_the_default_csc() {
    for uri in OUR_URI_FORMS {
        assert!(
            !uri.contains("http"),
            "{uri}: 'http' in a URI can match the default CSC's regex"
        );
        assert!(
            !default_csc_claims(uri),
            "{uri} is claimed by KServe's default CSC"
        );
    }
}

#[test]
fn cluster_storage_containers_follow_the_kserve_rules() {
    let all = manifests();
    let cscs = of_kind(&all, "ClusterStorageContainer");
    assert!(cscs.len() >= 2, "expected the prefix and the named CSC");
    let mut matched_by_prefix: BTreeSet<&str> = BTreeSet::new();
    for (file, csc) in &cscs {
        assert_eq!(csc["apiVersion"], "serving.kserve.io/v1alpha1", "{file}");
        assert!(
            csc["metadata"]["namespace"].is_null(),
            "{file}: cluster-scoped"
        );
        let spec = &csc["spec"];
        let c = &spec["container"];
        assert_eq!(c["name"], STORAGE_INITIALIZER_CONTAINER, "{file}");
        assert!(
            c.get("args").is_none(),
            "{file}: args would replace KServe's SRC DEST pairs"
        );
        assert!(
            c.get("command").is_none(),
            "{file}: the entrypoint is the binary"
        );
        assert_eq!(
            c["image"].as_str().unwrap().rsplit(':').next().unwrap(),
            env!("CARGO_PKG_VERSION"),
            "{file}: image tag and crate version differ"
        );
        assert_eq!(spec["workloadType"], "initContainer", "{file}");
        assert_eq!(spec["supportsMultiModelDownload"], true, "{file}");
        // Non-root, read-only root filesystem, no privilege.
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{file}");
        assert_eq!(sc["runAsUser"], 65532, "{file}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{file}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{file}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{file}");
        // Resources: requests at least the process's headroom; the limit covers a model.
        assert!(c["resources"]["requests"]["memory"].is_string(), "{file}");
        assert!(c["resources"]["limits"]["memory"].is_string(), "{file}");
        // Configuration: a trusted key that parses, key specs of known provider types, never
        // disk plaintext.
        let pem = env_of(c, "SECURE_MODEL_TRUSTED_KEYS_PEM").expect("inline trusted keys");
        let keys = secure_model_core::verify::TrustedKeys::from_pem_bundle(pem).unwrap();
        assert!(!keys.is_empty(), "{file}");
        let specs = env_of(c, "SECURE_MODEL_KEYS").expect("SECURE_MODEL_KEYS");
        for spec in specs.split(',') {
            let (kind, arg) = spec.split_once(':').unwrap();
            assert!(KEY_PROVIDER_TYPES.contains(&kind), "{file}: {spec}");
            assert!(!arg.is_empty(), "{file}: {spec}");
        }
        assert!(
            env_of(c, "SECURE_MODEL_ALLOW_DISK_PLAINTEXT").is_none(),
            "{file}: disk plaintext must not be enabled cluster-wide"
        );
        // Formats: ours only, never one the default CSC could also claim.
        let formats = spec["supportedUriFormats"].as_array().unwrap();
        for f in formats {
            let p = f["prefix"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: {f}: use prefixes"));
            assert!(f.get("regex").is_none(), "{file}: {f}");
            assert!(
                p.starts_with("secure+") && !p.contains("http"),
                "{file}: {p}"
            );
            assert!(!default_csc_claims(p), "{file}: {p}");
        }
        for uri in OUR_URI_FORMS {
            if formats.iter().any(|f| format_matches(f, uri)) {
                assert!(
                    matched_by_prefix.insert(uri),
                    "{uri} matched by two ClusterStorageContainers (KServe picks either)"
                );
            }
        }
    }
    let all_forms: BTreeSet<&str> = OUR_URI_FORMS.iter().copied().collect();
    assert_eq!(
        matched_by_prefix, all_forms,
        "some documented forms have no CSC"
    );
}

#[test]
fn inference_services_use_our_storage_and_memory_backed_volumes() {
    let all = manifests();
    let cscs = of_kind(&all, "ClusterStorageContainer");
    let csc_names: BTreeSet<&str> = cscs
        .iter()
        .map(|(_, c)| c["metadata"]["name"].as_str().unwrap())
        .collect();
    let sas: BTreeSet<&str> = of_kind(&all, "ServiceAccount")
        .iter()
        .map(|(_, s)| s["metadata"]["name"].as_str().unwrap())
        .collect();
    let isvcs = of_kind(&all, "InferenceService");
    assert!(isvcs.len() >= 3);
    let (mut confidential, mut named, mut by_prefix) = (0, 0, 0);
    for (file, isvc) in &isvcs {
        assert_eq!(isvc["apiVersion"], "serving.kserve.io/v1beta1", "{file}");
        let p = &isvc["spec"]["predictor"];
        let uris = isvc_uris(isvc);
        assert!(!uris.is_empty(), "{file}");
        for uri in &uris {
            assert!(!default_csc_claims(uri), "{file}: {uri}");
            assert!(!uri.contains("http"), "{file}: {uri}");
        }
        match p["storageContainerName"].as_str() {
            Some(name) => {
                named += 1;
                assert!(csc_names.contains(name), "{file}: no CSC named {name}");
            }
            None => {
                by_prefix += 1;
                for uri in &uris {
                    let n = cscs
                        .iter()
                        .filter(|(_, c)| {
                            c["spec"]["supportedUriFormats"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .any(|f| format_matches(f, uri))
                        })
                        .count();
                    assert_eq!(n, 1, "{file}: {uri} must match exactly one of our CSCs");
                }
            }
        }
        if let Some(sa) = p["serviceAccountName"].as_str() {
            assert!(sas.contains(sa), "{file}: no ServiceAccount {sa}");
        }
        // The model volume KServe would mount must already exist, memory-backed.
        let vols = p["volumes"].as_array().cloned().unwrap_or_default();
        let memory_backed = |name: &str| {
            vols.iter()
                .any(|v| v["name"] == name && v["emptyDir"]["medium"] == "Memory")
        };
        let needed = if p["model"]["storageUri"].is_string() {
            "kserve-provision-location"
        } else {
            "mnt-models"
        };
        assert!(
            memory_backed(needed),
            "{file}: volume {needed} must be a memory-backed emptyDir"
        );
        if let Some(class) = p["runtimeClassName"].as_str() {
            assert!(
                class.starts_with("kata-qemu-"),
                "{file}: {class} is not a Kata CoCo class"
            );
            confidential += 1;
        }
    }
    assert!(
        confidential >= 2 && named >= 1 && by_prefix >= 1,
        "need confidential examples in both the storageContainerName and the prefix form"
    );
}

#[test]
fn credentials_follow_kserves_conventions() {
    let all = manifests();
    let secrets = of_kind(&all, "Secret");
    let sas = of_kind(&all, "ServiceAccount");
    assert!(!secrets.is_empty() && !sas.is_empty());
    let secret_names: BTreeSet<&str> = secrets
        .iter()
        .map(|(_, s)| s["metadata"]["name"].as_str().unwrap())
        .collect();
    for (file, sa) in &sas {
        for s in sa["secrets"].as_array().unwrap() {
            assert!(
                secret_names.contains(s["name"].as_str().unwrap()),
                "{file}: {s}"
            );
        }
    }
    // KServe's S3 annotations and the variable names its credential builder copies.
    let want_annotations: BTreeSet<String> = match kserve_ref() {
        Some(r) => {
            let sample = yaml_docs(
                &std::fs::read_to_string(r.join("sample-s3-secret-and-sa.yaml")).unwrap(),
            );
            let s = sample.iter().find(|d| d["kind"] == "Secret").unwrap();
            s["metadata"]["annotations"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        }
        None => [
            "serving.kserve.io/s3-endpoint",
            "serving.kserve.io/s3-usehttps",
            "serving.kserve.io/s3-region",
            "serving.kserve.io/s3-useanoncredential",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
    };
    for (file, s) in &secrets {
        let ann: BTreeSet<String> = s["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(ann, want_annotations, "{file}");
        let data = s["stringData"]
            .as_object()
            .or(s["data"].as_object())
            .unwrap();
        for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            assert!(data.contains_key(k), "{file}: {k}");
        }
    }
}

#[test]
fn the_network_policy_allows_only_dns_storage_and_key_brokers() {
    let all = manifests();
    let nps = of_kind(&all, "NetworkPolicy");
    assert_eq!(nps.len(), 1);
    let (file, np) = nps[0];
    assert_eq!(np["apiVersion"], "networking.k8s.io/v1");
    let spec = &np["spec"];
    assert_eq!(spec["policyTypes"], json!(["Egress"]), "{file}");
    // Selects every example InferenceService's pods by KServe's label.
    let selected: BTreeSet<&str> = spec["podSelector"]["matchExpressions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["key"] == "serving.kserve.io/inferenceservice" && e["operator"] == "In")
        .flat_map(|e| e["values"].as_array().unwrap().iter())
        .map(|v| v.as_str().unwrap())
        .collect();
    for (_, isvc) in of_kind(&all, "InferenceService") {
        let name = isvc["metadata"]["name"].as_str().unwrap();
        assert!(selected.contains(name), "{file}: {name} not selected");
    }
    let egress = spec["egress"].as_array().unwrap();
    let mut dns = BTreeSet::new();
    for rule in egress {
        // No rule may open everything: each names destinations and ports.
        assert!(
            rule["to"].as_array().is_some_and(|t| !t.is_empty()),
            "{file}: {rule}"
        );
        let ports = rule["ports"].as_array().unwrap();
        assert!(!ports.is_empty(), "{file}: {rule}");
        for peer in rule["to"].as_array().unwrap() {
            if let Some(cidr) = peer["ipBlock"]["cidr"].as_str() {
                assert!(
                    !cidr.ends_with("/0"),
                    "{file}: {cidr} opens the whole internet"
                );
            }
        }
        for p in ports {
            if p["port"] == 53 {
                dns.insert(p["protocol"].as_str().unwrap().to_string());
            } else {
                assert_eq!(p["protocol"], "TCP", "{file}: {p}");
            }
        }
    }
    assert_eq!(
        dns,
        ["TCP".to_string(), "UDP".to_string()].into(),
        "{file}: DNS over UDP and TCP"
    );
    // Object store and KMS over 443, the KBS by namespace and pod selector.
    assert!(
        egress
            .iter()
            .filter(|r| r["ports"][0]["port"] == 443)
            .count()
            >= 2
    );
    assert!(egress
        .iter()
        .any(
            |r| r["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                == "trustee-operator-system"
        ));
}

#[test]
fn manifests_validate_against_kserves_schemas() {
    let all = manifests();
    let Some(r) = kserve_ref() else { return };
    let csc = csc_validator(&r);
    let isvc = isvc_validator(&r);
    let csc_crd = load_yaml(&r.join("serving.kserve.io_clusterstoragecontainers.full.yaml"));
    let isvc_crd = load_yaml(&r.join("serving.kserve.io_inferenceservices.minimal.yaml"));
    let (csc_api, csc_kind, csc_scope, _) = crd_identity(&csc_crd);
    let (isvc_api, isvc_kind, isvc_scope, _) = crd_identity(&isvc_crd);
    assert_eq!(
        (csc_kind.as_str(), csc_scope.as_str()),
        ("ClusterStorageContainer", "Cluster")
    );
    assert_eq!(
        (isvc_kind.as_str(), isvc_scope.as_str()),
        ("InferenceService", "Namespaced")
    );
    let mut checked = 0;
    for (file, doc) in &all {
        match doc["kind"].as_str().unwrap() {
            "ClusterStorageContainer" => {
                assert_eq!(doc["apiVersion"], csc_api.as_str(), "{file}");
                let e = errors(&csc, doc);
                assert!(e.is_empty(), "{file}: {e:#?}");
                checked += 1;
            }
            "InferenceService" => {
                assert_eq!(doc["apiVersion"], isvc_api.as_str(), "{file}");
                let e = errors(&isvc, doc);
                assert!(e.is_empty(), "{file}: {e:#?}");
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked >= 5);
}

#[test]
fn the_schema_validation_catches_mistakes() {
    // The validators must fail on the mistakes they exist to catch, or they check nothing.
    let Some(r) = kserve_ref() else { return };
    let all = manifests();
    let csc = csc_validator(&r);
    let isvc = isvc_validator(&r);
    let (_, good_csc) = *of_kind(&all, "ClusterStorageContainer")
        .iter()
        .find(|(_, c)| c["metadata"]["name"] == "secure-model")
        .unwrap();
    let (_, good_isvc) = of_kind(&all, "InferenceService")[0];
    assert!(errors(&csc, good_csc).is_empty());
    assert!(errors(&isvc, good_isvc).is_empty());

    let mut bad = good_csc.clone();
    bad["spec"]["supportedUriFormats"][0] = json!({"prefx": "secure+s3://"});
    assert!(!errors(&csc, &bad).is_empty(), "misspelt format key");
    let mut bad = good_csc.clone();
    bad["spec"]["container"]["env"][0]["value"] = json!(42);
    assert!(!errors(&csc, &bad).is_empty(), "env value must be a string");
    let mut bad = good_csc.clone();
    bad["spec"]["container"]
        .as_object_mut()
        .unwrap()
        .remove("name");
    assert!(!errors(&csc, &bad).is_empty(), "container name is required");
    let mut bad = good_csc.clone();
    bad["spec"]["supportsMultiModelDownload"] = json!("yes");
    assert!(!errors(&csc, &bad).is_empty());

    let mut bad = good_isvc.clone();
    bad["spec"]["predictor"]["storageContainername"] = json!("x");
    assert!(!errors(&isvc, &bad).is_empty(), "misspelt predictor field");
    let mut bad = good_isvc.clone();
    bad["spec"]["predictor"]["model"]
        .as_object_mut()
        .unwrap()
        .remove("modelFormat");
    assert!(!errors(&isvc, &bad).is_empty(), "modelFormat is required");
    let mut bad = good_isvc.clone();
    bad["spec"]["predictor"]["storageUris"] = json!([{"mountPath": "/mnt/models"}]);
    assert!(
        !errors(&isvc, &bad).is_empty(),
        "storageUris[].uri is required"
    );
    let mut bad = good_isvc.clone();
    bad["spec"]["predictor"]["containers"] = json!([{"image": "x", "nme": "y"}]);
    assert!(
        !errors(&isvc, &bad).is_empty(),
        "containers use the corev1 schema"
    );
}
