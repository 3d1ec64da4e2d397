#!/usr/bin/env bash
# Builds the statically linked `secure-model-initc` binary that the container image ships (or,
# given a package name, that package's binary: `scripts/build-static.sh secure-model-webhook`
# for Dockerfile.webhook). The Dockerfile runs this same script, and secure-model-initc/tests/static_binary.rs runs it
# on the host, so what is tested is what is shipped.
#
#   target:  x86_64-unknown-linux-musl (musl libc, fully static, no NSS/dlopen at run time)
#   profile: release (thin LTO, see the workspace Cargo.toml)
#   output:  the last line of stdout is the path of the built binary
#
# Needs: the Rust toolchain with the musl standard library (`rustup target add
# x86_64-unknown-linux-musl`; this script runs that when the target is missing and rustup is
# available) and a C compiler for ring's assembly/C parts (gcc or musl-gcc).
# Environment: CARGO_TARGET_DIR (default <repo>/target), CARGO (default cargo).
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname -- "$SCRIPT_DIR")"
TARGET=x86_64-unknown-linux-musl
CARGO="${CARGO:-cargo}"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
PACKAGE="${1:-secure-model-initc}"
# The binary's name when it is not the package's (the example server: secure-model-oip-server).
BIN_NAME="${2:-$PACKAGE}"

log() { printf 'build-static: %s\n' "$*" >&2; }

if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx "$TARGET"; then
        log "installing the $TARGET standard library"
        rustup target add "$TARGET" >&2
    fi
fi

# ring builds its C and assembly with the host C compiler; musl-gcc is preferred when present.
if [ -z "${CC_x86_64_unknown_linux_musl:-}" ]; then
    if command -v musl-gcc >/dev/null 2>&1; then
        export CC_x86_64_unknown_linux_musl=musl-gcc
    else
        export CC_x86_64_unknown_linux_musl=cc
    fi
fi

log "cargo build --release --locked -p $PACKAGE --target $TARGET"
# crt-static is the musl default; stated explicitly so a toolchain change cannot flip it.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    "$CARGO" build --release --locked -p "$PACKAGE" --target "$TARGET" \
    --target-dir "$TARGET_DIR" >&2

BIN="$TARGET_DIR/$TARGET/release/$BIN_NAME"
test -x "$BIN"
echo "$BIN"
