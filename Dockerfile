# syntax=docker/dockerfile:1
# The helm-bulk image for scheduled in-cluster saves (charts/helm-bulk): one
# static binary on an empty base, run as a non-root user. No shell, no helm.
#
#   docker build -t helm-bulk:dev .
#
# Built natively per architecture (linux/amd64, linux/arm64) by the release
# workflow, which joins both into one multi-arch image and records its digest.

FROM rust:1.95-alpine3.22 AS build
RUN apk add --no-cache musl-dev ca-certificates
WORKDIR /src
COPY . .
# A static (musl) release build of the locked dependency tree.
RUN cargo build --release --locked --bin helm-bulk \
 && strip target/release/helm-bulk \
 && mkdir -p /out/etc/ssl/certs /out/tmp \
 && cp target/release/helm-bulk /out/helm-bulk \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && ! ldd /out/helm-bulk 2>/dev/null | grep -q '=>'

FROM scratch
COPY --from=build /out/ /
# The chart mounts an emptyDir at /tmp (the root file system is read-only).
ENV HOME=/tmp SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENTRYPOINT ["/helm-bulk"]
CMD ["--help"]
