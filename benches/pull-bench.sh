#!/usr/bin/env bash
# The pull benchmark of ISSUE 3: secure-model pull vs a plain object_store download (ceiling),
# KServe's storage initializer and KServe's JWE confidential mode, plus pack vs plain upload.
# Prints one markdown table with the ratios and writes target/bench/pull-bench.md (+ .json).
#
#   benches/pull-bench.sh              full run: 1 GiB, 3 rounds, sweep, 4 GiB RSS check
#   benches/pull-bench.sh --smoke      64 MiB, 1 round (proves the script works; ~1 min)
#   benches/pull-bench.sh --help       all knobs (--size-mib, --big-mib 0, --rounds, ...)
#
# Not part of scripts/test.sh. Needs: cargo, openssl, curl, GNU time (/usr/bin/time), npm
# (s3rver via scripts/setup-servers.sh) and the Python venv with kserve-storage, boto3 and
# jwcrypto (SMTEST_PYTHON, else scripts/setup-python.sh creates it).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

if [[ ! -x /usr/bin/time ]]; then
  echo "pull-bench: GNU time is missing: apt-get install -y time" >&2
  exit 2
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
if [[ -z "${PULL_BENCH_NO_BUILD:-}" ]]; then
  cargo build --release -q -p secure-model-cli -p secure-model-benches >&2
fi

eval "$(scripts/setup-servers.sh)"
PY="${SMTEST_PYTHON:-}"
if [[ -z "$PY" ]]; then
  PY="$(scripts/setup-python.sh | tail -n1)"
fi

# benches/cache-bench.sh runs its own script through this one.
SCRIPT="${PULL_BENCH_SCRIPT:-pull_bench.py}"
export PULL_BENCH_COMMAND="${PULL_BENCH_COMMAND:-benches/pull-bench.sh $*}"
exec "$PY" "benches/$SCRIPT" --bin-dir "$CARGO_TARGET_DIR/release" --python "$PY" "$@"
