#!/usr/bin/env bash
# Installs (idempotently) the real servers the backend tests and benchmarks start on 127.0.0.1:
#   s3rver and Azurite (npm, into <repo>/target/node), nginx (Debian package, when missing).
# moto (S3/KMS) and fake-gcs-server come with the Python venv (scripts/setup-python.sh).
#
# stdout: shell `export` lines for the tests (eval "$(scripts/setup-servers.sh)"):
#   SECURE_MODEL_S3RVER, SECURE_MODEL_AZURITE, SECURE_MODEL_NGINX
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
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nginx-light >&2 \
    || { $SUDO apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nginx-light >&2; }
  # The package starts a system nginx on port 80; tests run their own instances.
  $SUDO systemctl stop nginx >/dev/null 2>&1 || $SUDO service nginx stop >/dev/null 2>&1 || $SUDO pkill -x nginx >/dev/null 2>&1 || true
  NGINX=/usr/sbin/nginx
fi

printf 'export SECURE_MODEL_S3RVER=%q\n' "$NODE_DIR/node_modules/.bin/s3rver"
printf 'export SECURE_MODEL_AZURITE=%q\n' "$NODE_DIR/node_modules/.bin/azurite-blob"
printf 'export SECURE_MODEL_NGINX=%q\n' "$NGINX"
