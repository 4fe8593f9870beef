# The edge hub's image: `docker build -t mftplus-hub .` (needs access to an image registry for
# the builder's base image; docker/Dockerfile.local builds the same runtime image from a binary
# built on the host, for machines without registry access). See docs/hub.md, "Container".
#
# Builder: compile `mftplus` in release and stage the runtime filesystem with the same script
# the container test uses (binary, the exact glibc libraries ldd lists, CA bundle).
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mftplus \
 && docker/stage-rootfs.sh target/release/mftplus /stage

# Runtime: nothing but the staged files; no shell, no package manager. The health check is the
# binary itself. Everything below `FROM scratch` matches docker/Dockerfile.local (checked by
# crates/mftplus/tests/hub_container.rs).
FROM scratch
COPY --from=builder /stage/rootfs/ /
COPY --from=builder --chown=65532:65532 /stage/data/ /app/data/
ENV HUB_PORT=3002 HUB_DATA_DIR=/app/data
USER 65532:65532
VOLUME ["/app/data"]
EXPOSE 3002
HEALTHCHECK --interval=30s --timeout=5s --retries=3 --start-period=10s CMD ["/mftplus", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/mftplus", "hub"]
