//! `settings`: every setting of both binaries, from the one list.

use clap::Args;
use secure_model_settings::docs;

use super::{print_json, Res};

/// Arguments of `settings`.
#[derive(Debug, Args)]
pub(crate) struct SettingsArgs {
    /// Print Markdown (what `docs/settings.md` holds) instead of text.
    #[arg(long, conflicts_with = "json")]
    markdown: bool,
    /// Print every setting as one JSON array instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `settings`: text for a terminal by default, `--json` or `--markdown` on request.
pub(crate) fn run(a: SettingsArgs) -> Res {
    if a.markdown {
        print!("{}", docs::markdown());
        return Ok(());
    }
    if a.json {
        return print_json(&docs::json());
    }
    print!("{}", docs::text());
    Ok(())
}
