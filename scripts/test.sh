#!/usr/bin/env bash
# The whole test suite, as README and .ci/run call it: install, build, typecheck, lint, then
# unit/property/adapter/CLI tests and the integration tests against private Tor networks.
# Prints one closing line "tests: N passed, N failed, N skipped" over every vitest run and
# exits non-zero if any test (or typecheck, lint, or a vitest process) failed.
#
# Schedule (vitest.config.ts has the projects): the `integration-wait` files (most of their
# time is spent waiting for 4-minute time-period roll-overs) start right after the build, in a
# background vitest process with its own private network, all files at once. Meanwhile the
# foreground runs typecheck, lint, `unit` and then the sequential `integration` project (its
# own network). The background output is streamed with a "[wait] " prefix.
# TORBALANCE_SKIP_INTEGRATION=1 skips both integration projects.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh

mkdir -p .test-results
rm -f .test-results/*.json .test-results/*.rc
status=0
t0=$(date +%s)
elapsed() { echo "$(($(date +%s) - t0))s"; }

wait_pid=''
stop_background() {
  if [ -n "$wait_pid" ] && kill -0 "$wait_pid" 2>/dev/null; then
    # its own process group (set -m below): vitest, its workers and the tors they own
    kill -TERM -- "-$wait_pid" 2>/dev/null || true
  fi
}
trap stop_background EXIT

if [ "${TORBALANCE_SKIP_INTEGRATION:-}" != "1" ]; then
  echo "[test] integration-wait (background, concurrent files)" >&2
  set -m
  (
    rc=0
    npx vitest run --project integration-wait --reporter=default --reporter=json \
      --outputFile.json=.test-results/integration-wait.json 2>&1 | sed -u 's/^/[wait] /' || rc=$?
    echo "$rc" > .test-results/integration-wait.rc
  ) &
  wait_pid=$!
  set +m
fi

echo "[test] typecheck" >&2
npx tsc -p tsconfig.json --noEmit
echo "[test] lint ($(elapsed))" >&2
npx eslint .

echo "[test] unit ($(elapsed))" >&2
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json=.test-results/unit.json || status=$?
if [ -n "$wait_pid" ]; then
  echo "[test] integration (sequential, $(elapsed))" >&2
  npx vitest run --project integration --reporter=default --reporter=json --outputFile.json=.test-results/integration.json || status=$?
  echo "[test] waiting for integration-wait ($(elapsed))" >&2
  wait "$wait_pid" || true
  wait_pid=''
  wrc=$(cat .test-results/integration-wait.rc 2>/dev/null || echo 1)
  if [ "$wrc" != "0" ]; then
    echo "[test] integration-wait exited $wrc" >&2
    status=$wrc
  fi
fi
echo "[test] done ($(elapsed))" >&2
reports=(.test-results/unit.json)
if [ "${TORBALANCE_SKIP_INTEGRATION:-}" != "1" ]; then
  reports+=(.test-results/integration.json .test-results/integration-wait.json)
fi
# A missing report (its vitest process died) counts as a failure there.
node scripts/summarize-tests.mjs "${reports[@]}" || status=$?
exit $status
