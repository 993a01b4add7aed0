import { describe, expect, it } from 'vitest';
import { checkExtraTorrcKeyword, EXTRA_TOR_OPTIONS, hsPortTargetString, managedGetconfKeys, managedOptionMismatches, MANAGED_TOR_OPTIONS, nodeTorrcEntries, obConfigContent, type NodeTorrcInput } from '../../src/core/node-torrc.js';
import type { TorrcEntry } from '../../src/core/torrc.js';
import { renderTorrc } from '../../src/core/torrc.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';

const MASTER = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(9)).address;

const input: NodeTorrcInput = {
  hsDir: '/srv/tb/data/hs',
  socksPort: 19050,
  virtualPort: 80,
  proxyListen: { kind: 'unix', path: '/srv/tb/data/proxy.sock' },
  numIntroPoints: 3,
  maxStreamsPerCircuit: 16,
  pow: { enabled: false, queueRate: 250, queueBurst: 2500 },
  publishDescriptors: true,
  extra: [],
};

describe('nodeTorrcEntries', () => {
  it('produces the expected entries (single-node mode, unix proxy socket)', () => {
    expect(nodeTorrcEntries(input)).toEqual([
      ['SocksPort', '127.0.0.1:19050 OnionTrafficOnly'],
      ['SafeLogging', '1'],
      ['PublishHidServDescriptors', '1'],
      ['HiddenServiceDir', '/srv/tb/data/hs'],
      ['HiddenServicePort', '80 unix:/srv/tb/data/proxy.sock'],
      ['HiddenServiceOnionBalanceInstance', '1'],
      ['HiddenServiceExportCircuitID', 'haproxy'],
      ['HiddenServiceNumIntroductionPoints', '3'],
      ['HiddenServiceMaxStreams', '16'],
    ]);
  });

  it('tcp proxy target, PoW, extra lines before the onion-service group', () => {
    const e = nodeTorrcEntries({
      ...input,
      virtualPort: 443,
      proxyListen: { kind: 'tcp', host: '127.0.0.1', port: 8443 },
      numIntroPoints: 20,
      pow: { enabled: true, queueRate: 100, queueBurst: 100 },
      publishDescriptors: false,
      extra: [['DisableNetwork', '1'], ['Log', 'info file /tmp/x.log']],
    });
    const kw = e.map(([k]) => k);
    expect(e).toContainEqual(['HiddenServicePort', '443 127.0.0.1:8443']);
    expect(e).toContainEqual(['PublishHidServDescriptors', '0']);
    expect(e).toContainEqual(['HiddenServiceNumIntroductionPoints', '20']);
    expect(e.slice(-3)).toEqual([
      ['HiddenServicePoWDefensesEnabled', '1'],
      ['HiddenServicePoWQueueRate', '100'],
      ['HiddenServicePoWQueueBurst', '100'],
    ]);
    expect(kw.indexOf('Log')).toBeLessThan(kw.indexOf('HiddenServiceDir'));
    expect(kw.indexOf('DisableNetwork')).toBeLessThan(kw.indexOf('HiddenServiceDir'));
    // every HiddenService* line comes after HiddenServiceDir (one group)
    const dirIdx = kw.indexOf('HiddenServiceDir');
    kw.forEach((k, i) => {
      if (k.startsWith('HiddenService')) expect(i).toBeGreaterThanOrEqual(dirIdx);
    });
    expect(renderTorrc(e)).toContain('HiddenServicePort "443 127.0.0.1:8443"\n');
  });

  it('rejects invalid input with TB_ERR_NODE_TORRC', () => {
    const bad: Partial<NodeTorrcInput>[] = [
      { numIntroPoints: 2 },
      { numIntroPoints: 21 },
      { socksPort: 0 },
      { virtualPort: 70000 },
      { hsDir: 'relative/hs' },
      { hsDir: '/with space' },
      { proxyListen: { kind: 'tcp', host: '0.0.0.0', port: 80 } },
      { proxyListen: { kind: 'unix', path: '/a b' } },
      { pow: { enabled: true, queueRate: 10, queueBurst: 5 } },
      { extra: [['HiddenServicePort', '80 127.0.0.1:1']] },
      { extra: [['datadirectory', '/x']] },
      { maxStreamsPerCircuit: -1 },
    ];
    for (const b of bad) expect(() => nodeTorrcEntries({ ...input, ...b }), JSON.stringify(b)).toThrow(expect.objectContaining({ code: 'TB_ERR_NODE_TORRC' }));
  });

  it('managed keywords are refused case-insensitively; others allowed', () => {
    for (const k of ['ControlPort', 'controlport', 'SOCKSPORT', 'HiddenServiceDir', 'HiddenServicePoWQueueRate', '__OwningControllerProcess', 'PublishHidServDescriptors', 'CookieAuthentication']) {
      expect(checkExtraTorrcKeyword(k), k).toMatch(/an option torbalance manages/);
    }
    for (const k of ['DisableNetwork', 'TestingTorNetwork', 'DirAuthority', 'Log', 'UseBridges', 'Bridge', 'log', 'DISABLENETWORK']) expect(checkExtraTorrcKeyword(k), k).toBeUndefined();
  });

  it('abbreviations of managed options are refused (tor takes a prefix of an option name as that option)', () => {
    for (const k of ['ControlP', 'controlp', 'SocksP', 'HashedControlPasswor', 'DataDirector', 'CookieAuth', 'Hidden', 'HiddenServ', 'Publish', 'RunAs', 'Sand', 'Use', 'Cont', 'D', 'MetricsP', '__Owning']) {
      expect(checkExtraTorrcKeyword(k), k).toMatch(/abbreviates\) an option torbalance manages/);
    }
  });

  it('only the documented options are accepted: listeners, directories and unknown names are refused', () => {
    for (const k of ['ExitRelay', 'ClientOnionAuthDir', 'SocksPolicy', 'Schedulers', 'FetchDirInfoEarly', 'NoSuchOption', 'LogX']) {
      expect(checkExtraTorrcKeyword(k), k).toMatch(/not one of the tor options tor.extra_config may set/);
    }
    for (const k of EXTRA_TOR_OPTIONS) expect(checkExtraTorrcKeyword(k), k).toBeUndefined();
    // No accepted name could be read by tor as a managed option.
    const managed = Object.keys(MANAGED_TOR_OPTIONS).map((m) => m.toLowerCase());
    for (const k of EXTRA_TOR_OPTIONS) {
      expect(managed.some((m) => m.startsWith(k.toLowerCase())), k).toBe(false);
      expect(k.toLowerCase().startsWith('hiddenservice'), k).toBe(false);
    }
  });

  it('renders the intro-point DoS defence and HiddenServiceMaxStreamsCloseCircuit into the master group', () => {
    const e = nodeTorrcEntries({ ...input, maxStreamsCloseCircuit: true, introDos: { enabled: true, ratePerSec: 30, burstPerSec: 300 } });
    expect(e.slice(-5)).toEqual([
      ['HiddenServiceMaxStreams', '16'],
      ['HiddenServiceMaxStreamsCloseCircuit', '1'],
      ['HiddenServiceEnableIntroDoSDefense', '1'],
      ['HiddenServiceEnableIntroDoSRatePerSec', '30'],
      ['HiddenServiceEnableIntroDoSBurstPerSec', '300'],
    ]);
    // disabled: nothing rendered (tor's defaults: off)
    const off = nodeTorrcEntries({ ...input, maxStreamsCloseCircuit: false, introDos: { enabled: false, ratePerSec: 30, burstPerSec: 300 } });
    expect(off.map(([k]) => k).filter((k) => /IntroDoS|CloseCircuit/.test(k))).toEqual([]);
    for (const dos of [{ ratePerSec: 10, burstPerSec: 5 }, { ratePerSec: 0, burstPerSec: 5 }, { ratePerSec: 1, burstPerSec: 2 ** 31 }, { ratePerSec: 1.5, burstPerSec: 5 }]) {
      expect(() => nodeTorrcEntries({ ...input, introDos: { enabled: true, ...dos } }), JSON.stringify(dos)).toThrow(expect.objectContaining({ code: 'TB_ERR_NODE_TORRC' }));
    }
  });

  it('hsPortTargetString', () => {
    expect(hsPortTargetString({ kind: 'unix', path: '/x/p.sock' })).toBe('unix:/x/p.sock');
    expect(hsPortTargetString({ kind: 'tcp', host: '127.0.0.1', port: 1 })).toBe('127.0.0.1:1');
  });
});

describe('managedOptionMismatches', () => {
  const rendered: TorrcEntry[] = [
    ['DataDirectory', '/d'],
    ['ControlPort', 'unix:/d/control.sock'],
    ['CookieAuthentication', '1'],
    ['SocksPort', '127.0.0.1:1 OnionTrafficOnly'],
    ['PublishHidServDescriptors', '1'],
    ['DisableNetwork', '1'],
    ['HiddenServiceDir', '/d/hs'],
    ['HiddenServicePort', '80 unix:/d/p.sock'],
  ];
  /** What tor answers for `rendered`, as probed with tor 0.4.9 (unset list options: bare name). */
  function answers(over: Record<string, string[] | undefined> = {}, hs = ['HiddenServiceDir=/d/hs', 'HiddenServicePort=80 unix:/d/p.sock']): string[] {
    const out: string[] = [];
    for (const k of managedGetconfKeys()) {
      if (k === 'HiddenServiceOptions') {
        out.push(...hs);
        continue;
      }
      const mine = rendered.filter(([r]) => r === k).map(([, v]) => v);
      const unset = MANAGED_TOR_OPTIONS[k];
      const vals = over[k] ?? (mine.length > 0 ? mine : unset === undefined ? [] : [unset]);
      if (vals.length === 0) out.push(k);
      for (const v of vals) out.push(`${k}=${v}`);
    }
    return out;
  }

  it('accepts tor answering exactly what was written (and the unset defaults)', () => {
    expect(managedOptionMismatches(rendered, answers())).toEqual([]);
  });

  it('names every option that differs: a second ControlPort, another SocksPort, a password, a data directory, the HS group', () => {
    expect(managedOptionMismatches(rendered, answers({ ControlPort: ['unix:/d/control.sock', '0.0.0.0:9051'] }))).toEqual(['ControlPort']);
    expect(managedOptionMismatches(rendered, answers({ SocksPort: ['127.0.0.1:1 OnionTrafficOnly', '0.0.0.0:9050'] }))).toEqual(['SocksPort']);
    expect(managedOptionMismatches(rendered, answers({ HashedControlPassword: ['16:AB'] }))).toEqual(['HashedControlPassword']);
    expect(managedOptionMismatches(rendered, answers({ DataDirectory: ['/elsewhere'], CookieAuthentication: ['0'] }))).toEqual(['CookieAuthentication', 'DataDirectory']);
    expect(managedOptionMismatches(rendered, answers({}, ['HiddenServiceDir=/d/hs', 'HiddenServicePort=80 unix:/d/p.sock', 'HiddenServicePort=22 127.0.0.1:22']))).toEqual(['HiddenServiceOptions']);
    expect(managedOptionMismatches(rendered, answers({}, ['HiddenServiceDir=/d/hs']))).toEqual(['HiddenServiceOptions']);
  });

  it('an option missing from the answer counts as a mismatch', () => {
    expect(managedOptionMismatches(rendered, answers().filter((l) => !l.startsWith('RunAsDaemon')))).toEqual(['RunAsDaemon']);
  });
});

describe('obConfigContent', () => {
  it('names the master address with the mandatory .onion suffix', () => {
    expect(obConfigContent(MASTER)).toBe(`MasterOnionAddress ${MASTER}\n`);
    expect(obConfigContent(MASTER.slice(0, -6).toUpperCase())).toBe(`MasterOnionAddress ${MASTER}\n`);
  });
  it('rejects an invalid address', () => {
    expect(() => obConfigContent('x.onion')).toThrow(expect.objectContaining({ code: 'TB_ERR_NODE_TORRC' }));
  });
});
