//! The labels and annotations a pod (or a workload's pod template) uses to ask for the secure
//! loader, and the one the injection writes. Reading them is [`crate::request`]'s job; this
//! module only names them.

/// Label or annotation: `"true"` asks for injection, `"false"` refuses it even in a namespace
/// that opted in. The webhook's `objectSelector` matches the label, so a pod outside an
/// opted-in namespace reaches the webhook only with the label.
pub const INJECT: &str = "secure-model.io/inject";

/// Annotation: the package to load, a `secure+` URI (`secure+s3://bucket/prefix`, ...).
pub const SOURCE: &str = "secure-model.io/source";

/// Annotation: where the plaintext model is published (default [`DEFAULT_DESTINATION`]).
pub const DESTINATION: &str = "secure-model.io/destination";

/// Annotation: comma-separated names of the containers that read the model (default: the
/// profile's `defaultContainers`, else the serving container: `kserve-container`, `main`
/// for an LLMInferenceService, else the first container that is no known sidecar).
pub const CONTAINERS: &str = "secure-model.io/containers";

/// Annotation: `sizeLimit` of the memory-backed model volume (a Kubernetes quantity, e.g.
/// `40Gi`), at most the profile's `modelSizeLimit`; default the profile's.
pub const SIZE_LIMIT: &str = "secure-model.io/size-limit";

/// Annotation KServe's controller writes on predictor pods: the InferenceService's
/// `storageUri`. An opted-in predictor pod without [`SOURCE`] takes its package from here.
pub const KSERVE_SOURCE_URI: &str = "internal.serving.kserve.io/storage-initializer-sourceuri";

/// The volume KServe's pod mutator creates for the model (`emptyDir: {}`, on disk).
pub const KSERVE_MODEL_VOLUME: &str = "kserve-provision-location";

/// The container KServe serves an InferenceService from.
pub const KSERVE_CONTAINER: &str = "kserve-container";

/// Containers other injectors add next to the server: they never get the model unless the
/// pod names them in [`CONTAINERS`].
pub const KNOWN_SIDECARS: &[&str] = &[
    "queue-proxy",
    "istio-proxy",
    "linkerd-proxy",
    "agent",
    "kserve-agent",
];

/// Init containers of service meshes that must run before a native sidecar proxy
/// (`restartPolicy: Always`) when one follows them: the secure loader goes after both, so
/// its traffic goes through a running proxy.
pub const MESH_INIT_CONTAINERS: &[&str] = &[
    "istio-init",
    "istio-validation",
    "linkerd-init",
    "linkerd-network-validator",
];

/// Annotation: the profile to use (default: the profiles file's `defaultProfile`).
pub const PROFILE: &str = "secure-model.io/profile";

/// Annotation written on an injected pod (or pod template): the profile that was applied.
pub const INJECTED: &str = "secure-model.io/injected";

/// Namespace label: `enabled` opts every pod of the namespace that names a
/// [`SOURCE`] into injection (the webhook's second `namespaceSelector`).
pub const NAMESPACE_LABEL: &str = "secure-model.io/injection";

/// Where the model is published when [`DESTINATION`] is absent (KServe's model directory).
pub const DEFAULT_DESTINATION: &str = secure_model_kserve::csc::DEFAULT_MODEL_DIR;

/// The name of the memory-backed volume the injection adds (when no memory-backed volume is
/// already mounted at the destination).
pub const MODEL_VOLUME: &str = "secure-model-plaintext";

/// The container an LLMInferenceService serves the model from (KServe's template).
pub const LLMISVC_MAIN_CONTAINER: &str = "main";

/// Where the injected init container sees the node cache of ciphertext (a profile's
/// `nodeCache.hostPath`), and the value of `SECURE_MODEL_CACHE_DIR`.
pub const CACHE_MOUNT_PATH: &str = "/var/cache/secure-model";

/// The name of the `hostPath` volume of the node cache.
pub const CACHE_VOLUME: &str = "secure-model-node-cache";

/// The init container's setting naming the node cache directory.
pub const CACHE_DIR_VARIABLE: &str = "SECURE_MODEL_CACHE_DIR";

/// The init container's setting bounding the node cache (bytes, a plain integer): the least
/// recently used objects are evicted after a pull until the cache holds at most this much.
pub const CACHE_MAX_BYTES_VARIABLE: &str = "SECURE_MODEL_CACHE_MAX_BYTES";

/// Label KServe's InferenceService defaulter sets (and KServe copies onto predictor pods)
/// when a LocalModelCache holds the InferenceService's model: the cache's name.
pub const LOCALMODEL_LABEL: &str = "internal.serving.kserve.io/localmodel";

/// Annotation next to [`LOCALMODEL_LABEL`]: the LocalModelCache's `sourceModelUri`.
pub const LOCALMODEL_SOURCE_URI: &str = "internal.serving.kserve.io/localmodel-sourceuri";

/// Annotation next to [`LOCALMODEL_LABEL`]: the PersistentVolumeClaim holding the cached copy
/// on the pod's node group.
pub const LOCALMODEL_PVC_NAME: &str = "internal.serving.kserve.io/localmodel-pvc-name";

/// Where the injected init container sees the LocalModelCache copy (read-only).
pub const LOCALMODEL_MOUNT_PATH: &str = "/var/cache/secure-model-pvc";

/// The name of the PersistentVolumeClaim volume the injection adds for a LocalModelCache copy
/// when KServe has not added its own (`kserve-pvc-source`) yet.
pub const LOCALMODEL_VOLUME: &str = "secure-model-localmodel";
