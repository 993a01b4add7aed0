#!/usr/bin/env bash
# The whole test suite, as README and .ci/run call it: install, typecheck, lint, build, then
# unit/property/adapter tests and the integration tests against a private Tor network.
# Prints one closing line "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh

echo "[test] typecheck" >&2
npx tsc -p tsconfig.json --noEmit
echo "[test] lint" >&2
npx eslint .

mkdir -p .test-results
rm -f .test-results/*.json
status=0
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json=.test-results/unit.json || status=$?
if [ "${TORBALANCE_SKIP_INTEGRATION:-}" != "1" ]; then
  npx vitest run --project integration --reporter=default --reporter=json --outputFile.json=.test-results/integration.json || status=$?
fi
node scripts/summarize-tests.mjs .test-results/*.json || status=$?
exit $status
