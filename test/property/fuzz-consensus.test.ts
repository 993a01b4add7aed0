/**
 * Fuzzing the consensus and microdescriptor parsers (netdoc/consensus.ts) with mutated lines
 * of the fixture and random text: 100 000+ inputs in total. Every input must either parse or
 * throw a TorbalanceError (DecodeError for the parsers); never a TypeError, RangeError or
 * anything else. Parsed results are fed on to hsdirRelays and, for a sample, to
 * descriptorTargets, which may only throw TorbalanceError too. Deterministic (seeded).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { toBase64NoPad } from '../../src/core/bytes.js';
import { TorbalanceError } from '../../src/core/errors.js';
import { descriptorTargets } from '../../src/core/hs/hashring.js';
import {
  MAX_RELAYS,
  hsdirRelays,
  parseMicrodescConsensus,
  parseMicrodescriptors,
  type Microdescriptor,
} from '../../src/core/netdoc/consensus.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'consensus');
const FULL_CONSENSUS = readFileSync(join(FIX, 'consensus-microdesc.txt'), 'utf8');
const FULL_MDS = readFileSync(join(FIX, 'microdescs.txt'), 'utf8');

/** The fixture cut to its header, the first `n` relays and one signature (keeps runs fast). */
function trimConsensus(text: string, n: number): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let relays = 0;
  let footer = false;
  let sigs = 0;
  for (const l of lines) {
    if (l.startsWith('r ')) relays++;
    if (l === 'directory-footer') footer = true;
    if (!footer && relays > n) continue;
    if (l.startsWith('directory-signature')) sigs++;
    if (sigs > 1) break;
    out.push(l);
  }
  return out.join('\n') + '\n';
}

function trimMicrodescs(text: string, n: number): string {
  const parts = text.split(/(?=^(?:@last-listed[^\n]*\n)?onion-key$)/m);
  return parts.slice(0, n).join('');
}

const CONSENSUS = trimConsensus(FULL_CONSENSUS, 6);
const MDS = trimMicrodescs(FULL_MDS, 6);
const IDENTITY = new Uint8Array(32).fill(9); // any 32 bytes; invalid points must give TorbalanceError

/** xorshift32: deterministic, fast. */
function rng(seed: number): () => number {
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

const TOKENS = [
  '', ' ', '\t', '\r', '\0', '=', '-', '--', '-----BEGIN SIGNATURE-----', '-----END SIGNATURE-----',
  '-----BEGIN RSA PUBLIC KEY-----', '-----END RSA PUBLIC KEY-----', 'r', 's', 'm', 'pr', 'a', 'v', 'w', 'p', 'id', 'opt',
  'onion-key', 'ntor-onion-key', 'ed25519', 'rsa1024', '@last-listed', 'directory-footer', 'directory-signature',
  'valid-after', 'fresh-until', 'valid-until', 'params', 'shared-rand-current-value', 'shared-rand-previous-value',
  'network-status-version', '3', 'microdesc', 'consensus', 'HSDir', 'HSDir=2', 'HSDir=1-2', 'HSDir=63', 'HSDir=64',
  'HSDir=2-1', 'HSDir=,', 'Link=1-5,', '0', '-1', '1', '65535', '65536', '4294967295', '4294967296', '2147483647',
  '2147483648', '-2147483648', '-2147483649', '99999999999999999999', '1e3', '0x10', 'NaN', 'Infinity', '__proto__',
  'constructor', 'toString', 'hasOwnProperty', '2025-11-20', '15:00:00', '1969-12-31', '23:59:60', '9999-12-31',
  '2025-02-29', '00:00:00', '1.2.3.4', '256.1.1.1', '::1', 'AAAA', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA', 'A'.repeat(43),
  'A'.repeat(44), toBase64NoPad(new Uint8Array(32).fill(0xff)), 'A'.repeat(43) + '=', '////', '====', 'é', '€', '\u{1F600}',
  '\uD800', '\uFEFF', 'x'.repeat(300),
];

function pick<T>(r: () => number, a: readonly T[]): T {
  return a[Math.floor(r() * a.length)]!;
}

/** One random line-level mutation of `text`. */
function mutate(r: () => number, text: string, donor: string): string {
  const lines = text.split('\n');
  const i = Math.floor(r() * lines.length);
  const line = lines[i] ?? '';
  switch (Math.floor(r() * 12)) {
    case 0: // delete a line
      lines.splice(i, 1);
      break;
    case 1: // duplicate a line
      lines.splice(i, 0, line);
      break;
    case 2: {
      // swap two lines
      const j = Math.floor(r() * lines.length);
      [lines[i], lines[j]] = [lines[j] ?? '', line];
      break;
    }
    case 3: {
      // replace a token
      const toks = line.split(' ');
      toks[Math.floor(r() * toks.length)] = pick(r, TOKENS);
      lines[i] = toks.join(' ');
      break;
    }
    case 4: {
      // insert a token
      const toks = line.split(' ');
      toks.splice(Math.floor(r() * (toks.length + 1)), 0, pick(r, TOKENS));
      lines[i] = toks.join(' ');
      break;
    }
    case 5: // truncate the document
      return text.slice(0, Math.floor(r() * text.length));
    case 6: {
      // flip one character
      const p = Math.floor(r() * text.length);
      return text.slice(0, p) + String.fromCharCode(Math.floor(r() * 0x3000)) + text.slice(p + 1);
    }
    case 7: {
      // splice in a line from the other document type
      const d = donor.split('\n');
      lines.splice(i, 0, pick(r, d));
      break;
    }
    case 8: // a line of a random keyword with random arguments
      lines.splice(i, 0, [pick(r, TOKENS), pick(r, TOKENS), pick(r, TOKENS)].join(' '));
      break;
    case 9: // repeat a line (bounded)
      lines.splice(i, 0, ...Array.from({ length: 1 + Math.floor(r() * 50) }, () => line));
      break;
    case 10: // truncate a line
      lines[i] = line.slice(0, Math.floor(r() * line.length));
      break;
    default: // CRLF / whitespace damage
      lines[i] = pick(r, ['', ' ', '\t', '\r']) + line + pick(r, ['', ' ', '\t', '\r']);
      break;
  }
  return lines.join('\n');
}

function randomText(r: () => number): string {
  const n = Math.floor(r() * 400);
  let s = '';
  for (let k = 0; k < n; k++) {
    const c = r();
    if (c < 0.1) s += '\n';
    else if (c < 0.3) s += pick(r, TOKENS) + ' ';
    else if (c < 0.9) s += String.fromCharCode(32 + Math.floor(r() * 95));
    else s += String.fromCharCode(Math.floor(r() * 0xffff));
  }
  return s;
}

/** Runs `f`; any exception must be a TorbalanceError. Returns whether it succeeded. */
function tolerant<T>(f: () => T, input: string): T | undefined {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof TorbalanceError)) {
      throw new Error(`non-TorbalanceError ${String(e)} for input ${JSON.stringify(input.slice(0, 2000))}`, { cause: e });
    }
    return undefined;
  }
}

const FIXTURE_MDS = parseMicrodescriptors(FULL_MDS);

describe('fuzz: consensus and microdescriptor parsers', () => {
  it('survive 60 000 mutated consensuses', () => {
    const r = rng(0xc0ffee);
    let parsed = 0;
    let sampled = 0;
    for (let k = 0; k < 60_000; k++) {
      let text = CONSENSUS;
      const rounds = 1 + Math.floor(r() * 4);
      for (let m = 0; m < rounds; m++) text = mutate(r, text, MDS);
      const c = tolerant(() => parseMicrodescConsensus(text), text);
      if (c === undefined) continue;
      parsed++;
      const relays = hsdirRelays(c, FIXTURE_MDS);
      if (k % 200 === 0) {
        sampled++;
        tolerant(() => descriptorTargets(c, IDENTITY, { relays, testingTorNetwork: r() < 0.5 }), text);
      }
    }
    // The mutations must leave a fair share parseable, or the fuzzing tests nothing deep.
    expect(parsed).toBeGreaterThan(5_000);
    expect(sampled).toBeGreaterThan(10);
  });

  it('survive 30 000 mutated microdescriptor documents', () => {
    const r = rng(0xbadc0de);
    let parsed = 0;
    for (let k = 0; k < 30_000; k++) {
      let text = MDS;
      const rounds = 1 + Math.floor(r() * 4);
      for (let m = 0; m < rounds; m++) text = mutate(r, text, CONSENSUS);
      const strict = tolerant(() => parseMicrodescriptors(text), text);
      const skipped = tolerant(() => parseMicrodescriptors(text, { onInvalid: 'skip' }), text);
      if (strict !== undefined) {
        parsed++;
        // With nothing invalid, skipping changes nothing.
        if (skipped?.map((m) => m.digest).join() !== strict.map((m) => m.digest).join()) throw new Error('skip mode differs');
      }
      if (skipped !== undefined) checkMds(skipped);
    }
    expect(parsed).toBeGreaterThan(3_000);
  });

  it('survive 12 000 random texts', () => {
    const r = rng(0x5eed);
    for (let k = 0; k < 12_000; k++) {
      const body = randomText(r);
      const text = k % 2 === 0 ? body : 'network-status-version 3 microdesc\n' + body;
      tolerant(() => parseMicrodescConsensus(text), text);
      tolerant(() => parseMicrodescriptors(text, { onInvalid: k % 3 === 0 ? 'skip' : 'throw' }), text);
    }
  });

  it(`bound the relay count at ${MAX_RELAYS}`, () => {
    const head = CONSENSUS.slice(0, CONSENSUS.indexOf('\nr ') + 1);
    const parts: string[] = [head];
    const id = new Uint8Array(20);
    for (let k = 0; k <= MAX_RELAYS; k++) {
      new DataView(id.buffer).setUint32(16, k + 1);
      parts.push(`r n ${toBase64NoPad(id)} 2025-11-20 00:00:00 10.0.0.1 1 0\nm ${'A'.repeat(43)}\ns HSDir\n`);
    }
    const text = parts.join('');
    let err: unknown;
    try {
      parseMicrodescConsensus(text);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'TB_ERR_CONSENSUS_TOO_LARGE' });
  });
});

function checkMds(mds: readonly Microdescriptor[]): void {
  for (const m of mds) {
    if (!/^[A-Za-z0-9+/]{43}$/.test(m.digest)) throw new Error(`bad digest ${m.digest}`);
    if (m.ed25519Id !== undefined && m.ed25519Id.length !== 32) throw new Error('bad ed25519 id length');
  }
}
