/**
 * `torbalance inspect descriptor` through the built binary: a real-network descriptor from
 * the vectors (checked at the time it was made, --now), descriptors we build (from stdin and
 * from a file; 20 intro points with every link-specifier type, flow-control and pow-params),
 * and the failures, each with the code of the failed check and exit status 1: expired
 * certificate (with a --now hint), signature, layer MAC, wrong address / period, bad options,
 * unreadable or oversized input, usage errors (exit 2). Secrets never appear in the output.
 *
 * Needs `npx tsc -p tsconfig.build.json`; beforeAll runs it when dist/ is missing or older
 * than src/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64, toBase64NoPad, toHex } from '../../src/core/bytes.js';
import { buildCert, CERT_TYPE, certExpirationHours } from '../../src/core/cert/ed25519-cert.js';
import { ed25519ExpandSeed, ed25519PublicFromExpanded, x25519PublicKey } from '../../src/core/crypto/index.js';
import { encodeOnionAddress } from '../../src/core/hs/address.js';
import { blindKeypair } from '../../src/core/hs/blinding.js';
import { timePeriodNum } from '../../src/core/hs/time-period.js';
import { buildDescriptor, DEFAULT_FLOW_CONTROL, type IntroPointInput } from '../../src/core/hsdesc/descriptor.js';
import { HS_DESC_CERT_LIFETIME } from '../../src/core/hsdesc/inner.js';
import { ed25519IdLinkSpecifier, ipv4LinkSpecifier, ipv6LinkSpecifier, legacyIdLinkSpecifier } from '../../src/core/hsdesc/link-specifiers.js';
import { encodeOuterLayer } from '../../src/core/hsdesc/outer.js';
import { loadVectors } from '../helpers/vectors.js';
import { seededRandom } from '../interop/stem.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'torbalance.js');
const BUILT_MODULE = join(ROOT, 'dist', 'src', 'cli', 'commands', 'inspect-descriptor.js');

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: readonly string[], input?: string): Run {
  const r = spawnSync(process.execPath, [BIN, 'inspect', 'descriptor', ...args], { encoding: 'utf8', timeout: 60_000, input: input ?? '' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Run): any {
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

function fails(r: Run, code: string): string {
  expect(r.stdout).toBe('');
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(new RegExp(`^torbalance: error ${code}: `));
  return r.stderr;
}

const iso = (unix: number): string => new Date(unix * 1000).toISOString().replace('.000Z', 'Z');

// The real-network descriptor: made 54 h before its signing-key certificate expires.
const GOB = loadVectors('descriptor-full').vectors.find((v) => v.name === 'gobalance-real-network-descriptor')!;
const GOB_TEXT = GOB.inputs['descriptor_text'] as string;
const GOB_ADDRESS = GOB.inputs['onion_address'] as string;
const GOB_EXP_HOURS = GOB.expected['descriptor_signing_key_cert'].expiration_hours_since_epoch as number;
const GOB_NOW = (GOB_EXP_HOURS - 54) * 3600 + 600;

// A descriptor we build: 20 intro points, all link-specifier types, flow-control, pow-params.
const rnd = seededRandom('cli-inspect-descriptor');
const idSeed = rnd(32);
const idExpanded = ed25519ExpandSeed(idSeed);
const identity = { expandedSecretKey: idExpanded, publicKey: ed25519PublicFromExpanded(idExpanded) };
const ADDRESS = encodeOnionAddress(identity.publicKey);
const NOW = 1_700_000_000;
const PERIOD = timePeriodNum(NOW);
const POW_SEED = rnd(32);
const IPS: IntroPointInput[] = Array.from({ length: 20 }, (_, i) => ({
  linkSpecifiers: [
    ipv4LinkSpecifier(`192.0.2.${i + 1}`, 9001 + i),
    legacyIdLinkSpecifier(rnd(20)),
    ed25519IdLinkSpecifier(rnd(32)),
    ...(i % 3 === 0 ? [ipv6LinkSpecifier(`2001:db8::${(i + 1).toString(16)}`, 443)] : []),
    ...(i === 19 ? [{ type: 42, data: new Uint8Array([1, 2, 3]) }] : []),
  ],
  onionKey: x25519PublicKey(rnd(32)),
  authKey: ed25519PublicFromExpanded(ed25519ExpandSeed(rnd(32))),
  encKey: x25519PublicKey(rnd(32)),
}));
const BUILT = buildDescriptor({
  identity,
  periodNum: PERIOD,
  periodLengthMinutes: 1440,
  revisionCounter: 0xfedc_ba98_7654_3210n,
  nowSeconds: NOW,
  introPoints: IPS,
  flowControl: DEFAULT_FLOW_CONTROL,
  powParams: { seed: POW_SEED, suggestedEffort: 123, expirationSeconds: NOW + 7200 },
  randomBytes: rnd,
});

let tmp: string;
beforeAll(async () => {
  if (!existsSync(BUILT_MODULE) || statSync(BUILT_MODULE).mtimeMs < newestMtime(join(ROOT, 'src'))) {
    spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: 180_000 });
  }
  if (!existsSync(BUILT_MODULE)) throw new Error('build did not produce dist/src/cli/commands/inspect-descriptor.js');
  tmp = await mkdtemp(join(tmpdir(), 'tb-inspect-desc-'));
}, 240_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('torbalance inspect descriptor', () => {
  it('decodes the real-network vector descriptor (gobalance) at the time it was made', async () => {
    const file = join(tmp, 'gob.txt');
    await writeFile(file, GOB_TEXT);
    const j = ok(run(['--address', GOB_ADDRESS, '--now', iso(GOB_NOW), file]));
    const e = GOB.expected;
    expect(j.address).toBe(GOB_ADDRESS);
    expect(j.checkedAt).toBe(iso(GOB_NOW));
    expect(j.outer).toEqual({
      version: 3,
      lifetimeMinutes: e['descriptor_lifetime_minutes'],
      revisionCounter: String(e['revision_counter']),
      signingKeyCert: { expires: e['descriptor_signing_key_cert'].expiration_utc, expiresUnix: GOB_EXP_HOURS * 3600 },
      descriptorSigningKey: toBase64NoPad(Buffer.from(e['descriptor_signing_public_key'], 'hex')),
      blindedKey: toBase64NoPad(Buffer.from(e['blinded_public_key'], 'hex')),
      periodNum: expect.any(Number),
      signedBytes: e['signed_text_length'],
    });
    expect(j.middle).toEqual({ authType: 'x25519', authClients: 16 });
    const inner = e['inner_layer'];
    expect(j.inner.create2Formats).toEqual(inner.create2_formats);
    expect(j.inner.singleOnionService).toBe(inner.single_onion_service);
    expect(j.inner.flowControl).toBeNull();
    expect(j.inner.powParams).toBeNull();
    expect(j.inner.skippedIntroPoints).toEqual([]);
    const want = inner.introduction_points as any[];
    expect(j.inner.introPoints.length).toBe(want.length);
    j.inner.introPoints.forEach((ip: any, i: number) => {
      const w = want[i];
      const specs = (w.link_specifiers.specifiers as any[]).map((s) => {
        switch (s.type) {
          case 0:
            return { type: 'ipv4', address: `${s.address}:${s.port}` };
          case 1:
            return { type: 'ipv6', address: `[${s.address}]:${s.port}` };
          case 2:
            return { type: 'legacy-id', hex: s.fingerprint };
          case 3:
            return { type: 'ed25519-id', base64: s.ed25519_identity_base64.replace(/=+$/, '') };
          default:
            throw new Error(`unexpected link specifier type ${s.type} in the vector`);
        }
      });
      expect(ip.linkSpecifiers).toEqual(specs);
      expect(ip.onionKey).toBe(w.onion_key_ntor_base64);
      expect(ip.encKey).toBe(w.enc_key_ntor_base64);
      expect(ip.authKey).toBe(toBase64NoPad(Buffer.from(w.auth_key, 'hex')));
      expect(ip.authKeyCert.expires).toBe(w.auth_key_cert.expiration_utc);
      expect(ip.encKeyCert.expires).toBe(w.enc_key_cert.expiration_utc);
      expect(ip.legacyKey).toBe(false);
    });
  });

  it('decodes a 20-intro-point descriptor we build, read from stdin', () => {
    const j = ok(run(['--address', ADDRESS, '--now', String(NOW), '-'], BUILT.text));
    expect(j.outer.revisionCounter).toBe('18364758544493064720');
    expect(j.outer.periodNum).toBe(PERIOD);
    expect(j.outer.signingKeyCert.expiresUnix).toBe(certExpirationHours(NOW, HS_DESC_CERT_LIFETIME) * 3600);
    expect(j.outer.blindedKey).toBe(toBase64NoPad(BUILT.blindedPublicKey));
    expect(j.outer.descriptorSigningKey).toBe(toBase64NoPad(BUILT.descriptorSigningPublicKey));
    expect(j.inner.flowControl).toEqual({ versions: '1-2', sendmeInc: 31 });
    expect(j.inner.powParams).toEqual({ type: 'v1', seed: toBase64(POW_SEED), suggestedEffort: 123, expires: iso(NOW + 7200) });
    expect(j.inner.introPoints.length).toBe(20);
    const ipExp = certExpirationHours(NOW - (NOW % 3600), HS_DESC_CERT_LIFETIME) * 3600;
    j.inner.introPoints.forEach((ip: any, i: number) => {
      const input = IPS[i]!;
      const ls = input.linkSpecifiers;
      const want: unknown[] = [
        { type: 'ipv4', address: `192.0.2.${i + 1}:${9001 + i}` },
        { type: 'legacy-id', hex: toHex(ls[1]!.data) },
        { type: 'ed25519-id', base64: toBase64NoPad(ls[2]!.data) },
      ];
      if (i % 3 === 0) want.push({ type: 'ipv6', address: `[2001:db8::${(i + 1).toString(16)}]:443` });
      if (i === 19) want.push({ type: 'unknown', typeNumber: 42, hex: '010203' });
      expect(ip.linkSpecifiers).toEqual(want);
      expect(ip.onionKey).toBe(toBase64(input.onionKey));
      expect(ip.authKey).toBe(toBase64NoPad(input.authKey));
      expect(ip.encKey).toBe(toBase64(input.encKey));
      expect(ip.authKeyCert.expiresUnix).toBe(ipExp);
      expect(ip.encKeyCert.expiresUnix).toBe(ipExp);
    });
  });

  it('prints no secret material', () => {
    const r = run(['--address', ADDRESS, '--now', String(NOW)], BUILT.text);
    const all = r.stdout + r.stderr;
    expect(r.status).toBe(0);
    const blinded = blindKeypair(idExpanded, PERIOD, 1440);
    for (const secret of [idSeed, idExpanded.subarray(0, 32), idExpanded.subarray(32), blinded.expandedSecretKey.subarray(0, 32)]) {
      expect(all).not.toContain(toHex(secret));
      expect(all).not.toContain(toBase64NoPad(secret).slice(0, 20));
    }
    // auth-client lines (client-authorization data) are counted, never shown
    expect(all).not.toMatch(/auth-client /);
  });

  it('accepts --period and --period-length; a wrong period is a blinded-key mismatch', () => {
    expect(ok(run(['--address', ADDRESS, '--now', String(NOW), '--period', String(PERIOD), '--period-length', '1440'], BUILT.text)).outer.periodNum).toBe(PERIOD);
    fails(run(['--address', ADDRESS, '--now', String(NOW), '--period', String(PERIOD + 5)], BUILT.text), 'TB_ERR_HSDESC_WRONG_BLINDED_KEY');
    fails(run(['--address', ADDRESS, '--now', String(NOW), '--period-length', '60'], BUILT.text), 'TB_ERR_HSDESC_WRONG_BLINDED_KEY');
  });

  it('expired signing-key certificate: TB_ERR_HSDESC_CERT_EXPIRED with a --now hint', () => {
    const err = fails(run(['--address', GOB_ADDRESS], GOB_TEXT), 'TB_ERR_HSDESC_CERT_EXPIRED');
    expect(err).toMatch(/use --now/);
    fails(run(['--address', GOB_ADDRESS, '--now', iso(GOB_EXP_HOURS * 3600 + 1)], GOB_TEXT), 'TB_ERR_HSDESC_CERT_EXPIRED');
  });

  it('tampered signed text: TB_ERR_HSDESC_SIGNATURE', () => {
    const tampered = BUILT.text.replace(/^revision-counter \d+$/m, 'revision-counter 1');
    expect(tampered).not.toBe(BUILT.text);
    fails(run(['--address', ADDRESS, '--now', String(NOW)], tampered), 'TB_ERR_HSDESC_SIGNATURE');
  });

  it('validly signed but undecryptable layer: TB_ERR_HSDESC_SUPERENCRYPTED_MAC', () => {
    const blinded = blindKeypair(idExpanded, PERIOD, 1440);
    const sk = ed25519ExpandSeed(rnd(32));
    const signingKey = { expandedSecretKey: sk, publicKey: ed25519PublicFromExpanded(sk) };
    const cert = buildCert({ certType: CERT_TYPE.HS_DESC_SIGNING, certifiedKey: signingKey.publicKey, expirationHours: certExpirationHours(NOW, HS_DESC_CERT_LIFETIME), signingKey: blinded });
    const text = encodeOuterLayer({ signingKeyCert: cert, revisionCounter: 7n, superencryptedBlob: rnd(10_048), signingKey });
    fails(run(['--address', ADDRESS, '--now', String(NOW)], text), 'TB_ERR_HSDESC_SUPERENCRYPTED_MAC');
  });

  it('another address: TB_ERR_HSDESC_WRONG_BLINDED_KEY; an invalid address: TB_ERR_ONION_*', () => {
    fails(run(['--address', GOB_ADDRESS, '--now', String(NOW)], BUILT.text), 'TB_ERR_HSDESC_WRONG_BLINDED_KEY');
    fails(run(['--address', `${ADDRESS.slice(0, 10)}a${ADDRESS.slice(11)}`, '--now', String(NOW)], BUILT.text), 'TB_ERR_ONION_[A-Z]+');
  });

  it('malformed input: TB_ERR_HSDESC_OUTER_PARSE / TB_ERR_HSDESC_TOO_LARGE', () => {
    fails(run(['--address', ADDRESS, '--now', String(NOW)], 'hs-descriptor 3\n'), 'TB_ERR_HSDESC_OUTER_PARSE');
    fails(run(['--address', ADDRESS, '--now', String(NOW)], BUILT.text.replace(/\n/g, '\r\n')), 'TB_ERR_HSDESC_(OUTER_PARSE|TOO_LARGE)');
    fails(run(['--address', ADDRESS, '--now', String(NOW)], 'x'.repeat(60_000)), 'TB_ERR_HSDESC_TOO_LARGE');
  });

  it('bad options and unreadable input: TB_ERR_INSPECT_OPTION / TB_ERR_INSPECT_READ; usage errors exit 2', () => {
    fails(run(['--address', ADDRESS, '--now', 'yesterday'], BUILT.text), 'TB_ERR_INSPECT_OPTION');
    fails(run(['--address', ADDRESS, '--now', String(NOW), '--period', '-3'], BUILT.text), 'TB_ERR_INSPECT_OPTION');
    fails(run(['--address', ADDRESS, '--now', String(NOW), '--period-length', '0'], BUILT.text), 'TB_ERR_INSPECT_OPTION');
    fails(run(['--address', ADDRESS, '--now', String(NOW), join(tmp, 'does-not-exist')]), 'TB_ERR_INSPECT_READ');
    fails(run(['--address', ADDRESS, '--now', String(NOW), '-'], 'x'.repeat(1024 * 1024 + 1)), 'TB_ERR_INSPECT_READ');
    const usage = run([], BUILT.text);
    expect(usage.status).toBe(2);
    expect(usage.stdout).toBe('');
    expect(usage.stderr).toMatch(/--address/);
  });

  it('--now takes unix seconds and ISO 8601 forms alike', () => {
    const a = ok(run(['--address', ADDRESS, '--now', String(NOW)], BUILT.text));
    const b = ok(run(['--address', ADDRESS, '--now', iso(NOW)], BUILT.text));
    const c = ok(run(['--address', ADDRESS, '--now', '2023-11-15T00:13:20+02:00'], BUILT.text));
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });
});
