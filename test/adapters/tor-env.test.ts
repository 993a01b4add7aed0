/**
 * The node's tor does not inherit systemd's notify variables (src/adapters/system/sd-notify.ts:
 * Debian's tor speaks sd_notify and, under `NotifyAccess=all`, would report the unit ready
 * before the node is). A stand-in tor binary records its environment and exits.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TorProcess } from '../../src/adapters/tor/process.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('TorProcess environment', () => {
  it('has no NOTIFY_SOCKET / WATCHDOG_*, keeps the rest', async () => {
    const d = await mkdtemp(join(tmpdir(), 'tb-torenv-'));
    dirs.push(d);
    const bin = join(d, 'tor');
    await writeFile(bin, `#!/bin/sh\nenv > '${join(d, 'env')}'\nexit 1\n`, { mode: 0o755 });
    const saved = { ...process.env };
    Object.assign(process.env, { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '60000000', WATCHDOG_PID: String(process.pid), TB_TORENV_KEEP: 'yes' });
    try {
      const tor = new TorProcess({ dataDir: join(d, 'data'), torrc: [], torBinary: bin, readiness: 'control', restart: false, startTimeoutMs: 20_000 });
      await expect(tor.start()).rejects.toThrow();
    } finally {
      for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'TB_TORENV_KEEP']) {
        if (saved[k] === undefined) Reflect.deleteProperty(process.env, k);
        else process.env[k] = saved[k];
      }
    }
    const env = await readFile(join(d, 'env'), 'utf8');
    expect(env).toContain('TB_TORENV_KEEP=yes');
    expect(env).not.toMatch(/^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)=/m);
  });
});
