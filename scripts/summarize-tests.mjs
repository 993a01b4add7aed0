// Sums vitest JSON reports into the one closing line CI reads: "tests: N passed, N failed, N skipped".
// Usage: node scripts/summarize-tests.mjs <report.json>... (scripts/test.sh passes one report
// per vitest process: unit, integration, integration-wait).
// A report that is missing or unreadable (its vitest process died before writing it) counts
// as one failed test. Exits 1 if any test failed or if no test ran at all.
import { readFileSync } from 'node:fs';

let passed = 0, failed = 0, skipped = 0;
for (const file of process.argv.slice(2)) {
  let r;
  try {
    r = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    console.error(`[summarize] no usable report ${file}: ${e instanceof Error ? e.message : String(e)}`);
    failed += 1;
    continue;
  }
  passed += r.numPassedTests ?? 0;
  failed += (r.numFailedTests ?? 0) + (r.numRuntimeErrorTestSuites ?? 0);
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A file that failed outside its tests (failed to load, or a beforeAll/afterAll hook threw:
  // its tests then show as skipped) counts as one failure.
  for (const s of r.testResults ?? []) {
    if (s.status === 'failed' && !(s.assertionResults ?? []).some((a) => a.status === 'failed')) failed += 1;
  }
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
