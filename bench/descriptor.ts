/**
 * Descriptor benchmark (`npm run bench -- descriptor [--quick] [--iterations N]`).
 *
 * Measures, in one process and one run:
 * - builds/s: buildDescriptor for a 20-intro-point descriptor (the maximum tor accepts), with
 *   fresh random keys each time, as a node would publish it;
 * - decodes/s: decodeDescriptor of such a descriptor from the onion service's identity key
 *   with the period pinned (what a frontend does with a backend's descriptor): outer parse,
 *   certificate + signature, blinding, both layers, 20 intro points with 2 certificates each.
 *
 * Baseline ("crypto floor"), measured in the same run: the cryptographic primitives each
 * operation cannot avoid, called directly with the same sizes and nothing else, each by the
 * fastest means buildDescriptor has for it —
 * build: the blinded secret scalar and public key (a'·B, a base-point multiplication), the
 *   signing-key certificate's signature by the blinded expanded key (@noble), the descriptor
 *   signing key made from its seed in OpenSSL and its 41 signatures (2 × 20 intro-point certs,
 *   the descriptor), the auth ephemeral x25519 key and both layer encryptions (SHAKE-256 KDF,
 *   AES-256-CTR, SHA3-256 MAC) over the real plaintext sizes;
 * decode: 1 blinded key (point multiplication), 42 ed25519 verifications (42 different keys)
 *   and both layer decryptions.
 * As in a long-running node, the same identity and period recur from one call to the next:
 * buildDescriptor's identity check and blinded public key, and decodeDescriptor's blinded key
 * (blindPublicKey), are then computed once and reused, so an operation can beat its floor.
 * The printed ratio is operation time / floor time: how much the encoding, parsing and
 * checking cost on top of the crypto (1.00 = nothing). Per-primitive costs are printed too.
 * Operations and floors are timed in alternating blocks (5 rounds of iterations/5 calls each);
 * the best round of each is reported. Loops are bounded by counts, never by time;
 * nothing is asserted.
 *
 * stem side by side (what Onionbalance builds with): bench/stem-descriptor.py, run with
 * /usr/bin/python3 after the torbalance timings (never alongside them), does the same build
 * (same identity key, period, intro-point keys; a fresh signing key each time) and decodes
 * the very descriptor torbalance decodes, timed inside Python the same way. The bench prints
 * both rates and torbalance/stem; without stem it prints why and skips the comparison.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { concatBytes, toHex, u64be, utf8 } from '../src/core/bytes.js';
import {
  aes256ctr,
  ed25519ExpandSeed,
  ed25519BaseMul,
  ed25519PointMul,
  ed25519PublicFromExpanded,
  ed25519PublicFromSeed,
  ed25519SignExpanded,
  ed25519SignSeed,
  ed25519Verify,
  scalarMulModL,
  sha3_256,
  shake256,
  x25519PublicKey,
} from '../src/core/crypto/index.js';
import { encodeOnionAddress } from '../src/core/hs/address.js';
import { blindingParam, clampBlindingParam } from '../src/core/hs/blinding.js';
import { buildDescriptor, decodeDescriptor, DEFAULT_FLOW_CONTROL, type IntroPointInput } from '../src/core/hsdesc/descriptor.js';
import { ed25519IdLinkSpecifier, ipv4LinkSpecifier, legacyIdLinkSpecifier } from '../src/core/hsdesc/link-specifiers.js';
import type { RandomBytes } from '../src/core/random.js';

const ROUNDS = 5;
const rnd: RandomBytes = (n) => new Uint8Array(nodeRandomBytes(n));
const N_INTRO = 20;
const PERIOD_LEN = 1440;
const SYSTEM_PYTHON = '/usr/bin/python3';
const STEM_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'stem-descriptor.py');

function introPoint(i: number): IntroPointInput {
  return {
    linkSpecifiers: [ipv4LinkSpecifier(`10.0.${i}.1`, 9001), legacyIdLinkSpecifier(rnd(20)), ed25519IdLinkSpecifier(rnd(32))],
    onionKey: x25519PublicKey(rnd(32)),
    authKey: ed25519PublicFromExpanded(ed25519ExpandSeed(rnd(32))),
    encKey: x25519PublicKey(rnd(32)),
  };
}

/**
 * Time several functions in alternating blocks: `rounds` rounds, and in each round `perBlock`
 * consecutive calls of every function in turn. Returns each function's best per-call time over
 * the rounds. Blocks keep each function's garbage-collection cost with it; alternating rounds
 * and taking the best spread other processes' load over all functions alike.
 */
function timeBlocks(rounds: number, perBlock: number, fns: readonly (() => void)[]): number[] {
  const best = fns.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, k) => {
      const t = process.hrtime.bigint();
      for (let i = 0; i < perBlock; i++) fn();
      best[k] = Math.min(best[k]!, Number(process.hrtime.bigint() - t) / 1e9 / perBlock);
    });
  }
  return best;
}

function layerEncrypt(secret: Uint8Array, pt: Uint8Array): Uint8Array {
  const keys = shake256(80, secret, rnd(16), utf8('hsdir-encrypted-data'));
  const ct = aes256ctr(keys.subarray(0, 32), keys.subarray(32, 48), pt);
  return sha3_256(u64be(32), keys.subarray(48, 80), u64be(16), keys.subarray(0, 16), ct);
}

/** stem's rates for the same workload, or why they could not be measured. */
export type StemResult =
  | { readonly available: true; readonly stemVersion: string; readonly python: string; readonly buildsPerSecond: number; readonly decodesPerSecond: number }
  | { readonly available: false; readonly reason: string };

export interface DescriptorBenchResult {
  readonly introPoints: number;
  readonly descriptorBytes: number;
  readonly buildsPerSecond: number;
  readonly buildFloorPerSecond: number;
  readonly buildRatio: number;
  readonly decodesPerSecond: number;
  readonly decodeFloorPerSecond: number;
  readonly decodeRatio: number;
  readonly microseconds: {
    readonly sign: number;
    readonly signExpanded: number;
    readonly verify: number;
    readonly baseMul: number;
    readonly pointMul: number;
    readonly layer: number;
  };
  readonly stem: StemResult;
  /** torbalance rate / stem rate (undefined without stem). */
  readonly stemRatio: { readonly build: number; readonly decode: number } | undefined;
}

interface StemRequest {
  readonly identitySeed: Uint8Array;
  readonly blindingNonce: Uint8Array;
  readonly revisionCounter: bigint;
  readonly address: string;
  readonly descriptor: string;
  readonly introPoints: readonly IntroPointInput[];
  readonly rounds: number;
  readonly perBlock: number;
}

function runStem(req: StemRequest): StemResult {
  const input = JSON.stringify({
    identity_seed: toHex(req.identitySeed),
    blinding_nonce: toHex(req.blindingNonce),
    revision_counter: Number(req.revisionCounter),
    address: req.address,
    descriptor: req.descriptor,
    intro_points: req.introPoints.map((ip) => ({
      link_specifiers: ip.linkSpecifiers.map((ls) => ({ type: ls.type, value: toHex(ls.data) })),
      onion_key: toHex(ip.onionKey),
      enc_key: toHex(ip.encKey),
      auth_key: toHex(ip.authKey),
    })),
    rounds: req.rounds,
    per_block: req.perBlock,
  });
  const r = spawnSync(SYSTEM_PYTHON, [STEM_SCRIPT], { input, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.error !== undefined) return { available: false, reason: `cannot run ${SYSTEM_PYTHON}: ${r.error.message}` };
  if (r.status !== 0) return { available: false, reason: `${STEM_SCRIPT} failed (status ${r.status}): ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}` };
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  if (out['available'] !== true) return { available: false, reason: String(out['reason']) };
  return {
    available: true,
    stemVersion: String(out['stem_version']),
    python: String(out['python']),
    buildsPerSecond: Number(out['builds_per_second']),
    decodesPerSecond: Number(out['decodes_per_second']),
  };
}

export function runDescriptorBench(iterations: number, options: { readonly stem?: boolean } = {}): DescriptorBenchResult {
  const identitySeed = rnd(32);
  const identityExpanded = ed25519ExpandSeed(identitySeed);
  const identity = { expandedSecretKey: identityExpanded, publicKey: ed25519PublicFromExpanded(identityExpanded) };
  const nowSeconds = Math.floor(Date.now() / 1000);
  const periodNum = Math.floor((nowSeconds / 60 - 720) / PERIOD_LEN);
  const ips = Array.from({ length: N_INTRO }, (_, i) => introPoint(i));
  const build = (): ReturnType<typeof buildDescriptor> =>
    buildDescriptor({
      identity,
      periodNum,
      periodLengthMinutes: PERIOD_LEN,
      revisionCounter: BigInt(nowSeconds),
      nowSeconds,
      introPoints: ips,
      flowControl: DEFAULT_FLOW_CONTROL,
      randomBytes: rnd,
    });
  const sample = build();
  const decoded = decodeDescriptor(sample.text, { identityPublicKey: identity.publicKey, periodNum, nowSeconds });
  if (decoded.introPoints.length !== N_INTRO) throw new Error('benchmark descriptor does not decode');
  const innerBytes = utf8(decoded.innerPlaintext);
  const middleBytes = new Uint8Array(Math.ceil(decoded.middlePlaintext.length / 10000) * 10000);
  // Messages of the real sizes: 41 certificate bodies (76 bytes) and the descriptor's signed text.
  const certBody = rnd(76);
  const signedText = utf8(sample.text.slice(0, sample.text.lastIndexOf('signature ')));
  // 42 distinct keys and signatures, as in a real descriptor (verification may cache per key).
  const triples = Array.from({ length: 2 + 2 * N_INTRO }, (_, i) => {
    const e = ed25519ExpandSeed(rnd(32));
    const pk = ed25519PublicFromExpanded(e);
    const m = i === 0 ? signedText : rnd(76);
    return { pk, m, s: ed25519SignExpanded(e, m, pk) };
  });
  const rawH = blindingParam(identity.publicKey, periodNum, PERIOD_LEN);
  const h = clampBlindingParam(rawH);
  const secret = concatBytes(sample.blindedPublicKey, sample.subcredential, u64be(1n));

  const nSig = 2 + 2 * N_INTRO;
  const buildFloor = (): void => {
    const blindedScalar = scalarMulModL(h, identityExpanded.subarray(0, 32));
    const blindedPublic = ed25519BaseMul(blindedScalar);
    ed25519SignExpanded(concatBytes(blindedScalar, identityExpanded.subarray(32)), certBody, blindedPublic);
    const seed = rnd(32);
    const pk = ed25519PublicFromSeed(seed);
    x25519PublicKey(rnd(32));
    for (let i = 2; i < nSig; i++) ed25519SignSeed(seed, certBody, pk);
    ed25519SignSeed(seed, signedText, pk);
    layerEncrypt(secret, innerBytes);
    layerEncrypt(secret, middleBytes);
  };
  const decode = (): void => void decodeDescriptor(sample.text, { identityPublicKey: identity.publicKey, periodNum, nowSeconds });
  const decodeFloor = (): void => {
    ed25519PointMul(identity.publicKey, h);
    for (const t of triples) if (!ed25519Verify(t.s, t.m, t.pk)) throw new Error('verify failed');
    layerEncrypt(secret, innerBytes);
    layerEncrypt(secret, middleBytes);
  };
  const fns = [build, buildFloor, decode, decodeFloor];
  const perBlock = Math.max(1, Math.floor(iterations / ROUNDS));
  timeBlocks(1, perBlock, fns); // warm-up
  const [buildTime, buildFloorTime, decodeTime, decodeFloorTime] = timeBlocks(ROUNDS, perBlock, fns) as [number, number, number, number];
  const signSeed = rnd(32);
  const signPk = ed25519PublicFromSeed(signSeed);
  const [sign, signExpanded, verifyAll, baseMul, pointMul, layer] = timeBlocks(ROUNDS, perBlock * 3, [
    () => {
      ed25519SignSeed(signSeed, certBody, signPk);
    },
    () => {
      ed25519SignExpanded(identityExpanded, certBody, identity.publicKey);
    },
    () => {
      for (const t of triples) ed25519Verify(t.s, t.m, t.pk);
    },
    () => {
      ed25519BaseMul(h);
    },
    () => {
      ed25519PointMul(identity.publicKey, h);
    },
    () => {
      layerEncrypt(secret, innerBytes);
      layerEncrypt(secret, middleBytes);
    },
  ]) as [number, number, number, number, number, number];
  const us = {
    sign: sign * 1e6,
    signExpanded: signExpanded * 1e6,
    verify: (verifyAll / triples.length) * 1e6,
    baseMul: baseMul * 1e6,
    pointMul: pointMul * 1e6,
    layer: layer * 1e6,
  };
  const stem: StemResult =
    options.stem === false
      ? { available: false, reason: 'not requested (--no-stem)' }
      : runStem({
          identitySeed,
          blindingNonce: rawH,
          revisionCounter: BigInt(nowSeconds),
          address: encodeOnionAddress(identity.publicKey),
          descriptor: sample.text,
          introPoints: ips,
          rounds: ROUNDS,
          perBlock,
        });
  return {
    introPoints: N_INTRO,
    descriptorBytes: sample.text.length,
    buildsPerSecond: 1 / buildTime,
    buildFloorPerSecond: 1 / buildFloorTime,
    buildRatio: buildTime / buildFloorTime,
    decodesPerSecond: 1 / decodeTime,
    decodeFloorPerSecond: 1 / decodeFloorTime,
    decodeRatio: decodeTime / decodeFloorTime,
    microseconds: us,
    stem,
    stemRatio: stem.available ? { build: 1 / buildTime / stem.buildsPerSecond, decode: 1 / decodeTime / stem.decodesPerSecond } : undefined,
  };
}

/** `npm run bench -- descriptor [--quick] [--iterations N] [--no-stem] [--json]` */
export async function main(args: readonly string[]): Promise<void> {
  const quick = args.includes('--quick');
  const i = args.indexOf('--iterations');
  const iterations = i >= 0 ? Number(args[i + 1]) : quick ? 10 : 50;
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error('--iterations must be a positive integer');
  const r = runDescriptorBench(iterations, { stem: !args.includes('--no-stem') });
  const f = (x: number): string => x.toFixed(1);
  console.log(`descriptor benchmark: ${r.introPoints} intro points, ${r.descriptorBytes}-byte descriptor, ${iterations} iterations (node ${process.version})`);
  console.log(`  build : ${f(r.buildsPerSecond)} /s   crypto floor ${f(r.buildFloorPerSecond)} /s   ratio ${r.buildRatio.toFixed(2)}`);
  console.log(`  decode: ${f(r.decodesPerSecond)} /s   crypto floor ${f(r.decodeFloorPerSecond)} /s   ratio ${r.decodeRatio.toFixed(2)}`);
  const m = r.microseconds;
  console.log(
    `  primitives (µs): ed25519 sign ${f(m.sign)} (OpenSSL, seed key) / ${f(m.signExpanded)} (@noble, expanded key), verify ${f(m.verify)}, base mul ${f(m.baseMul)}, point mul ${f(m.pointMul)}, both layer ciphers ${f(m.layer)}`,
  );
  console.log('  ratio = operation time / time of the unavoidable crypto (42 signatures or verifications, blinding, both layer ciphers); 1.00 = no overhead');
  if (r.stem.available) {
    const s = r.stem;
    console.log(`  stem ${s.stemVersion} (python ${s.python}), same workload: build ${f(s.buildsPerSecond)} /s, decode ${f(s.decodesPerSecond)} /s`);
    console.log(`  torbalance / stem: build ${r.stemRatio!.build.toFixed(2)}×, decode ${r.stemRatio!.decode.toFixed(2)}×`);
    console.log('  (stem\'s decode checks only the descriptor signature: not the 41 intro-point certificate signatures, nor the blinded key against the address)');
  } else {
    console.log(`  stem comparison skipped: ${r.stem.reason}`);
  }
  if (args.includes('--json')) console.log(JSON.stringify(r));
  await Promise.resolve();
}
