#!/usr/bin/env bash
# Installs cfssl (CloudFlare's PKI toolkit, used as a real external CA in the
# tests) when it is missing and prints the path of the cfssl binary.
#
# Debian's golang-cfssl is 1.2.0 (2016): it writes a spiffe:// name as a DNS
# SAN and drops the CSR's URI SANs, so it cannot sign SPIFFE certificates.
# cfssl >= 1.4 copies URI SANs; this builds a pinned release with the Go
# toolchain from the Go module proxy into .tools/bin (about two minutes once).
set -euo pipefail

VERSION=v1.6.5
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin/cfssl"

if [ -n "${SMC_CFSSL:-}" ] && [ -x "$SMC_CFSSL" ]; then echo "$SMC_CFSSL"; exit 0; fi
if [ ! -x "$bin" ]; then
  command -v go >/dev/null || { echo "install-cfssl: the Go toolchain is needed to build cfssl $VERSION" >&2; exit 1; }
  echo "install-cfssl: building cfssl $VERSION with go install" >&2
  GOBIN="$root/.tools/bin" GOFLAGS=-mod=mod go install "github.com/cloudflare/cfssl/cmd/cfssl@$VERSION" >&2
fi
"$bin" version >/dev/null || { echo "install-cfssl: $bin does not run" >&2; exit 1; }
echo "$bin"
