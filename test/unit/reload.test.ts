/**
 * planReload (src/node/reload.ts): which changed config keys a SIGHUP applies live and which
 * need a restart; restart-only changes stay reported until the file matches the start config.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/adapters/config/load.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { changedKeys, planReload } from '../../src/node/reload.js';

const T1 = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(1)).address;
const T2 = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(2)).address;
const cfg = (extra: string, target = T1): ReturnType<typeof parseConfigText> =>
  parseConfigText(`[target]\naddress = "${target}"\n${extra}`, { baseDir: '/srv/tb', source: '/srv/tb/torbalance.toml' });

describe('planReload', () => {
  it('nothing changed → nothing to do (the source path is not a key)', () => {
    const a = cfg('');
    expect(changedKeys(a, parseConfigText(`[target]\naddress = "${T1}"\n`, { baseDir: '/srv/tb', source: '/elsewhere.toml' }))).toEqual([]);
    expect(planReload(a, a, cfg(''))).toEqual({ live: [], restart: [] });
  });

  it('sorts live keys and restart keys', () => {
    const a = cfg('');
    const b = cfg(
      '[log]\nlevel = "debug"\nformat = "json"\n[proxy]\nrewrite_bodies = false\n[proxy.limits]\nmax_connections = 5\nidle_timeout_ms = 5000\n[health]\ninterval_ms = 2000\npath = "/up"\n[drain]\ntimeout_ms = 1000\n[tor]\nextra_config = ["DisableNetwork 1"]\n[cluster]\npriority = 7\n',
      T2,
    );
    expect(planReload(a, a, b)).toEqual({
      live: ['drain.timeout_ms', 'health.interval_ms', 'health.path', 'log.level', 'proxy.limits.idle_timeout_ms', 'proxy.limits.max_connections', 'proxy.rewrite_bodies'],
      restart: ['cluster.priority', 'log.format', 'target.address', 'tor.extra_config'],
    });
  });

  it('a restart-only change keeps being reported on later reloads; a live one is applied once', () => {
    const start = cfg('');
    const first = cfg('[log]\nlevel = "debug"\n[admin]\nlisten = "127.0.0.1:9099"\n');
    expect(planReload(start, start, first)).toEqual({ live: ['log.level'], restart: ['admin.listen'] });
    expect(planReload(start, first, first)).toEqual({ live: [], restart: ['admin.listen'] });
    expect(planReload(start, first, cfg('[log]\nlevel = "debug"\n'))).toEqual({ live: [], restart: [] });
  });

  it('max_connections_per_circuit is applied by the proxy and needs a restart for tor', () => {
    const a = cfg('');
    expect(planReload(a, a, cfg('[proxy.limits]\nmax_connections_per_circuit = 2\n'))).toEqual({
      live: ['proxy.limits.max_connections_per_circuit'],
      restart: ['proxy.limits.max_connections_per_circuit'],
    });
  });
});
