//! The injection as a pure function: given an object, where its pod spec (and metadata) sit,
//! a checked [`Ask`] and the checked [`Profiles`], the RFC 6902 operations that add the secure
//! loader, or a [`Refusal`]. No I/O: the webhook, `inject` and the tests call the same code.
//!
//! The pod is read through `k8s-openapi`'s types ([`PodSpec`], [`ObjectMeta`]): a pod of the
//! wrong shape is refused by construction, and the operations are computed against the object
//! as sent, so fields the types do not know are never touched.
//!
//! A pod spec that already has an init container named `storage-initializer` is:
//!
//! - **ours** when it carries the `secure-model.io/injected` annotation naming a profile whose
//!   image it runs, or runs a profile's image with a `secure+` source (KServe injected it from
//!   our ClusterStorageContainer). It is not injected again; the injection only repairs what
//!   later webhooks changed: it moves the loader back to its place among the init containers,
//!   and turns KServe's disk `emptyDir` for the model into a memory-backed one;
//! - **KServe's own** when it writes KServe's model volume (`kserve-provision-location`, an
//!   `emptyDir`) at the destination: it is **taken over**, removed and replaced by ours, and
//!   the volume becomes memory-backed;
//! - **anyone else's**: the pod is **refused**, naming the container. Nothing that is not
//!   ours or KServe's is removed.
//!
//! Caches of ciphertext (docs/cache-kubernetes.md): a profile's `nodeCache` adds a `hostPath`
//! volume mounted read-write into our loader only, with `SECURE_MODEL_CACHE_DIR`; a pod that
//! KServe marked as served from a LocalModelCache ([`crate::localmodel`]) has the cache's
//! PersistentVolumeClaim taken off every serving container and mounted read-only into our
//! loader, which reads the package from it (a `secure+file://` source) and publishes the
//! plaintext into the memory-backed volume as always. Both run in either order with KServe's
//! pod mutator and are idempotent.
//!
//! A pod whose serving containers load the package themselves (`--load-format secure-model`,
//! [`crate::inprocess`]) gets no loader and no model volume: those containers get the
//! profile's variables, Secret variables and read-only Secret volumes, the rest of the pod is
//! untouched. Such a pod with a `storage-initializer`, a LocalModelCache, or serving
//! containers that load differently is refused.
//!
//! The loader goes first among the init containers, after only a service mesh's native
//! sidecar proxy (`restartPolicy: Always`) and the mesh init containers that precede it, so
//! its traffic to the store and key broker leaves through a running proxy.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, MoveOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, HostPathVolumeSource,
    PersistentVolumeClaimVolumeSource, PodSpec, ResourceRequirements, SeccompProfile,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::annotations::{
    CACHE_DIR_VARIABLE, CACHE_MAX_BYTES_VARIABLE, CACHE_MOUNT_PATH, CACHE_VOLUME, INJECTED,
    KNOWN_SIDECARS, KSERVE_CONTAINER, KSERVE_MODEL_VOLUME, LLMISVC_MAIN_CONTAINER,
    LOCALMODEL_MOUNT_PATH, LOCALMODEL_VOLUME, MESH_INIT_CONTAINERS, MODEL_VOLUME,
};
use crate::inprocess::loads_in_process;
use crate::localmodel::LocalModel;
use crate::profile::{quantity_bytes, Profile, Profiles};
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

/// Something the injection did besides adding the loader, worth a warning in the logs and in
/// the admission response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Note {
    /// KServe's own `storage-initializer` (this image) was removed and replaced by ours.
    TookOver {
        /// The image of the container removed.
        image: String,
    },
    /// Our loader was moved back to its place among the init containers (another webhook had
    /// put an init container before it).
    Reordered {
        /// Its index before.
        from: usize,
        /// Its index now.
        to: usize,
    },
    /// KServe's disk `emptyDir` for the model was made memory-backed.
    ModelVolumeInMemory {
        /// The volume.
        volume: String,
    },
    /// No loader: these containers load the package in-process and got the profile's
    /// settings and Secrets.
    InProcess {
        /// The containers.
        containers: Vec<String>,
        /// Whether the profile's node cache was left out (it is the init container's only).
        without_node_cache: bool,
    },
    /// The loader reads the package from a LocalModelCache's claim, which no serving
    /// container mounts.
    LocalModelCache {
        /// The PersistentVolumeClaim.
        pvc: String,
        /// The containers it was taken off (KServe had mounted it there).
        moved_from: Vec<String>,
    },
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::TookOver { image } => write!(f, "replaced KServe's storage-initializer (image {image}) with secure-model's loader"),
            Note::Reordered { from, to } => write!(f, "moved secure-model's loader from init container {from} back to {to}, ahead of the pod's other init containers"),
            Note::ModelVolumeInMemory { volume } => write!(f, "made the model volume {volume:?} memory-backed (it was a disk emptyDir)"),
            Note::InProcess { containers, without_node_cache } => write!(f, "no init container: {} load(s) the model in-process (--load-format secure-model) and got profile settings and Secrets instead{}", containers.join(", "), if *without_node_cache { " (the profile's node cache is for the init container only and is not mounted)" } else { "" }),
            Note::LocalModelCache { pvc, moved_from } if moved_from.is_empty() => write!(f, "secure-model's loader reads the package from the LocalModelCache claim {pvc:?} (read-only)"),
            Note::LocalModelCache { pvc, moved_from } => write!(f, "took the LocalModelCache claim {pvc:?} off {} and mounted it read-only into secure-model's loader, which reads the package from it", moved_from.join(", ")),
        }
    }
}

/// What the injection does to one pod spec.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Decision {
    /// Our loader is there and in place: nothing to do.
    AlreadyInjected,
    /// Apply these operations.
    Patch {
        /// The operations.
        ops: Vec<PatchOperation>,
        /// The profile applied (or that of the loader found).
        profile: String,
        /// What else was done.
        notes: Vec<Note>,
    },
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

/// The pod as the injection sees it: its spec and metadata, typed.
#[derive(Clone)]
struct Pod {
    spec: PodSpec,
    meta: Option<ObjectMeta>,
}

/// `v`, read as a `T`; a wrong shape is a refusal naming the field (`spec.containers[0]
/// .volumeMounts: invalid type: ...`).
fn typed<T: serde::de::DeserializeOwned>(v: &Value, at: &PointerBuf) -> Result<T, Refusal> {
    serde_path_to_error::deserialize(v.clone()).map_err(|e| {
        let base = at.as_str().trim_start_matches('/').replace('/', ".");
        let path = e.path().to_string();
        let field = if path == "." {
            base
        } else {
            format!("{base}.{path}")
        };
        Refusal::malformed(format!("{field}: {}", e.inner()))
    })
}

impl Pod {
    /// Reads the pod at `at` in `object`; a wrong shape is a refusal naming the field.
    fn read(object: &Value, at: &PodAt) -> Result<Self, Refusal> {
        let raw = object
            .pointer(at.spec.as_str())
            .filter(|v| v.is_object())
            .ok_or_else(|| Refusal::malformed(format!("{} is not a pod spec object", at.spec)))?;
        let spec: PodSpec = typed(raw, &at.spec)?;
        let meta = match &at.metadata {
            None => None,
            Some(m) => match object.pointer(m.as_str()) {
                None | Some(Value::Null) => None,
                Some(v) => Some(typed::<ObjectMeta>(v, m)?),
            },
        };
        Ok(Self { spec, meta })
    }

    fn init(&self) -> &[Container] {
        self.spec.init_containers.as_deref().unwrap_or_default()
    }

    fn volumes(&self) -> &[Volume] {
        self.spec.volumes.as_deref().unwrap_or_default()
    }

    fn volume(&self, name: &str) -> Option<&Volume> {
        self.volumes().iter().find(|v| v.name == name)
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.meta
            .as_ref()?
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    fn all_containers(&self) -> impl Iterator<Item = &Container> {
        self.init().iter().chain(&self.spec.containers)
    }
}

fn mounts(c: &Container) -> &[VolumeMount] {
    c.volume_mounts.as_deref().unwrap_or_default()
}

fn norm(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        p => p,
    }
}

/// Whether the absolute paths `a` and `b` are the same or one is under the other.
pub(crate) fn overlaps(a: &str, b: &str) -> bool {
    let (a, b) = (norm(a), norm(b));
    let under = |x: &str, y: &str| x.strip_prefix(y).is_some_and(|r| r.starts_with('/'));
    a == b || under(a, b) || under(b, a)
}

fn memory_backed(v: &Volume) -> bool {
    v.empty_dir.as_ref().and_then(|e| e.medium.as_deref()) == Some("Memory")
}

/// KServe's model volume, as its pod mutator creates it: a (disk) `emptyDir` named
/// `kserve-provision-location`.
fn kserve_model_volume(v: &Volume) -> bool {
    v.name == KSERVE_MODEL_VOLUME
        && v.empty_dir.is_some()
        && v.persistent_volume_claim.is_none()
        && v.host_path.is_none()
}

/// The operations that inject the secure loader for `ask` into the pod spec of `object` at
/// `at`, with the profile `profiles` choose for it.
///
/// # Errors
/// [`InjectError::Refused`] when the pod would break the guarantees (see [`Refusal`]).
pub fn inject(
    object: &Value,
    at: &PodAt,
    ask: &Ask,
    profiles: &Profiles,
) -> Result<Decision, InjectError> {
    let mut pod = Pod::read(object, at)?;
    let local = match &pod.meta {
        Some(m) => crate::localmodel::detect(m.labels.as_ref(), m.annotations.as_ref())?,
        None => None,
    };
    if pod.spec.containers.iter().any(loads_in_process) {
        return in_process(object, at, &pod, ask, profiles, local.as_ref());
    }
    let (prior, moved_from) = match &local {
        Some(l) => detach_claim(at, &mut pod, l.pvc()),
        None => (Vec::new(), Vec::new()),
    };
    let loader = pod
        .init()
        .iter()
        .position(|c| c.name == STORAGE_INITIALIZER_CONTAINER);
    match loader {
        Some(i) if is_ours(&pod, i, profiles) => {
            let mut notes = Vec::new();
            if let Some(l) = local.as_ref().filter(|_| !moved_from.is_empty()) {
                notes.push(Note::LocalModelCache {
                    pvc: l.pvc().to_string(),
                    moved_from,
                });
            }
            repair(at, &pod, i, ask, profiles, prior, notes)
        }
        _ => {
            let notes = local
                .iter()
                .map(|l| Note::LocalModelCache {
                    pvc: l.pvc().to_string(),
                    moved_from: moved_from.clone(),
                })
                .collect();
            let local = local.as_ref();
            match loader {
                None => fresh(object, at, &pod, ask, profiles, prior, notes, local),
                Some(i) => take_over(object, at, &pod, i, ask, profiles, prior, notes, local),
            }
        }
    }
}

/// The operations for a pod whose serving containers load the package in-process: the
/// profile's variables, Secret variables and Secret volumes (read-only) in those containers,
/// the annotation; no loader, no model volume. What is already there and equal is kept (a
/// second admission changes nothing); what differs is refused.
fn in_process(
    object: &Value,
    at: &PodAt,
    pod: &Pod,
    ask: &Ask,
    profiles: &Profiles,
    local: Option<&LocalModel>,
) -> Result<Decision, InjectError> {
    let names = |idx: &[usize]| {
        idx.iter()
            .filter_map(|&i| pod.spec.containers.get(i))
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let loading: Vec<usize> = pod
        .spec
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| loads_in_process(c))
        .map(|(i, _)| i)
        .collect();
    if let Some(c) = pod
        .init()
        .iter()
        .find(|c| c.name == STORAGE_INITIALIZER_CONTAINER)
    {
        return Err(Refusal::InProcessWithInitializer {
            containers: names(&loading),
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
        }
        .into());
    }
    if let Some(l) = local {
        return Err(Refusal::LocalModel {
            cache: l.cache().to_string(),
            why: format!("{} load(s) the model in-process (--load-format secure-model), and only secure-model's init container reads a LocalModelCache copy: disable the LocalModelCache for this InferenceService (serving.kserve.io/disable-localmodel), or serve from the init container's copy without --load-format secure-model", names(&loading)),
        }
        .into());
    }
    let profile = profiles.choose(ask.profile(), pod.spec.runtime_class_name.as_deref())?;
    let mut chosen = targets(pod, ask, profile)?;
    chosen.sort_unstable();
    chosen.dedup();
    if chosen != loading {
        return Err(Refusal::InProcessMixed {
            in_process: names(&loading),
            chosen: names(&chosen),
        }
        .into());
    }
    let mut ops = Vec::new();
    for v in profile.secret_volumes() {
        match pod.volume(&v.name) {
            Some(have) => {
                let same = have.secret.as_ref().and_then(|s| s.secret_name.as_deref())
                    == Some(v.secret_name.as_str());
                if !same {
                    return Err(Refusal::SecretVolumeTaken {
                        name: v.name.clone(),
                        secret: v.secret_name.clone(),
                        profile: profile.name().to_string(),
                    }
                    .into());
                }
            }
            None => {
                let vol = Volume {
                    name: v.name.clone(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(v.secret_name.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                ops.push(encode("secret volume", &vol)?);
            }
        }
    }
    let mut ops = match (ops.is_empty(), pod.spec.volumes.is_some()) {
        (true, _) => Vec::new(),
        (false, true) => ops
            .into_iter()
            .map(|v| add(child(&at.spec, &["volumes", "-"]), v))
            .collect(),
        (false, false) => vec![add(child(&at.spec, &["volumes"]), Value::Array(ops))],
    };
    let env = crate::inprocess::env(profile);
    let wanted_mounts = crate::inprocess::mounts(profile);
    for &i in &loading {
        let Some(c) = pod.spec.containers.get(i) else {
            continue;
        };
        let base = child(&at.spec, &["containers", &i.to_string()]);
        let have = c.env.as_deref().unwrap_or_default();
        let mut new_env = Vec::new();
        for e in &env {
            match have.iter().find(|h| h.name == e.name) {
                Some(h) if h == e => {}
                Some(_) => {
                    return Err(Refusal::EnvConflict {
                        container: c.name.clone(),
                        name: e.name.clone(),
                        profile: profile.name().to_string(),
                    }
                    .into())
                }
                None => new_env.push(encode("variable", e)?),
            }
        }
        ops.extend(append(&base, "env", c.env.is_some(), new_env));
        let mut new_mounts = Vec::new();
        for m in &wanted_mounts {
            match mounts(c)
                .iter()
                .find(|h| norm(&h.mount_path) == norm(&m.mount_path) || h.name == m.name)
            {
                Some(h) if h.name == m.name && norm(&h.mount_path) == norm(&m.mount_path) => {}
                Some(h) => {
                    return Err(Refusal::MountConflict {
                        container: c.name.clone(),
                        path: h.mount_path.clone(),
                        volume: m.name.clone(),
                    }
                    .into())
                }
                None => new_mounts.push(encode("volume mount", m)?),
            }
        }
        ops.extend(append(
            &base,
            "volumeMounts",
            c.volume_mounts.is_some(),
            new_mounts,
        ));
    }
    if let Some(meta) = &at.metadata {
        if pod.annotation(INJECTED) != Some(profile.name()) {
            ops.push(annotate(object, meta, profile.name()));
        }
    }
    if ops.is_empty() {
        return Ok(Decision::AlreadyInjected);
    }
    Ok(Decision::Patch {
        ops,
        profile: profile.name().to_string(),
        notes: vec![Note::InProcess {
            containers: loading
                .iter()
                .filter_map(|&i| pod.spec.containers.get(i))
                .map(|c| c.name.clone())
                .collect(),
            without_node_cache: profile.node_cache().is_some(),
        }],
    })
}

/// The operations that append `items` to the list `field` of the object at `base` (creating
/// it when `exists` is false).
fn append(base: &PointerBuf, field: &str, exists: bool, items: Vec<Value>) -> Vec<PatchOperation> {
    if items.is_empty() {
        Vec::new()
    } else if exists {
        items
            .into_iter()
            .map(|v| add(child(base, &[field, "-"]), v))
            .collect()
    } else {
        vec![add(child(base, &[field]), Value::Array(items))]
    }
}

/// Whether `v` is a volume of the PersistentVolumeClaim `pvc`.
fn is_claim(v: &Volume, pvc: &str) -> bool {
    v.persistent_volume_claim
        .as_ref()
        .is_some_and(|c| c.claim_name == pvc)
}

/// Removes every mount of a volume of the claim `pvc` from the pod's (serving) containers:
/// the operations, applied to `pod` too, and the containers they touched. KServe's pod
/// mutator mounts a LocalModelCache's claim straight into the server at `/mnt/models`; it
/// holds ciphertext, which only our loader reads.
fn detach_claim(at: &PodAt, pod: &mut Pod, pvc: &str) -> (Vec<PatchOperation>, Vec<String>) {
    let claims: Vec<String> = pod
        .volumes()
        .iter()
        .filter(|v| is_claim(v, pvc))
        .map(|v| v.name.clone())
        .collect();
    let mut ops = Vec::new();
    let mut touched = Vec::new();
    for (ci, c) in pod.spec.containers.iter_mut().enumerate() {
        let Some(list) = c.volume_mounts.as_mut() else {
            continue;
        };
        let doomed: Vec<usize> = list
            .iter()
            .enumerate()
            .filter(|(_, m)| claims.contains(&m.name))
            .map(|(mi, _)| mi)
            .collect();
        // From the last, so each index still names the mount it named in the object.
        for &mi in doomed.iter().rev() {
            ops.push(PatchOperation::Remove(RemoveOperation {
                path: child(
                    &at.spec,
                    &[
                        "containers",
                        &ci.to_string(),
                        "volumeMounts",
                        &mi.to_string(),
                    ],
                ),
            }));
            list.remove(mi);
        }
        if !doomed.is_empty() {
            touched.push(c.name.clone());
        }
    }
    (ops, touched)
}

/// The claim's volume for a LocalModelCache copy: the pod's own volume of that claim
/// (KServe's `kserve-pvc-source`), else ours, to be added.
fn claim_volume(pod: &Pod, local: &LocalModel) -> Result<(String, bool), Refusal> {
    if let Some(v) = pod.volumes().iter().find(|v| is_claim(v, local.pvc())) {
        return Ok((v.name.clone(), false));
    }
    if pod.volume(LOCALMODEL_VOLUME).is_some() {
        return Err(Refusal::VolumeNameTaken {
            name: LOCALMODEL_VOLUME.to_string(),
        });
    }
    Ok((LOCALMODEL_VOLUME.to_string(), true))
}

/// What the loader mounts besides the model volume and the profile's secrets.
#[derive(Default)]
struct Extra<'a> {
    /// The node cache.
    node_cache: Option<&'a crate::profile::NodeCache>,
    /// A LocalModelCache copy, with the name of the claim's volume.
    local: Option<(&'a LocalModel, String)>,
}

/// No path the loader needs may overlap the destination, and the volumes it adds need free
/// names.
fn check_extra(pod: &Pod, ask: &Ask, extra: &Extra<'_>) -> Result<(), Refusal> {
    let reserved = |path: &'static str, what: &'static str| {
        if overlaps(ask.destination(), path) {
            Err(Refusal::ReservedDestination {
                path: ask.destination().to_string(),
                reserved: path,
                what,
            })
        } else {
            Ok(())
        }
    };
    if extra.node_cache.is_some() {
        reserved(CACHE_MOUNT_PATH, "the node cache")?;
        if pod.volume(CACHE_VOLUME).is_some() {
            return Err(Refusal::VolumeNameTaken {
                name: CACHE_VOLUME.to_string(),
            });
        }
    }
    if extra.local.is_some() {
        reserved(LOCALMODEL_MOUNT_PATH, "the LocalModelCache copy")?;
    }
    Ok(())
}

/// Whether init container `i` (named `storage-initializer`) is secure-model's loader.
fn is_ours(pod: &Pod, i: usize, profiles: &Profiles) -> bool {
    let Some(c) = pod.init().get(i) else {
        return false;
    };
    let image = c.image.as_deref().unwrap_or_default();
    let annotated = pod
        .annotation(INJECTED)
        .and_then(|p| profiles.get(Some(p)).ok())
        .is_some_and(|p| p.image() == image);
    let secure_source = c
        .args
        .as_ref()
        .and_then(|a| a.first())
        .is_some_and(|s| s.starts_with("secure+"));
    annotated || (profiles.is_our_image(image) && secure_source)
}

/// Where our loader belongs among the init containers `others` (the pod's, ours excluded):
/// after a leading block of native sidecars and the mesh init containers that precede one.
fn loader_position(others: &[Container]) -> usize {
    let native = |c: &Container| c.restart_policy.as_deref() == Some("Always");
    let last_native = others.iter().rposition(native);
    let Some(last) = last_native else {
        return 0;
    };
    let block = others.get(..=last).unwrap_or_default();
    let all_mesh = block
        .iter()
        .all(|c| native(c) || MESH_INIT_CONTAINERS.contains(&c.name.as_str()));
    if all_mesh {
        last + 1
    } else {
        // Native sidecars mixed with application init containers: the mesh's part of the
        // leading block only.
        block
            .iter()
            .take_while(|c| native(c) || MESH_INIT_CONTAINERS.contains(&c.name.as_str()))
            .count()
    }
}

fn child(base: &PointerBuf, tokens: &[&str]) -> PointerBuf {
    let mut p = base.clone();
    for t in tokens {
        p.push_back(*t);
    }
    p
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

fn encode<T: serde::Serialize>(what: &'static str, v: &T) -> Result<Value, InjectError> {
    serde_json::to_value(v).map_err(|source| InjectError::Encode { what, source })
}

/// Our loader is there: move it back into place, make KServe's disk volume memory-backed.
fn repair(
    at: &PodAt,
    pod: &Pod,
    i: usize,
    ask: &Ask,
    profiles: &Profiles,
    prior: Vec<PatchOperation>,
    prior_notes: Vec<Note>,
) -> Result<Decision, InjectError> {
    let mut ops = prior;
    let mut notes = prior_notes;
    let init = pod.init();
    let others: Vec<Container> = init
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, c)| c.clone())
        .collect();
    let to = loader_position(&others);
    if to != i {
        ops.push(PatchOperation::Move(MoveOperation {
            from: child(&at.spec, &["initContainers", &i.to_string()]),
            path: child(&at.spec, &["initContainers", &to.to_string()]),
        }));
        notes.push(Note::Reordered { from: i, to });
    }
    let loader = init.get(i).cloned().unwrap_or_default();
    let dest = loader
        .args
        .as_ref()
        .and_then(|a| a.get(1))
        .map_or(ask.destination().to_string(), |d| norm(d).to_string());
    let profile = pod
        .annotation(INJECTED)
        .filter(|p| profiles.get(Some(p)).is_ok())
        .map_or_else(|| "ClusterStorageContainer".to_string(), String::from);
    if let Some((index, volume)) = loader_volume(pod, &loader, &dest)? {
        if !memory_backed(volume) {
            let size = size_limit(ask, profiles.get(Some(&profile)).ok())?;
            ops.push(to_memory(at, index, volume, size)?);
            notes.push(Note::ModelVolumeInMemory {
                volume: volume.name.clone(),
            });
        }
    }
    if ops.is_empty() {
        return Ok(Decision::AlreadyInjected);
    }
    Ok(Decision::Patch {
        ops,
        profile,
        notes,
    })
}

/// The volume `loader` writes at `dest` (with its index), refused when it is neither
/// memory-backed nor KServe's disk `emptyDir`.
fn loader_volume<'p>(
    pod: &'p Pod,
    loader: &Container,
    dest: &str,
) -> Result<Option<(usize, &'p Volume)>, Refusal> {
    let Some(m) = mounts(loader).iter().find(|m| norm(&m.mount_path) == dest) else {
        return Ok(None);
    };
    let Some(index) = pod.volumes().iter().position(|v| v.name == m.name) else {
        return Ok(None);
    };
    let volume = pod
        .volumes()
        .get(index)
        .ok_or_else(|| Refusal::malformed("volume index"))?;
    if memory_backed(volume) || kserve_model_volume(volume) {
        return Ok(Some((index, volume)));
    }
    Err(Refusal::DiskBackedDestination {
        container: loader.name.clone(),
        volume: volume.name.clone(),
        path: dest.to_string(),
    })
}

/// Replaces volume `index` by a memory-backed `emptyDir` of the same name.
fn to_memory(
    at: &PodAt,
    index: usize,
    volume: &Volume,
    size: Option<String>,
) -> Result<PatchOperation, InjectError> {
    let v = Volume {
        name: volume.name.clone(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: size.map(Quantity),
        }),
        ..Default::default()
    };
    Ok(PatchOperation::Replace(ReplaceOperation {
        path: child(&at.spec, &["volumes", &index.to_string()]),
        value: encode("model volume", &v)?,
    }))
}

/// KServe's own `storage-initializer` at `i`: replaced by ours when it writes KServe's model
/// volume at the destination; anything else is refused.
#[allow(
    clippy::too_many_arguments,
    reason = "the pod, the ask, and what earlier steps did, passed on to fresh"
)]
fn take_over(
    object: &Value,
    at: &PodAt,
    pod: &Pod,
    i: usize,
    ask: &Ask,
    profiles: &Profiles,
    prior: Vec<PatchOperation>,
    prior_notes: Vec<Note>,
    local: Option<&LocalModel>,
) -> Result<Decision, InjectError> {
    let foreign = pod.init().get(i).cloned().unwrap_or_default();
    let image = foreign.image.clone().unwrap_or_default();
    let refuse = |why: &str| Refusal::ForeignInitializer {
        name: foreign.name.clone(),
        image: image.clone(),
        why: why.to_string(),
    };
    let volume = mounts(&foreign)
        .iter()
        .find(|m| norm(&m.mount_path) == ask.destination())
        .and_then(|m| pod.volume(&m.name))
        .filter(|v| kserve_model_volume(v))
        .ok_or_else(|| {
            refuse(&format!(
                "it does not write KServe's {KSERVE_MODEL_VOLUME} emptyDir at {}",
                ask.destination()
            ))
        })?;
    let index = pod
        .volumes()
        .iter()
        .position(|v| v.name == volume.name)
        .ok_or_else(|| refuse("its volume is missing"))?;
    let profile = profiles.choose(ask.profile(), pod.spec.runtime_class_name.as_deref())?;
    let size = size_limit(ask, Some(profile))?;
    let mut ops = prior;
    ops.push(PatchOperation::Remove(RemoveOperation {
        path: child(&at.spec, &["initContainers", &i.to_string()]),
    }));
    ops.push(to_memory(at, index, volume, size.clone())?);
    // The pod as it is after these two operations.
    let mut after = pod.clone();
    if let Some(list) = after.spec.init_containers.as_mut() {
        list.remove(i);
    }
    if let Some(v) = after.spec.volumes.as_mut().and_then(|l| l.get_mut(index)) {
        v.empty_dir = Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: size.map(Quantity),
        });
    }
    let mut notes = prior_notes;
    notes.push(Note::TookOver { image });
    fresh(object, at, &after, ask, profiles, ops, notes, local)
}

/// The model volume's `sizeLimit`: the pod's annotation, at most the profile's bound; else the
/// profile's.
fn size_limit(ask: &Ask, profile: Option<&Profile>) -> Result<Option<String>, Refusal> {
    let bound = profile.and_then(Profile::model_size_limit);
    match (ask.size_limit(), bound) {
        (None, b) => Ok(b.map(String::from)),
        (Some(a), None) => Ok(Some(a.to_string())),
        (Some(a), Some(b)) => {
            let (Some(x), Some(y)) = (quantity_bytes(a), quantity_bytes(b)) else {
                return Ok(Some(a.to_string()));
            };
            if x <= y {
                Ok(Some(a.to_string()))
            } else {
                Err(Refusal::BadSizeLimit {
                    value: a.to_string(),
                    why: format!(
                        "more than the profile's modelSizeLimit {b}: ask the operator for a profile with a larger bound"
                    ),
                })
            }
        }
    }
}

/// The operations that add our loader to `pod` (after `prior` operations, already reflected
/// in `pod`), reading a LocalModelCache copy when `local` names one.
#[allow(
    clippy::too_many_arguments,
    reason = "the pod, the ask, and what earlier steps did"
)]
fn fresh(
    object: &Value,
    at: &PodAt,
    pod: &Pod,
    ask: &Ask,
    profiles: &Profiles,
    prior: Vec<PatchOperation>,
    notes: Vec<Note>,
    local: Option<&LocalModel>,
) -> Result<Decision, InjectError> {
    let profile = profiles.choose(ask.profile(), pod.spec.runtime_class_name.as_deref())?;
    let size = size_limit(ask, Some(profile))?;
    let targets = targets(pod, ask, profile)?;
    let volume = model_volume(pod, ask.destination())?;
    check_model_mounts(pod, volume.name())?;
    check_secret_volume_names(pod, profile)?;
    let (local, new_claim) = match local {
        Some(l) => {
            let (name, new) = claim_volume(pod, l)?;
            (Some((l, name)), new)
        }
        None => (None, false),
    };
    let extra = Extra {
        node_cache: profile.node_cache(),
        local,
    };
    check_extra(pod, ask, &extra)?;
    let mut ops = prior;
    ops.push(add_init_container(
        pod,
        at,
        ask,
        profile,
        volume.name(),
        &extra,
    )?);
    ops.extend(add_volumes(
        pod, at, profile, &volume, size, &extra, new_claim,
    )?);
    ops.extend(add_mounts(pod, at, &targets, ask, volume.name())?);
    if let Some(meta) = &at.metadata {
        ops.push(annotate(object, meta, profile.name()));
    }
    Ok(Decision::Patch {
        ops,
        profile: profile.name().to_string(),
        notes,
    })
}

/// Indices (in `spec.containers`) of the containers that get the model: the ones the pod
/// names; else the profile's default containers present in the pod; else the serving
/// container (`kserve-container`, `main`, or the first container that is no known sidecar).
fn targets(pod: &Pod, ask: &Ask, profile: &Profile) -> Result<Vec<usize>, Refusal> {
    let containers = &pod.spec.containers;
    let index = |n: &str| containers.iter().position(|c| c.name == n);
    if let Some(names) = ask.containers() {
        return names
            .iter()
            .map(|n| {
                index(n).ok_or_else(|| Refusal::UnknownContainer {
                    name: n.clone(),
                    present: containers
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            })
            .collect();
    }
    let defaults: Vec<usize> = profile
        .default_containers()
        .iter()
        .filter_map(|n| index(n))
        .collect();
    if !defaults.is_empty() {
        return Ok(defaults);
    }
    let serving = index(KSERVE_CONTAINER)
        .or_else(|| index(LLMISVC_MAIN_CONTAINER))
        .or_else(|| {
            containers
                .iter()
                .position(|c| !KNOWN_SIDECARS.contains(&c.name.as_str()))
        });
    serving.map(|i| vec![i]).ok_or(Refusal::NoContainers)
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

fn model_volume(pod: &Pod, dest: &str) -> Result<ModelVolume, Refusal> {
    let mut found: Option<&str> = None;
    for c in pod.all_containers() {
        for m in mounts(c).iter().filter(|m| norm(&m.mount_path) == dest) {
            if !pod.volume(&m.name).is_some_and(memory_backed) {
                return Err(Refusal::DiskBackedDestination {
                    container: c.name.clone(),
                    volume: m.name.clone(),
                    path: dest.to_string(),
                });
            }
            match found {
                Some(f) if f != m.name => {
                    return Err(Refusal::AmbiguousDestination {
                        first: f.to_string(),
                        second: m.name.clone(),
                        path: dest.to_string(),
                    })
                }
                _ => found = Some(&m.name),
            }
        }
    }
    if let Some(f) = found {
        return Ok(ModelVolume::Existing(f.to_string()));
    }
    match pod.volume(MODEL_VOLUME) {
        None => Ok(ModelVolume::New),
        Some(v) if memory_backed(v) => Ok(ModelVolume::Existing(MODEL_VOLUME.to_string())),
        Some(_) => Err(Refusal::VolumeNameTaken {
            name: MODEL_VOLUME.to_string(),
        }),
    }
}

/// No container may mount the model volume writable (only ours, added below, writes it).
fn check_model_mounts(pod: &Pod, volume: &str) -> Result<(), Refusal> {
    for c in pod.all_containers() {
        if mounts(c)
            .iter()
            .any(|m| m.name == volume && m.read_only != Some(true))
        {
            return Err(Refusal::WritableModelMount {
                container: c.name.clone(),
                volume: volume.to_string(),
            });
        }
    }
    Ok(())
}

fn check_secret_volume_names(pod: &Pod, profile: &Profile) -> Result<(), Refusal> {
    for v in profile.secret_volumes() {
        if pod.volume(&v.name).is_some()
            || [MODEL_VOLUME, CACHE_VOLUME, LOCALMODEL_VOLUME].contains(&v.name.as_str())
        {
            return Err(Refusal::VolumeNameTaken {
                name: v.name.clone(),
            });
        }
    }
    Ok(())
}

fn add_init_container(
    pod: &Pod,
    at: &PodAt,
    ask: &Ask,
    profile: &Profile,
    volume: &str,
    extra: &Extra<'_>,
) -> Result<PatchOperation, InjectError> {
    let c = encode(
        "init container",
        &init_container(ask, profile, volume, extra),
    )?;
    if pod.spec.init_containers.is_none() {
        return Ok(add(
            child(&at.spec, &["initContainers"]),
            Value::Array(vec![c]),
        ));
    }
    // First, after a mesh's native sidecar: it runs before every application init container,
    // so none can read an empty model, and its traffic leaves through a running proxy.
    let i = loader_position(pod.init());
    Ok(add(child(&at.spec, &["initContainers", &i.to_string()]), c))
}

fn add_volumes(
    pod: &Pod,
    at: &PodAt,
    profile: &Profile,
    volume: &ModelVolume,
    size: Option<String>,
    extra: &Extra<'_>,
    new_claim: bool,
) -> Result<Vec<PatchOperation>, InjectError> {
    let mut new = Vec::new();
    if let ModelVolume::New = volume {
        new.push(encode("model volume", &model_volume_source(size))?);
    }
    if let Some(cache) = extra.node_cache {
        let vol = Volume {
            name: CACHE_VOLUME.to_string(),
            host_path: Some(HostPathVolumeSource {
                path: cache.host_path().to_string(),
                type_: Some("DirectoryOrCreate".to_string()),
            }),
            ..Default::default()
        };
        new.push(encode("node cache volume", &vol)?);
    }
    if let Some((l, name)) = extra.local.as_ref().filter(|_| new_claim) {
        let vol = Volume {
            name: name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: l.pvc().to_string(),
                read_only: Some(true),
            }),
            ..Default::default()
        };
        new.push(encode("LocalModelCache volume", &vol)?);
    }
    for v in profile.secret_volumes() {
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
    if pod.spec.volumes.is_some() {
        Ok(new
            .into_iter()
            .map(|v| add(child(&at.spec, &["volumes", "-"]), v))
            .collect())
    } else {
        Ok(vec![add(child(&at.spec, &["volumes"]), Value::Array(new))])
    }
}

fn add_mounts(
    pod: &Pod,
    at: &PodAt,
    targets: &[usize],
    ask: &Ask,
    volume: &str,
) -> Result<Vec<PatchOperation>, InjectError> {
    let mount = encode(
        "volume mount",
        &VolumeMount {
            name: volume.to_string(),
            mount_path: ask.destination().to_string(),
            read_only: Some(true),
            ..Default::default()
        },
    )?;
    let mut ops = Vec::new();
    for &i in targets {
        let Some(c) = pod.spec.containers.get(i) else {
            continue;
        };
        let present = mounts(c)
            .iter()
            .any(|m| m.name == volume && norm(&m.mount_path) == ask.destination());
        if present {
            continue;
        }
        let base = child(&at.spec, &["containers", &i.to_string()]);
        ops.push(if c.volume_mounts.is_some() {
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

fn model_volume_source(size: Option<String>) -> Volume {
    Volume {
        name: MODEL_VOLUME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_string()),
            size_limit: size.map(Quantity),
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

fn env(profile: &Profile, extra: &Extra<'_>) -> Vec<EnvVar> {
    let plain_var = |name: &str, value: String| EnvVar {
        name: name.to_string(),
        value: Some(value),
        value_from: None,
    };
    let cache = extra.node_cache.into_iter().flat_map(|c| {
        std::iter::once(plain_var(CACHE_DIR_VARIABLE, CACHE_MOUNT_PATH.to_string())).chain(
            c.max_size_bytes()
                .map(|b| plain_var(CACHE_MAX_BYTES_VARIABLE, b.to_string())),
        )
    });
    // The profile's plain variables, the cache's, then the Secret variables.
    let mut all = crate::inprocess::env(profile);
    let at = profile.env().len().min(all.len());
    all.splice(at..at, cache);
    all
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

fn init_container(ask: &Ask, profile: &Profile, volume: &str, extra: &Extra<'_>) -> Container {
    let mut mounts = vec![VolumeMount {
        name: volume.to_string(),
        mount_path: ask.destination().to_string(),
        ..Default::default()
    }];
    mounts.extend(profile.secret_volumes().iter().map(|v| VolumeMount {
        name: v.name.clone(),
        mount_path: v.mount_path.clone(),
        read_only: Some(true),
        ..Default::default()
    }));
    if extra.node_cache.is_some() {
        // Read-write: the loader fills and repairs the cache. Only this container mounts it.
        mounts.push(VolumeMount {
            name: CACHE_VOLUME.to_string(),
            mount_path: CACHE_MOUNT_PATH.to_string(),
            ..Default::default()
        });
    }
    if let Some((l, name)) = &extra.local {
        mounts.push(VolumeMount {
            name: name.clone(),
            mount_path: LOCALMODEL_MOUNT_PATH.to_string(),
            sub_path: Some(l.sub_path().to_string()),
            read_only: Some(true),
            ..Default::default()
        });
    }
    let source = extra
        .local
        .as_ref()
        .map_or_else(|| ask.source().to_string(), |(l, _)| l.source());
    let resources = ResourceRequirements {
        requests: quantities(&profile.resources().requests),
        limits: quantities(&profile.resources().limits),
        ..Default::default()
    };
    Container {
        name: STORAGE_INITIALIZER_CONTAINER.to_string(),
        image: Some(profile.image().to_string()),
        image_pull_policy: profile.image_pull_policy().map(|p| p.as_str().to_string()),
        args: Some(vec![source, ask.destination().to_string()]),
        env: Some(env(profile, extra)).filter(|e| !e.is_empty()),
        resources: Some(resources).filter(|r| r.requests.is_some() || r.limits.is_some()),
        security_context: Some(hardened_security_context()),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, always: bool) -> Container {
        Container {
            name: name.into(),
            restart_policy: always.then(|| "Always".to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn the_loader_goes_first_after_a_meshs_native_sidecar() {
        assert_eq!(loader_position(&[]), 0);
        assert_eq!(loader_position(&[c("fetch-data", false)]), 0);
        // Classic Istio: istio-init (iptables) runs last, after the loader.
        assert_eq!(
            loader_position(&[c("fetch-data", false), c("istio-init", false)]),
            0
        );
        // Native sidecars: validation, proxy, then the loader.
        assert_eq!(
            loader_position(&[
                c("istio-validation", false),
                c("istio-proxy", true),
                c("fetch-data", false)
            ]),
            2
        );
        assert_eq!(
            loader_position(&[c("linkerd-init", false), c("linkerd-proxy", true)]),
            2
        );
        // An application init container before a native sidecar: only the mesh's block.
        assert_eq!(
            loader_position(&[c("fetch-data", false), c("istio-proxy", true)]),
            0
        );
    }
}
