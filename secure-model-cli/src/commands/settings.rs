//! `settings`: every setting of both binaries, from the one list.

use clap::Args;
use secure_model_settings::docs;

use super::{print_json, Res};

/// Arguments of `settings`.
#[derive(Debug, Args)]
pub(crate) struct SettingsArgs {
    /// Print Markdown (what `docs/settings.md` holds) instead of JSON.
    #[arg(long)]
    markdown: bool,
}

/// Runs `settings`.
pub(crate) fn run(a: SettingsArgs) -> Res {
    if a.markdown {
        print!("{}", docs::markdown());
        return Ok(());
    }
    print_json(&docs::json())
}
