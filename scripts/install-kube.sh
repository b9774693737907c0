#!/usr/bin/env bash
# Installs what the Kubernetes tests run for real, when missing, and prints
# two lines: the kube-apiserver binary and the etcd binary.
#
# kube-apiserver is not packaged for this machine; it builds from the Go module
# proxy. k8s.io/kubernetes points its staging modules at ./staging with
# `replace` directives, so `go install` cannot build it directly: a throwaway
# wrapper module (written under .tools/, never committed) requires it and
# replaces each staging module by its published v0.x version. The binary is
# kept, versioned, under .tools/bin; once there, nothing is rebuilt. The first
# build takes 10-20 minutes on 2 cores (about 3 GiB of Go caches).
# etcd comes from Debian (etcd-server).
set -euo pipefail

K8S=v1.32.13
STAGING=v0.32.13
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin/kube-apiserver-$K8S"

if [ ! -x "$bin" ]; then
  command -v go >/dev/null || { echo "install-kube: the Go toolchain is needed to build kube-apiserver $K8S" >&2; exit 1; }
  work="$root/.tools/kube-apiserver-build"
  rm -rf "$work" && mkdir -p "$work" "$root/.tools/bin"
  echo "install-kube: building kube-apiserver $K8S from the Go module proxy (10-20 minutes the first time)" >&2
  gomod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || { echo "install-kube: could not download k8s.io/kubernetes@$K8S" >&2; exit 1; }
  {
    echo "module smc.dev/kube-apiserver-build"
    echo
    echo "go 1.23"
    echo
    echo "require k8s.io/kubernetes $K8S"
    echo
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$STAGING" '{ print "replace " $1 " => " $1 " " v }'
  } > "$work/go.mod"
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy -e >&2 && nice -n 10 go build -tags tools -o "$bin.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2)
  mv "$bin.tmp" "$bin"
  rm -rf "$work"
fi
"$bin" --version >/dev/null || { echo "install-kube: $bin does not run" >&2; exit 1; }

etcd=$(command -v etcd || true)
if [ -z "$etcd" ]; then
  echo "install-kube: installing etcd-server from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq etcd-server) >&2
  etcd=$(command -v etcd) || { echo "install-kube: etcd-server installed but no etcd binary found" >&2; exit 1; }
fi
echo "$bin"
echo "$etcd"
