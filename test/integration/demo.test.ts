/**
 * The README's first command runs `torbalance demo`; this runs the built binary for a bounded
 * time (its own private network, target, master key and node) and checks it reached the
 * target through the master address, never showed the target address, and cleaned up.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'torbalance.js');

describe('torbalance demo', () => {
  it('serves pages through the master address and stops cleanly', async () => {
    expect(existsSync(join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli', 'main.js'))).toBe(true);
    const child = spawn(process.execPath, [BIN, 'demo', '--duration', '75', '--interval', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    console.log(out.split('\n').filter((l) => /usable after|#\d+ 200|served through/.test(l)).slice(0, 6).join('\n'));
    expect(code, out).toBe(0);
    expect(out).toMatch(/#\d+ 200 in \d+ ms, served by node-1; page links name the master: yes; target address visible: no/);
    expect(out).not.toContain('YES (bug)');
    expect(out).toContain('every process it started is gone');
    const work = /working directory: (\S+)/.exec(out)?.[1];
    expect(work).toBeDefined();
    expect(existsSync(work!)).toBe(false);
  });
});
