/**
 * Guards the "every vector passes, none skipped silently" rule:
 * - test/vectors is an exact copy of ../shared/vectors (when that folder is present, as in CI);
 * - every vector file has a test file that registers all of its vectors with forEachVector;
 * - the total count matches the files: 173 vectors. (Issue #2 says 177; the files and the
 *   table in ../shared/vectors/README.md both hold 173: 16+5+27+6+14+5+4+44+14+6+26+6.)
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VECTOR_DIR, loadVectors } from '../../helpers/vectors.js';

const SHARED = join(VECTOR_DIR, '..', '..', '..', 'shared', 'vectors');
const files = readdirSync(VECTOR_DIR).filter((f) => f.endsWith('.json')).sort();

describe('vector files', () => {
  it('hold 173 vectors with unique names and a source each', () => {
    let n = 0;
    const names = new Set<string>();
    for (const f of files) {
      for (const v of loadVectors(f.replace(/\.json$/, '')).vectors) {
        expect(v.source.length).toBeGreaterThan(0);
        expect(names.has(`${f}:${v.name}`)).toBe(false);
        names.add(`${f}:${v.name}`);
        n++;
      }
    }
    expect(n).toBe(173);
  });

  it.runIf(existsSync(SHARED))('are identical to ../shared/vectors', () => {
    const shared = readdirSync(SHARED).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(shared);
    for (const f of shared) {
      expect(readFileSync(join(VECTOR_DIR, f), 'utf8')).toBe(readFileSync(join(SHARED, f), 'utf8'));
    }
  });

  for (const f of files) {
    const topic = f.replace(/\.json$/, '');
    it(`${topic} has a test that runs every vector via forEachVector`, () => {
      const testFile = join(VECTOR_DIR, '..', 'unit', 'vectors', `${topic}.test.ts`);
      expect(existsSync(testFile), `missing ${testFile}`).toBe(true);
      expect(readFileSync(testFile, 'utf8')).toContain(`forEachVector('${topic}'`);
    });
  }
});
