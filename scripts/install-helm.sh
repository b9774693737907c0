#!/usr/bin/env bash
# Installs the real helm the chart tests run, when missing, and prints its path.
# Built from the Go module proxy (helm is not packaged for this machine) into
# .tools/bin, versioned; once there, nothing is rebuilt. The first build takes
# a few minutes on 2 cores.
set -euo pipefail

HELM=v4.3.2
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin/helm-$HELM"

if [ ! -x "$bin" ]; then
  command -v go >/dev/null || { echo "install-helm: the Go toolchain is needed to build helm $HELM" >&2; exit 1; }
  mkdir -p "$root/.tools/bin"
  echo "install-helm: building helm $HELM from the Go module proxy (a few minutes the first time)" >&2
  tmp="$root/.tools/helm-build"
  rm -rf "$tmp" && mkdir -p "$tmp"
  (cd "$tmp" && GOBIN="$tmp" nice -n 10 go install "helm.sh/helm/v4/cmd/helm@$HELM" >&2)
  mv "$tmp/helm" "$bin"
  rm -rf "$tmp"
fi
"$bin" version --short >/dev/null || { echo "install-helm: $bin does not run" >&2; exit 1; }
echo "$bin"
