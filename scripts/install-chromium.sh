#!/usr/bin/env bash
# Installs Debian's chromium when missing (the admin page's test drives it
# headless) and prints the path of its binary.
set -euo pipefail
if ! command -v chromium >/dev/null; then
  echo "install-chromium: installing chromium from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends chromium >&2 || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends chromium >&2; }
fi
command -v chromium
