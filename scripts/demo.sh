#!/usr/bin/env bash
# The main job in one command: install what is needed, then run `torbalance demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
TORBALANCE_NO_CHROMIUM=1 bash scripts/ensure-deps.sh
exec node bin/torbalance.js demo "$@"
