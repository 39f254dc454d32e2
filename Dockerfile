# syntax=docker/dockerfile:1
# Image of the provisioner worker: a static binary on distroless, running as 65532.
# Build with `make image`, which passes the same LDFLAGS as `make build`.

# Keep in step with the go line of go.mod (TestDockerfile checks it).
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
ARG LDFLAGS="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}"
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "${LDFLAGS}" -o /out/provisioner ./cmd/provisioner

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/provisioner /provisioner
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/provisioner"]
CMD ["run"]
