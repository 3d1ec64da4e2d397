//! # secure-model-settings
//!
//! The one settings layer of the secure-model binaries. Every setting is declared once in
//! [`registry`] (environment variable, CLI flag, value kind and bounds, default, doc line,
//! which binary reads it); [`Source`] reads values from one snapshot of the process
//! environment ([`Environment::capture`], the workspace's only read of it) overridden by the
//! CLI's flags, with one parser per kind, so a value means the same from a flag and from the
//! environment and a bad one is an error naming where it came from; [`build`] turns them into
//! the typed settings the libraries take (`LoadOptions`, `StorageSettings`, `KbsSettings`,
//! `Relaxations`, the KServe initializer's settings). The libraries never read the
//! environment.
//!
//! The crate also holds what both binaries share around it: their [`Failure`] type (class →
//! exit code, one-line message, hint), [`logging`] setup, and the settings list as docs
//! ([`docs`]).
//!
//! ## Module map
//!
//! | module | owns | uses (of this crate) |
//! |---|---|---|
//! | [`registry`] | every setting: variable, flag, kind and bounds, default, doc; `flag_value` for clap | — |
//! | `source` | [`Environment::capture`] (the one read of the environment), [`Source`]'s typed reads | registry |
//! | [`build`] | typed library settings from a [`Source`] | registry, source |
//! | `failure` | [`Failure`]: class, one-line message, hint | build, source |
//! | [`logging`] | the binaries' tracing setup | — |
//! | [`docs`] | the settings as Markdown and JSON | registry |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod build;
pub mod docs;
mod failure;
pub mod logging;
pub mod registry;
mod source;

pub use build::SettingsError;
pub use failure::Failure;
pub use source::{Environment, SettingError, Source};

/// Logs a warning for each variable with our prefixes that is no setting (a typo is silently
/// ignored otherwise).
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
