//! # secure-model-webhook
//!
//! Puts the secure loader in front of any serving workload. A pod (or a workload's pod
//! template, or a KServe LLMInferenceService) that asks for it with one annotation gets the
//! `secure-model-initc` init container, a memory-backed volume for the decrypted model, and
//! read-only mounts of it in the containers that serve the model. The injection is a pure
//! function ([`mutation::inject`]) used by two front ends: a mutating admission webhook
//! ([`server`], [`admission`]) and manual injection of YAML for GitOps
//! ([`workload::inject_yaml`], `secure-model-webhook inject -f`). A pod whose serving
//! container loads the package itself (vLLM with `--load-format secure-model`, the
//! `secure_model` Python package) gets no init container and no model volume: that container
//! gets the profile's settings and Secrets instead ([`inprocess`]).
//!
//! Threat model in one paragraph: the webhook is trusted cluster infrastructure; the pods it
//! mutates are not. A pod that asks for injection but would let the plaintext reach disk (a
//! disk-backed volume at the destination), let an application container write the model, run
//! outside the profile's TEE runtime classes, or name an unknown profile or a malformed
//! package URI is refused with a message saying what to change. Profiles never carry inline
//! credentials (only Secret references) and can never allow disk plaintext. A profile's node cache of ciphertext (a
//! `hostPath`) and a KServe LocalModelCache volume are mounted into the init container only,
//! never into a serving container. Everything the
//! init container then does (signature, attestation, decryption) is the loader's and is not
//! weakened by injection.
//!
//! ## Quick start
//!
//! ```
//! use secure_model_webhook::{profile::Profiles, workload::inject_yaml};
//!
//! let profiles = Profiles::parse(r#"
//! profiles:
//!   default:
//!     image: ghcr.io/example/secure-model-initc:0.1.0
//!     env:
//!       SECURE_MODEL_KEYS: aws-kms:alias/secure-model
//!       SECURE_MODEL_TRUSTED_KEYS: /var/run/secure-model/trust/signer.pub.pem
//! "#)?;
//! let pod = r#"
//! apiVersion: v1
//! kind: Pod
//! metadata:
//!   name: vllm
//!   annotations: {secure-model.io/source: "secure+s3://models/llama/v1"}
//! spec:
//!   containers: [{name: vllm, image: vllm/vllm-openai}]
//! "#;
//! let (out, _report) = inject_yaml(pod, &profiles)?;
//! assert!(out.contains("storage-initializer") && out.contains("medium: Memory"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Module map
//!
//! | module | owns | uses (of this crate) |
//! |---|---|---|
//! | [`annotations`] | the opt-in labels and annotations, the injected names | — |
//! | [`refusal`] | [`Refusal`]: why a pod is refused, with what to change | annotations |
//! | [`profile`] | the profiles file, checked against the settings registry | refusal |
//! | [`request`] | a pod's labels and annotations → a checked [`request::Ask`] | annotations, localmodel, refusal |
//! | [`localmodel`] | KServe's LocalModelCache markers on a pod → a checked [`localmodel::LocalModel`] | annotations, profile, refusal |
//! | [`inprocess`] | serving containers that load the package themselves (`--load-format secure-model`) and the settings they get instead of the init container | profile |
//! | [`mutation`] | the pure injection: object + ask + profile → JSON Patch or refusal | annotations, inprocess, localmodel, profile, request, refusal |
//! | [`workload`] | pod specs of each kind (Deployment, ..., LLMInferenceService); `inject -f` | mutation, profile, request |
//! | [`admission`] | AdmissionReview v1 in, AdmissionReview out (base64 patch) | mutation, profile, request |
//! | [`server`] | HTTPS server, certificate and profile reload, limits, shutdown | admission, profile |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admission;
pub mod annotations;
pub mod inprocess;
pub mod localmodel;
pub mod mutation;
pub mod profile;
pub mod refusal;
pub mod request;
pub mod server;
pub mod workload;

pub use refusal::Refusal;
