/**
 * The built `torbalance` binary: `keygen --dir` writes tor-format keys (dir 0700, files 0600)
 * and prints the address; the hostname file and `inspect address` agree with it; a bad address
 * exits non-zero with a TB_ERR code; the secret key never appears on stdout/stderr.
 *
 * Needs `npx tsc -p tsconfig.build.json`; beforeAll runs it when dist/ is missing or older than
 * src/ (type errors elsewhere do not stop tsc from emitting).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromAscii, toBase64, toHex } from '../../src/core/bytes.js';
import { decodeSecretKeyFile } from '../../src/core/hs/keys.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'torbalance.js');
const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

function run(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let tmp: string;
beforeAll(async () => {
  if (!existsSync(MAIN) || statSync(MAIN).mtimeMs < newestMtime(join(ROOT, 'src'))) {
    spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: 120_000 });
  }
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli', 'commands', 'keygen.js'))) throw new Error('build did not produce dist/src/cli/commands/keygen.js');
  tmp = await mkdtemp(join(tmpdir(), 'tb-cli-'));
}, 180_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Every rendering of the secret that could leak. */
function secretNeedles(secretFile: Uint8Array): string[] {
  const esk = decodeSecretKeyFile(secretFile);
  return [toHex(esk), toHex(esk.subarray(0, 16)), toHex(esk.subarray(32, 48)), toBase64(esk).slice(0, 24), fromAscii(esk.subarray(0, 12))];
}

describe('torbalance keygen / inspect address', () => {
  it('keygen writes tor-format keys with private modes and prints the address', async () => {
    const dir = join(tmp, 'svc');
    const r = run(['keygen', '--dir', dir]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const address = r.stdout.trim();
    expect(address).toMatch(/^[a-z2-7]{56}\.onion$/);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const f of ['hs_ed25519_secret_key', 'hs_ed25519_public_key', 'hostname']) {
      expect((await stat(join(dir, f))).mode & 0o777).toBe(0o600);
    }
    expect(await readFile(join(dir, 'hostname'), 'utf8')).toBe(`${address}\n`);

    const inspected = run(['inspect', 'address', address]);
    expect(inspected.status).toBe(0);
    const json = JSON.parse(inspected.stdout);
    expect(json).toEqual({ valid: true, version: 3, address, publicKeyHex: json.publicKeyHex });
    const pub = await readFile(join(dir, 'hs_ed25519_public_key'));
    expect(json.publicKeyHex).toBe(toHex(pub.subarray(32)));

    // refuses to overwrite, then overwrites with --force
    const again = run(['keygen', '--dir', dir]);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toContain('TB_ERR_KEYSTORE_EXISTS');
    expect(await readFile(join(dir, 'hostname'), 'utf8')).toBe(`${address}\n`);
    const forced = run(['keygen', '--dir', dir, '--force']);
    expect(forced.status).toBe(0);
    expect(forced.stdout.trim()).not.toBe(address);
    expect(await readFile(join(dir, 'hostname'), 'utf8')).toBe(forced.stdout);

    // the secret never appears in any output
    const secret = await readFile(join(dir, 'hs_ed25519_secret_key'));
    const outputs = [r, again, forced, inspected].flatMap((x) => [x.stdout, x.stderr]);
    for (const n of secretNeedles(secret)) for (const o of outputs) expect(o).not.toContain(n);
  });

  it('inspect address accepts mixed case and no ".onion", printing the canonical form', () => {
    const r = run(['inspect', 'address', '25nJqAmCwEfLpVkL73j4sZaHhIhOc4xT3KtCgJnPaInGr5yHkEnL5SiD']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      valid: true,
      version: 3,
      address: '25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion',
      publicKeyHex: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    });
  });

  it('a bad address exits non-zero with a TB_ERR code on stderr and nothing on stdout', () => {
    for (const [addr, code] of [
      ['blah', 'TB_ERR_ONION_LENGTH'],
      ['25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5Xid.onion', 'TB_ERR_ONION_CHECKSUM'],
      ['25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5siE.onion', 'TB_ERR_ONION_VERSION'],
      ['????????????????????????????????????????????????????????', 'TB_ERR_ONION_BASE32'],
    ] as const) {
      const r = run(['inspect', 'address', addr]);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`^torbalance: error ${code}: .+`));
    }
  });

  it('keygen without --dir is a usage error', () => {
    const r = run(['keygen']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--dir');
  });
});
