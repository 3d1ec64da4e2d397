#!/usr/bin/env bash
# Prints segment AEAD throughput next to raw ring AES-256-GCM, as ratios measured in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p secure-model-benches --bench aead 2>/dev/null
