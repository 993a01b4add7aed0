/**
 * Known-answer vectors from ../shared/vectors (copied into test/vectors; a test checks the
 * copy is identical when ../shared is present). Every vector of a topic becomes one test named
 * after it via `forEachVector`, so none can be skipped: every vector must pass.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

export const VECTOR_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'vectors');

export interface Vector {
  readonly name: string;
  readonly source: string;
  readonly inputs: Record<string, any>;
  readonly expected: Record<string, any>;
  readonly verified: string;
}

export interface VectorFile {
  readonly topic: string;
  readonly description: string;
  readonly notes: readonly string[];
  readonly vectors: readonly Vector[];
}

export function loadVectors(file: string): VectorFile {
  return JSON.parse(readFileSync(join(VECTOR_DIR, `${file}.json`), 'utf8')) as VectorFile;
}

/**
 * Register one test per vector in `file`; `check` runs for every vector;
 * it must assert (a vector it does not recognise should throw).
 */
export function forEachVector(
  file: string,
  check: (v: Vector) => void | Promise<void>,
): void {
  const f = loadVectors(file);
  for (const v of f.vectors) it(`${v.name} (${v.source.split(' ')[0]})`, () => check(v));
}

/**
 * Accessor for a vector's expected fields that records which were read; `done()` fails the
 * test if any expected field went unchecked, so a vector cannot pass on a partial check.
 */
export function expectedOf(v: Vector): { get(k: string): any; has(k: string): boolean; done(): void } {
  const seen = new Set<string>();
  return {
    get(k: string): any {
      if (!(k in v.expected)) throw new Error(`${v.name}: missing expected.${k}`);
      seen.add(k);
      return v.expected[k];
    },
    has: (k: string): boolean => k in v.expected,
    done(): void {
      expect(Object.keys(v.expected).filter((k) => !seen.has(k)), `${v.name}: unchecked expected fields`).toEqual([]);
    },
  };
}
