# syntax=docker/dockerfile:1
# The secure-model storage initializer image for KServe.
#
#   docker build -f Dockerfile -t <registry>/secure-model-initc:0.1.0 .
#
# Stage 1 builds a fully static binary (musl, no dynamic loader, no NSS) with the same script
# the test suite runs (scripts/build-static.sh, checked by
# secure-model-initc/tests/static_binary.rs). Stage 2 is distroless "static": no shell, no
# package manager, CA certificates in /etc/ssl/certs, a `nonroot` user 65532. The binary writes
# only into the destination directory KServe mounts (and /dev/termination-log), so the
# container runs with readOnlyRootFilesystem: true.

FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ENV CARGO_TARGET_DIR=/src/target
RUN scripts/build-static.sh > /tmp/binary-path \
 && install -D -m 0555 "$(tail -n 1 /tmp/binary-path)" /out/secure-model-initc

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/secure-model-initc /usr/local/bin/secure-model-initc
# Numeric, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/secure-model-initc"]
