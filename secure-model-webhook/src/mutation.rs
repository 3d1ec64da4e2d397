//! The injection as a pure function: given an object, where its pod spec (and metadata) sit,
//! a checked [`Ask`] and a [`Profile`], the RFC 6902 operations that add the secure loader,
//! or a [`Refusal`]. No I/O: the webhook, `inject` and the tests call the same code.
//!
//! The operations add: the init container `storage-initializer` first among the init
//! containers (image, `SRC DEST` args, the profile's variables and secret references, a
//! hardened security context, the model volume mounted read-write at the destination); a
//! memory-backed `emptyDir` for the model unless one is already mounted there; read-only
//! mounts of it in the target containers; the profile's Secret volumes; and the
//! `secure-model.io/injected` annotation. A pod spec that already has a `storage-initializer`
//! (ours, or the one KServe's pod mutator adds from our ClusterStorageContainer) is left
//! alone, so a second admission is a no-op.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ResourceRequirements,
    SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use crate::annotations::{INJECTED, MODEL_VOLUME};
use crate::profile::Profile;
use crate::request::Ask;
use crate::Refusal;
use secure_model_kserve::csc::STORAGE_INITIALIZER_CONTAINER;

/// The UID and GID the init container runs as (distroless `nonroot`, as the image's).
pub const RUN_AS: i64 = 65532;

/// Where in an object the pod spec and its metadata are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PodAt {
    /// The pod's (or template's) `metadata`, when the object has one for it.
    pub metadata: Option<PointerBuf>,
    /// The `PodSpec`.
    pub spec: PointerBuf,
}

impl PodAt {
    /// `metadata` and `spec` under `base` (`/` for a Pod, `/spec/template` for a Deployment).
    pub fn template(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            metadata: Some(pointer(&format!("{base}/metadata"))),
            spec: pointer(&format!("{base}/spec")),
        }
    }

    /// A bare `PodSpec` at `spec` without metadata (an LLMInferenceService's `spec.template`).
    pub fn bare(spec: &str) -> Self {
        Self {
            metadata: None,
            spec: pointer(spec),
        }
    }
}

fn pointer(s: &str) -> PointerBuf {
    PointerBuf::from_tokens(s.split('/').filter(|t| !t.is_empty()))
}

/// What the injection does to one pod spec.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Decision {
    /// A `storage-initializer` is already there: nothing to do.
    AlreadyInjected,
    /// Apply these operations.
    Patch(Vec<PatchOperation>),
}

/// The injection could not be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InjectError {
    /// The pod must be refused.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A typed piece could not be encoded as JSON.
    #[error("cannot encode the injected {what}")]
    Encode {
        /// Which piece.
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The pod spec's facts the injection works from.
struct Spec<'a> {
    spec: &'a serde_json::Map<String, Value>,
}

impl<'a> Spec<'a> {
    fn list(&self, field: &str) -> Result<&'a [Value], Refusal> {
        match self.spec.get(field) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(Refusal::malformed(format!("spec.{field} is not a list"))),
        }
    }

    fn has(&self, field: &str) -> bool {
        !matches!(self.spec.get(field), None | Some(Value::Null))
    }

    fn volume(&self, name: &str) -> Result<Option<&'a Value>, Refusal> {
        Ok(self.list("volumes")?.iter().find(|v| v["name"] == name))
    }

    /// (kind, container) for every init and app container.
    fn all_containers(&self) -> Result<Vec<&'a Value>, Refusal> {
        Ok(self
            .list("initContainers")?
            .iter()
            .chain(self.list("containers")?)
            .collect())
    }
}

fn name_of(c: &Value) -> &str {
    c["name"].as_str().unwrap_or("")
}

fn mounts_of(c: &Value) -> &[Value] {
    c["volumeMounts"].as_array().map_or(&[], Vec::as_slice)
}

fn norm(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        p => p,
    }
}

/// Every container is an object whose `volumeMounts`, when set, is a list: the patch appends
/// to those lists, and a patch the API server cannot apply must never be answered.
fn check_container_shapes(spec: &Spec<'_>) -> Result<(), Refusal> {
    for field in ["initContainers", "containers"] {
        for (i, c) in spec.list(field)?.iter().enumerate() {
            let Some(c) = c.as_object() else {
                return Err(Refusal::malformed(format!(
                    "spec.{field}[{i}] is not an object"
                )));
            };
            if !matches!(
                c.get("volumeMounts"),
                None | Some(Value::Null | Value::Array(_))
            ) {
                return Err(Refusal::malformed(format!(
                    "spec.{field}[{i}].volumeMounts is not a list"
                )));
            }
        }
    }
    Ok(())
}

/// The metadata the injection annotates is an object whose `annotations`, when set, is one.
fn check_metadata_shape(object: &Value, meta: &PointerBuf) -> Result<(), Refusal> {
    let bad = |what: &str| Refusal::malformed(format!("{meta}{what} is not an object"));
    match object.pointer(meta.as_str()) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) => match m.get("annotations") {
            None | Some(Value::Null | Value::Object(_)) => Ok(()),
            Some(_) => Err(bad("/annotations")),
        },
        Some(_) => Err(bad("")),
    }
}

fn memory_backed(volume: &Value) -> bool {
    volume.pointer("/emptyDir/medium").and_then(Value::as_str) == Some("Memory")
}

/// The operations that inject `profile` for `ask` into the pod spec of `object` at `at`.
///
/// # Errors
/// [`InjectError::Refused`] when the pod would break the guarantees (see [`Refusal`]).
pub fn inject(
    object: &Value,
    at: &PodAt,
    ask: &Ask,
    profile: &Profile,
) -> Result<Decision, InjectError> {
    let spec = object
        .pointer(at.spec.as_str())
        .and_then(Value::as_object)
        .ok_or_else(|| Refusal::malformed(format!("{} is not a pod spec object", at.spec)))?;
    let spec = Spec { spec };
    if spec
        .list("initContainers")?
        .iter()
        .any(|c| name_of(c) == STORAGE_INITIALIZER_CONTAINER)
    {
        return Ok(Decision::AlreadyInjected);
    }
    check_container_shapes(&spec)?;
    if let Some(meta) = &at.metadata {
        check_metadata_shape(object, meta)?;
    }
    check_runtime_class(&spec, profile)?;
    let targets = targets(&spec, ask)?;
    let volume = model_volume(&spec, &ask.destination)?;
    check_model_mounts(&spec, volume.name())?;
    check_secret_volume_names(&spec, profile)?;
    let mut ops = Vec::new();
    ops.push(add_init_container(&spec, at, ask, profile, volume.name())?);
    ops.extend(add_volumes(&spec, at, profile, &volume)?);
    ops.extend(add_mounts(&spec, at, &targets, ask, volume.name())?);
    if let Some(meta) = &at.metadata {
        ops.push(annotate(object, meta, &profile.name));
    }
    Ok(Decision::Patch(ops))
}

fn check_runtime_class(spec: &Spec<'_>, profile: &Profile) -> Result<(), Refusal> {
    if !profile.require_tee {
        return Ok(());
    }
    let class = spec.spec.get("runtimeClassName").and_then(Value::as_str);
    match class {
        Some(c) if profile.runtime_class_names.iter().any(|a| a == c) => Ok(()),
        _ => Err(Refusal::RuntimeClassNotAllowed {
            profile: profile.name.clone(),
            found: class.map_or_else(|| "unset".to_string(), |c| format!("{c:?}")),
            allowed: profile.runtime_class_names.join(", "),
        }),
    }
}

/// Indices (in `spec.containers`) of the containers that get the model.
fn targets(spec: &Spec<'_>, ask: &Ask) -> Result<Vec<usize>, Refusal> {
    let containers = spec.list("containers")?;
    let Some(names) = &ask.containers else {
        if containers.is_empty() {
            return Err(Refusal::NoContainers);
        }
        return Ok((0..containers.len()).collect());
    };
    names
        .iter()
        .map(|n| {
            containers
                .iter()
                .position(|c| name_of(c) == n)
                .ok_or_else(|| Refusal::UnknownContainer {
                    name: n.clone(),
                    present: containers
                        .iter()
                        .map(name_of)
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        })
        .collect()
}

/// The volume that will hold the model.
enum ModelVolume {
    /// A memory-backed emptyDir the pod already has (mounted at the destination, or named
    /// like ours).
    Existing(String),
    /// Ours, to be added.
    New,
}

impl ModelVolume {
    fn name(&self) -> &str {
        match self {
            ModelVolume::Existing(n) => n,
            ModelVolume::New => MODEL_VOLUME,
        }
    }
}

fn model_volume(spec: &Spec<'_>, dest: &str) -> Result<ModelVolume, Refusal> {
    let mut found: Option<&str> = None;
    for c in spec.all_containers()? {
        for m in mounts_of(c)
            .iter()
            .filter(|m| m["mountPath"].as_str().map(norm) == Some(dest))
        {
            let volume = m["name"].as_str().unwrap_or("");
            let ok = spec.volume(volume)?.is_some_and(memory_backed);
            if !ok {
                return Err(Refusal::DiskBackedDestination {
                    container: name_of(c).to_string(),
                    volume: volume.to_string(),
                    path: dest.to_string(),
                });
            }
            match found {
                Some(f) if f != volume => {
                    return Err(Refusal::AmbiguousDestination {
                        first: f.to_string(),
                        second: volume.to_string(),
                        path: dest.to_string(),
                    })
                }
                _ => found = Some(volume),
            }
        }
    }
    if let Some(f) = found {
        return Ok(ModelVolume::Existing(f.to_string()));
    }
    match spec.volume(MODEL_VOLUME)? {
        None => Ok(ModelVolume::New),
        Some(v) if memory_backed(v) => Ok(ModelVolume::Existing(MODEL_VOLUME.to_string())),
        Some(_) => Err(Refusal::VolumeNameTaken {
            name: MODEL_VOLUME.to_string(),
        }),
    }
}

/// No container may mount the model volume writable (only ours, added below, writes it).
fn check_model_mounts(spec: &Spec<'_>, volume: &str) -> Result<(), Refusal> {
    for c in spec.all_containers()? {
        if mounts_of(c)
            .iter()
            .any(|m| m["name"] == volume && m["readOnly"] != true)
        {
            return Err(Refusal::WritableModelMount {
                container: name_of(c).to_string(),
                volume: volume.to_string(),
            });
        }
    }
    Ok(())
}

fn check_secret_volume_names(spec: &Spec<'_>, profile: &Profile) -> Result<(), Refusal> {
    for v in &profile.secret_volumes {
        if spec.volume(&v.name)?.is_some() || v.name == MODEL_VOLUME {
            return Err(Refusal::VolumeNameTaken {
                name: v.name.clone(),
            });
        }
    }
    Ok(())
}

fn encode<T: serde::Serialize>(what: &'static str, v: &T) -> Result<Value, InjectError> {
    serde_json::to_value(v).map_err(|source| InjectError::Encode { what, source })
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

fn child(base: &PointerBuf, tokens: &[&str]) -> PointerBuf {
    let mut p = base.clone();
    for t in tokens {
        p.push_back(*t);
    }
    p
}

/// Adds `item` to the list `field` under `base`: the whole list when absent, else at `index`
/// (`-` appends).
fn add_to_list(
    spec: &Spec<'_>,
    base: &PointerBuf,
    field: &str,
    index: &str,
    item: Value,
) -> PatchOperation {
    if spec.has(field) {
        add(child(base, &[field, index]), item)
    } else {
        add(child(base, &[field]), Value::Array(vec![item]))
    }
}

fn add_init_container(
    spec: &Spec<'_>,
    at: &PodAt,
    ask: &Ask,
    profile: &Profile,
    volume: &str,
) -> Result<PatchOperation, InjectError> {
    let c = encode("init container", &init_container(ask, profile, volume))?;
    // First: it runs before every other init container, so none can read an empty model.
    Ok(add_to_list(spec, &at.spec, "initContainers", "0", c))
}

fn add_volumes(
    spec: &Spec<'_>,
    at: &PodAt,
    profile: &Profile,
    volume: &ModelVolume,
) -> Result<Vec<PatchOperation>, InjectError> {
    let mut new = Vec::new();
    if let ModelVolume::New = volume {
        new.push(encode("model volume", &model_volume_source(profile))?);
    }
    for v in &profile.secret_volumes {
        let vol = Volume {
            name: v.name.clone(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(v.secret_name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        new.push(encode("secret volume", &vol)?);
    }
    if new.is_empty() {
        return Ok(Vec::new());
    }
    if spec.has("volumes") {
        Ok(new
            .into_iter()
            .map(|v| add(child(&at.spec, &["volumes", "-"]), v))
            .collect())
    } else {
        Ok(vec![add(child(&at.spec, &["volumes"]), Value::Array(new))])
    }
}

fn add_mounts(
    spec: &Spec<'_>,
    at: &PodAt,
    targets: &[usize],
    ask: &Ask,
    volume: &str,
) -> Result<Vec<PatchOperation>, InjectError> {
    let containers = spec.list("containers")?;
    let mount = encode(
        "volume mount",
        &VolumeMount {
            name: volume.to_string(),
            mount_path: ask.destination.clone(),
            read_only: Some(true),
            ..Default::default()
        },
    )?;
    let mut ops = Vec::new();
    for &i in targets {
        let Some(c) = containers.get(i) else { continue };
        let present = mounts_of(c).iter().any(|m| {
            m["name"] == volume && m["mountPath"].as_str().map(norm) == Some(&ask.destination)
        });
        if present {
            continue;
        }
        let base = child(&at.spec, &["containers", &i.to_string()]);
        ops.push(if c.get("volumeMounts").is_some_and(|m| !m.is_null()) {
            add(child(&base, &["volumeMounts", "-"]), mount.clone())
        } else {
            add(
                child(&base, &["volumeMounts"]),
                Value::Array(vec![mount.clone()]),
            )
        });
    }
    Ok(ops)
}

fn annotate(object: &Value, meta: &PointerBuf, profile: &str) -> PatchOperation {
    let value = Value::String(profile.to_string());
    match object.pointer(meta.as_str()) {
        None | Some(Value::Null) => add(
            meta.clone(),
            serde_json::json!({ "annotations": { INJECTED: profile } }),
        ),
        Some(m) if m.get("annotations").is_none_or(Value::is_null) => add(
            child(meta, &["annotations"]),
            serde_json::json!({ INJECTED: profile }),
        ),
        Some(_) => add(child(meta, &["annotations", INJECTED]), value),
    }
}

fn model_volume_source(profile: &Profile) -> Volume {
    Volume {
        name: MODEL_VOLUME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_string()),
            size_limit: profile.model_size_limit.clone().map(Quantity),
        }),
        ..Default::default()
    }
}

fn quantities(m: &BTreeMap<String, String>) -> Option<BTreeMap<String, Quantity>> {
    (!m.is_empty()).then(|| {
        m.iter()
            .map(|(k, v)| (k.clone(), Quantity(v.clone())))
            .collect()
    })
}

fn env(profile: &Profile) -> Vec<EnvVar> {
    let plain = profile.env.iter().map(|(k, v)| EnvVar {
        name: k.clone(),
        value: Some(v.clone()),
        value_from: None,
    });
    let secret = profile.secret_env.iter().map(|(k, r)| EnvVar {
        name: k.clone(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
    });
    plain.chain(secret).collect()
}

/// Non-root, read-only root filesystem, no privilege escalation, every capability dropped,
/// the runtime's default seccomp profile.
pub fn hardened_security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

fn init_container(ask: &Ask, profile: &Profile, volume: &str) -> Container {
    let mut mounts = vec![VolumeMount {
        name: volume.to_string(),
        mount_path: ask.destination.clone(),
        ..Default::default()
    }];
    mounts.extend(profile.secret_volumes.iter().map(|v| VolumeMount {
        name: v.name.clone(),
        mount_path: v.mount_path.clone(),
        read_only: Some(true),
        ..Default::default()
    }));
    let resources = ResourceRequirements {
        requests: quantities(&profile.resources.requests),
        limits: quantities(&profile.resources.limits),
        ..Default::default()
    };
    Container {
        name: STORAGE_INITIALIZER_CONTAINER.to_string(),
        image: Some(profile.image.clone()),
        image_pull_policy: profile.image_pull_policy.map(|p| p.as_str().to_string()),
        args: Some(vec![ask.source.clone(), ask.destination.clone()]),
        env: Some(env(profile)).filter(|e| !e.is_empty()),
        resources: Some(resources).filter(|r| r.requests.is_some() || r.limits.is_some()),
        security_context: Some(hardened_security_context()),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}
