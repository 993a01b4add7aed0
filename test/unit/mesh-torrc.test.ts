import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/core/errors.js';
import { renderTorrc } from '../../src/core/torrc.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { meshObConfigContent, meshOnionPaths, meshTorrcEntries, parseMeshHostname } from '../../src/core/mesh-torrc.js';
import { obConfigContent } from '../../src/core/node-torrc.js';

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return hasCode(e, 'TB_ERR_MESH_TORRC') ? 'TB_ERR_MESH_TORRC' : String(e);
  }
  return 'no error';
}

describe('meshTorrcEntries', () => {
  it('is a second HiddenServiceDir <data>/mesh-hs forwarding port 7700 to <data>/mesh.sock, without OnionBalance', () => {
    const e = meshTorrcEntries({ dataDir: '/var/lib/torbalance/tor' });
    expect(e).toEqual([
      ['HiddenServiceDir', '/var/lib/torbalance/tor/mesh-hs'],
      ['HiddenServicePort', '7700 unix:/var/lib/torbalance/tor/mesh.sock'],
    ]);
    expect(e.some(([k]) => /OnionBalance/i.test(k))).toBe(false);
    expect(renderTorrc(e)).toContain('HiddenServicePort "7700 unix:/var/lib/torbalance/tor/mesh.sock"');
  });
  it('takes a port and socket path, and validates them', () => {
    expect(meshOnionPaths({ dataDir: '/d/', port: 9000, socketPath: '/run/m.sock' })).toEqual({
      hsDir: '/d/mesh-hs',
      socketPath: '/run/m.sock',
      hostnameFile: '/d/mesh-hs/hostname',
      obConfigFile: '/d/mesh-hs/ob_config',
      port: 9000,
    });
    expect(code(() => meshTorrcEntries({ dataDir: 'relative' }))).toBe('TB_ERR_MESH_TORRC');
    expect(code(() => meshTorrcEntries({ dataDir: '/with space' }))).toBe('TB_ERR_MESH_TORRC');
    expect(code(() => meshTorrcEntries({ dataDir: '/d', port: 0 }))).toBe('TB_ERR_MESH_TORRC');
    expect(code(() => meshTorrcEntries({ dataDir: `/${'x'.repeat(120)}` }))).toBe('TB_ERR_MESH_TORRC');
  });
  it('parses the hostname file tor writes', () => {
    const h = `${'a'.repeat(56)}.onion`;
    expect(parseMeshHostname(`${h}\n`)).toBe(h);
    expect(code(() => parseMeshHostname('nope.onion\n'))).toBe('TB_ERR_MESH_TORRC');
  });
  it('with onionBalanceSelf adds HiddenServiceOnionBalanceInstance 1 inside the mesh service group (after its HiddenServiceDir)', () => {
    const e = meshTorrcEntries({ dataDir: '/var/lib/tb', onionBalanceSelf: true });
    expect(e).toEqual([
      ['HiddenServiceDir', '/var/lib/tb/mesh-hs'],
      ['HiddenServicePort', '7700 unix:/var/lib/tb/mesh.sock'],
      ['HiddenServiceOnionBalanceInstance', '1'],
    ]);
    expect(meshTorrcEntries({ dataDir: '/var/lib/tb', onionBalanceSelf: false })).toHaveLength(2);
    const text = renderTorrc(e);
    expect(text.indexOf('HiddenServiceOnionBalanceInstance')).toBeGreaterThan(text.indexOf('HiddenServiceDir'));
  });
});

describe('meshObConfigContent', () => {
  const kp = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7));
  it('names the service itself as master, with the mandatory .onion suffix and one newline', () => {
    const want = `MasterOnionAddress ${kp.address}\n`;
    expect(meshObConfigContent(kp.address)).toBe(want);
    expect(meshObConfigContent(kp.label)).toBe(want);
    expect(meshObConfigContent(kp.address.toUpperCase())).toBe(want);
    // same format as the master service's ob_config
    expect(meshObConfigContent(kp.address)).toBe(obConfigContent(kp.address));
  });
  it('rejects an invalid address with TB_ERR_MESH_TORRC', () => {
    expect(code(() => meshObConfigContent('nope.onion'))).toBe('TB_ERR_MESH_TORRC');
    const bad = `${kp.label.slice(0, -1)}${kp.label.endsWith('a') ? 'b' : 'a'}.onion`; // checksum/version broken
    expect(code(() => meshObConfigContent(bad))).toBe('TB_ERR_MESH_TORRC');
  });
});
