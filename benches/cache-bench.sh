#!/usr/bin/env bash
# The node-cache benchmark of issue 22 (benches/cache_bench.py): N pulls of one package from the
# WAN-like store with and without the node cache (origin bytes, wall time), and a warm-cache
# pull vs `cp`. Prints a markdown table with ratios and writes target/bench/cache-bench.md.
#
#   benches/cache-bench.sh            1 GiB, 4 pulls per round, 1 round
#   benches/cache-bench.sh --smoke    64 MiB (proves the script works; ~1 min)
#
# Not part of scripts/test.sh. Needs what benches/pull-bench.sh needs (GNU time, s3rver).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
if [[ ! -x /usr/bin/time ]]; then
  echo "cache-bench: GNU time is missing: apt-get install -y time" >&2
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
export PULL_BENCH_COMMAND="benches/cache-bench.sh $*"
exec "$PY" benches/cache_bench.py --bin-dir "$CARGO_TARGET_DIR/release" --python "$PY" "$@"
