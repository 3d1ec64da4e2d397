#!/usr/bin/env bash
# A single-node Kubernetes cluster on this machine, for the end-to-end tests of
# secure-model-webhook/tests/cluster.rs: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and a kubelet (cgroupfs driver) over containerd and runc, a bridge CNI network,
# and a local OCI registry (Debian's docker-registry) into which the project's images are pushed
# with skopeo after umoci built them. No Docker, nothing from outside Debian's and crates.io's
# registries.
#
#   scripts/kube-node.sh up      start everything (idempotent: a running cluster is reused) and
#                                print `export` lines: SMTEST_KUBECONFIG, SMTEST_KUBE_REGISTRY,
#                                SMTEST_KUBE_HOST_IP, SMTEST_KUBE_NODE_DIR, SMTEST_CONTAINERD_SOCK,
#                                and with SMTEST_S3RVER set (scripts/setup-servers.sh), an S3
#                                server for the pods: SMTEST_KUBE_S3 (host:port), SMTEST_KUBE_S3_DIR
#   scripts/kube-node.sh packages  install what it needs from Debian (containerd, runc's
#                                CNI plugins, docker-registry, skopeo...), nothing started
#   scripts/kube-node.sh images  build the images (static binaries, umoci) and push them
#   scripts/kube-node.sh binaries  only build the images' static binaries (no root needed)
#   scripts/kube-node.sh e2e     all of it: up, images, the cluster tests
#                                (cargo test -p secure-model-webhook --test cluster -- --ignored),
#                                down (also when a step fails)
#   scripts/kube-node.sh down    stop everything it started, by the PIDs it recorded, remove the
#                                pods' containers, mounts and network, and the state directory
#
# State: ${SMTEST_KUBE_NODE_DIR:-<repo>/target/kube-node}; every component's log is there
# (<name>.log). Binaries: scripts/setup-kube-apiserver.sh --node (built once from Debian's
# source package, cached under target/kube). Must run as root (kubelet, containerd, runc).
#
# Addresses: the API server, etcd and registry listen on 127.0.0.1 only. Pods live on the
# bridge smbr0, 10.244.0.0/24; the host is 10.244.0.1 on it (SMTEST_KUBE_HOST_IP), which is
# where the servers pods must reach listen (the S3 server), and the node's address: the kubelet
# refuses a loopback node IP, and serves there (client certificates of the cluster's CA only). The bridge is created here,
# before any pod, so host services can bind to it. There is no kube-proxy and no cluster DNS:
# the API server reaches the webhook Service through its endpoints (--enable-aggregator-routing),
# and pods are given IP addresses, not names.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname -- "$SCRIPT_DIR")"
STATE="${SMTEST_KUBE_NODE_DIR:-$REPO/target/kube-node}"
PIDS="$STATE/pids"
BRIDGE=smbr0
HOST_IP=10.244.0.1
POD_SUBNET=10.244.0.0/24
SERVICE_RANGE=10.96.0.0/24
API_PORT=16443
ETCD_PORT=12379
REGISTRY=127.0.0.1:15000
S3_PORT=19000
NODE=sm-node
TAG=0.1.0

log() { printf 'kube-node: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ "${1:-}" == binaries || "$(id -u)" == 0 ]] || die "must run as root (kubelet, containerd and runc need it)"

kubectl_() { kubectl --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

# Starts "$@" in its own process group, logging to $STATE/<name>.log, and records its PID.
start() {
  local name="$1"
  shift
  setsid "$@" >"$STATE/$name.log" 2>&1 </dev/null &
  echo "$name $!" >>"$PIDS"
  log "started $name (pid $!)"
}

# Waits up to $2 seconds for the command "${@:3}" to succeed; names $1 in the error.
wait_for() {
  local what="$1" secs="$2" i
  shift 2
  for ((i = 0; i < secs * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "$what not ready after ${secs} s; its log ends:
$(tail -n 30 "$STATE/$what.log" 2>/dev/null || true)"
}

alive() {
  [[ -f "$PIDS" ]] || return 1
  local name pid
  while read -r name pid; do kill -0 "$pid" 2>/dev/null || return 1; done <"$PIDS"
}

install_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v skopeo >/dev/null || missing+=(skopeo)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v openssl >/dev/null || missing+=(openssl)
  # The pre-warm DaemonSet's `prepare` step runs a shell (deploy/cache/warm-daemonset.yaml).
  [[ -x /bin/busybox ]] || missing+=(busybox-static)
  if [[ ${#missing[@]} -gt 0 ]]; then
    log "apt-get install ${missing[*]}"
    local i=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends)
    "${i[@]}" "${missing[@]}" >&2 || { apt-get update -q >&2 && "${i[@]}" "${missing[@]}" >&2; }
  fi
}

# A CA, the API server's certificate, one client certificate in system:masters (used by the
# controller manager, the scheduler, the kubelet and the tests) and the service-account key.
certificates() {
  local d="$STATE/pki"
  [[ -s "$d/admin.crt" ]] && return 0
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=sm-node-ca \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  leaf() { # name subject extensions
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null
    openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
      -days 7 -out "$d/$1.crt" -extfile <(printf '%s\n' "$3") 2>/dev/null
  }
  leaf apiserver /CN=kube-apiserver "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
  leaf admin "/O=system:masters/CN=sm-admin" "extendedKeyUsage=clientAuth"
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  cat >"$STATE/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sm-node
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$d/ca.crt"}
users:
- name: admin
  user: {client-certificate: "$d/admin.crt", client-key: "$d/admin.key"}
contexts:
- name: sm-node
  context: {cluster: sm-node, user: admin, namespace: default}
current-context: sm-node
EOF
}

configure() {
  mkdir -p "$STATE"/{cni,cni-ipam,containerd,kubelet,registry,etcd}
  cat >"$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$STATE/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REGISTRY/pause:$TAG"
  # This machine's root lacks CAP_SYS_RESOURCE, so no process may lower an OOM score: runc
  # fails to start the sandbox (oom_score_adj -998, "Permission denied"). containerd's own
  # switch for this case keeps every container's score at or above containerd's.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REGISTRY"]
    endpoint = ["http://$REGISTRY"]
EOF
  cat >"$STATE/cni/10-smnet.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "smnet", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$STATE/cni-ipam",
            "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$HOST_IP"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  cat >"$STATE/registry.yaml" <<EOF
version: 0.1
log: {level: info}
storage: {filesystem: {rootdirectory: "$STATE/registry"}, delete: {enabled: true}}
http: {addr: "$REGISTRY"}
EOF
  cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $HOST_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$STATE/pki/ca.crt"}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failSwapOn: false
clusterDomain: cluster.local
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
syncFrequency: 5s
fileCheckFrequency: 5s
EOF
}

# The bridge the CNI plugin attaches pods to, created first so that host services (the tests'
# S3 server) can listen on its address before any pod exists.
bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr show dev "$BRIDGE" | grep -q "inet $HOST_IP/" || ip addr add "$HOST_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Pods talk to the host across the bridge: br_netfilter (if loaded) must not drop it.
  sysctl -qw net.ipv4.ip_forward=1 || true
}

up() {
  install_packages
  eval "$("$SCRIPT_DIR/setup-kube-apiserver.sh" --node)"
  if alive; then
    log "already running ($STATE)"
    exports
    return 0
  fi
  [[ -f "$PIDS" ]] && down_processes
  mkdir -p "$STATE"
  : >"$PIDS"
  certificates
  configure
  bridge
  swapoff -a 2>/dev/null || true
  start etcd etcd --data-dir "$STATE/etcd" --name sm-node \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
    --initial-cluster sm-node=http://127.0.0.1:12380
  start registry docker-registry serve "$STATE/registry.yaml"
  start containerd containerd --config "$STATE/containerd.toml"
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
  local pki="$STATE/pki"
  start kube-apiserver "$SMTEST_KUBE_APISERVER" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --secure-port "$API_PORT" --insecure-port 0 \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
    --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range "$SERVICE_RANGE" --enable-aggregator-routing=true \
    --allow-privileged=false
  wait_for kube-apiserver 90 kubectl_ get --raw /readyz
  start kube-controller-manager "$SMTEST_KUBE_CONTROLLER_MANAGER" \
    --kubeconfig "$STATE/admin.kubeconfig" --leader-elect=false --bind-address 127.0.0.1 --port 0 \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=false --controllers '*,-nodeipam,-csrsigning,-csrapproving'
  start kube-scheduler "$SMTEST_KUBE_SCHEDULER" \
    --kubeconfig "$STATE/admin.kubeconfig" --leader-elect=false --bind-address 127.0.0.1 --port 0
  wait_for containerd 30 ctr --address "$STATE/containerd.sock" version
  wait_for registry 30 curl -fsS "http://$REGISTRY/v2/"
  start kubelet "$SMTEST_KUBELET" --config "$STATE/kubelet.yaml" \
    --kubeconfig "$STATE/admin.kubeconfig" --hostname-override "$NODE" --node-ip "$HOST_IP" \
    --container-runtime remote --container-runtime-endpoint "unix://$STATE/containerd.sock" \
    --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" --v 2
  if [[ -n "${SMTEST_S3RVER:-}" ]]; then
    # The object store pods read packages from, on the host's bridge address.
    mkdir -p "$STATE/s3"
    start s3rver "$SMTEST_S3RVER" --address "$HOST_IP" --port "$S3_PORT" --silent \
      --directory "$STATE/s3" --configure-bucket models
    wait_for s3rver 60 curl -fsS -o /dev/null "http://$HOST_IP:$S3_PORT/"
  fi
  wait_for kubelet 120 kubectl_ wait --for=condition=Ready "node/$NODE" --timeout=1s
  log "node $NODE ready"
  exports
}

exports() {
  printf 'export SMTEST_KUBECONFIG=%q\n' "$STATE/admin.kubeconfig"
  printf 'export SMTEST_KUBE_REGISTRY=%q\n' "$REGISTRY"
  printf 'export SMTEST_KUBE_HOST_IP=%q\n' "$HOST_IP"
  printf 'export SMTEST_KUBE_NODE_DIR=%q\n' "$STATE"
  printf 'export SMTEST_CONTAINERD_SOCK=%q\n' "$STATE/containerd.sock"
  if grep -q '^s3rver ' "$PIDS" 2>/dev/null; then
    printf 'export SMTEST_KUBE_S3=%q\n' "$HOST_IP:$S3_PORT"
    printf 'export SMTEST_KUBE_S3_DIR=%q\n' "$STATE/s3"
  fi
}

# The images the tests deploy: the init container, the webhook, the example model server, the
# pod sandbox's pause and Debian's static busybox (the cache DaemonSet's shell step), each a
# static binary in an otherwise empty non-root image.
images() {
  local out="$STATE/images" built name bin
  mkdir -p "$out"
  [[ -n "${SMTEST_KUBE_PAUSE:-}" ]] || eval "$("$SCRIPT_DIR/setup-kube-apiserver.sh" --node)"
  built="$(binaries)"
  while read -r name bin; do
    push "$name" "$bin"
  done <<<"$built"
  push pause "$SMTEST_KUBE_PAUSE"
  push busybox /bin/busybox
}

# The project's static binaries those images ship (scripts/build-static.sh, as the Dockerfiles
# build them: one package at a time), one "image-name path" line each. Needs no root and no
# cluster: CI builds them in the background before the cluster step. Their target directory
# is target/static, where the static-binary and image tests build the init container's too.
binaries() {
  local spec pkg name bin
  local -x CARGO_TARGET_DIR="$REPO/target/static"
  for spec in secure-model-initc:secure-model-initc secure-model-webhook:secure-model-webhook \
    secure-model-example-oip-server:secure-model-oip-server; do
    pkg="${spec%%:*}"
    name="${spec##*:}"
    # `|| return`: errexit does not reach into the command substitution images() runs this in.
    bin="$("$SCRIPT_DIR/build-static.sh" "$pkg" "$name" | tail -n 1)" || return 1
    printf '%s %s\n' "$name" "$bin"
  done
}

# push NAME BINARY [root]: an image whose entrypoint is BINARY, into the registry as NAME:TAG.
push() {
  local name="$1" bin="$2" layout="$STATE/images/$1"
  rm -rf -- "$layout"
  IMAGE_NAME="$name" "$SCRIPT_DIR/build-image.sh" --binary "$bin" "$layout" "$TAG" >/dev/null
  skopeo copy --quiet --dest-tls-verify=false "oci:$layout:$TAG" "docker://$REGISTRY/$name:$TAG" >&2
  log "pushed $REGISTRY/$name:$TAG"
}

# Stops one recorded process by its PID (its process group), waiting for it to exit.
stop_recorded() {
  local name="$1" pid i
  pid="$(awk -v n="$name" '$1 == n {print $2}' "$PIDS")"
  [[ -n "$pid" ]] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

# The PIDs of the containerd shims this cluster's containerd started, as the shims recorded
# them (shim.pid in each task's bundle).
shim_pids() {
  cat "$STATE"/containerd/state/io.containerd.runtime.v2.task/*/*/shim.pid 2>/dev/null || true
}

# Kills each of the PIDs given that is still a shim of this cluster (its command line names
# this cluster's containerd socket, so a reused PID is left alone).
stop_shims() {
  local pid cmd
  for pid in "$@"; do
    [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || continue
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || continue
    [[ "$cmd" == *"$STATE/containerd.sock"* ]] || continue
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# Stops the recorded processes: the kubelet and the control plane first (so nothing restarts
# a pod), then the pods' containers through containerd (their shims are containerd's
# children, not ours: deleting a pod's tasks ends its shim), then containerd and the rest; a
# shim still running then (containerd stopped before it shut down) is killed by the PID it
# recorded.
down_processes() {
  [[ -f "$PIDS" ]] || return 0
  local name i t shims
  for name in kubelet kube-scheduler kube-controller-manager kube-apiserver; do
    stop_recorded "$name"
  done
  shims="$(shim_pids)"
  if [[ -S "$STATE/containerd.sock" ]]; then
    local c=(ctr --address "$STATE/containerd.sock" -n k8s.io)
    for ((i = 0; i < 40; i++)); do
      [[ -z "$("${c[@]}" tasks ls -q 2>/dev/null | head -n 1)" ]] && break
      for t in $("${c[@]}" tasks ls -q 2>/dev/null); do
        "${c[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
        "${c[@]}" tasks delete "$t" >/dev/null 2>&1 || true
      done
      sleep 0.25
    done
  fi
  for name in s3rver containerd registry etcd; do
    stop_recorded "$name"
  done
  # shellcheck disable=SC2086 # one PID per word
  stop_shims $shims
  rm -f -- "$PIDS"
}

down() {
  down_processes
  # What the kubelet and containerd mounted under the state directory (volumes, snapshots,
  # sandboxes' shm), deepest first; and the pods' network namespaces, named in containerd's
  # state, then the bridge.
  if [[ -d "$STATE" ]]; then
    findmnt -rn -o TARGET | grep -F "$STATE/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  for ns in /var/run/netns/cni-*; do
    [[ -e "$ns" && "$ns" -nt "$STATE/pki/ca.crt" ]] || continue
    umount "$ns" 2>/dev/null || true
    rm -f -- "$ns"
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  if [[ "${KEEP_STATE:-}" != 1 ]]; then rm -rf -- "$STATE"; fi
  log "stopped"
}

# The one command: the cluster, the images, the tests, and the cluster stopped again.
e2e() {
  trap 'down' EXIT
  eval "$(up)"
  export SMTEST_KUBECONFIG SMTEST_KUBE_REGISTRY SMTEST_KUBE_HOST_IP SMTEST_KUBE_NODE_DIR \
    SMTEST_CONTAINERD_SOCK SMTEST_KUBE_S3 SMTEST_KUBE_S3_DIR
  images
  local start=$SECONDS
  (cd "$REPO" && cargo test --workspace --all-features --test cluster -- --ignored --test-threads 2)
  log "cluster tests took $((SECONDS - start)) s"
}

case "${1:-}" in
  up) up ;;
  e2e) e2e ;;
  packages) install_packages ;;
  images) images ;;
  binaries) binaries ;;
  down) down ;;
  *) die "usage: kube-node.sh up|packages|images|binaries|e2e|down" ;;
esac
