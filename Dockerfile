# syntax=docker/dockerfile:1
# llm-proxy: the gateway and its CLI in one small image.
#
#   docker build -t llm-proxy .
#   docker run -p 8080:8080 -v llm-proxy-data:/data -e MASTER_KEY=... llm-proxy
#
# With the default SQLite database the data (and, without ENCRYPTION_KEY, the
# key file that encrypts provider keys) lives in the /data volume. The CLI is
# the same binary: docker exec CONTAINER llm-proxy connection list

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO for SQLite (mattn/go-sqlite3).
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /llm-proxy ./cmd/llm-proxy \
 && mkdir -p /data

# glibc (for the CGO build), CA certificates, and a non-root user; no shell.
FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /llm-proxy /usr/local/bin/llm-proxy
COPY --from=build --chown=nonroot:nonroot /data /data
WORKDIR /data
ENV DB_TYPE=sqlite \
    DB_DSN=/data/llm-proxy.db \
    PORT=8080
VOLUME ["/data"]
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/llm-proxy"]
CMD ["serve"]
