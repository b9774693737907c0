#!/usr/bin/env bash
# Renders the Helm chart with its default values into deploy/chart/golden/default.yaml
# (run by `npm run golden:update`; test/chart.test.ts compares). Read the diff
# as you would code.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
helm=$(bash "$root/scripts/install-helm.sh")
mkdir -p "$root/deploy/chart/golden"
"$helm" template smc "$root/deploy/chart" --namespace smc-system > "$root/deploy/chart/golden/default.yaml"
echo "wrote deploy/chart/golden/default.yaml"
