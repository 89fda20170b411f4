# kmsload as a container image: `docker build -t kmsload .`, then
#   docker run --rm kmsload run /opt/kmsload/scenarios/smoke.toml --out /tmp/r
# Used by deploy/kubernetes/ (one pod per shard, and the merge).
#
# Stage 1 builds the release binary with the locked dependencies; stage 2 is a slim Debian
# runtime (glibc, matching the builder's bookworm) with the binary, the ready scenarios and
# a non-root user. Nothing else: no shell tools are needed at run time.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Everything `cargo build` reads: the manifest, the lock file, the sources, the embedded
# catalog (data/, include_str!) and the bench targets the manifest declares
# (checked by tests/it/deploy.rs::the_dockerfile_copies_what_the_build_reads).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY data ./data
COPY benches ./benches
RUN cargo build --release --locked --bin kmsload \
 && strip target/release/kmsload

FROM debian:bookworm-slim
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it without a passwd lookup.
RUN groupadd --system --gid 10001 kmsload \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/kmsload --create-home kmsload \
 && mkdir -p /results && chown 10001:10001 /results
COPY --from=build /src/target/release/kmsload /usr/local/bin/kmsload
COPY scenarios /opt/kmsload/scenarios
USER 10001:10001
WORKDIR /home/kmsload
ENTRYPOINT ["/usr/local/bin/kmsload"]
CMD ["--help"]
