#!/usr/bin/env bash
# Installs (idempotently) a pinned cargo subcommand from crates.io and prints the directory of
# its binaries (last line of stdout):
#
#   scripts/install-tool.sh CRATE VERSION
#
# The tools live outside the repository, in $HOME/.cache/secure-model-tools, so a fresh clone
# on the same machine (CI) reuses them; on a new machine they are built from source with
# `cargo install --locked` (the crate's own lockfile). A second call with the same version is
# a no-op that takes well under a second.
set -euo pipefail

CRATE="$1"
VERSION="$2"
ROOT="$HOME/.cache/secure-model-tools"

log() { printf 'install-tool: %s\n' "$*" >&2; }

installed() {
  [[ -f "$ROOT/.crates.toml" ]] && grep -q "^\"$CRATE $VERSION " "$ROOT/.crates.toml"
}

if ! installed; then
  log "cargo install --locked $CRATE@$VERSION into $ROOT (once per machine)"
  start=$(date +%s)
  # Our target directory settings must not leak into the tool's own build.
  env -u CARGO_TARGET_DIR -u RUSTFLAGS -u CARGO_INCREMENTAL \
    cargo install --locked --quiet --root "$ROOT" "$CRATE@$VERSION" >&2
  log "$CRATE $VERSION installed in $(($(date +%s) - start)) s"
fi
echo "$ROOT/bin"
