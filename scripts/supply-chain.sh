#!/usr/bin/env bash
# Supply-chain checks (docs/supply-chain.md):
#   1. `cargo deny check licenses bans sources` with deny.toml: permissive licenses only, one
#      TLS/crypto stack (no OpenSSL, no aws-lc, one version of ring, rustls, webpki, p256,
#      rsa), crates.io only. These three checks need no network; `advisories` does and is not
#      run (known advisories are tracked in docs/THREAT-MODEL.md §5).
#   2. The CycloneDX SBOM of the image's binary (secure-model-initc, x86_64-unknown-linux-musl,
#      no build or dev dependencies) written to $CARGO_TARGET_DIR/sbom/secure-model-initc.cdx.json
#      (default target/sbom/), then checked: the binary, ring and rustls are components, no
#      banned crate is.
# Tools: cargo-deny 0.20.2 and cargo-cyclonedx 0.5.9, installed once per machine
# (scripts/install-tool.sh). The last line of stdout is the SBOM's path.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname -- "$SCRIPT_DIR")"
cd "$REPO"
OUT_DIR="${CARGO_TARGET_DIR:-$REPO/target}/sbom"
BANNED='openssl|openssl-sys|native-tls|boring-sys|aws-lc-sys|aws-lc-rs'

log() { printf 'supply-chain: %s\n' "$*" >&2; }

DENY_BIN="$("$SCRIPT_DIR/install-tool.sh" cargo-deny 0.20.2 | tail -n 1)"
CDX_BIN="$("$SCRIPT_DIR/install-tool.sh" cargo-cyclonedx 0.5.9 | tail -n 1)"

log "cargo deny check licenses bans sources"
"$DENY_BIN/cargo-deny" deny --locked --log-level error check licenses bans sources >&2

# cargo-cyclonedx writes next to each workspace member's Cargo.toml: run it on a copy of the
# sources so the working tree stays clean.
COPY="$(mktemp -d)"
trap 'rm -rf "$COPY"' EXIT
tar --exclude=./target --exclude=./fuzz/target --exclude=./.git -cf - . | tar -xf - -C "$COPY"
log "cargo cyclonedx (secure-model-initc, x86_64-unknown-linux-musl)"
(
  cd "$COPY"
  SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}" "$CDX_BIN/cargo-cyclonedx" cyclonedx \
    --manifest-path secure-model-initc/Cargo.toml --format json --spec-version 1.5 \
    --target x86_64-unknown-linux-musl --no-build-deps --describe binaries --quiet >&2
)
mkdir -p "$OUT_DIR"
SBOM="$OUT_DIR/secure-model-initc.cdx.json"
cp "$COPY/secure-model-initc/secure-model-initc_bin.cdx.json" "$SBOM"

python3 - "$SBOM" "$BANNED" <<'PY'
import json, re, sys
bom = json.load(open(sys.argv[1]))
names = {c["name"] for c in bom.get("components", [])}
meta = bom["metadata"]["component"]["name"]
assert bom["specVersion"] == "1.5", bom["specVersion"]
assert "secure-model-initc" in meta, meta
for need in ("ring", "rustls", "secure-model-core"):
    assert need in names, f"{need} missing from the SBOM"
banned = sorted(n for n in names if re.fullmatch(sys.argv[2], n))
assert not banned, f"banned crates in the SBOM: {banned}"
print(f"supply-chain: SBOM {sys.argv[1]}: {len(names)} components", file=sys.stderr)
PY
echo "$SBOM"
