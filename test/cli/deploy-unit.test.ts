/**
 * deploy/torbalance.service: `systemd-analyze verify` accepts it (ExecStart pointed at a temp
 * executable, since verify requires the binary to exist; no running systemd is needed),
 * `systemd-analyze security --offline=yes` rates its exposure at most 1.5 (measured: 1.4 with
 * systemd 252; 0.1 of it is NotifyAccess=all, which READY=1 through systemd-notify needs), and the settings the node relies on are there (TimeoutStopSec above the
 * default drain, SIGHUP reload, the state directory as the only writable path).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/adapters/config/schema.js';

const ROOT = resolve(import.meta.dirname, '../..');
const UNIT = join(ROOT, 'deploy/torbalance.service');
const ANALYZE = '/usr/bin/systemd-analyze';
/** Measured with systemd 252 (Debian 12): 1.4 (1.3 + NotifyAccess=all). */
const MAX_EXPOSURE = 1.5;

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The unit with ExecStart pointing at a stub executable in a temp dir; returns the unit path. */
async function stagedUnit(extra = ''): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tb-unit-'));
  dirs.push(d);
  const bin = join(d, 'torbalance');
  await writeFile(bin, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const text = (await readFile(UNIT, 'utf8')).replace('ExecStart=/usr/bin/torbalance ', `ExecStart=${bin} `) + extra;
  const unit = join(d, 'torbalance.service');
  await writeFile(unit, text);
  return unit;
}

function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m !== null) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe('deploy/torbalance.service', () => {
  it('has the settings the node relies on', async () => {
    const d = directives(await readFile(UNIT, 'utf8'));
    const one = (k: string): string | undefined => d.get(k)?.[0];
    expect(one('ExecStart')).toBe('/usr/bin/torbalance run'); // the config: /etc/torbalance/torbalance.toml
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('KillSignal')).toBe('SIGTERM');
    expect(Number(one('TimeoutStopSec'))).toBeGreaterThan(DEFAULTS.drain.timeout_ms / 1000);
    expect(one('User')).toBe('torbalance');
    expect(one('ReadWritePaths')).toBe('/var/lib/torbalance');
    expect(one('StateDirectory')).toBe('torbalance');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('UMask')).toBe('0077');
    expect(one('MemoryDenyWriteExecute')).toBe('no'); // V8's JIT
    expect(one('LimitCORE')).toBe('0'); // a core dump would hold the expanded master key
    expect(one('Type')).toBe('notify'); // READY=1 once tor bootstrapped and the proxy listens
    expect(one('NotifyAccess')).toBe('all'); // sent by systemd-notify, a child of the node
    expect(Number(one('WatchdogSec'))).toBeGreaterThan(0);
    expect(one('RestartPreventExitStatus')).toBe('78'); // EX_CONFIG: a bad config does not loop
    expect(one('Documentation')).toMatch(/^file:\/opt\/torbalance\/current\/docs\/OPERATIONS\.md( |$)/);
    expect(one('RestrictAddressFamilies')).toBe('AF_UNIX AF_INET AF_INET6');
  });

  it.skipIf(!existsSync(ANALYZE) && process.env['CI'] === undefined)('systemd-analyze verify accepts it (and flags a bad key: the check can fail)', async () => {
    const ok = spawnSync(ANALYZE, ['verify', '--man=no', await stagedUnit()], { encoding: 'utf8' });
    expect(ok.stderr + ok.stdout).toBe('');
    expect(ok.status).toBe(0);
    const bad = spawnSync(ANALYZE, ['verify', '--man=no', await stagedUnit('ProtectSystem=bogus\n')], { encoding: 'utf8' });
    expect(bad.stderr).toContain('ProtectSystem');
  });

  it.skipIf(!existsSync(ANALYZE) && process.env['CI'] === undefined)(`systemd-analyze security --offline=yes: exposure ≤ ${MAX_EXPOSURE}`, async () => {
    const r = spawnSync(ANALYZE, ['security', '--offline=yes', '--no-pager', await stagedUnit()], { encoding: 'utf8' });
    const m = /Overall exposure level for torbalance\.service: (\d+\.\d+)/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    const score = Number(m![1]);
    console.log(`[deploy-unit] systemd-analyze security exposure: ${score} (bound ${MAX_EXPOSURE})`);
    expect(score).toBeLessThanOrEqual(MAX_EXPOSURE);
  });
});
