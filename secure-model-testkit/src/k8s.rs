//! Kubernetes and KServe reference data for manifest tests: YAML streams, KServe's files in
//! `../shared/kserve` (when present), strict Kubernetes JSON Schemas from the PyPI package
//! `kubernetes-validate` in the interop venv, and the strictness helper for OpenAPI schemas.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

/// The Kubernetes version whose strict schemas the tests use (k8s-openapi's `v1_33` too).
pub const K8S_SCHEMA_VERSION: &str = "v1.33.0";

/// Every non-empty document of a YAML stream.
pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The first document of a YAML file.
pub fn load_yaml(path: &Path) -> Value {
    yaml_docs(&std::fs::read_to_string(path).unwrap())
        .into_iter()
        .next()
        .unwrap()
}

/// KServe's reference files (`SMTEST_KSERVE_REF`, default `<repo>/../shared/kserve`),
/// or `None` with a notice when absent (a fresh clone): callers skip their cross-checks.
pub fn kserve_ref() -> Option<PathBuf> {
    let p = std::env::var_os("SMTEST_KSERVE_REF")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo().join("../shared/kserve"));
    if p.join("serving.kserve.io_clusterstoragecontainers.full.yaml")
        .is_file()
    {
        Some(p)
    } else {
        eprintln!(
            "NOTICE: KServe reference files not found at {} (set SMTEST_KSERVE_REF): \
             schema validation skipped, structural rules still checked",
            p.display()
        );
        None
    }
}

/// Makes an OpenAPI object schema strict, like `kubectl apply --validate=strict`: an object with
/// declared `properties` (and no `additionalProperties` / `x-kubernetes-preserve-unknown-fields`)
/// refuses unknown fields, so a misspelt field fails the test instead of being pruned silently.
pub fn strict(schema: &mut Value) {
    match schema {
        Value::Object(m) => {
            let preserve = m
                .get("x-kubernetes-preserve-unknown-fields")
                .is_some_and(|v| v == true);
            if m.contains_key("properties") && !m.contains_key("additionalProperties") && !preserve
            {
                m.insert("additionalProperties".into(), Value::Bool(false));
            }
            for v in m.values_mut() {
                strict(v);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strict),
        _ => {}
    }
}

/// The served+stored version of a CRD, with its `apiVersion`, kind and scope.
pub fn crd_identity(crd: &Value) -> (String, String, String, &Value) {
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["served"] == true && v["storage"] == true)
        .unwrap();
    (
        format!(
            "{}/{}",
            crd["spec"]["group"].as_str().unwrap(),
            version["name"].as_str().unwrap()
        ),
        crd["spec"]["names"]["kind"].as_str().unwrap().to_string(),
        crd["spec"]["scope"].as_str().unwrap().to_string(),
        version,
    )
}

/// Error messages of `doc` against `v`, with where.
pub fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The strict (`additionalProperties: false`) Kubernetes JSON Schemas that `kubernetes-validate`
/// ships, in the interop venv.
pub struct K8sSchemas {
    dir: PathBuf,
    registry: &'static jsonschema::Registry<'static>,
}

impl K8sSchemas {
    /// The schemas of [`K8S_SCHEMA_VERSION`] from the venv of `SMTEST_PYTHON` (`None`
    /// when interop is skipped). Panics when the venv lacks them: run scripts/setup-python.sh.
    pub fn load() -> Option<Self> {
        let py = crate::python()?;
        let out = Command::new(&py)
            .args([
                "-c",
                "import os, kubernetes_validate as k; print(os.path.dirname(k.__file__))",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubernetes-validate is not in {} (run scripts/setup-python.sh): {}",
            py.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let pkg = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        let dir = pkg.join(format!(
            "kubernetes-json-schema/{K8S_SCHEMA_VERSION}-local-strict"
        ));
        let defs: Value =
            serde_json::from_slice(&std::fs::read(dir.join("_definitions.json")).unwrap()).unwrap();
        let registry = jsonschema::Registry::new()
            .add("https://kubernetes.io/api/_definitions.json", defs)
            .unwrap()
            .prepare()
            .unwrap();
        Some(Self {
            dir,
            registry: Box::leak(Box::new(registry)),
        })
    }

    /// The validator of the root schema `file` (`pod-v1.json`, `deployment-apps-v1.json`...).
    pub fn validator(&self, file: &str) -> jsonschema::Validator {
        // Each root has an `$id` under https://kubernetes.io/api/, so its references to
        // `/api/_definitions.json` resolve to the registry's entry.
        let root: Value =
            serde_json::from_slice(&std::fs::read(self.dir.join(file)).unwrap()).unwrap();
        jsonschema::options()
            .with_registry(self.registry)
            .build(&root)
            .unwrap()
    }

    /// The validator of the object kind `kind` in `apiVersion` (`Pod`, `apps/v1`...).
    pub fn for_kind(&self, kind: &str, api_version: &str) -> jsonschema::Validator {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (format!("-{}", g.split('.').next().unwrap()), v),
            None => (String::new(), api_version),
        };
        self.validator(&format!("{}{group}-{version}.json", kind.to_lowercase()))
    }
}
