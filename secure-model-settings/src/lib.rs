//! # secure-model-settings
//!
//! The one settings layer of the secure-model binaries, and the only reader of the process
//! environment and of KServe's storage-config secret. Every setting is declared once in
//! [`registry`] (environment variable, CLI flag, typed kind and bounds, default, doc line,
//! which binary reads it); [`Source`] reads values from one snapshot of the environment
//! ([`Environment::capture`]) overridden by the CLI's typed flags, with one parser per kind;
//! [`resolve`] turns them into the one resolved configuration of a run ([`Settings`]): the
//! trust sources and policy ([`trust`]), the key providers, each storage backend's typed
//! configuration ([`storage`], where KServe's and the SDKs' variable names are known), transfer
//! options and a single set of relaxations. The libraries never read the environment.
//!
//! The crate also holds what the binaries share around it: their [`Failure`] type (class →
//! exit code, one-line message, hint), [`logging`] setup, and the settings list as docs
//! ([`docs`]).
//!
//! ## Module map
//!
//! | module | owns | uses (of this crate) |
//! |---|---|---|
//! | [`kind`] | value kinds: one parser per kind | — |
//! | [`registry`] | every setting, declared once: `Setting<Kind>` constants and the list | kind |
//! | `source` | [`Environment::capture`] (the one read of the environment), [`Source`]'s typed reads | registry |
//! | [`trust`] | trust sources → the trust policy | registry, source |
//! | [`storage`] | storage variables → each backend's typed configuration, implied relaxations, credential sources | registry, source |
//! | [`resolve`] | the resolved configuration of a run | registry, source, storage, trust |
//! | `failure` | [`Failure`]: class, one-line message, hint | resolve, source |
//! | [`cgroup`] | the process's cgroup memory limit (read once into the environment snapshot) | — |
//! | [`logging`] | the binaries' tracing setup | — |
//! | [`docs`] | the settings as Markdown and JSON | registry |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cgroup;
pub mod docs;
mod failure;
pub mod kind;
pub mod logging;
pub mod registry;
pub mod resolve;
mod source;
pub mod storage;
pub mod trust;

pub use failure::Failure;
pub use resolve::{Settings, SettingsError};
pub use source::{Environment, Origin, SettingError, Source};

/// Logs a warning for each variable with our prefixes that is no setting (a typo is silently
/// ignored otherwise).
/// The variables of ours in `env` that no setting declares, each with the closest declared
/// name when one is close (`SECURE_MODEL_KEY (did you mean SECURE_MODEL_KEYS?)`), for a
/// failure's one-line message: a misspelling then shows where `kubectl describe` looks.
pub fn unknown_variables_line(env: &Environment) -> Option<String> {
    let names: Vec<String> = env
        .unknown_own_variables()
        .into_iter()
        .map(|(name, closest)| match closest {
            Some(c) => format!("{name} (did you mean {c}?)"),
            None => name.to_string(),
        })
        .collect();
    (!names.is_empty()).then(|| format!("unknown variables ignored: {}", names.join(", ")))
}

/// Logs a warning per variable of ours that no setting declares, with the closest name.
pub fn warn_unknown_variables(env: &Environment) {
    for (name, closest) in env.unknown_own_variables() {
        match closest {
            Some(c) => {
                tracing::warn!(variable = %name, did_you_mean = c, "unknown setting variable ignored")
            }
            None => tracing::warn!(variable = %name, "unknown setting variable ignored"),
        }
    }
}
