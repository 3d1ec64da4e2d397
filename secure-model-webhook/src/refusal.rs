//! Why a pod that asks for injection is refused. Each message names what is wrong and what to
//! change: the API server shows it to whoever created the pod (`kubectl`, the Deployment's
//! events), and `inject` prints it.

use crate::annotations::{CONTAINERS, DESTINATION, INJECT, PROFILE, SIZE_LIMIT, SOURCE};

/// A pod (or workload) asked for injection but would break the loader's guarantees, or asked
/// in a way that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The opt-in label or annotation has a value other than `true` / `false`.
    #[error("{INJECT}={value:?}: expected \"true\" or \"false\"")]
    BadOptIn {
        /// The value found.
        value: String,
    },
    /// Injection was asked for without a package.
    #[error("{INJECT} is \"true\" but the {SOURCE} annotation is missing: set it to the package's secure+ URI, e.g. secure+s3://bucket/models/m1")]
    MissingSource,
    /// The package URI is malformed or not one of our `secure+` forms.
    #[error("{SOURCE}={uri:?} is not a package URI: {reason}")]
    BadSource {
        /// The URI, credentials redacted.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// The destination is not an absolute, normal path.
    #[error("{DESTINATION}={path:?}: expected an absolute path without '..', other than /, e.g. /mnt/models")]
    BadDestination {
        /// The value found.
        path: String,
    },
    /// The profile named by the pod (or the default) does not exist.
    #[error("unknown profile {name:?} ({PROFILE}); the webhook's profiles are: {known}")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The profiles configured, comma-separated.
        known: String,
    },
    /// The pod names no profile and the profiles file has no default.
    #[error("no profile chosen: set the {PROFILE} annotation to one of: {known}")]
    NoProfile {
        /// The profiles configured, comma-separated.
        known: String,
    },
    /// A container named by the containers annotation does not exist.
    #[error("{CONTAINERS} names {name:?}, which is not a container of this pod (containers: {present}); fix the annotation")]
    UnknownContainer {
        /// The name asked for.
        name: String,
        /// The pod's containers, comma-separated.
        present: String,
    },
    /// The pod has no container to give the model to.
    #[error("the pod has no container to mount the model into: add spec.containers, or name them in {CONTAINERS}")]
    NoContainers,
    /// A disk-backed (or otherwise not memory-backed) volume is mounted at the destination: the
    /// plaintext would land outside memory.
    #[error("container {container:?} mounts volume {volume:?} at {path}, and that volume is not a memory-backed emptyDir: the decrypted model may only live in memory. Remove that mount, make the volume an emptyDir with medium: Memory, or choose another {DESTINATION}")]
    DiskBackedDestination {
        /// The container with the mount.
        container: String,
        /// The volume.
        volume: String,
        /// The destination.
        path: String,
    },
    /// Two different volumes are mounted at the destination.
    #[error("volumes {first:?} and {second:?} are both mounted at {path}: mount one memory-backed emptyDir there, or choose another {DESTINATION}")]
    AmbiguousDestination {
        /// One volume.
        first: String,
        /// The other volume.
        second: String,
        /// The destination.
        path: String,
    },
    /// The name of the volume the injection adds is taken by a volume that is not a
    /// memory-backed emptyDir.
    #[error("the pod already has a volume named {name:?} that is not a memory-backed emptyDir; rename it (the injection adds {name:?} for the model)")]
    VolumeNameTaken {
        /// The volume name.
        name: String,
    },
    /// An application container mounts the model volume writable.
    #[error("container {container:?} mounts the model volume {volume:?} writable: add readOnly: true to that volumeMount (only the secure loader may write the model)")]
    WritableModelMount {
        /// The container.
        container: String,
        /// The model volume.
        volume: String,
    },
    /// The profile requires a TEE and the pod's `runtimeClassName` is not an allowed one.
    #[error("profile {profile:?} requires a TEE: spec.runtimeClassName is {found}, expected one of: {allowed}")]
    RuntimeClassNotAllowed {
        /// The profile.
        profile: String,
        /// The class found (or `unset`).
        found: String,
        /// The allowed classes, comma-separated.
        allowed: String,
    },
    /// The pod runs in a TEE runtime class no TEE profile serves.
    #[error("the pod runs in the TEE runtime class {class:?}, which no profile that requires a TEE serves: add {class:?} to such a profile's runtimeClassNames, or name a profile with {PROFILE} (profiles: {known})")]
    NoTeeProfile {
        /// The runtime class.
        class: String,
        /// The profiles configured, comma-separated.
        known: String,
    },
    /// The pod already has an init container named `storage-initializer` that is not
    /// secure-model's and cannot be taken over.
    #[error("init container {name:?} (image {image:?}) is not secure-model's loader and cannot be replaced here ({why}): remove or rename it, or remove the {INJECT} opt-in")]
    ForeignInitializer {
        /// Its name.
        name: String,
        /// Its image.
        image: String,
        /// Why it cannot be taken over.
        why: String,
    },
    /// The size-limit annotation is not a quantity, or exceeds the profile's bound.
    #[error("{SIZE_LIMIT}={value:?}: {why}")]
    BadSizeLimit {
        /// The value found.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// KServe's LocalModelCache markers on the pod cannot be honoured.
    #[error("LocalModelCache {cache:?}: {why}")]
    LocalModel {
        /// The cache's name (the label's value).
        cache: String,
        /// What is wrong.
        why: String,
    },
    /// The destination is, is under or contains a path the injected init container needs.
    #[error("{DESTINATION}={path:?} overlaps {reserved}, where secure-model's loader mounts {what}: choose another {DESTINATION}")]
    ReservedDestination {
        /// The destination.
        path: String,
        /// The reserved path.
        reserved: &'static str,
        /// What is mounted there.
        what: &'static str,
    },
    /// A container loads the model in-process (`--load-format secure-model`) and the pod also
    /// has an init container named `storage-initializer`: the model would be loaded twice.
    #[error("{containers} load(s) the model in-process (--load-format secure-model) and needs no init container, but the pod also has init container {name:?} (image {image:?}): remove it (an LLMInferenceService: spec.storageInitializer.enabled: false; an InferenceService: no storageUri, the package in the server's arguments), or serve from {DESTINATION} without --load-format secure-model")]
    InProcessWithInitializer {
        /// The in-process containers, comma-separated.
        containers: String,
        /// The init container.
        name: String,
        /// Its image.
        image: String,
    },
    /// The containers that load in-process are not exactly the ones chosen for the model.
    #[error("{in_process} load(s) the model in-process (--load-format secure-model), but the containers chosen for the model are {chosen}: name exactly the in-process containers in {CONTAINERS}, or load the model the same way in all of them")]
    InProcessMixed {
        /// The in-process containers, comma-separated.
        in_process: String,
        /// The containers chosen (annotation, profile defaults or the serving container).
        chosen: String,
    },
    /// An in-process container already sets a variable the profile gives it, to something
    /// else.
    #[error("container {container:?} sets {name} itself, and profile {profile:?} sets it otherwise; an in-process loader takes its settings from the profile: remove {name} from the container, or ask the operator for a profile with that value")]
    EnvConflict {
        /// The container.
        container: String,
        /// The variable (never its value: it may be a credential).
        name: String,
        /// The profile.
        profile: String,
    },
    /// An in-process container already mounts something where the profile mounts a Secret
    /// (or mounts that Secret's volume elsewhere).
    #[error("container {container:?} already has a mount at {path} that is not the profile's Secret volume {volume:?} there: move that mount")]
    MountConflict {
        /// The container.
        container: String,
        /// The mount path of the container's mount.
        path: String,
        /// The profile's volume.
        volume: String,
    },
    /// The pod has a volume with the name of one of the profile's Secret volumes, of another
    /// source.
    #[error("the pod already has a volume named {name:?} that is not the Secret {secret:?}; rename it (profile {profile:?} adds {name:?} for the loader's settings)")]
    SecretVolumeTaken {
        /// The volume name.
        name: String,
        /// The Secret the profile mounts under that name.
        secret: String,
        /// The profile.
        profile: String,
    },
    /// The object is not of a shape the injection understands (e.g. `spec` is not an object).
    #[error("{what}")]
    Malformed {
        /// What is wrong and where.
        what: String,
    },
}

impl Refusal {
    /// A [`Refusal::Malformed`] for `what`.
    pub fn malformed(what: impl Into<String>) -> Self {
        Self::Malformed { what: what.into() }
    }
}
