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
