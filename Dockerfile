# syntax=docker/dockerfile:1
#
# imago's container images; docker-compose.yml builds both (see docs/production.md):
#
#   docker build --target worker -t imago-worker .   # imago-worker, with packer beside it
#   docker build --target api    -t imago-api    .   # imago, running `imago serve`
#
# Static Go binaries (CGO_ENABLED=0) on distroless/static: no shell, no package
# manager; CA certificates, tzdata, /tmp and the non-root user 65532 (nonroot).
# distroless publishes rolling tags only; to pin the runtime by digest:
#   docker build --build-arg RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:… .

# The Go of go.mod. The build stages set GOTOOLCHAIN to it as well, so a GO_IMAGE with
# another Go still builds with this one (the go command takes it from the module proxy).
ARG GO_IMAGE=golang:1.27.3
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

# The imago binaries.
FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=go1.27.3
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	go build -trimpath -ldflags "-s -w" -o /out/imago-worker ./worker && \
	go build -trimpath -ldflags "-s -w" -o /out/imago ./starter && \
	go build -trimpath -ldflags "-s -w" -o /out/imago-healthcheck ./cmd/imago-healthcheck && \
	mkdir -p /out/state

# The pinned packer CLI (tools/packer, static too), for bakes with `builder: packer`.
FROM ${GO_IMAGE} AS packer
WORKDIR /src
ENV GOTOOLCHAIN=go1.27.3
COPY tools/gobuild.sh tools/gobuild.sh
COPY tools/packer/ tools/packer/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 bash tools/packer/build.sh /out

# imago-worker: runs the workflows and activities; with TEMPORAL_ADDRESS set it is a
# plain worker. IMAGO_HOME (catalog, fleets, routes, payload key) is a volume.
FROM ${RUNTIME_IMAGE} AS worker
COPY --from=build /out/imago-worker /out/imago-healthcheck /usr/local/bin/
# IMAGO_PACKER defaults to the packer beside imago-worker.
COPY --from=packer /out/packer /usr/local/bin/packer
COPY --from=build --chown=65532:65532 /out/state /var/lib/imago
ENV IMAGO_HOME=/var/lib/imago CHECKPOINT_DISABLE=1
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/imago-worker"]

# imago serve: the REST API on :8080 (IMAGO_API_TOKENS or --tokens-file required).
FROM ${RUNTIME_IMAGE} AS api
COPY --from=build /out/imago /out/imago-healthcheck /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/state /var/lib/imago
ENV IMAGO_HOME=/var/lib/imago
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/imago"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
