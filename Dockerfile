# syntax=docker/dockerfile:1
# The secure-model storage initializer image for KServe.
#
#   docker build -f Dockerfile -t <registry>/secure-model-initc:0.1.0 .
#
# Stage 1 builds a fully static binary (musl, no dynamic loader, no NSS) with the same script
# the test suite runs (scripts/build-static.sh, checked by
# secure-model-initc/tests/static_binary.rs) and stages the image's files with
# scripts/build-image.sh --rootfs: the binary, the CA bundle, passwd/group with the `nonroot`
# user 65532, /tmp. Stage 2 is that tree alone: no shell, no package manager. Without Docker,
# `scripts/build-image.sh` builds the same image as an OCI layout (umoci), and
# secure-model-initc/tests/image.rs runs it under runc with a read-only root filesystem, UID
# 65532, no capabilities, no new privileges and the default seccomp profile
# (docs/container-image.md). The binary writes only into the destination directory KServe
# mounts (and /dev/termination-log), so the container runs with readOnlyRootFilesystem: true.

FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ENV CARGO_TARGET_DIR=/src/target
RUN scripts/build-static.sh > /tmp/binary-path \
 && scripts/build-image.sh --rootfs /rootfs --binary "$(tail -n 1 /tmp/binary-path)"

FROM scratch
COPY --from=build /rootfs/ /
# Numeric, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 65532:65532
WORKDIR /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/usr/local/bin/secure-model-initc"]
