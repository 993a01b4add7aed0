import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/core/errors.js';
import { renderTorrc } from '../../src/core/torrc.js';
import { meshOnionPaths, meshTorrcEntries, parseMeshHostname } from '../../src/core/mesh-torrc.js';

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
    expect(meshOnionPaths({ dataDir: '/d/', port: 9000, socketPath: '/run/m.sock' })).toEqual({ hsDir: '/d/mesh-hs', socketPath: '/run/m.sock', hostnameFile: '/d/mesh-hs/hostname', port: 9000 });
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
});
