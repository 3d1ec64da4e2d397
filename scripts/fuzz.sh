#!/usr/bin/env bash
# Builds and runs the coverage-guided fuzz targets (fuzz/, libFuzzer through cargo-fuzz) on the
# stable toolchain: `--sanitizer none` (the code forbids `unsafe`, so AddressSanitizer adds
# little, and it needs nightly). Harnesses live in secure-model-fuzz; see docs/fuzzing.md.
#
#   scripts/fuzz.sh --ci               every target for FUZZ_SECONDS (default 10) seconds
#   scripts/fuzz.sh [-s SECONDS] T...  the named targets (default: all) for SECONDS each (60)
#   scripts/fuzz.sh --list             the target names
#   scripts/fuzz.sh --install-only     install cargo-fuzz and stop
#   scripts/fuzz.sh --build-only       install cargo-fuzz, build every target and stop (so CI
#                                      can build them while it waits for something else)
#
# Each run starts from the committed corpus (fuzz/corpus/<target>, read only) and keeps what
# it finds in fuzz/corpus-run/<target> (ignored by git); fuzz/dict/<target>.dict is used when
# present. A crash stops the script with the input's path (fuzz/artifacts/<target>/): copy it
# to fuzz/regressions/<target>/ and `cargo test -p secure-model-fuzz` replays it from then on.
# The last lines of stdout are one row per target: target, seconds, execs, exec/s, cov, ft,
# corpus size, crashes.
#
# Environment: CARGO_TARGET_DIR (the fuzz build goes to $CARGO_TARGET_DIR/fuzz), FUZZ_SECONDS,
# FUZZ_JOBS (parallel libFuzzer workers per target, default 1), FUZZ_CODEGEN_UNITS (16),
# FUZZ_LOG_DIR (keep each target's libFuzzer output there, for coverage-plateau reports).
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname -- "$SCRIPT_DIR")"
cd "$REPO/fuzz"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}/fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-1}"
CARGO_FUZZ_VERSION=0.13.2

log() { printf 'fuzz: %s\n' "$*" >&2; }

all_targets() { sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^secure-model-fuzz-targets$'; }

targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ci) SECONDS_EACH="${FUZZ_SECONDS:-10}" ;;
    -s) SECONDS_EACH="$2"; shift ;;
    --list) all_targets; exit 0 ;;
    --install-only) "$SCRIPT_DIR/install-tool.sh" cargo-fuzz "$CARGO_FUZZ_VERSION" >/dev/null; exit 0 ;;
    --build-only) BUILD_ONLY=1 ;;
    -*) log "unknown option $1"; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
if [[ ${#targets[@]} -eq 0 ]]; then mapfile -t targets < <(all_targets); fi

BIN="$("$SCRIPT_DIR/install-tool.sh" cargo-fuzz "$CARGO_FUZZ_VERSION" | tail -n 1)"
FUZZ=("$BIN/cargo-fuzz" fuzz)

# 16 codegen units instead of cargo-fuzz's 1: a much shorter cold build (every dependency is
# instrumented) for slightly slower fuzzing.
BUILD=(--sanitizer none --codegen-units "${FUZZ_CODEGEN_UNITS:-16}" --target-dir "$TARGET_DIR")
start=$(date +%s)
log "building the targets (release, coverage instrumentation, no sanitizer)"
# Without a target name cargo-fuzz builds them all, sharing every crate.
"${FUZZ[@]}" build "${BUILD[@]}" >&2
log "built in $(($(date +%s) - start)) s"
if [[ -n "${BUILD_ONLY:-}" ]]; then exit 0; fi

rows=()
for t in "${targets[@]}"; do
  mkdir -p "corpus-run/$t" "corpus/$t"
  args=(-max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048)
  if [[ -f "dict/$t.dict" ]]; then args+=(-dict="dict/$t.dict"); fi
  if [[ "$JOBS" -gt 1 ]]; then args+=(-fork="$JOBS"); fi
  out="$(mktemp)"
  t0=$(date +%s)
  status=0
  "${FUZZ[@]}" run "${BUILD[@]}" "$t" \
    "corpus-run/$t" "corpus/$t" -- "${args[@]}" >"$out" 2>&1 || status=$?
  secs=$(($(date +%s) - t0))
  if [[ -n "${FUZZ_LOG_DIR:-}" ]]; then mkdir -p "$FUZZ_LOG_DIR" && cp "$out" "$FUZZ_LOG_DIR/$t.log"; fi
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$out" | tail -n 1 || true)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -n 1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")"
  corp="$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$done_line")"
  if [[ "$status" -ne 0 ]]; then
    tail -n 40 "$out" >&2
    crash="$(grep -o 'artifacts/[^ ]*' "$out" | tail -n 1 || true)"
    log "$t FAILED (exit $status): input fuzz/${crash:-artifacts/$t}"
    log "keep it as a regression: cp fuzz/$crash fuzz/regressions/$t/ (then fix and test)"
    rm -f "$out"
    exit 1
  fi
  rm -f "$out"
  rows+=("$t ${secs}s execs=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} crashes=0")
  log "${rows[-1]}"
done
log "all ${#targets[@]} targets ran clean in $(($(date +%s) - start)) s"
printf '%s\n' "${rows[@]}"
