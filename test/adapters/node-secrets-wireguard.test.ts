/**
 * Node key / cluster secret files (format, 0600/0700, refusal of loose modes and symlinks) and
 * the WireGuard helpers (config rendering and validation; real `wg` when installed).
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toHex } from '../../src/core/bytes.js';
import {
  decodeNodeSecretFile,
  encodeNodeSecretFile,
  loadOrCreateNodeSecret,
  readNodeSecret,
  writeNodeSecret,
} from '../../src/adapters/fs/node-secrets.js';
import {
  checkWgKey,
  generateWgKeyFile,
  parseWgDump,
  renderWgQuickConfig,
  wgPubKey,
} from '../../src/adapters/mesh/wireguard.js';
import { seeded } from '../helpers/mesh-fixtures.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tb-secrets-'));
  dirs.push(d);
  return d;
}
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

describe('node secrets', () => {
  it('round-trips both kinds in the text format and rejects anything else', () => {
    const s = seeded('x');
    const f = encodeNodeSecretFile('node-key', s);
    expect(new TextDecoder().decode(f)).toMatch(/^torbalance-node-key-v1 [A-Za-z0-9+/]{43}=\n$/);
    expect(decodeNodeSecretFile('node-key', f)).toEqual(s);
    expect(() => decodeNodeSecretFile('cluster-secret', f)).toThrow(/wrong header/);
    for (const bad of ['', 'torbalance-node-key-v1\n', `torbalance-node-key-v1 ${'A'.repeat(42)}=\n`, `torbalance-node-key-v1 ${'A'.repeat(42)}B=\n`, `torbalance-node-key-v1 ${'A'.repeat(43)}=\n\n`]) {
      let code = '';
      try {
        decodeNodeSecretFile('node-key', new TextEncoder().encode(bad));
      } catch (e) {
        code = (e as { code: string }).code;
      }
      expect(code, JSON.stringify(bad)).toBe('TB_ERR_NODE_SECRET_FORMAT');
    }
  });

  it('writes 0600 files in a 0700 directory, reads them back, refuses to overwrite', async () => {
    const d = join(await tmp(), 'node');
    const p = join(d, 'cluster_secret');
    const secret = seeded('cluster');
    await writeNodeSecret('cluster-secret', p, secret);
    expect((await stat(d)).mode & 0o777).toBe(0o700);
    expect((await stat(p)).mode & 0o777).toBe(0o600);
    expect(await readNodeSecret('cluster-secret', p)).toEqual(secret);
    expect(await codeOf(writeNodeSecret('cluster-secret', p, secret))).toBe('TB_ERR_KEYSTORE_EXISTS');
    await writeNodeSecret('cluster-secret', p, seeded('other'), { force: true });
    expect(await readNodeSecret('cluster-secret', p)).toEqual(seeded('other'));
  });

  it('creates a missing node key once, then loads the same one', async () => {
    const p = join(await tmp(), 'n', 'node_key');
    let calls = 0;
    const rnd = (n: number): Uint8Array => {
      calls += 1;
      return seeded(`rnd${calls}`, n);
    };
    const first = await loadOrCreateNodeSecret('node-key', p, rnd);
    const second = await loadOrCreateNodeSecret('node-key', p, rnd);
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.secret).toEqual(first.secret);
    expect(calls).toBe(1);
    expect(await readFile(p, 'utf8')).not.toContain(toHex(first.secret));
  });

  it('refuses a group/world-readable file or directory and a symlink', async () => {
    const d = join(await tmp(), 'n');
    const p = join(d, 'node_key');
    await writeNodeSecret('node-key', p, seeded('k'));
    await chmod(p, 0o644);
    expect(await codeOf(readNodeSecret('node-key', p))).toBe('TB_ERR_KEYSTORE_FILE_PERMISSIONS');
    await chmod(p, 0o600);
    await chmod(d, 0o755);
    expect(await codeOf(readNodeSecret('node-key', p))).toBe('TB_ERR_KEYSTORE_DIR_PERMISSIONS');
    await chmod(d, 0o700);
    await symlink(p, join(d, 'link'));
    expect(await codeOf(readNodeSecret('node-key', join(d, 'link')))).toBe('TB_ERR_KEYSTORE_SYMLINK');
    expect(await codeOf(readNodeSecret('node-key', join(d, 'missing')))).toBe('TB_ERR_KEYSTORE_NOT_FOUND');
    await writeFile(join(d, 'garbage'), 'not a key', { mode: 0o600 });
    expect(await codeOf(readNodeSecret('node-key', join(d, 'garbage')))).toBe('TB_ERR_NODE_SECRET_FORMAT');
  });
});

const PUB_A = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=';
const PUB_B = 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=';
const PRIV = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=';

describe('WireGuard helpers', () => {
  it('renders a wg-quick config', () => {
    const conf = renderWgQuickConfig({
      privateKey: PRIV,
      addresses: ['10.200.0.1/24'],
      listenPort: 51820,
      peers: [{ publicKey: PUB_B, endpoint: '192.0.2.2:51821', allowedIps: ['10.200.0.2/32'], persistentKeepalive: 25 }, { publicKey: PUB_A, allowedIps: ['10.200.0.3/32', 'fd00::3/128'] }],
    });
    expect(conf).toBe(
      `[Interface]\nPrivateKey = ${PRIV}\nAddress = 10.200.0.1/24\nListenPort = 51820\n\n` +
        `[Peer]\nPublicKey = ${PUB_B}\nEndpoint = 192.0.2.2:51821\nAllowedIPs = 10.200.0.2/32\nPersistentKeepalive = 25\n\n` +
        `[Peer]\nPublicKey = ${PUB_A}\nAllowedIPs = 10.200.0.3/32, fd00::3/128\n`,
    );
  });

  it('rejects malformed keys, endpoints and CIDRs without echoing keys', () => {
    const bad = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        expect((e as Error).message).not.toContain('AAAAAAAAAAAA');
        return (e as { code: string }).code;
      }
      return 'no error';
    };
    expect(bad(() => checkWgKey('private key', `${'A'.repeat(42)}B=`))).toBe('TB_ERR_WG_INVALID');
    expect(bad(() => renderWgQuickConfig({ privateKey: PRIV, addresses: ['10.0.0.1/33'], peers: [] }))).toBe('TB_ERR_WG_INVALID');
    expect(bad(() => renderWgQuickConfig({ privateKey: PRIV, addresses: [], peers: [{ publicKey: PUB_A, endpoint: 'host:1', allowedIps: [] }] }))).toBe('TB_ERR_WG_INVALID');
  });

  it('parses `wg show dump` without keeping the private key', () => {
    const d = parseWgDump(`${PRIV}\t${PUB_A}\t51820\toff\n${PUB_B}\t(none)\t10.98.0.2:51821\t10.199.0.2/32\t1700000000\t1234\t5678\t1\n`);
    expect(d).toEqual({ publicKey: PUB_A, listenPort: 51820, peers: [{ publicKey: PUB_B, endpoint: '10.98.0.2:51821', allowedIps: ['10.199.0.2/32'], latestHandshake: 1700000000, rxBytes: 1234, txBytes: 5678 }] });
    expect(JSON.stringify(d)).not.toContain(PRIV);
  });

  const hasWg = spawnSync('sh', ['-c', 'command -v wg']).status === 0;
  it.skipIf(!hasWg && process.env['CI'] === undefined)('generates a key file (0600) whose public key matches `wg pubkey`', async () => {
    const p = join(await tmp(), 'wg', 'private.key');
    const { publicKey } = await generateWgKeyFile(p);
    expect((await stat(p)).mode & 0o777).toBe(0o600);
    const priv = (await readFile(p, 'utf8')).trim();
    expect(await wgPubKey(priv)).toBe(publicKey);
    // Known answer from wg(8): this private key's public key.
    expect(await wgPubKey(PRIV)).toBe(spawnSync('wg', ['pubkey'], { input: `${PRIV}\n`, encoding: 'utf8' }).stdout.trim());
  });
});
