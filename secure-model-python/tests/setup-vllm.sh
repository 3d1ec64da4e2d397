#!/usr/bin/env bash
# Creates (idempotently) the separate venv the vLLM plugin test runs in: vLLM from PyPI (its
# CUDA build; it pins its own torch, so it cannot share the test venv), pytest, safetensors.
# About 9.5 GB on disk. Not run by scripts/test.sh on its own (CI's time and disk): run it
# once, then tests/run.sh also runs test_vllm.py in it.
#
#   venv: ${SMTEST_VLLM_VENV:-$CARGO_TARGET_DIR/vllm-env}  (CARGO_TARGET_DIR default <repo>/target)
set -euo pipefail
REPO="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SMTEST_VLLM_VENV:-${CARGO_TARGET_DIR:-$REPO/target}/vllm-env}"
REQS="vllm pytest safetensors"
MARKER="$VENV/.secure-model-vllm-$(printf '%s' "$REQS" | sha256sum | cut -c1-16)"
if [[ -f "$MARKER" ]]; then
  printf '%s\n' "$VENV/bin/python"
  exit 0
fi
[[ -x "$VENV/bin/python" ]] || "${PYTHON:-python3}" -m venv -- "$VENV" >&2
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install -q --disable-pip-version-check $REQS >&2
"$VENV/bin/python" -c 'import vllm.model_executor.model_loader' >&2
: >"$MARKER"
printf '%s\n' "$VENV/bin/python"
