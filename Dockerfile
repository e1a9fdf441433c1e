# syntax=docker/dockerfile:1.7
# One image with every deployable of dibao-mesh (the services, the gateway
# with its officer commands), and a second, for trials only, with the
# department simulator and the development CA and key commands: nothing
# deployed to production links the synthetic data or the tools.
#
#   docker build -t dibao-mesh:0.1.0 .
#   docker build --target simulator -t dibao-mesh-simulator:0.1.0 .
#
# Runs as an unprivileged user on a read-only root filesystem: the services
# write nothing but to PostgreSQL, the broker and standard output.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# librdkafka is built from source by rdkafka-sys (make, a C compiler and zlib
# headers, in the rust image) and linked to the system's OpenSSL for Kafka
# over TLS (libssl-dev, also there); protoc comes vendored with the build.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
      -p dibao-civil-affairs -p dibao-poverty-alleviation -p dibao-verification-hub \
      -p dibao-roster-comparison -p dibao-department-adapters -p dibao-gateway \
      -p dibao-ops-tools -p dibao-synthetic --bins \
 && mkdir -p /out/bin /out/simulator \
 && cd target/release \
 && cp civil-affairs roster-import poverty-alleviation poor-roster-import verification-hub \
       roster-comparison death-register-import officials-import department-adapter \
       gateway dibao-login dibao-officers /out/bin/ \
 && cp department-simulator dibao-devcerts dibao-assertion-key /out/simulator/

FROM debian:bookworm-slim AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 dibao \
 && useradd --system --uid 10001 --gid dibao --home-dir /nonexistent --shell /usr/sbin/nologin dibao \
 && mkdir /certs && chown 10001:10001 /certs
# /certs: where the trial's one-shot job writes certificates and keys (a
# volume mounted there starts owned by the service user); production mounts
# its Secrets there read-only.
USER 10001:10001

FROM base AS simulator
COPY --from=build /out/simulator/ /usr/local/bin/
ENTRYPOINT ["department-simulator"]

FROM base AS runtime
COPY --from=build /out/bin/ /usr/local/bin/
# The provinces' township and village tables (统计用区划代码), which
# <SERVICE>__DIVISIONS__DIR names; a province adds its own file beside them.
COPY proto/data/divisions/ /usr/share/dibao/divisions/
# The deployable is chosen by the command: civil-affairs, gateway, …
CMD ["civil-affairs"]
