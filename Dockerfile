# syntax=docker/dockerfile:1
# Portcullis: one binary, `portcullis serve` (data plane + control plane).
# Build: docker build -t portcullis .   (BuildKit caches cargo's downloads and target/)

FROM rust:1-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
# Link the system OpenSSL rather than building a vendored copy.
ENV OPENSSL_NO_VENDOR=1
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin portcullis \
    && cp target/release/portcullis /usr/local/bin/portcullis

FROM debian:bookworm-slim
# libssl3 for the binary, ca-certificates for upstream TLS and ACME, curl for
# the health check; setcap lets the non-root user bind ports 80 and 443.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates curl libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/bin/portcullis /usr/local/bin/portcullis
RUN setcap cap_net_bind_service=+ep /usr/local/bin/portcullis \
    && apt-get purge -y --auto-remove libcap2-bin \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/portcullis --create-home --shell /usr/sbin/nologin portcullis
USER portcullis
WORKDIR /var/lib/portcullis
# The control plane listens on all container interfaces so a published port
# reaches it; publish it on the host's loopback only (see docker-compose.yml).
ENV API_HOST=0.0.0.0 \
    API_PORT=9000
EXPOSE 80 443 9000 10001
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
    CMD curl -fsS "http://127.0.0.1:${API_PORT}/health" >/dev/null || exit 1
ENTRYPOINT ["portcullis"]
CMD ["serve"]
