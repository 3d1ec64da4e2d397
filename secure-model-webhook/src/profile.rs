//! Injection profiles: the file (a ConfigMap in the cluster) that says which image the
//! injected init container runs and with which settings, parsed into checked types. Every
//! environment variable must be a setting of the init container in
//! `secure_model_settings::registry` with a value its kind accepts; credentials come only from
//! Secrets (`secretEnv`), never inline; disk plaintext cannot be enabled. Reads a file when
//! asked ([`Profiles::load`]); never the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secure_model_settings::registry::{self, Binary};
use serde::Deserialize;

/// The profiles file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read the profiles file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML of the profiles' shape (unknown fields are errors).
    #[error("the profiles file does not parse")]
    Parse(#[source] serde_norway::Error),
    /// The file defines no profile.
    #[error("the profiles file defines no profile")]
    Empty,
    /// A ConfigMap without the `profiles.yaml` key.
    #[error("the ConfigMap has no data key profiles.yaml")]
    NoProfilesKey,
    /// `defaultProfile` names no profile.
    #[error("defaultProfile {name:?} is not a profile (profiles: {known})")]
    UnknownDefault {
        /// The name.
        name: String,
        /// The profiles defined.
        known: String,
    },
    /// One profile is invalid.
    #[error("profile {profile:?}: {problem}")]
    Invalid {
        /// The profile.
        profile: String,
        /// What is wrong.
        #[source]
        problem: Problem,
    },
}

/// What is wrong with one profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A profile name that is not a lowercase DNS label.
    #[error("the name is not a lowercase DNS label (a-z, 0-9, '-', at most 63 characters)")]
    BadName,
    /// `image` is empty.
    #[error("image is empty")]
    NoImage,
    /// A variable that is no setting of the init container.
    #[error("{name} is not a setting of secure-model-initc{}", did_you_mean.map(|d| format!(" (did you mean {d}?)")).unwrap_or_default())]
    UnknownVariable {
        /// The variable.
        name: String,
        /// The closest setting.
        did_you_mean: Option<&'static str>,
    },
    /// A credential given inline.
    #[error(
        "{name} is a credential: give it under secretEnv (a secretKeyRef), never inline in env"
    )]
    InlineCredential {
        /// The variable.
        name: String,
    },
    /// A value the setting's kind refuses.
    #[error("{name}={value:?}: {expected}")]
    BadValue {
        /// The variable.
        name: String,
        /// The value (never a credential: those are refused inline).
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// A variable a profile may not set.
    #[error("{name} may not be set by a profile: {why}")]
    Forbidden {
        /// The variable.
        name: String,
        /// Why.
        why: &'static str,
    },
    /// No trusted signer.
    #[error("no trusted signer: set SECURE_MODEL_TRUSTED_KEYS_PEM (public keys) or SECURE_MODEL_TRUSTED_CERT_ROOTS_PEM (certificate roots) in env, SECURE_MODEL_SIGSTORE_IDENTITY with SECURE_MODEL_SIGSTORE_ISSUER (Sigstore keyless), or SECURE_MODEL_TRUSTED_KEYS / SECURE_MODEL_TRUSTED_CERT_ROOTS / SECURE_MODEL_TRUST_POLICY with the files in a secretVolume")]
    NoTrustedKeys,
    /// The inline trusted keys do not parse.
    #[error("SECURE_MODEL_TRUSTED_KEYS_PEM holds no usable public key")]
    BadTrustedKeys(#[source] secure_model_core::verify::VerifyError),
    /// The variables do not resolve into a configuration the init container accepts.
    #[error("{reason}")]
    Unresolvable {
        /// What the settings layer refused.
        reason: String,
    },
    /// No key specification.
    #[error("no key to unlock packages: set SECURE_MODEL_KEYS (or CONFIDENTIAL_ENABLED=true with CONFIDENTIAL_RESOURCE_ID)")]
    NoKeys,
    /// A secret reference with an empty name or key.
    #[error("secretEnv {name}: secret name and key must not be empty")]
    EmptySecretRef {
        /// The variable.
        name: String,
    },
    /// `requireTee` without runtime classes.
    #[error("requireTee is true but runtimeClassNames is empty: list the TEE runtime classes (e.g. kata-qemu-snp, kata-qemu-tdx)")]
    TeeWithoutClasses,
    /// A malformed resource quantity.
    #[error("{field}: {value:?} is not a Kubernetes quantity (e.g. 500m, 128Mi, 4Gi)")]
    BadQuantity {
        /// Where.
        field: String,
        /// The value.
        value: String,
    },
    /// A secret volume that is not mountable.
    #[error("secretVolumes[{index}]: name must be a DNS label, secretName non-empty and mountPath absolute")]
    BadSecretVolume {
        /// Its index.
        index: usize,
    },
    /// `nodeCache.hostPath` is not a directory a node cache may live in.
    #[error("nodeCache.hostPath {path:?}: {why}")]
    BadCacheHostPath {
        /// The value (at most 256 characters).
        path: String,
        /// What is wrong.
        why: String,
    },
    /// `nodeCache.maxSize` is not a positive whole number of bytes.
    #[error(
        "nodeCache.maxSize {value:?}: expected a Kubernetes quantity of at least 1Mi, e.g. 200Gi"
    )]
    BadCacheMaxSize {
        /// The value.
        value: String,
    },
}

/// `imagePullPolicy` of the injected container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when absent from the node.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// A variable taken from a key of a Secret in the pod's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SecretKeyRef {
    /// The Secret.
    pub name: String,
    /// The key in it.
    pub key: String,
}

/// A Secret mounted read-only into the injected init container (KEK files, trusted key files,
/// a KBS CA): the profile names it, the pod's namespace must hold it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct SecretVolume {
    /// The pod volume's name.
    pub name: String,
    /// The Secret.
    pub secret_name: String,
    /// Where the init container sees it.
    pub mount_path: String,
}

/// Requests and limits of the injected init container. Its memory limit must cover the
/// largest model plus ~256 MiB: tmpfs pages are charged to the container that writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Resources {
    /// `cpu`, `memory`, ... requests.
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    /// `cpu`, `memory`, ... limits.
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

/// `nodeCache` of a profile, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NodeCacheSpec {
    host_path: String,
    #[serde(default)]
    max_size: Option<String>,
}

/// A checked node cache: a directory of the node that holds cached **ciphertext** objects,
/// mounted read-write into the injected init container only (docs/cache-kubernetes.md).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeCache {
    host_path: String,
    max_size: Option<String>,
    max_size_bytes: Option<u64>,
}

impl NodeCache {
    /// The node's directory (absolute, normal, outside the system's directories).
    pub fn host_path(&self) -> &str {
        &self.host_path
    }
    /// The size bound as written in the profile (a Kubernetes quantity).
    pub fn max_size(&self) -> Option<&str> {
        self.max_size.as_deref()
    }
    /// The size bound in bytes (the value of `SECURE_MODEL_CACHE_MAX_BYTES`).
    pub fn max_size_bytes(&self) -> Option<u64> {
        self.max_size_bytes
    }
}

/// Node directories a node cache may not be, be under, or contain: the host's system and
/// configuration trees, the kubelet's and the container runtimes' state, sockets and logs.
pub const FORBIDDEN_CACHE_ROOTS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/etc",
    "/run",
    "/var/run",
    "/var/lib/kubelet",
    "/var/lib/containerd",
    "/var/lib/docker",
    "/var/lib/cri-o",
    "/var/lib/containers",
    "/var/lib/etcd",
    "/var/log",
    "/boot",
    "/root",
    "/home",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/usr",
    "/snap",
    "/opt/cni",
];

/// Variables of the init container that only `nodeCache` sets (with the mount they need).
pub const CACHE_VARIABLES: &[&str] = &[
    crate::annotations::CACHE_DIR_VARIABLE,
    crate::annotations::CACHE_MAX_BYTES_VARIABLE,
];

/// One profile, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProfileSpec {
    image: String,
    #[serde(default)]
    image_pull_policy: Option<PullPolicy>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    secret_env: BTreeMap<String, SecretKeyRef>,
    #[serde(default)]
    secret_volumes: Vec<SecretVolume>,
    #[serde(default)]
    resources: Resources,
    #[serde(default)]
    require_tee: bool,
    #[serde(default)]
    runtime_class_names: Vec<String>,
    #[serde(default)]
    model_size_limit: Option<String>,
    #[serde(default)]
    default_containers: Vec<String>,
    #[serde(default)]
    node_cache: Option<NodeCacheSpec>,
}

/// The file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProfilesFile {
    #[serde(default)]
    default_profile: Option<String>,
    #[serde(default)]
    excluded_namespaces: Option<Vec<String>>,
    #[serde(default)]
    profiles: BTreeMap<String, ProfileSpec>,
}

/// Namespaces never injected when the profiles file names none: the control plane's. The
/// webhook checks the request's namespace itself, since a `namespaceSelector` on
/// `kubernetes.io/metadata.name` excludes nothing on API servers before 1.21.
pub const DEFAULT_EXCLUDED_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// Runtime classes of hardware TEEs (Confidential Containers' and Kata's names): a pod in one
/// of them gets a profile that requires a TEE, or is refused (it would otherwise get a key
/// released without attestation).
pub const KNOWN_TEE_RUNTIME_CLASSES: &[&str] = &[
    "kata-qemu-tdx",
    "kata-qemu-snp",
    "kata-qemu-nvidia-gpu-tdx",
    "kata-qemu-nvidia-gpu-snp",
    "kata-qemu-se",
    "kata-qemu-cca",
];

/// A checked profile. Only [`Profiles::parse`] makes one, and its fields cannot change after
/// the check: what is injected is what was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    name: String,
    image: String,
    image_pull_policy: Option<PullPolicy>,
    env: BTreeMap<String, String>,
    secret_env: BTreeMap<String, SecretKeyRef>,
    secret_volumes: Vec<SecretVolume>,
    resources: Resources,
    require_tee: bool,
    runtime_class_names: Vec<String>,
    model_size_limit: Option<String>,
    default_containers: Vec<String>,
    node_cache: Option<NodeCache>,
}

impl Profile {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The init container's image.
    pub fn image(&self) -> &str {
        &self.image
    }
    /// Its pull policy (Kubernetes' default when unset).
    pub fn image_pull_policy(&self) -> Option<PullPolicy> {
        self.image_pull_policy
    }
    /// Plain variables (settings of the init container), sorted by name.
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }
    /// Variables from Secrets, sorted by name.
    pub fn secret_env(&self) -> &BTreeMap<String, SecretKeyRef> {
        &self.secret_env
    }
    /// Secrets mounted read-only into the init container.
    pub fn secret_volumes(&self) -> &[SecretVolume] {
        &self.secret_volumes
    }
    /// Requests and limits.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }
    /// Whether pods must run in one of [`Profile::runtime_class_names`].
    pub fn require_tee(&self) -> bool {
        self.require_tee
    }
    /// The runtime classes this profile serves (required to match when it requires a TEE).
    pub fn runtime_class_names(&self) -> &[String] {
        &self.runtime_class_names
    }
    /// Largest `sizeLimit` of the memory-backed model volume (and its default).
    pub fn model_size_limit(&self) -> Option<&str> {
        self.model_size_limit.as_deref()
    }
    /// The containers that get the model when the pod names none (empty: the serving
    /// container, see `mutation`).
    pub fn default_containers(&self) -> &[String] {
        &self.default_containers
    }
    /// The node cache of ciphertext the init container uses, when the profile enables one.
    pub fn node_cache(&self) -> Option<&NodeCache> {
        self.node_cache.as_ref()
    }
    /// Whether this profile serves pods of runtime class `class`.
    pub fn serves_runtime_class(&self, class: Option<&str>) -> bool {
        class.is_some_and(|c| self.runtime_class_names.iter().any(|r| r == c))
    }
}

/// Every profile, checked, the default, and the namespaces never injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profiles {
    default: Option<String>,
    profiles: BTreeMap<String, Profile>,
    excluded_namespaces: Vec<String>,
}

impl Profiles {
    /// Parses and checks a profiles file's text.
    ///
    /// # Errors
    /// [`ProfileError`] naming the profile and the problem.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        let file: ProfilesFile = match configmap_data(text)? {
            Some(inner) => serde_norway::from_str(&inner).map_err(ProfileError::Parse)?,
            None => serde_norway::from_str(text).map_err(ProfileError::Parse)?,
        };
        if file.profiles.is_empty() {
            return Err(ProfileError::Empty);
        }
        let mut profiles = BTreeMap::new();
        for (name, spec) in file.profiles {
            let p = check(&name, spec).map_err(|problem| ProfileError::Invalid {
                profile: name.clone(),
                problem,
            })?;
            profiles.insert(name, p);
        }
        let default = match file.default_profile {
            Some(d) if !profiles.contains_key(&d) => {
                return Err(ProfileError::UnknownDefault {
                    name: d,
                    known: known(&profiles),
                })
            }
            Some(d) => Some(d),
            None if profiles.len() == 1 => profiles.keys().next().cloned(),
            None => None,
        };
        let excluded_namespaces = file.excluded_namespaces.unwrap_or_else(|| {
            DEFAULT_EXCLUDED_NAMESPACES
                .iter()
                .map(|n| (*n).to_string())
                .collect()
        });
        Ok(Self {
            default,
            profiles,
            excluded_namespaces,
        })
    }

    /// Reads and checks the profiles file at `path`.
    ///
    /// # Errors
    /// [`ProfileError::Read`], or as [`Profiles::parse`].
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The profile `name`, or the default when `None`.
    ///
    /// # Errors
    /// [`crate::Refusal::UnknownProfile`], [`crate::Refusal::NoProfile`].
    pub fn get(&self, name: Option<&str>) -> Result<&Profile, crate::Refusal> {
        let Some(name) = name.or(self.default.as_deref()) else {
            return Err(crate::Refusal::NoProfile {
                known: known(&self.profiles),
            });
        };
        self.profiles
            .get(name)
            .ok_or_else(|| crate::Refusal::UnknownProfile {
                name: name.to_string(),
                known: known(&self.profiles),
            })
    }

    /// The profiles' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.profiles.keys().map(String::as_str).collect()
    }

    /// The profile for a pod of runtime class `class` that names `asked` (or none):
    ///
    /// - a named profile that requires a TEE must serve the pod's runtime class;
    /// - without a name, a pod in a runtime class some TEE profile serves gets that profile
    ///   (the default when it is one of them, else the first by name): a pod in a TEE gets
    ///   attested key release unless it names another profile;
    /// - a pod in a known TEE runtime class that no TEE profile serves is refused, rather than
    ///   given a profile whose keys are released without attestation;
    /// - otherwise the default profile, which must accept the pod's runtime class too.
    ///
    /// # Errors
    /// The [`crate::Refusal`] saying what to change.
    pub fn choose(
        &self,
        asked: Option<&str>,
        class: Option<&str>,
    ) -> Result<&Profile, crate::Refusal> {
        if let Some(name) = asked {
            let p = self.get(Some(name))?;
            return check_runtime_class(p, class).map(|()| p);
        }
        let tee: Vec<&Profile> = self
            .profiles
            .values()
            .filter(|p| p.require_tee && p.serves_runtime_class(class))
            .collect();
        if let Some(first) = tee.first() {
            let default = tee
                .iter()
                .find(|p| Some(p.name.as_str()) == self.default.as_deref());
            return Ok(default.copied().unwrap_or(first));
        }
        if let Some(c) = class.filter(|c| KNOWN_TEE_RUNTIME_CLASSES.contains(c)) {
            return Err(crate::Refusal::NoTeeProfile {
                class: c.to_string(),
                known: known(&self.profiles),
            });
        }
        let p = self.get(None)?;
        check_runtime_class(p, class).map(|()| p)
    }

    /// Whether `image` is the init container image of one of the profiles (an initializer
    /// of ours, injected by this webhook or by KServe from our ClusterStorageContainer).
    pub fn is_our_image(&self, image: &str) -> bool {
        self.profiles.values().any(|p| p.image == image)
    }

    /// Whether pods of `namespace` are never injected.
    pub fn excludes_namespace(&self, namespace: &str) -> bool {
        self.excluded_namespaces.iter().any(|n| n == namespace)
    }

    /// The namespaces never injected.
    pub fn excluded_namespaces(&self) -> &[String] {
        &self.excluded_namespaces
    }
}

/// A profile that requires a TEE accepts only pods of its runtime classes.
fn check_runtime_class(profile: &Profile, class: Option<&str>) -> Result<(), crate::Refusal> {
    if !profile.require_tee || profile.serves_runtime_class(class) {
        return Ok(());
    }
    Err(crate::Refusal::RuntimeClassNotAllowed {
        profile: profile.name.clone(),
        found: class.map_or_else(|| "unset".to_string(), |c| format!("{c:?}")),
        allowed: profile.runtime_class_names.join(", "),
    })
}

/// The profiles text of a ConfigMap (the shipped `deploy/webhook/profiles.yaml`): its
/// `data."profiles.yaml"`; `None` when `text` is no ConfigMap.
fn configmap_data(text: &str) -> Result<Option<String>, ProfileError> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        data: BTreeMap<String, String>,
    }
    let Ok(probe) = serde_norway::from_str::<Probe>(text) else {
        return Ok(None);
    };
    if probe.kind.as_deref() != Some("ConfigMap") {
        return Ok(None);
    }
    probe
        .data
        .get("profiles.yaml")
        .cloned()
        .map(Some)
        .ok_or(ProfileError::NoProfilesKey)
}

fn known(profiles: &BTreeMap<String, Profile>) -> String {
    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// A lowercase RFC 1123 DNS label.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A Kubernetes resource quantity: a decimal number, then an optional binary (`Ki`..`Ei`) or
/// decimal (`n`, `u`, `m`, `k`, `M`..`E`) suffix or an exponent (`e3`).
pub fn is_quantity(s: &str) -> bool {
    let digits_end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map_or(s.len(), |(i, _)| i);
    let (number, suffix) = s.split_at(digits_end);
    let number = number.trim_start_matches(['+', '-']);
    let number_ok = !number.is_empty()
        && number.bytes().any(|b| b.is_ascii_digit())
        && number.matches('.').count() <= 1;
    const SUFFIXES: &[&str] = &[
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    let exponent = |x: &str| {
        x.strip_prefix(['e', 'E']).is_some_and(|e| {
            let e = e.trim_start_matches(['+', '-']);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        })
    };
    number_ok && (SUFFIXES.contains(&suffix) || exponent(suffix))
}

/// The value of a non-negative quantity in bytes (rounded down), for comparing sizes;
/// `None` for what [`is_quantity`] refuses or a negative value.
pub fn quantity_bytes(s: &str) -> Option<f64> {
    if !is_quantity(s) || s.starts_with('-') {
        return None;
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let n: f64 = number.trim_start_matches('+').parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        e => 10f64.powi(e.get(1..)?.parse().ok()?),
    };
    Some((n * factor).floor())
}

fn check(name: &str, spec: ProfileSpec) -> Result<Profile, Problem> {
    if !is_dns_label(name) {
        return Err(Problem::BadName);
    }
    if spec.image.trim().is_empty() {
        return Err(Problem::NoImage);
    }
    for var in spec.env.keys().chain(spec.secret_env.keys()) {
        if CACHE_VARIABLES.contains(&var.as_str()) {
            return Err(Problem::Forbidden {
                name: var.clone(),
                why: "the node cache is set with nodeCache (hostPath, maxSize), which also mounts the directory into the init container",
            });
        }
    }
    for (var, value) in &spec.env {
        check_plain_variable(var, value, spec.require_tee)?;
    }
    for (var, r) in &spec.secret_env {
        initc_setting(var)?;
        if r.name.trim().is_empty() || r.key.trim().is_empty() {
            return Err(Problem::EmptySecretRef { name: var.clone() });
        }
    }
    check_trust_and_keys(&spec)?;
    check_placement(&spec)?;
    let node_cache = spec.node_cache.as_ref().map(check_node_cache).transpose()?;
    if node_cache.is_some() {
        for (index, v) in spec.secret_volumes.iter().enumerate() {
            if crate::mutation::overlaps(&v.mount_path, crate::annotations::CACHE_MOUNT_PATH) {
                return Err(Problem::BadSecretVolume { index });
            }
        }
    }
    Ok(Profile {
        name: name.to_string(),
        image: spec.image,
        image_pull_policy: spec.image_pull_policy,
        env: spec.env,
        secret_env: spec.secret_env,
        secret_volumes: spec.secret_volumes,
        resources: spec.resources,
        require_tee: spec.require_tee,
        runtime_class_names: spec.runtime_class_names,
        model_size_limit: spec.model_size_limit,
        default_containers: spec.default_containers,
        node_cache,
    })
}

/// `nodeCache`: an absolute, normal directory that is not `/`, not one of (or under, or above)
/// [`FORBIDDEN_CACHE_ROOTS`]; a size bound of at least 1 MiB.
fn check_node_cache(spec: &NodeCacheSpec) -> Result<NodeCache, Problem> {
    let path = spec.host_path.as_str();
    let bad = |why: &str| Problem::BadCacheHostPath {
        path: path.chars().take(256).collect(),
        why: why.to_string(),
    };
    if !path.starts_with('/') {
        return Err(bad(
            "expected an absolute path, e.g. /var/cache/secure-model",
        ));
    }
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("it contains whitespace or control characters"));
    }
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        return Err(bad("the node's root directory cannot be a cache: name a directory of its own, e.g. /var/cache/secure-model"));
    }
    if p.split('/')
        .skip(1)
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad(
            "expected a normal path: no '..', '.' or empty components",
        ));
    }
    if let Some(root) = FORBIDDEN_CACHE_ROOTS
        .iter()
        .find(|r| crate::mutation::overlaps(p, r))
    {
        return Err(bad(&format!(
            "it is, is under or contains {root}, a system directory of the node; use a directory of its own such as /var/cache/secure-model"
        )));
    }
    let max_size_bytes = match &spec.max_size {
        None => None,
        Some(v) => match quantity_bytes(v) {
            // quantity_bytes floors to a whole, non-negative number; the bound keeps it in u64.
            Some(b) if (1_048_576.0..9.2e18).contains(&b) => Some(b as u64),
            _ => return Err(Problem::BadCacheMaxSize { value: v.clone() }),
        },
    };
    Ok(NodeCache {
        host_path: p.to_string(),
        max_size: spec.max_size.clone(),
        max_size_bytes,
    })
}

fn initc_setting(var: &str) -> Result<&'static dyn registry::AnySetting, Problem> {
    registry::by_env(var)
        .filter(|s| s.binaries().contains(&Binary::Initc))
        .ok_or_else(|| Problem::UnknownVariable {
            name: var.to_string(),
            did_you_mean: registry::closest_env(var),
        })
}

fn check_plain_variable(var: &str, value: &str, require_tee: bool) -> Result<(), Problem> {
    let setting = initc_setting(var)?;
    if setting.sensitive() {
        return Err(Problem::InlineCredential {
            name: var.to_string(),
        });
    }
    if setting.env() == registry::ALLOW_DISK_PLAINTEXT.env {
        return Err(Problem::Forbidden {
            name: var.to_string(),
            why: "the injected model volume is memory-backed; disk plaintext is never allowed by injection",
        });
    }
    if setting.env() == registry::ALLOW_SAMPLE_ATTESTER.env && require_tee {
        return Err(Problem::Forbidden {
            name: var.to_string(),
            why: "the profile requires a TEE, and the sample attester is no TEE",
        });
    }
    if !setting.accepts(value) {
        return Err(Problem::BadValue {
            name: var.to_string(),
            value: value.chars().take(128).collect(),
            expected: setting.expected(),
        });
    }
    Ok(())
}

/// The settings of which any one names a trusted signer (the init container's trust policy,
/// docs/signing.md); the rest of the policy is checked by the init container itself.
const SIGNER_SETTINGS: [&dyn registry::AnySetting; 7] = [
    &registry::TRUSTED_KEYS_PEM,
    &registry::TRUSTED_KEYS,
    &registry::TRUSTED_CERT_ROOTS_PEM,
    &registry::TRUSTED_CERT_ROOTS,
    &registry::SIGSTORE_IDENTITY,
    &registry::SIGSTORE_IDENTITY_REGEX,
    &registry::TRUST_POLICY,
];

/// The profile's plain variables as the init container resolves them (every value through
/// the settings layer's parsers and cross-checks: the same configuration a pull would run
/// with, secret values aside, which only the pod's namespace holds).
fn check_resolution(spec: &ProfileSpec) -> Result<(), Problem> {
    let src = secure_model_settings::Source::new(secure_model_settings::Environment::from_pairs(
        spec.env.iter().map(|(k, v)| (k.clone(), v.clone())),
    ));
    secure_model_settings::Settings::from_source(&src)
        .map(|_| ())
        .map_err(|e| Problem::Unresolvable {
            reason: secure_model_core::chain_message(&e),
        })
}

fn check_trust_and_keys(spec: &ProfileSpec) -> Result<(), Problem> {
    check_resolution(spec)?;
    let pem = spec.env.get(registry::TRUSTED_KEYS_PEM.env);
    if let Some(pem) = pem {
        let keys = secure_model_core::verify::TrustedKeys::from_pem_bundle(pem)
            .map_err(Problem::BadTrustedKeys)?;
        if keys.is_empty() {
            return Err(Problem::NoTrustedKeys);
        }
    }
    let set = |v: &str| spec.env.contains_key(v) || spec.secret_env.contains_key(v);
    if !SIGNER_SETTINGS.iter().any(|s| set(s.env())) {
        return Err(Problem::NoTrustedKeys);
    }
    let keys = spec.env.contains_key(registry::KEYS.env)
        || spec.secret_env.contains_key(registry::KEYS.env);
    let confidential = spec
        .env
        .get(registry::CONFIDENTIAL_ENABLED.env)
        .and_then(|v| secure_model_core::config::parse_bool(v))
        .unwrap_or(false);
    if !keys && !confidential {
        return Err(Problem::NoKeys);
    }
    Ok(())
}

fn check_placement(spec: &ProfileSpec) -> Result<(), Problem> {
    if spec.require_tee && spec.runtime_class_names.is_empty() {
        return Err(Problem::TeeWithoutClasses);
    }
    let quantities = spec
        .resources
        .requests
        .iter()
        .map(|(k, v)| (format!("resources.requests.{k}"), v))
        .chain(
            spec.resources
                .limits
                .iter()
                .map(|(k, v)| (format!("resources.limits.{k}"), v)),
        )
        .chain(
            spec.model_size_limit
                .iter()
                .map(|v| ("modelSizeLimit".to_string(), v)),
        );
    for (field, value) in quantities {
        if !is_quantity(value) {
            return Err(Problem::BadQuantity {
                field,
                value: value.clone(),
            });
        }
    }
    for (index, v) in spec.secret_volumes.iter().enumerate() {
        if !is_dns_label(&v.name)
            || v.secret_name.trim().is_empty()
            || !v.mount_path.starts_with('/')
        {
            return Err(Problem::BadSecretVolume { index });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_follow_kubernetes() {
        for ok in [
            "1", "500m", "128Mi", "4Gi", "1.5", "2e3", "0.5Gi", "+1", "100k",
        ] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Mi", "4 Gi", "4GB", "1..2", "abc", "4gi", "e3", "1e"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn quantities_in_bytes() {
        assert_eq!(quantity_bytes("4Gi"), Some(4.0 * 1024f64.powi(3)));
        assert_eq!(quantity_bytes("1.5G"), Some(1.5e9));
        assert_eq!(quantity_bytes("2e3"), Some(2000.0));
        assert_eq!(quantity_bytes("4gi"), None);
        assert_eq!(quantity_bytes("-1Gi"), None);
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("tee-snp"));
        assert!(!is_dns_label("Tee"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(""));
    }
}
