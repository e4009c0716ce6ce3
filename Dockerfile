# Keyhold container image: a static binary on distroless.
#   docker build -t keyhold .
# Configure it with KEYHOLD_DATABASE_URL, KEYHOLD_NATS_URL, KEYHOLD_HTTP_ADDR
# and KEYHOLD_STREAM_REPLICAS (see deploy/README.md).

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so code changes reuse the module cache layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/keyhold ./cmd/keyhold

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keyhold /keyhold
USER nonroot:nonroot
ENV KEYHOLD_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/keyhold"]
CMD ["serve"]
