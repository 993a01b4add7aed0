/**
 * No import cycles in src/ (ARCHITECTURE.md "Layers"): modules that import each other, even
 * through type-only imports, are one concept split in two or a concept living in the wrong
 * module. This walks every `import … from`, `export … from` and `import()` of a relative module
 * in src/**\/*.ts and fails with each strongly connected group it finds.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative specifiers a module imports (static, re-exports, dynamic), comments removed. */
export function importSpecifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  const re = /(?:\bimport|\bexport)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|\bimport\s+['"]([^'"]+)['"]/g;
  for (const m of code.matchAll(re)) {
    const s = m[1] ?? m[2] ?? m[3];
    if (s !== undefined && s.startsWith('.')) out.push(s);
  }
  return out;
}

/** The import graph of src/: file → files it imports (paths relative to src/). */
function srcGraph(): Map<string, string[]> {
  const files = tsFiles(SRC);
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const deps = importSpecifiers(readFileSync(f, 'utf8')).map((s) => {
      const target = resolve(dirname(f), s.replace(/\.js$/, '.ts'));
      if (known.has(target)) return target;
      const index = join(target, 'index.ts');
      if (known.has(index)) return index;
      throw new Error(`${relative(SRC, f)} imports ${s}, which is not a module in src/`);
    });
    graph.set(relative(SRC, f), [...new Set(deps.map((d) => relative(SRC, d)))]);
  }
  return graph;
}

/** Strongly connected components with more than one module, or a module importing itself (Tarjan). */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      for (;;) {
        const w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
        if (w === v) break;
      }
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

describe('import cycles', () => {
  it('the finder sees static, re-exported, type-only and dynamic imports, and finds cycles', () => {
    expect(
      importSpecifiers(`import { a } from './a.js';\nimport type { B } from "../b.js";\nexport * from './c.js';\nexport { d } from './d.js';\nconst e = await import('./e.js');\nimport './f.js';\n// import { g } from './g.js';\n/* import { h } from './h.js'; */\nimport x from 'node:fs';`),
    ).toEqual(['./a.js', '../b.js', './c.js', './d.js', './e.js', './f.js']);
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c'], ['e']]);
    expect(cycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });

  it('src/ has none', () => {
    const graph = srcGraph();
    expect(graph.size).toBeGreaterThan(50);
    expect(cycles(graph)).toEqual([]);
  });
});
