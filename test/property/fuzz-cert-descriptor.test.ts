/**
 * Fuzzing the certificate and descriptor core with random and mutated inputs: 100 000 per
 * cheap parser (parseCert, decodeCertPem, decodeLinkSpecifiers, tokenize, parseOuterLayer,
 * parseMiddleLayer, parseInnerLayer with options) and several thousand for decodeDescriptor,
 * which does real crypto. Every input must either be accepted or throw a TorbalanceError
 * (DecodeError for untrusted input) — never a TypeError, RangeError or anything else.
 *
 * Seeds: the known-answer vectors (certificates, link specifiers, the full descriptors of
 * descriptor-full.json and their decrypted layers) and descriptors we assemble here with a
 * seeded key. Mutations: byte/character flips, line deletion/duplication/swap, truncation,
 * huge repeated lines, random base64 objects, token and number substitution, splices.
 *
 * decodeDescriptor gets two kinds of input: "shallow" (the outer text mutated; most fail in
 * the parser, at the certificate expiry check or at the signature) and "deep" (a mutated
 * middle or inner plaintext that is re-encrypted and re-signed, so it reaches the layer
 * parsers through the real decryption path). The mix is chosen so that most inputs fail
 * fast; the counts are in the test names.
 *
 * Work per input is bounded by the parsers' size limits; the slowest input of each target is
 * printed (never asserted: no timing assertions). Deterministic (xorshift seeds).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fromHex, toBase64, toHex, utf8, wrapBase64 } from '../../src/core/bytes.js';
import {
  buildCert,
  CERT_TYPE,
  certExpirationHours,
  decodeCertPem,
  encodeCertPem,
  parseCert,
  type Ed25519SigningKey,
} from '../../src/core/cert/ed25519-cert.js';
import { ed25519ExpandSeed, ed25519FromCurve25519, ed25519PublicFromExpanded, x25519PublicKey } from '../../src/core/crypto/index.js';
import { TorbalanceError } from '../../src/core/errors.js';
import { decodeOnionAddress } from '../../src/core/hs/address.js';
import { blindKeypair, subcredential as computeSubcredential } from '../../src/core/hs/blinding.js';
import { buildDescriptor, decodeDescriptor, DEFAULT_FLOW_CONTROL, type DecodeDescriptorOptions, type IntroPointInput } from '../../src/core/hsdesc/descriptor.js';
import { buildFakeAuthClient, encryptLayer } from '../../src/core/hsdesc/encryption.js';
import { encodeInnerLayer, HS_DESC_CERT_LIFETIME, parseInnerLayer, type IntroPointEncoding, type ParseInnerOptions } from '../../src/core/hsdesc/inner.js';
import {
  decodeLinkSpecifiers,
  ed25519IdLinkSpecifier,
  encodeLinkSpecifiers,
  ipv4LinkSpecifier,
  ipv6LinkSpecifier,
  legacyIdLinkSpecifier,
} from '../../src/core/hsdesc/link-specifiers.js';
import { encodeMiddleLayer, parseMiddleLayer } from '../../src/core/hsdesc/middle.js';
import { encodeOuterLayer, parseOuterLayer } from '../../src/core/hsdesc/outer.js';
import { tokenize } from '../../src/core/netdoc/tokenize.js';
import { seededRandom } from '../interop/stem.js';

const N = 100_000;
const N_SHALLOW = 10_000;
const N_DEEP = 2_000;

// ---------------------------------------------------------------------------------------
// Random source and mutators

type Rng = () => number;

/** xorshift32. */
function rng(seed: number): Rng {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}
const int = (r: Rng, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)]!;
function randBytes(r: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(r, 256);
  return b;
}

const KEYWORDS = [
  'hs-descriptor', 'descriptor-lifetime', 'descriptor-signing-key-cert', 'revision-counter', 'superencrypted', 'signature',
  'desc-auth-type', 'desc-auth-ephemeral-key', 'auth-client', 'encrypted', 'create2-formats', 'intro-auth-required',
  'single-onion-service', 'flow-control', 'pow-params', 'introduction-point', 'onion-key', 'auth-key', 'enc-key',
  'enc-key-cert', 'legacy-key', 'legacy-key-cert', 'opt', 'x25519', 'ntor', 'v1', 'ed25519',
];
const TOKENS = [
  ...KEYWORDS, '', ' ', '\t', '\r', '\0', '\n', '\n\n', '=', '==', '-', '-----', '-----BEGIN MESSAGE-----', '-----END MESSAGE-----',
  '-----BEGIN ED25519 CERT-----', '-----END ED25519 CERT-----', '-----BEGIN RSA PUBLIC KEY-----', '-----END CROSSCERT-----',
  '0', '1', '2', '3', '-1', '180', '720', '721', '255', '256', '65535', '65536', '4294967295', '4294967296', '18446744073709551615',
  '18446744073709551616', '007', '1e3', '0x10', 'NaN', '__proto__', 'constructor', 'toString', '1-2', '1-2 31', '31', '30', '32',
  '2030-01-01T00:00:00', '1969-12-31T23:59:59', '2024-02-30T25:61:61', 'A'.repeat(43), 'A'.repeat(44), 'A'.repeat(86), 'A'.repeat(11),
  'A'.repeat(22), '////', '====', 'é', '€', '\u{1F600}', '\uD800', '\uFEFF', 'x'.repeat(600),
];
const TAGS = ['MESSAGE', 'ED25519 CERT', 'RSA PUBLIC KEY', 'CROSSCERT', 'SIGNATURE', 'X', 'MESSAGE ', 'ed25519 cert', ''];
const CHARSET = '\n\n\n \t-=/+AZaz09\r\0\x7f\u00e9';

function randomChar(r: Rng): string {
  const k = r();
  if (k < 0.5) return CHARSET[int(r, CHARSET.length)]!;
  if (k < 0.95) return String.fromCharCode(32 + int(r, 95));
  return String.fromCharCode(int(r, 0x110));
}

function randomObject(r: Rng, certs: readonly Uint8Array[]): string {
  const tag = pick(r, TAGS);
  const body = r() < 0.3 && certs.length > 0 ? mutateBytes(r, pick(r, certs), certs) : randBytes(r, int(r, 400));
  let b64 = wrapBase64(toBase64(body));
  if (r() < 0.2) b64 = b64.replace(/=/g, '');
  const endTag = r() < 0.9 ? tag : pick(r, TAGS);
  return `${pick(r, KEYWORDS)}\n-----BEGIN ${tag}-----\n${b64}-----END ${endTag}-----`;
}

/** What mutators may use: certificate seeds for object bodies, and the size cap for this target. */
interface MutationContext {
  readonly certs: readonly Uint8Array[];
  readonly cap: number;
}

type TextMutator = (r: Rng, s: string, ctx: MutationContext) => string;

function lines(s: string): string[] {
  return s.split('\n');
}

const TEXT_MUTATORS: readonly TextMutator[] = [
  // flip a character
  (r, s) => {
    if (s.length === 0) return randomChar(r);
    const i = int(r, s.length);
    return s.slice(0, i) + randomChar(r) + s.slice(i + 1);
  },
  // delete a line
  (r, s) => {
    const l = lines(s);
    l.splice(int(r, l.length), 1);
    return l.join('\n');
  },
  // duplicate a line (or a run of lines)
  (r, s) => {
    const l = lines(s);
    const i = int(r, l.length);
    const n = 1 + int(r, 8);
    l.splice(i, 0, ...l.slice(i, i + n));
    return l.join('\n');
  },
  // swap two lines
  (r, s) => {
    const l = lines(s);
    const i = int(r, l.length);
    const j = int(r, l.length);
    [l[i], l[j]] = [l[j]!, l[i]!];
    return l.join('\n');
  },
  // truncate
  (r, s) => s.slice(0, int(r, s.length + 1)),
  // insert a token
  (r, s) => {
    const i = int(r, s.length + 1);
    return s.slice(0, i) + pick(r, TOKENS) + (r() < 0.5 ? ' ' : '') + s.slice(i);
  },
  // replace one argument of a line with a token
  (r, s) => {
    const l = lines(s);
    const i = int(r, l.length);
    const parts = l[i]!.split(' ');
    parts[int(r, parts.length)] = pick(r, TOKENS);
    l[i] = parts.join(' ');
    return l.join('\n');
  },
  // huge repeated line, or one very long line, up to just over the target's size limit (rare: costly to build)
  (r, s, ctx) => {
    if (r() < 0.8) return s;
    const l = lines(s);
    const i = int(r, l.length);
    // log-uniform size: mostly moderate, sometimes right at the cap
    const size = Math.min(ctx.cap, Math.floor(Math.exp(r() * Math.log(ctx.cap + 1))));
    if (r() < 0.5) {
      const line = l[i] ?? 'x';
      const n = 1 + Math.min(5000, Math.floor(size / (line.length + 1)));
      l.splice(i, 0, ...(new Array<string>(n).fill(line)));
    } else {
      // ('=' runs are left to the dedicated base64 test below: fromBase64 is quadratic on them)
      l.splice(i, 0, pick(r, ['A', 'x ', '-', ' ', 'AA==', '\t']).repeat(1 + Math.floor(size / 4)));
    }
    return l.join('\n');
  },
  // random base64 object after a random line
  (r, s, ctx) => {
    const l = lines(s);
    l.splice(int(r, l.length + 1), 0, randomObject(r, ctx.certs));
    return l.join('\n');
  },
  // re-randomize one base64 line (keeps the document's shape, breaks the content)
  (r, s) => {
    const l = lines(s);
    const idx = l.map((x, i) => (/^[A-Za-z0-9+/]{16,}={0,2}$/.test(x) ? i : -1)).filter((i) => i >= 0);
    if (idx.length === 0) return s;
    const i = pick(r, idx);
    const bytes = randBytes(r, Math.max(1, Math.floor((l[i]!.length * 3) / 4)));
    l[i] = toBase64(bytes).slice(0, l[i]!.length);
    return l.join('\n');
  },
  // a number to a boundary value
  (r, s) => {
    const m = [...s.matchAll(/\d+/g)];
    if (m.length === 0) return s;
    const x = pick(r, m);
    return s.slice(0, x.index) + pick(r, ['0', '1', '00', '4294967296', '18446744073709551616', '99999999999999999999999', '-1', '']) + s.slice(x.index + x[0].length);
  },
  // line-ending and whitespace damage
  (r, s) => {
    const k = int(r, 4);
    if (k === 0) return s.replace(/\n/g, '\r\n');
    if (k === 1) return s.replace('\n', '\n\n');
    if (k === 2) return s.replace(/\n(?=[a-z])/, '\n ');
    return s.endsWith('\n') ? s.slice(0, -1) : `${s}\n`;
  },
];

function mutateText(r: Rng, s: string, seeds: readonly string[], cap: number): string {
  const ctx: MutationContext = { certs: CERT_SEEDS, cap };
  if (r() < 0.03) return pick(r, seeds).slice(0, int(r, 2000)) + pick(r, seeds).slice(int(r, 2000)); // splice two seeds
  let t = s;
  const n = 1 + int(r, 3);
  for (let k = 0; k < n; k++) {
    t = pick(r, TEXT_MUTATORS)(r, t, ctx);
    if (t.length > cap) t = t.slice(0, cap);
  }
  return t;
}

function mutateBytes(r: Rng, b: Uint8Array, others: readonly Uint8Array[]): Uint8Array {
  let x: Uint8Array = b.slice();
  const n = 1 + int(r, 3);
  for (let k = 0; k < n; k++) {
    const op = int(r, 9);
    const i = int(r, x.length + 1);
    if (op === 0 && x.length > 0) x[Math.min(i, x.length - 1)]! ^= 1 << int(r, 8);
    else if (op === 1 && x.length > 0) x[Math.min(i, x.length - 1)] = pick(r, [0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x20, 0x40, int(r, 256)]);
    else if (op === 2) x = Uint8Array.from([...x.subarray(0, i), ...randBytes(r, 1 + int(r, 40)), ...x.subarray(i)]);
    else if (op === 3) x = Uint8Array.from([...x.subarray(0, i), ...x.subarray(Math.min(x.length, i + 1 + int(r, 40)))]);
    else if (op === 4) x = x.slice(0, i);
    else if (op === 5) x = Uint8Array.from([...x, ...randBytes(r, 1 + int(r, 80))]);
    else if (op === 6 && others.length > 0) {
      const o = pick(r, others);
      x = Uint8Array.from([...x.subarray(0, i), ...o.subarray(int(r, o.length + 1))]);
    } else if (op === 7) x = Uint8Array.from([...x.subarray(0, i), ...x.subarray(int(r, x.length + 1))]);
    else x = randBytes(r, int(r, 300));
  }
  return x;
}

// ---------------------------------------------------------------------------------------
// Harness

interface FuzzStats {
  readonly accepted: number;
  readonly rejected: number;
  readonly codes: Map<string, number>;
  readonly untyped: string[];
  readonly slowestMs: number;
}

function fuzz<T>(label: string, count: number, gen: (r: Rng, i: number) => T, run: (x: T) => void, seed: number): FuzzStats {
  const r = rng(seed);
  let accepted = 0;
  let rejected = 0;
  let slowestMs = 0;
  let runMs = 0;
  const codes = new Map<string, number>();
  const untyped: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const x = gen(r, i);
    const t = performance.now();
    try {
      run(x);
      accepted++;
    } catch (e) {
      if (e instanceof TorbalanceError) {
        rejected++;
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      } else if (untyped.length < 5) {
        const shown = typeof x === 'string' ? JSON.stringify(x.slice(0, 3000)) : x instanceof Uint8Array ? toHex(x) : JSON.stringify(x);
        untyped.push(`#${i}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n  input: ${shown}`);
      } else {
        untyped.push(`#${i}`);
      }
    }
    const dt = performance.now() - t;
    runMs += dt;
    slowestMs = Math.max(slowestMs, dt);
  }
  const total = performance.now() - t0;
  const top = [...codes.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([c, n]) => `${c}:${n}`).join(' ');
  console.log(`[fuzz] ${label}: ${count} inputs in ${(total / 1000).toFixed(1)} s (${(runMs / 1000).toFixed(1)} s in the target), accepted ${accepted}, rejected ${rejected}, slowest ${slowestMs.toFixed(1)} ms; ${top}`);
  return { accepted, rejected, codes, untyped, slowestMs };
}

function expectTyped(s: FuzzStats, count: number): void {
  expect(s.untyped).toEqual([]);
  expect(s.accepted + s.rejected).toBe(count);
  // The seeds are valid and mutations are small, so both outcomes must occur.
  expect(s.accepted).toBeGreaterThan(0);
  expect(s.rejected).toBeGreaterThan(0);
}

// ---------------------------------------------------------------------------------------
// Seeds

const VEC = join(dirname(fileURLToPath(import.meta.url)), '..', 'vectors');
const loadVectors = (f: string): any[] => (JSON.parse(readFileSync(join(VEC, `${f}.json`), 'utf8')) as { vectors: any[] }).vectors;

function collectHex(o: unknown, key: string, out: string[]): void {
  if (Array.isArray(o)) for (const x of o) collectHex(x, key, out);
  else if (o !== null && typeof o === 'object') {
    for (const [k, v] of Object.entries(o)) {
      if (k === key && typeof v === 'string') out.push(v);
      else collectHex(v, key, out);
    }
  }
}

const certHex: string[] = [];
collectHex(loadVectors('certificates'), 'cert_hex', certHex);
collectHex(loadVectors('descriptor-full'), 'cert_hex', certHex);
const lsHex: string[] = [];
collectHex(loadVectors('intro-point'), 'raw_hex', lsHex);
collectHex(loadVectors('descriptor-full'), 'raw_hex', lsHex);

const rndKeys = seededRandom('fuzz-cert-descriptor');
const signer = (seed: Uint8Array): Ed25519SigningKey => {
  const e = ed25519ExpandSeed(seed);
  return { expandedSecretKey: e, publicKey: ed25519PublicFromExpanded(e) };
};
const NOW = 1_700_000_000;
const descSigner = signer(rndKeys(32));
const builtCerts: Uint8Array[] = [CERT_TYPE.HS_DESC_SIGNING, CERT_TYPE.HS_IP_AUTH, CERT_TYPE.HS_IP_ENC, 0x04, 0x0a].flatMap((certType, k) => [
  buildCert({ certType, certifiedKey: rndKeys(32), expirationHours: 470_000 + k, signingKey: descSigner }),
  buildCert({ certType, certifiedKey: rndKeys(32), expirationHours: 470_000, signingKey: descSigner, includeSigningKey: false }),
  buildCert({ certType, certifiedKey: rndKeys(32), expirationHours: 0xffffffff, signingKey: descSigner, extraExtensions: [{ type: 9, flags: 0, data: rndKeys(7) }, { type: 0x55, flags: 2, data: new Uint8Array(0) }] }),
]);
const CERT_SEEDS: Uint8Array[] = [...certHex.map((h) => fromHex(h)), ...builtCerts];
const PEM_SEEDS: string[] = CERT_SEEDS.map((c) => encodeCertPem(c));

function ipInput(i: number): IntroPointInput {
  const a = rndKeys(4);
  const specs = [ipv4LinkSpecifier(`${a[0]}.${a[1]}.${a[2]}.${a[3]}`, 9001 + i), legacyIdLinkSpecifier(rndKeys(20)), ed25519IdLinkSpecifier(rndKeys(32))];
  if (i % 2 === 1) specs.push(ipv6LinkSpecifier('2001:db8::' + (i + 1).toString(16), 443));
  return { linkSpecifiers: specs, onionKey: x25519PublicKey(rndKeys(32)), authKey: signer(rndKeys(32)).publicKey, encKey: x25519PublicKey(rndKeys(32)) };
}
const LS_SEEDS: Uint8Array[] = [...lsHex.map((h) => fromHex(h)), ...[0, 1, 2, 3].map((i) => encodeLinkSpecifiers(ipInput(i).linkSpecifiers)), encodeLinkSpecifiers([{ type: 9, data: new Uint8Array(0) }, { type: 200, data: rndKeys(255) }])];

/** Intro-point encodings certified by `sk` with the given expiry (hours). */
function ipEncodings(n: number, sk: Ed25519SigningKey, expirationHours: number): IntroPointEncoding[] {
  return Array.from({ length: n }, (_, i) => {
    const ip = ipInput(i);
    return {
      linkSpecifiers: ip.linkSpecifiers,
      onionKey: ip.onionKey,
      authKeyCert: buildCert({ certType: CERT_TYPE.HS_IP_AUTH, certifiedKey: ip.authKey, expirationHours, signingKey: sk }),
      encKey: ip.encKey,
      encKeyCert: buildCert({ certType: CERT_TYPE.HS_IP_ENC, certifiedKey: ed25519FromCurve25519(ip.encKey, 0), expirationHours, signingKey: sk }),
    };
  });
}

// The full descriptors of descriptor-full.json, with the time and keys that decode them.
interface VectorDesc {
  readonly name: string;
  readonly text: string;
  readonly opts: DecodeDescriptorOptions;
}
const VECTOR_DESCS: VectorDesc[] = [];
for (const v of loadVectors('descriptor-full')) {
  const text = v.inputs.descriptor_text as string;
  const name = v.name as string;
  if (name === 'gobalance-real-network-descriptor') {
    // created 54 h before its signing-key certificate expires
    VECTOR_DESCS.push({ name, text, opts: { identityPublicKey: decodeOnionAddress(v.inputs.onion_address).publicKey, nowSeconds: (v.expected.descriptor_signing_key_cert.expiration_hours_since_epoch - 54) * 3600 + 600 } });
  } else if (name === 'stem-hidden-service-v3') {
    VECTOR_DESCS.push({ name, text, opts: { identityPublicKey: decodeOnionAddress(v.inputs.onion_address).publicKey, nowSeconds: (v.expected.descriptor_signing_key_cert.expiration_hours_since_epoch - 1) * 3600 } });
  } else if (name === 'arti-hsdesc1') {
    VECTOR_DESCS.push({ name, text, opts: { subcredential: fromHex(v.inputs.subcredential), blindedPublicKey: fromHex(v.expected.blinded_public_key), nowSeconds: Date.UTC(2023, 0, 23, 15) / 1000 } });
  } else if (name === 'arti-hsdesc2-client-auth') {
    VECTOR_DESCS.push({
      name,
      text,
      opts: {
        identityPublicKey: decodeOnionAddress(v.inputs.onion_address).publicKey,
        periodNum: v.inputs.time_period_num,
        nowSeconds: (v.expected.descriptor_signing_key_cert.expiration_hours_since_epoch - 54) * 3600 + 3600,
        clientAuthKey: fromHex(v.inputs.client_x25519_secret_key),
      },
    });
  }
}

// Descriptors we build (real sizes) and their decrypted layers.
const identity = signer(rndKeys(32));
const PERIOD = 19675;
const BUILT = [1, 3, 8].map((n, k) =>
  buildDescriptor({
    identity,
    periodNum: PERIOD,
    periodLengthMinutes: 1440,
    revisionCounter: BigInt(1000 + k),
    nowSeconds: NOW,
    introPoints: Array.from({ length: n }, (_, i) => ipInput(i)),
    flowControl: k === 1 ? DEFAULT_FLOW_CONTROL : undefined,
    powParams: k === 2 ? { seed: rndKeys(32), suggestedEffort: 17, expirationSeconds: NOW + 3600 } : undefined,
    singleOnionService: k === 2,
    randomBytes: rndKeys,
  }),
);
const BUILT_DESCS: VectorDesc[] = BUILT.map((d, k) => ({ name: `built-${k}`, text: d.text, opts: { subcredential: d.subcredential, blindedPublicKey: d.blindedPublicKey, nowSeconds: NOW } }));
const ALL_DESCS = [...VECTOR_DESCS, ...BUILT_DESCS];
const DECODED = ALL_DESCS.map((d) => ({ d, dec: decodeDescriptor(d.text, d.opts) }));

// Small documents (short MESSAGE blobs) so 100 000 outer/middle parses stay cheap.
const smallOuter = (blobLen: number, rc: bigint): string =>
  encodeOuterLayer({
    signingKeyCert: builtCerts[0]!,
    revisionCounter: rc,
    superencryptedBlob: rndKeys(blobLen),
    signingKey: descSigner,
  });
const OUTER_SMALL = [49, 64, 200, 700].map((n, i) => smallOuter(n, BigInt(i) * 1_000_000_007n));
const OUTER_FULL = ALL_DESCS.map((d) => d.text);
const MIDDLE_SMALL = [1, 2, 16, 17].map((n, i) =>
  encodeMiddleLayer({ ephemeralKey: rndKeys(32), authClients: Array.from({ length: n }, () => buildFakeAuthClient(rndKeys)), encryptedBlob: rndKeys(49 + i * 150) }),
);
const MIDDLE_FULL = DECODED.map((x) => x.dec.middlePlaintext);

interface InnerSeed {
  readonly text: string;
  readonly signingKey: Uint8Array;
  readonly nowValid: number;
}
const ipExpHours = certExpirationHours(NOW - (NOW % 3600), HS_DESC_CERT_LIFETIME);
const INNER_SEEDS: InnerSeed[] = [
  ...DECODED.map((x) => ({ text: x.dec.innerPlaintext, signingKey: x.dec.descriptorSigningKey, nowValid: x.d.opts.nowSeconds })),
  { text: encodeInnerLayer({ introPoints: ipEncodings(1, descSigner, ipExpHours) }), signingKey: descSigner.publicKey, nowValid: NOW },
  {
    text: encodeInnerLayer({ introAuthRequired: ['ed25519'], singleOnionService: true, flowControl: DEFAULT_FLOW_CONTROL, powParams: { seed: rndKeys(32), suggestedEffort: 1, expirationSeconds: NOW }, introPoints: ipEncodings(2, descSigner, ipExpHours) }),
    signingKey: descSigner.publicKey,
    nowValid: NOW,
  },
];
const INNER_SMALL = INNER_SEEDS.slice(-2);
const INNER_TEXTS = INNER_SEEDS.map((s) => s.text);

const TOKENIZE_SEEDS = [...OUTER_SMALL, ...MIDDLE_SMALL, ...INNER_TEXTS.map((t) => t.slice(0, 4000)), ...PEM_SEEDS.slice(0, 5)];

// ---------------------------------------------------------------------------------------

describe('fuzz: certificates, link specifiers, tokenizer, descriptor layers (only TorbalanceError escapes)', () => {
  it(`seeds are valid`, () => {
    for (const c of builtCerts) parseCert(c);
    for (const p of PEM_SEEDS.slice(certHex.length)) decodeCertPem(p);
    for (const l of LS_SEEDS) decodeLinkSpecifiers(l);
    for (const o of OUTER_SMALL) parseOuterLayer(o);
    for (const m of MIDDLE_SMALL) parseMiddleLayer(m);
    for (const s of INNER_SEEDS) expect(parseInnerLayer(s.text, { descriptorSigningKey: s.signingKey, nowSeconds: s.nowValid }).introPoints.length).toBeGreaterThan(0);
    expect(VECTOR_DESCS.map((d) => d.name).sort()).toEqual(['arti-hsdesc1', 'arti-hsdesc2-client-auth', 'gobalance-real-network-descriptor', 'stem-hidden-service-v3']);
    for (const x of DECODED) expect(x.dec.introPoints.length).toBeGreaterThan(0);
  });

  it(`parseCert: ${N} mutated and random byte strings`, () => {
    const s = fuzz('parseCert', N, (r) => (r() < 0.05 ? randBytes(r, int(r, 200)) : mutateBytes(r, pick(r, CERT_SEEDS), CERT_SEEDS)), (b) => void parseCert(b), 1);
    expectTyped(s, N);
  });

  it(`decodeCertPem: ${N} mutated and random PEM texts`, () => {
    const s = fuzz(
      'decodeCertPem',
      N,
      (r) => {
        const k = r();
        if (k < 0.3) return encodeCertPem(mutateBytes(r, pick(r, CERT_SEEDS), CERT_SEEDS)); // valid PEM, mutated body
        if (k < 0.35) return randomObject(r, CERT_SEEDS).split('\n').slice(1).join('\n');
        return mutateText(r, pick(r, PEM_SEEDS), PEM_SEEDS, 40_000);
      },
      (t) => void decodeCertPem(t),
      2,
    );
    expectTyped(s, N);
  });

  it(`decodeLinkSpecifiers: ${N} mutated and random byte strings`, () => {
    const s = fuzz('decodeLinkSpecifiers', N, (r) => (r() < 0.05 ? randBytes(r, int(r, 100)) : mutateBytes(r, pick(r, LS_SEEDS), LS_SEEDS)), (b) => void decodeLinkSpecifiers(b), 3);
    expectTyped(s, N);
  });

  it(`tokenize: ${N} mutated documents of every layer`, () => {
    const s = fuzz(
      'tokenize',
      N,
      (r) => (r() < 0.02 ? Array.from({ length: int(r, 300) }, () => randomChar(r)).join('') : mutateText(r, pick(r, TOKENIZE_SEEDS), TOKENIZE_SEEDS, 300_000)),
      (t) => void tokenize(t, { maxLength: 256 * 1024 }),
      4,
    );
    expectTyped(s, N);
  });

  it(`parseOuterLayer: ${N} mutated descriptors (98% short-MESSAGE seeds, 2% full-size)`, () => {
    const s = fuzz('parseOuterLayer', N, (r) => mutateText(r, r() < 0.02 ? pick(r, OUTER_FULL) : pick(r, OUTER_SMALL), OUTER_SMALL, 60_000), (t) => void parseOuterLayer(t), 5);
    expectTyped(s, N);
  });

  it(`parseMiddleLayer: ${N} mutated middle layers (98% short-MESSAGE seeds, 2% real)`, () => {
    const s = fuzz('parseMiddleLayer', N, (r) => mutateText(r, r() < 0.02 ? pick(r, MIDDLE_FULL) : pick(r, MIDDLE_SMALL), MIDDLE_SMALL, 1_100_000), (t) => void parseMiddleLayer(t), 6);
    expectTyped(s, N);
  });

  it(`parseInnerLayer: ${N} mutated inner layers with varied options (80% 1–2 intro-point seeds; 0.5% with the right key and time, so signatures are checked)`, () => {
    const wrongKey = signer(rndKeys(32)).publicKey;
    const s = fuzz(
      'parseInnerLayer',
      N,
      (r) => {
        const seed = r() < 0.8 ? pick(r, INNER_SMALL) : pick(r, INNER_SEEDS);
        const k = r();
        const options: ParseInnerOptions =
          k < 0.005
            ? { descriptorSigningKey: seed.signingKey, nowSeconds: seed.nowValid }
            : k < 0.5
              ? { descriptorSigningKey: seed.signingKey, nowSeconds: 4_000_000_000 } // certificates expired: fail before the signature
              : k < 0.9
                ? { descriptorSigningKey: wrongKey, nowSeconds: seed.nowValid } // key mismatch: fail before the signature
                : { descriptorSigningKey: seed.signingKey, nowSeconds: 4_000_000_000, ccSendmeInc: int(r, 300), maxIntroPoints: int(r, 4) };
        return { text: mutateText(r, seed.text, INNER_TEXTS, 1_100_000), options };
      },
      (x) => {
        const inner = parseInnerLayer(x.text, x.options);
        expect(inner.introPoints.length).toBeLessThanOrEqual(x.options.maxIntroPoints ?? 20);
      },
      7,
    );
    expectTyped(s, N);
  });

  it(`decodeDescriptor: ${N_SHALLOW} mutated descriptors (70% checked after their certificate expired, so most fail before any signature check)`, () => {
    const s = fuzz(
      'decodeDescriptor/shallow',
      N_SHALLOW,
      (r) => {
        const d = pick(r, ALL_DESCS);
        const late = r() < 0.7;
        return { text: mutateText(r, d.text, OUTER_FULL, 60_000), opts: late ? { ...d.opts, nowSeconds: d.opts.nowSeconds + 10 * 86400 } : d.opts };
      },
      (x) => void decodeDescriptor(x.text, x.opts),
      8,
    );
    expectTyped(s, N_SHALLOW);
  });

  it(`decodeDescriptor: ${N_DEEP} re-encrypted and re-signed descriptors with a mutated middle or inner layer`, () => {
    const blinded = blindKeypair(identity.expandedSecretKey, PERIOD, 1440);
    const subcred = computeSubcredential(identity.publicKey, blinded.publicKey);
    const signingKey = signer(rndKeys(32));
    const cert = buildCert({ certType: CERT_TYPE.HS_DESC_SIGNING, certifiedKey: signingKey.publicKey, expirationHours: certExpirationHours(NOW, HS_DESC_CERT_LIFETIME), signingKey: blinded });
    const rc = 42n;
    const enc = (pt: string, layer: 'superencrypted' | 'encrypted', salt: Uint8Array): Uint8Array =>
      encryptLayer({ plaintext: utf8(pt), secretData: blinded.publicKey, subcredential: subcred, revisionCounter: rc, salt, layer });
    // Most inner seeds carry already-expired intro certificates (cheap: no signature check); some valid ones.
    const innerSeeds = [
      encodeInnerLayer({ introPoints: ipEncodings(3, signingKey, Math.floor(NOW / 3600) - 1) }),
      encodeInnerLayer({ flowControl: DEFAULT_FLOW_CONTROL, introPoints: ipEncodings(2, signingKey, Math.floor(NOW / 3600) - 1) }),
      encodeInnerLayer({ introPoints: ipEncodings(1, signingKey, ipExpHours) }),
    ];
    const ephemeral = x25519PublicKey(rndKeys(32));
    const authClients = Array.from({ length: 16 }, () => buildFakeAuthClient(rndKeys));
    const middleFor = (inner: string, salt: Uint8Array): string => encodeMiddleLayer({ ephemeralKey: ephemeral, authClients, encryptedBlob: enc(inner, 'encrypted', salt) });
    const middleSeeds = innerSeeds.map((t, i) => middleFor(t, new Uint8Array(16).fill(i)));
    const opts: DecodeDescriptorOptions = { subcredential: subcred, blindedPublicKey: blinded.publicKey, nowSeconds: NOW };
    // Sanity: unmutated, every seed decodes.
    for (const m of middleSeeds) {
      decodeDescriptor(encodeOuterLayer({ signingKeyCert: cert, revisionCounter: rc, superencryptedBlob: enc(m, 'superencrypted', new Uint8Array(16)), signingKey }), opts);
    }
    const s = fuzz(
      'decodeDescriptor/deep',
      N_DEEP,
      (r) => {
        const salt = randBytes(r, 16);
        let middle: string;
        if (r() < 0.5) middle = mutateText(r, pick(r, middleSeeds), middleSeeds, 60_000);
        else middle = middleFor(mutateText(r, pick(r, innerSeeds), innerSeeds, 60_000), salt);
        // Text outside ASCII cannot be a tor layer; keep it so the decoder sees the raw bytes.
        return encodeOuterLayer({ signingKeyCert: cert, revisionCounter: rc, superencryptedBlob: enc(middle, 'superencrypted', salt), signingKey });
      },
      (t) => void decodeDescriptor(t, opts),
      9,
    );
    expectTyped(s, N_DEEP);
    // The mutations must reach the layer parsers, not just the outer checks.
    expect((s.codes.get('TB_ERR_HSDESC_MIDDLE_PARSE') ?? 0) + (s.codes.get('TB_ERR_HSDESC_INNER_PARSE') ?? 0)).toBeGreaterThan(N_DEEP / 10);
  });

  // Long runs of '=' inside base64 (kept out of the random mutants above): fromBase64 in
  // src/core/bytes.ts finds the padding with /=*$/, which V8 evaluates in time quadratic in the
  // run length (measured: 10 000 '=' ≈ 0.1 s, 40 000 ≈ 1.2 s). Through decodeDescriptor the
  // 50 000-byte limit caps this at about a second per descriptor; parseInnerLayer and
  // parseMiddleLayer called directly accept longer lines. Here only the result is checked.
  it("base64 fields made of long '=' runs are rejected with typed errors", () => {
    const run = '='.repeat(20_000);
    expect(() => decodeCertPem(`-----BEGIN ED25519 CERT-----\n${run}A\n-----END ED25519 CERT-----`)).toThrow(TorbalanceError);
    const inner = INNER_SMALL[0]!.text.replace(/introduction-point \S+/, `introduction-point ${run}A`);
    const parsed = parseInnerLayer(inner, { descriptorSigningKey: descSigner.publicKey, nowSeconds: NOW });
    expect(parsed.introPoints).toEqual([]);
    expect(parsed.skippedIntroPoints.map((x) => x.code)).toEqual(['TB_ERR_HSDESC_INTRO_POINT']);
    const middle = MIDDLE_SMALL[0]!.replace(/auth-client \S+/, `auth-client ${run}A`);
    expect(() => parseMiddleLayer(middle)).toThrow(expect.objectContaining({ code: 'TB_ERR_HSDESC_MIDDLE_PARSE' }));
  });
});
