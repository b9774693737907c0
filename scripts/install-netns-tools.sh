#!/usr/bin/env bash
# Installs what test hosts in network namespaces need (iproute2's `ip`,
# iptables, setpriv) from Debian when missing, and prints the path of
# iptables-restore. Tests that create network namespaces find them through
# this script only; they need root (CI runs as root).
set -euo pipefail

missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v iptables-restore >/dev/null || missing+=(iptables)
command -v setpriv >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-netns-tools: installing ${missing[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2; }
fi
[ "$(id -u)" = 0 ] || { echo "install-netns-tools: network namespaces and iptables need root" >&2; exit 1; }
command -v iptables-restore
