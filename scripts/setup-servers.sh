#!/usr/bin/env bash
# Installs (idempotently) the real servers the backend tests and benchmarks start on 127.0.0.1:
#   s3rver and Azurite (npm, into <repo>/target/node), nginx (Debian package, when missing).
# moto (S3/KMS) and fake-gcs-server come with the Python venv (scripts/setup-python.sh).
#
# stdout: shell `export` lines for the tests (eval "$(scripts/setup-servers.sh)"):
#   SMTEST_S3RVER, SMTEST_AZURITE, SMTEST_NGINX
# Everything else goes to stderr.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname -- "$SCRIPT_DIR")"
NODE_DIR="$REPO/target/node"
PACKAGES="s3rver@3.7.1 azurite@3.37.0"

log() { printf 'setup-servers: %s\n' "$*" >&2; }

MARKER="$NODE_DIR/.secure-model-$(printf '%s' "$PACKAGES" | sha256sum | cut -c1-16)"
if [[ ! -f "$MARKER" ]]; then
  log "npm install $PACKAGES"
  mkdir -p -- "$NODE_DIR"
  # shellcheck disable=SC2086
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error $PACKAGES >&2
  : >"$MARKER"
fi

NGINX="$(command -v nginx || true)"
if [[ -z "$NGINX" && -x /usr/sbin/nginx ]]; then NGINX=/usr/sbin/nginx; fi
if [[ -z "$NGINX" ]]; then
  log "apt-get install nginx-light"
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
  # The package would start a system nginx on port 80; tests run their own instances. A
  # policy-rc.d that answers 101 ("action forbidden") keeps the install from starting any
  # service, so there is nothing to stop afterwards (and no process is ever killed by name).
  # It is ours only if it did not exist before; we remove only what we created.
  POLICY=/usr/sbin/policy-rc.d
  OWN_POLICY=""
  if [[ ! -e "$POLICY" ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 0755 "$POLICY"
    OWN_POLICY=1
  fi
  install_nginx() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nginx-light >&2; }
  install_nginx || { $SUDO apt-get update -q >&2 && install_nginx; } || STATUS=$?
  if [[ -n "$OWN_POLICY" ]]; then $SUDO rm -f "$POLICY"; fi
  if [[ -n "${STATUS:-}" ]]; then exit "$STATUS"; fi
  NGINX=/usr/sbin/nginx
fi

printf 'export SMTEST_S3RVER=%q\n' "$NODE_DIR/node_modules/.bin/s3rver"
printf 'export SMTEST_AZURITE=%q\n' "$NODE_DIR/node_modules/.bin/azurite-blob"
printf 'export SMTEST_NGINX=%q\n' "$NGINX"
