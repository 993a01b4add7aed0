/**
 * `torbalance testnet up|status|down` through the built CLI: `up` returns once a small
 * network (1 authority, 3 relays, a client, one onion service) is usable and leaves it
 * running after the command exited; `status` reports it; `down` stops every tor it started
 * (checked by pid).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isProcessAlive,
  stopTestnetFromState,
  type TestnetDescription,
  type TestnetStatus,
} from '../../src/adapters/tor/testnet.js';
import { requireBuilt } from '../helpers/built.js';
import { fetchOnionUntil, sharedHttp } from '../helpers/testnet.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
let dir = '';

function run(
  cmd: string,
  args: readonly string[],
  timeoutMs = 240_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(
      cmd,
      args,
      { cwd: REPO, timeout: timeoutMs, maxBuffer: 8 << 20 },
      (e, stdout, stderr) => {
        const code = e === null ? 0 : typeof e.code === 'number' ? e.code : -1;
        resolveRun({ code, stdout, stderr });
      },
    );
  });
}

const cli = (args: readonly string[]) =>
  run(process.execPath, [join(REPO, 'bin', 'torbalance.js'), ...args]);

const alive = isProcessAlive;

beforeAll(async () => {
  // The CLI runs from dist/, built before the tests (test/helpers/built.ts: not rebuilt here,
  // as the integration-wait files run node processes from dist/ meanwhile).
  requireBuilt('dist/src/cli/main.js', 'dist/src/cli/commands/testnet.js');
  dir = await mkdtemp(join(REPO, '.torlab', 'cli-'));
});

afterAll(async () => {
  // Whatever happened, leave no tor behind.
  if (dir !== '' && existsSync(join(dir, 'testnet.json')))
    await stopTestnetFromState(dir).catch(() => undefined);
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('torbalance testnet', () => {
  it('up leaves a usable network running, status reports it, down stops every tor', async () => {
    const http = sharedHttp();
    const t0 = Date.now();
    const up = await cli([
      'testnet',
      'up',
      '--dir',
      dir,
      '--authorities',
      '1',
      '--relays',
      '3',
      '--services',
      '1',
      '--target',
      `127.0.0.1:${http.port}`,
      '--json',
    ]);
    console.log(
      `[testnet-cli] up exited ${up.code} after ${((Date.now() - t0) / 1000).toFixed(1)}s`,
    );
    expect(up.stderr).toMatch(/network usable/);
    expect(up.code).toBe(0);
    const d = JSON.parse(up.stdout) as TestnetDescription;
    const nodes = [...d.authorities, ...d.relays, ...d.clients, ...d.services];
    expect(nodes).toHaveLength(6);
    // The command has exited; its tors are still running.
    for (const n of nodes) expect(alive(n.pid), n.nickname).toBe(true);

    const st = await cli(['testnet', 'status', '--dir', dir]);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.stdout) as TestnetStatus;
    expect(status.allAlive).toBe(true);
    expect(status.consensusRouters).toBe(4);
    expect(status.bootstrapped).toBe(true);
    expect(status.services.map((s) => s.onion)).toEqual([d.services[0]!.onion]);

    // A second `up` in the same dir refuses instead of wiping the running network.
    const again = await cli(['testnet', 'up', '--dir', dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/TB_ERR_TESTNET_STATE/);
    for (const n of nodes) expect(alive(n.pid), n.nickname).toBe(true);

    const page = await fetchOnionUntil(d.clients[0]!.socksPort, d.services[0]!.onion, {
      deadlineMs: 120_000,
    });
    console.log(
      `[testnet-cli] page via the CLI network after ${(page.elapsedMs / 1000).toFixed(1)}s (${page.attempts} attempts)`,
    );
    expect(page.body).toBe(http.body);

    const down = await cli(['testnet', 'down', '--dir', dir]);
    expect(down.code).toBe(0);
    const result = JSON.parse(down.stdout) as { stopped: { pid: number }[] };
    expect(result.stopped.map((s) => s.pid).sort()).toEqual(nodes.map((n) => n.pid).sort());
    for (const n of nodes) expect(alive(n.pid), n.nickname).toBe(false);

    const after = JSON.parse(
      (await cli(['testnet', 'status', '--dir', dir])).stdout,
    ) as TestnetStatus;
    expect(after.processes.every((p) => !p.alive)).toBe(true);
  });

  it('status without state fails; a bad option is a usage error; a foreign dir is not wiped', async () => {
    const st = await cli(['testnet', 'status', '--dir', join(dir, 'nothing-here')]);
    expect(st.code).toBe(1);
    expect(st.stderr).toMatch(/TB_ERR_TESTNET_STATE/);
    const bad = await cli(['testnet', 'up', '--dir', dir, '--voting-interval', '5']);
    expect(bad.code).toBe(2);
    // A non-empty directory that no testnet made is never wiped.
    const foreign = join(dir, 'foreign');
    await mkdir(foreign);
    await writeFile(join(foreign, 'precious.txt'), 'keep me');
    const refused = await cli(['testnet', 'up', '--dir', foreign]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/TB_ERR_TESTNET_CONFIG/);
    expect(await readFile(join(foreign, 'precious.txt'), 'utf8')).toBe('keep me');
  });
});
