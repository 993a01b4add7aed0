// Sums vitest JSON reports into the one closing line CI reads: "tests: N passed, N failed, N skipped".
// Usage: node scripts/summarize-tests.mjs <report.json>... (scripts/test.sh passes one report
// per vitest process: unit, integration, integration-wait).
// A report that is missing or unreadable (its vitest process died before writing it) counts
// as one failed test. Before the closing line it names every failed test (file, name, first
// line of its message), so the last lines of a CI log say what failed.
// Exits 1 if any test failed or if no test ran at all.
import { readFileSync } from 'node:fs';

let passed = 0, failed = 0, skipped = 0;
const names = [];
const ESC = String.fromCharCode(27);
const firstLine = (m) => String(m ?? '').split(ESC).map((p, i) => (i === 0 ? p : p.replace(/^\[[0-9;]*m/, ''))).join('').split('\n')[0].slice(0, 200);
for (const file of process.argv.slice(2)) {
  let r;
  try {
    r = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    console.error(`[summarize] no usable report ${file}: ${e instanceof Error ? e.message : String(e)}`);
    failed += 1;
    names.push(`${file}: no report`);
    continue;
  }
  passed += r.numPassedTests ?? 0;
  failed += (r.numFailedTests ?? 0) + (r.numRuntimeErrorTestSuites ?? 0);
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A file that failed outside its tests (failed to load, or a beforeAll/afterAll hook threw:
  // its tests then show as skipped) counts as one failure.
  for (const s of r.testResults ?? []) {
    const rel = String(s.name ?? '').replace(/^.*?\/(test\/)/, '$1');
    const bad = (s.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of bad) names.push(`${rel} > ${a.fullName ?? a.title}: ${firstLine(a.failureMessages?.[0])}`);
    if (s.status === 'failed' && bad.length === 0) {
      failed += 1;
      names.push(`${rel}: ${firstLine(s.message) || 'failed outside its tests'}`);
    }
  }
}
for (const n of names) console.log(`FAILED ${n}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
