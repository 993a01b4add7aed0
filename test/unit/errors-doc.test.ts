/**
 * docs/errors.md lists every error code the source raises, and nothing else (fastify's
 * errors.test.js idea): an operator can look up any code torbalance prints.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function codesInSource(): Set<string> {
  const codes = new Set<string>();
  const prefixConstants = new Set<string>();
  for (const f of sourceFiles(join(ROOT, 'src'))) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/['`"](TB_ERR_[A-Z0-9_]+)['`"]/g)) codes.add(m[1]!);
    // `const C = 'TB_ERR_X';` used as `${C}_SYNTAX`: a prefix, not a code of its own.
    for (const m of text.matchAll(/const (\w+) = '(TB_ERR_[A-Z0-9_]+)';/g)) {
      if (text.includes(`\${${m[1]!}}_`)) prefixConstants.add(m[2]!);
    }
  }
  for (const p of prefixConstants) codes.delete(p);
  return codes;
}

function codesInDocs(): Set<string> {
  const text = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  return new Set([...text.matchAll(/^\| `(TB_ERR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));
}

describe('docs/errors.md', () => {
  it('documents every code raised in src/', () => {
    const missing = [...codesInSource()].filter((c) => !codesInDocs().has(c)).sort();
    expect(missing).toEqual([]);
  });
  it('documents no code that src/ no longer raises', () => {
    const src = codesInSource();
    const stale = [...codesInDocs()].filter((c) => !src.has(c)).sort();
    expect(stale).toEqual([]);
  });
});
