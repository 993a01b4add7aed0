/**
 * The README's first command runs `torbalance demo`; this runs the built binary (its own
 * private network, target, master key and three node processes) and checks:
 * - with `--duration`: every node serves a request, the publisher is killed, the others notice,
 *   a new publisher republishes without it, a request is served afterwards, exit code 0;
 * - on SIGTERM while the cluster is forming: a clean stop;
 * and, both times, that no process it started survives (no process whose command line names
 * its working directory: node processes run `--config <dir>/…`, tors `-f <dir>/…/torrc`) and
 * the working directory is gone.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'torbalance.js');

/** Pids of live processes whose command line contains `needle`. */
function processesNaming(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (cmd.includes(needle) && !/^\d+ \(.*\) Z /.test(stat)) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly work: string | undefined;
}

/** Run the demo; `onLine` may send it signals. Killed (and failed) after `limitMs`. */
async function runDemo(args: readonly string[], limitMs: number, onOutput?: (out: string, kill: (s: NodeJS.Signals) => void) => void): Promise<Run> {
  const child = spawn(process.execPath, [BIN, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const kill = (s: NodeJS.Signals): void => {
    child.kill(s);
  };
  const add = (c: Buffer): void => {
    out += c.toString();
    onOutput?.(out, kill);
  };
  child.stdout.on('data', add);
  child.stderr.on('data', add);
  const limit = setTimeout(() => {
    out += '\n[test] time limit reached; SIGKILL\n';
    child.kill('SIGKILL');
  }, limitMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(limit);
  return { code, out, work: /working directory: (\S+)/.exec(out)?.[1] };
}

function expectNothingLeft(r: Run): void {
  expect(r.work, r.out).toBeDefined();
  expect(r.out).toContain('every process it started is gone');
  expect(processesNaming(r.work!), r.out).toEqual([]);
  expect(existsSync(r.work!)).toBe(false);
}

describe('torbalance demo', () => {
  it('three nodes serve, the publisher is killed, the cluster recovers, then it stops cleanly', async () => {
    expect(existsSync(join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli', 'main.js'))).toBe(true);
    const r = await runDemo(['--duration', '1', '--interval', '0.5'], 540_000);
    console.log(r.out.split('\n').filter((l) => /usable after|ready |cluster formed|served by|killing|publisher \(|republished|declared|first page|failover:/.test(l)).join('\n'));
    expect(r.code, r.out).toBe(0);
    for (const n of ['node-1', 'node-2', 'node-3']) expect(r.out).toMatch(new RegExp(`#\\d+ 200 in \\d+ ms — served by ${n} \\(links name the master address\\)`));
    expect(r.out).not.toContain('TARGET ADDRESS VISIBLE');
    const kill = /killing the publisher (node-\d) \(pid \d+\)/.exec(r.out);
    expect(kill, r.out).not.toBeNull();
    const victim = kill![1]!;
    const after = r.out.slice(kill!.index);
    expect(after).toMatch(new RegExp(`declared ${victim} dead`));
    const pub = /(node-\d) is now the publisher/.exec(after);
    expect(pub, r.out).not.toBeNull();
    expect(pub![1], r.out).not.toBe(victim);
    const rep = /descriptor republished by node-\d .*: revisions? \d+.*, (\d+)\/(\d+) HSDirs accepted, nodes (.*)/.exec(after);
    expect(rep, r.out).not.toBeNull();
    expect(Number(rep![1])).toBeGreaterThan(0);
    expect(rep![3]).not.toContain(victim);
    expect(after.slice(after.indexOf('descriptor republished'))).toMatch(/#\d+ 200 in \d+ ms — served by node-\d .*the cluster recovered in [\d.]+ s/);
    expectNothingLeft(r);
  });

  it('SIGTERM while the cluster forms stops every process it started', async () => {
    let sent = false;
    const r = await runDemo(['--no-failover'], 300_000, (out, kill) => {
      if (!sent && /node-3 running \(pid/.test(out) && /node-1 running \(pid/.test(out)) {
        sent = true;
        kill('SIGTERM');
      }
    });
    expect(sent, r.out).toBe(true);
    expect(r.code, r.out).toBe(0);
    expectNothingLeft(r);
  });
});
