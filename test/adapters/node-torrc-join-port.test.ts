/**
 * The join port (`extraPorts` of nodeTorrcEntries): a second HiddenServicePort inside the
 * MASTER service's group, and refused input (duplicate virtual port, bad target) with
 * TB_ERR_NODE_TORRC. That the real tor accepts it: test/integration/node-torrc-verify.test.ts.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeTorrcEntries, type NodeTorrcInput } from '../../src/core/node-torrc.js';

function input(d: string, over: Partial<NodeTorrcInput> = {}): NodeTorrcInput {
  return {
    hsDir: join(d, 'hs'),
    socksPort: 19999,
    virtualPort: 80,
    proxyListen: { kind: 'unix', path: join(d, 'proxy.sock') },
    numIntroPoints: 3,
    maxStreamsPerCircuit: 16,
    pow: { enabled: false, queueRate: 250, queueBurst: 2500 },
    publishDescriptors: true,
    extra: [['DisableNetwork', '1']],
    extraPorts: [{ virtualPort: 7101, target: { kind: 'unix', path: join(d, 'join.sock') } }],
    ...over,
  };
}

describe('nodeTorrcEntries extraPorts (join port)', () => {
  it('adds the port right after the main HiddenServicePort, inside the master group', () => {
    const e = nodeTorrcEntries(input('/srv/tb'));
    const kw = e.map(([k]) => k);
    const dir = kw.indexOf('HiddenServiceDir');
    expect(e[dir]).toEqual(['HiddenServiceDir', '/srv/tb/hs']);
    expect(e[dir + 1]).toEqual(['HiddenServicePort', '80 unix:/srv/tb/proxy.sock']);
    expect(e[dir + 2]).toEqual(['HiddenServicePort', '7101 unix:/srv/tb/join.sock']);
    expect(kw.filter((k) => k === 'HiddenServiceDir')).toHaveLength(1);
    // without extraPorts: one HiddenServicePort only
    expect(nodeTorrcEntries(input('/srv/tb', { extraPorts: [] })).filter(([k]) => k === 'HiddenServicePort')).toHaveLength(1);
  });

  it('rejects a duplicate virtual port, a bad port and a bad target', () => {
    const bad: Partial<NodeTorrcInput>[] = [
      { extraPorts: [{ virtualPort: 80, target: { kind: 'unix', path: '/a/join.sock' } }] },
      { extraPorts: [{ virtualPort: 7101, target: { kind: 'unix', path: '/a/j.sock' } }, { virtualPort: 7101, target: { kind: 'unix', path: '/a/k.sock' } }] },
      { extraPorts: [{ virtualPort: 0, target: { kind: 'unix', path: '/a/join.sock' } }] },
      { extraPorts: [{ virtualPort: 7101, target: { kind: 'unix', path: 'relative.sock' } }] },
      { extraPorts: [{ virtualPort: 7101, target: { kind: 'tcp', host: '0.0.0.0', port: 1 } }] },
    ];
    for (const b of bad) expect(() => nodeTorrcEntries(input('/srv/tb', b)), JSON.stringify(b)).toThrow(expect.objectContaining({ code: 'TB_ERR_NODE_TORRC' }));
  });
});
