#!/usr/bin/env bash
# Installs zsh and fish from Debian when missing (the completion tests run
# smc's completion scripts in them), and prints their paths.
set -euo pipefail
if ! command -v zsh >/dev/null || ! command -v fish >/dev/null; then
  echo "install-shells: installing zsh and fish from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq zsh fish) >&2
fi
command -v zsh
command -v fish
