#!/usr/bin/env bash
# Builds (once, cached) a real kube-apiserver for the webhook's end-to-end test, from Debian's
# own source package of Kubernetes (1.20.2, with its vendored dependencies) and Debian's Go,
# and installs etcd from Debian. Nothing comes from anywhere but Debian's registry.
#
#   cache:  ${SMTEST_KUBE_DIR:-<repo>/target/kube}/<binary>-<version>
#   stdout: shell `export` lines (eval "$(scripts/setup-kube-apiserver.sh)"):
#           SMTEST_KUBE_APISERVER, SMTEST_ETCD (kubectl is installed when missing), and with
#           --node also SMTEST_KUBELET, SMTEST_KUBE_SCHEDULER, SMTEST_KUBE_CONTROLLER_MANAGER
#           (the single-node cluster of scripts/kube-node.sh)
# Everything else goes to stderr. A cold run takes 8-12 minutes on 2 cores (the Go build), a
# few more with --node (one `make` builds all four: they share most packages); a warm one is
# instant. The build tree (~2 GB) and Go cache (~1 GB) are deleted afterwards.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname -- "$SCRIPT_DIR")"
KUBE_DIR="${SMTEST_KUBE_DIR:-$REPO/target/kube}"
# Debian bookworm's source package (security update 1.1+deb12u1): kube-apiserver v1.20.2.
SRC_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
ORIG="kubernetes_1.20.5+really1.20.2.orig.tar.gz"
BIN="$KUBE_DIR/kube-apiserver-$SRC_VERSION"
CMDS=(kube-apiserver)
if [[ "${1:-}" == --node ]]; then
  CMDS+=(kubelet kube-scheduler kube-controller-manager)
fi
built() {
  local c
  for c in "${CMDS[@]}"; do [[ -x "$KUBE_DIR/$c-$SRC_VERSION" ]] || return 1; done
}

log() { printf 'setup-kube-apiserver: %s\n' "$*" >&2; }

SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
apt_install() {
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$@" >&2 \
    || { $SUDO apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$@" >&2; }
}

if ! command -v etcd >/dev/null 2>&1; then
  log "apt-get install etcd-server"
  apt_install etcd-server
fi
# The test talks to the API server with kubectl (the image's, or Debian's kubernetes-client).
if ! command -v kubectl >/dev/null 2>&1; then
  log "apt-get install kubernetes-client"
  apt_install kubernetes-client
fi

# Debian's source package, unpacked under $WORK/src; sets TREE.
fetch_source() {
  WORK="$KUBE_DIR/build"
  rm -rf -- "$WORK"
  mkdir -p -- "$WORK/apt/parts" "$WORK/apt/lists/partial" "$WORK/src"
  # deb-src entries for the same mirrors as the system's deb822 list, in a private apt state
  # directory: the system's apt configuration is not touched.
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$WORK/apt/parts/src.sources"
  APTO=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$WORK/apt/parts"
        -o "Dir::State::Lists=$WORK/apt/lists")
  apt-get "${APTO[@]}" update -q >&2
  (cd "$WORK/src" && apt-get "${APTO[@]}" source --download-only "kubernetes=$SRC_VERSION" >&2)
  tar -C "$WORK/src" -xzf "$WORK/src/$ORIG"
  TREE="$WORK/src/kubernetes-1.20.2"
}

if ! built; then
  start=$(date +%s)
  log "building ${CMDS[*]} from Debian's source package kubernetes $SRC_VERSION (8-12 min)"
  apt_install golang-go rsync golang-github-modern-go-reflect2-dev
  fetch_source
  # Go >= 1.18: the vendored modern-go/reflect2 1.0.1 crashes (json-iterator); Debian's 1.0.2
  # is the fixed release of the same package.
  R2="$TREE/vendor/github.com/modern-go/reflect2"
  rm -rf -- "$R2" && mkdir -p -- "$R2"
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go \
     /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$R2/"
  rm -f -- "$R2"/*_test.go
  # `make` runs Kubernetes' code generators before the build (plain `go build` cannot).
  (cd "$TREE" && GOPROXY=off GOFLAGS= KUBE_BUILD_PLATFORMS=linux/amd64 CGO_ENABLED=0 \
     GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" \
     nice -n 10 make all WHAT="${CMDS[*]/#/cmd/}" >&2)
  mkdir -p -- "$KUBE_DIR"
  for c in "${CMDS[@]}"; do
    out="$KUBE_DIR/$c-$SRC_VERSION"
    cp "$TREE/_output/bin/$c" "$out.tmp" && mv -- "$out.tmp" "$out"
  done
  chmod -R u+w "$WORK" 2>/dev/null || true
  rm -rf -- "$WORK"
  log "built $("$BIN" --version) in $(( $(date +%s) - start )) s"
fi

# The pod sandbox's process (the "pause" container) for --node: Kubernetes' own pause.c from the
# same source package, linked statically with Debian's gcc and libc.
PAUSE="$KUBE_DIR/pause-$SRC_VERSION"
if [[ "${1:-}" == --node && ! -x "$PAUSE" ]]; then
  command -v gcc >/dev/null 2>&1 || apt_install gcc libc6-dev
  fetch_source
  gcc -Os -static -o "$PAUSE.tmp" "$TREE/build/pause/linux/pause.c" >&2
  strip "$PAUSE.tmp" && mv -- "$PAUSE.tmp" "$PAUSE"
  rm -rf -- "$WORK"
  log "built $PAUSE"
fi

printf 'export SMTEST_KUBE_APISERVER=%q\n' "$BIN"
printf 'export SMTEST_ETCD=%q\n' "$(command -v etcd)"
if [[ "${1:-}" == --node ]]; then
  printf 'export SMTEST_KUBELET=%q\n' "$KUBE_DIR/kubelet-$SRC_VERSION"
  printf 'export SMTEST_KUBE_SCHEDULER=%q\n' "$KUBE_DIR/kube-scheduler-$SRC_VERSION"
  printf 'export SMTEST_KUBE_CONTROLLER_MANAGER=%q\n' "$KUBE_DIR/kube-controller-manager-$SRC_VERSION"
  printf 'export SMTEST_KUBE_PAUSE=%q\n' "$PAUSE"
fi
