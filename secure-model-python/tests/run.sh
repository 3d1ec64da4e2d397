#!/usr/bin/env bash
# Builds the `secure_model` wheel with maturin, installs it into the repo's Python venv (with
# the test dependencies: scripts/setup-python.sh --ml, cached) and runs its pytest suite
# against packages the `secure-model` CLI packs.
#
#   CARGO_TARGET_DIR   cargo's target directory (default <repo>/target); the wheel goes to
#                      $CARGO_TARGET_DIR/wheels-secure-model
#   SMTEST_VENV        the venv (default <repo>/target/pyenv, as setup-python.sh)
#   SM_PY_PROFILE      cargo profile of the extension: dev (default) or release
#   SMTEST_VLLM_VENV   the vLLM venv (default $CARGO_TARGET_DIR/vllm-env, made by
#                      tests/setup-vllm.sh): when it exists, test_vllm.py runs in it too
#   extra arguments    passed to pytest (e.g. -k numpy)
set -euo pipefail
HERE="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
CRATE="$(dirname -- "$HERE")"
REPO="$(dirname -- "$CRATE")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
log() { printf 'secure-model-python/tests/run.sh: %s\n' "$*" >&2; }

VPY="$("$REPO/scripts/setup-python.sh" --ml | tail -n 1)"

log "building the CLI (packs the test packages)"
cargo build -q -p secure-model-cli
export SMTEST_CLI="$CARGO_TARGET_DIR/debug/secure-model"

PROFILE="${SM_PY_PROFILE:-dev}"
WHEELS="$CARGO_TARGET_DIR/wheels-secure-model"
rm -rf -- "$WHEELS"
log "building the wheel (profile $PROFILE)"
"$VPY" -m maturin build --quiet -m "$CRATE/Cargo.toml" --profile "$PROFILE" \
  --interpreter "$VPY" -o "$WHEELS" >&2
"$VPY" -m pip install -q --no-deps --force-reinstall "$WHEELS"/secure_model-*.whl >&2

# The tests set every setting they mean; none leaks in from the caller's environment.
for v in $(env | grep -o '^SECURE_MODEL_[A-Z0-9_]*' || true); do unset "$v"; done
cd "$HERE"
VLLM_VENV="${SMTEST_VLLM_VENV:-$CARGO_TARGET_DIR/vllm-env}"
if [[ -f "$VLLM_VENV/bin/python" ]] && ls "$VLLM_VENV"/.secure-model-vllm-* >/dev/null 2>&1; then
  log "vLLM plugin test in $VLLM_VENV"
  "$VLLM_VENV/bin/python" -m pip install -q --no-deps --force-reinstall "$WHEELS"/secure_model-*.whl >&2
  "$VLLM_VENV/bin/python" -m pytest -q -p no:cacheprovider test_vllm.py
else
  log "no vLLM venv ($VLLM_VENV; tests/setup-vllm.sh makes it): test_vllm.py is skipped"
fi
exec "$VPY" -m pytest -q -p no:cacheprovider "$@"
