import { describe, expect, it } from 'vitest';
import { checkExtraTorrcKeyword, hsPortTargetString, nodeTorrcEntries, obConfigContent, type NodeTorrcInput } from '../../src/core/node-torrc.js';
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
      expect(checkExtraTorrcKeyword(k), k).toMatch(/managed by torbalance/);
    }
    for (const k of ['DisableNetwork', 'TestingTorNetwork', 'DirAuthority', 'Log', 'UseBridges', 'Bridge']) expect(checkExtraTorrcKeyword(k), k).toBeUndefined();
  });

  it('hsPortTargetString', () => {
    expect(hsPortTargetString({ kind: 'unix', path: '/x/p.sock' })).toBe('unix:/x/p.sock');
    expect(hsPortTargetString({ kind: 'tcp', host: '127.0.0.1', port: 1 })).toBe('127.0.0.1:1');
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
