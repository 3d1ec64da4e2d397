#!/usr/bin/env bash
# The node-cache benchmark of issue 22 (benches/cache_bench.py): N pulls of one package from the
# WAN-like store with and without the node cache (origin bytes, wall time), a warm-cache pull
# vs `cp` and vs a pull from a local package. Prints a markdown table with ratios and writes
# target/bench/cache-bench.md.
#
#   benches/cache-bench.sh                 1 GiB, 4 pulls per round, 1 round
#   benches/cache-bench.sh --rounds 2      medians over 2 rounds
#   benches/cache-bench.sh --smoke         64 MiB (proves the script works; ~1 min)
#
# Not part of scripts/test.sh. Builds, servers and the Python venv as benches/pull-bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PULL_BENCH_SCRIPT=cache_bench.py PULL_BENCH_COMMAND="benches/cache-bench.sh $*" \
  exec benches/pull-bench.sh "$@"
