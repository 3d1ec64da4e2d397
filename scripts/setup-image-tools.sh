#!/usr/bin/env bash
# Installs (idempotently, from Debian) what the container-image test needs: runc (the OCI
# runtime), umoci (OCI image layouts) and golang-github-containers-common (the container
# runtimes' default seccomp profile, /usr/share/containers/seccomp.json). No service is
# started by any of them.
set -euo pipefail

log() { printf 'setup-image-tools: %s\n' "$*" >&2; }

missing=()
command -v runc >/dev/null 2>&1 || [[ -x /usr/sbin/runc ]] || missing+=(runc)
command -v umoci >/dev/null 2>&1 || missing+=(umoci)
[[ -f /usr/share/containers/seccomp.json ]] || missing+=(golang-github-containers-common)
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi
SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
log "apt-get install ${missing[*]}"
install() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; }
install || { $SUDO apt-get update -q >&2 && install; }
