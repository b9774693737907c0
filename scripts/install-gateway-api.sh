#!/usr/bin/env bash
# Fetches the Gateway API's own CRDs (standard channel) from the Go module
# proxy, where the sigs.k8s.io/gateway-api module ships them, into
# .tools/gateway-api-VERSION, and prints that folder. The Kubernetes tests
# apply them as they are, so the API server runs the project's own
# validation on every route. Once there, nothing is fetched again.
set -euo pipefail

VERSION=v1.6.3
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.tools/gateway-api-$VERSION"

if [ ! -f "$dest/gateway.networking.k8s.io_httproutes.yaml" ]; then
  command -v go >/dev/null || { echo "install-gateway-api: the Go toolchain is needed to fetch sigs.k8s.io/gateway-api $VERSION" >&2; exit 1; }
  echo "install-gateway-api: fetching sigs.k8s.io/gateway-api $VERSION from the Go module proxy" >&2
  dir=$(cd "$root" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir/config/crd/standard" ] || { echo "install-gateway-api: the module has no config/crd/standard (got '$dir')" >&2; exit 1; }
  tmp="$dest.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # The kinds smc reads; the others (Gateway, GatewayClass, ...) are a gateway controller's.
  for kind in httproutes grpcroutes referencegrants; do
    cp "$dir/config/crd/standard/gateway.networking.k8s.io_$kind.yaml" "$tmp/"
  done
  chmod 0644 "$tmp"/*.yaml
  rm -rf "$dest" && mv "$tmp" "$dest"
fi
echo "$dest"
