# syntax=docker/dockerfile:1.7
# One multi-stage image definition for every AudioStorm binary: `--build-arg BIN=user` (or player,
# reviews, proxy). Dependencies are compiled in a layer of their own (cargo-chef), so a code change
# rebuilds only the workspace crates.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.73
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG BIN
COPY --from=planner /src/recipe.json recipe.json
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo chef cook --release --recipe-path recipe.json --bin ${BIN}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked --bin ${BIN} && cp target/release/${BIN} /app

FROM debian:bookworm-slim AS runtime
# Extra Debian packages a binary needs at run time: the player makes its streaming renditions
# with ffmpeg (`--build-arg RUNTIME_PACKAGES=ffmpeg`).
ARG RUNTIME_PACKAGES=""
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl ${RUNTIME_PACKAGES} \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/audiostorm --create-home audiostorm
COPY --from=builder /app /usr/local/bin/service
# The web client (plain modules, no build step), served by the proxy from APP__STATIC_FILES__DIR.
COPY web /srv/web
USER audiostorm
WORKDIR /var/lib/audiostorm
ENV APP__SERVER__HOST=0.0.0.0
ENTRYPOINT ["/usr/local/bin/service"]
