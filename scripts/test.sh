#!/usr/bin/env bash
# Runs the whole test suite: installs the Python tools the interop tests need (a venv under
# target/), then format, lints, docs and every test in the workspace.
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

step "python interop environment"
SECURE_MODEL_PYTHON="$(scripts/setup-python.sh | tail -n 1)"
export SECURE_MODEL_PYTHON
SECURE_MODEL_PYENV_BIN="$(dirname "$SECURE_MODEL_PYTHON")"
export SECURE_MODEL_PYENV_BIN

step "object-store servers (s3rver, Azurite, nginx; moto and fake-gcs come with the venv)"
eval "$(scripts/setup-servers.sh)"

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "supply chain: cargo deny (licenses, bans, sources) and the SBOM of the image's binary"
scripts/supply-chain.sh >/dev/null

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo test"
cargo test --workspace --all-features

step "static binary (the container image's build: scripts/build-static.sh, musl, run as UID 65532)"
cargo test -p secure-model-initc --test static_binary -- --ignored

step "real Kubernetes API server (kube-apiserver 1.20.2 built once from Debian's source package, etcd; scripts/setup-kube-apiserver.sh)"
eval "$(scripts/setup-kube-apiserver.sh)"
export SECURE_MODEL_KUBE_APISERVER SECURE_MODEL_ETCD
# --workspace --all-features: the same feature set as `cargo test` above, so nothing is rebuilt.
cargo test --workspace --all-features --test apiserver -- --ignored

step "container image: built with umoci, run under runc (read-only, UID 65532, no capabilities, seccomp)"
scripts/setup-image-tools.sh
cargo test -p secure-model-initc --test image -- --ignored

step "fuzz: every target for ${FUZZ_SECONDS:-20} s (cargo-fuzz, libFuzzer; corpora are replayed by cargo test)"
scripts/fuzz.sh --ci

step "done"
