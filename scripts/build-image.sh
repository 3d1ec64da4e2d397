#!/usr/bin/env bash
# The secure-model-initc container image, built without a registry or a Docker daemon: an OCI
# image layout assembled with umoci from the static binary (scripts/build-static.sh), the CA
# bundle and a passwd/group naming the non-root user 65532, like distroless' "static:nonroot"
# but with nothing else (no shell, no package database, no timezone data).
#
#   scripts/build-image.sh [--binary BIN] OUT_LAYOUT [TAG]   OCI layout OUT_LAYOUT:TAG (0.1.0)
#   scripts/build-image.sh --rootfs DIR [--binary BIN]       only stage the image's files
#
# The Dockerfile's final stage is `FROM scratch` + `COPY --from=build /rootfs/ /` of the tree
# this script stages with --rootfs, with the same USER, WORKDIR, ENV and ENTRYPOINT as the
# config written here, so both builds ship the same files (see docs/container-image.md);
# secure-model-initc/tests/image.rs compares them and runs the image under runc.
#
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (default 0), so the same binary and CA
# bundle give the same manifest digest, printed as the last line of stdout.
# Needs: umoci (installed from Debian when missing, as root), coreutils; without --binary, what
# scripts/build-static.sh needs.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
BIN=""
ROOTFS_ONLY=""
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# What the image is, once: the test parses these lines and the Dockerfile must agree.
ENTRYPOINT=/usr/local/bin/secure-model-initc
# Another binary's image (the webhook, the example server, the pause process of the test
# cluster, scripts/kube-node.sh) is the same image with that binary: IMAGE_NAME=<binary name>.
if [[ -n "${IMAGE_NAME:-}" ]]; then ENTRYPOINT="/usr/local/bin/$IMAGE_NAME"; fi
IMAGE_USER=65532:65532
WORKDIR=/
IMAGE_ENV=SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

log() { printf 'build-image: %s\n' "$*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) BIN="$2"; shift 2 ;;
    --rootfs) ROOTFS_ONLY="$2"; shift 2 ;;
    -*) log "unknown option $1"; exit 2 ;;
    *) break ;;
  esac
done
if [[ -z "$ROOTFS_ONLY" && $# -lt 1 ]]; then
  log "usage: build-image.sh [--binary BIN] OUT_LAYOUT [TAG] | --rootfs DIR [--binary BIN]"
  exit 2
fi
OUT="${1:-}"
TAG="${2:-0.1.0}"
TS="${SOURCE_DATE_EPOCH:-0}"
ISO="$(date -u -d "@$TS" +%Y-%m-%dT%H:%M:%SZ)"

if [[ -z "$BIN" ]]; then BIN="$("$SCRIPT_DIR/build-static.sh" | tail -n 1)"; fi
test -x "$BIN"
test -s "$CA_BUNDLE"

# The image's files: root-owned, nothing writable but /tmp (the root filesystem is mounted
# read-only anyway), one executable.
stage() {
  local root="$1"
  mkdir -p "$root"/etc/ssl/certs "$root"/tmp "$root"/home/nonroot "$root${ENTRYPOINT%/*}"
  install -m 0555 "$BIN" "$root$ENTRYPOINT"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$root/etc/group"
  install -m 0444 "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  find "$root" -type d -exec chmod 0755 {} +
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
  chmod 1777 "$root/tmp"
  if [[ "$(id -u)" == 0 ]]; then chown -R 0:0 "$root"; fi
  find "$root" -exec touch -h -d "@$TS" {} +
}

if [[ -n "$ROOTFS_ONLY" ]]; then
  stage "$ROOTFS_ONLY"
  log "staged the image's files in $ROOTFS_ONLY"
  exit 0
fi

if ! command -v umoci >/dev/null 2>&1; then
  log "apt-get install umoci"
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
  install_umoci() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q umoci >&2; }
  install_umoci || { $SUDO apt-get update -q >&2 && install_umoci; }
fi

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
stage "$STAGE/rootfs"
rm -rf "$OUT"
umoci init --layout "$OUT"
umoci new --image "$OUT:$TAG"
umoci insert --image "$OUT:$TAG" --history.created "$ISO" \
  --history.created_by "scripts/build-image.sh" "$STAGE/rootfs" / >&2
umoci config --image "$OUT:$TAG" --created "$ISO" --history.created "$ISO" \
  --config.user "$IMAGE_USER" --config.entrypoint "$ENTRYPOINT" --clear config.cmd \
  --config.workingdir "$WORKDIR" --config.env "$IMAGE_ENV" \
  --architecture amd64 --os linux >&2
# insert and config leave the superseded blobs behind.
umoci gc --layout "$OUT" >&2
log "OCI layout $OUT:$TAG"
sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p' "$OUT/index.json" | head -n 1
