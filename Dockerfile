# Multi-stage build: compile with the Rust toolchain, run on a distroless base as non-root.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# schema/ and persisted-queries/manifest.json are compiled into the binary (the demo's SDL and
# manifest: `demo` works in the container too).
COPY schema ./schema
COPY persisted-queries ./persisted-queries
COPY benches ./benches
# No debug info in the image (the local release profile keeps line tables for readable
# backtraces; here they made the binary several times larger).
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN cargo build --release --locked --bin graphql-firewall

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/graphql-firewall /usr/local/bin/graphql-firewall
# Manifests and SDL are mounted or copied here by the deployment; empty by default.
WORKDIR /etc/graphql-firewall
ENV GRAPHQL_FIREWALL_LISTEN=0.0.0.0:8080 \
    GRAPHQL_FIREWALL_METRICS_LISTEN=0.0.0.0:9090 \
    GRAPHQL_FIREWALL_LOG_FORMAT=json
EXPOSE 8080 9090
# Numeric (distroless's nonroot is 65532): with `runAsNonRoot: true` the kubelet refuses an image
# whose user is a name ("image has non-numeric user"), as it cannot verify it is not root.
USER 65532:65532
# distroless has no shell or curl: the binary checks its own health endpoint.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/usr/local/bin/graphql-firewall", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/graphql-firewall"]
CMD ["serve"]
