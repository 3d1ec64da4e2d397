//! Logging of the binaries: `tracing` to stderr, JSON lines for the init container, text for
//! the CLI, filtered by `--log`/`SECURE_MODEL_LOG`. Colour only on a terminal, and never with
//! `NO_COLOR` set (<https://no-color.org>): logs written to a file or a pipe carry no escape codes.

use std::io::IsTerminal as _;

use crate::registry::NO_COLOR;
use crate::Source;

/// Whether log lines may carry ANSI colour: stderr is a terminal and `NO_COLOR` is unset.
pub fn colour(src: &Source) -> bool {
    let no_color = src.is_given(&NO_COLOR);
    !no_color && std::io::stderr().is_terminal()
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// One JSON object per line (the init container; KServe and log pipelines parse it).
    Json,
    /// Human-readable lines without targets (the CLI).
    Text,
}

/// Installs the global subscriber. An invalid `filter` falls back to `fallback` (and says so
/// once the subscriber is up); `colour` allows ANSI escapes (see [`colour`]).
pub fn init(filter: &str, fallback: &str, format: LogFormat, colour: bool) {
    let (f, bad) = match tracing_subscriber::EnvFilter::try_new(filter) {
        Ok(f) => (f, false),
        Err(_) => (tracing_subscriber::EnvFilter::new(fallback), true),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(f)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
    if bad {
        tracing::warn!(
            filter,
            fallback,
            "invalid log filter (SECURE_MODEL_LOG / --log); using the fallback"
        );
    }
}
