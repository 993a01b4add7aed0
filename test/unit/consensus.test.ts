/**
 * Consensus and microdescriptor parsing for the HSDir ring (netdoc/consensus.ts), on the
 * synthetic fixture in test/fixtures/consensus (see its README), plus the ring computed from
 * it (hs/hashring.ts descriptorTargets) and the parser's error codes.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fromHex, toBase64NoPad, toHex } from '../../src/core/bytes.js';
import { ed25519ExpandSeed, ed25519PublicFromExpanded } from '../../src/core/crypto/index.js';
import { DecodeError } from '../../src/core/errors.js';
import { blindPublicKey } from '../../src/core/hs/blinding.js';
import { disasterSrv } from '../../src/core/hs/disaster-srv.js';
import {
  buildRing,
  descriptorTargets,
  hsdirParams,
  responsibleHsdirs,
  ringPeriodParams,
} from '../../src/core/hs/hashring.js';
import { timePeriodNum } from '../../src/core/hs/time-period.js';
import {
  consensusParam,
  hsdirRelays,
  MAX_CONSENSUS_CHARS,
  parseMicrodescConsensus,
  parseMicrodescriptors,
} from '../../src/core/netdoc/consensus.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'consensus');
const CONSENSUS = readFileSync(join(FIX, 'consensus-microdesc.txt'), 'utf8');
const MICRODESCS = readFileSync(join(FIX, 'microdescs.txt'), 'utf8');
const EXPECTED = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8'));

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return (e as DecodeError).code;
  }
  throw new Error('expected a DecodeError');
}

/** Replace the first line starting with `prefix` (whole line) by `replacement` lines. */
function withLine(text: string, prefix: string, ...replacement: string[]): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith(prefix));
  if (i < 0) throw new Error(`no line ${prefix}`);
  lines.splice(i, 1, ...replacement);
  return lines.join('\n');
}

describe('parseMicrodescConsensus on the fixture', () => {
  const c = parseMicrodescConsensus(CONSENSUS);

  it('reads the header', () => {
    expect(c.flavor).toBe('microdesc');
    expect(c.consensusMethod).toBe(34);
    expect(c.validAfter).toBe(EXPECTED.valid_after_unix);
    expect(c.freshUntil).toBe(EXPECTED.fresh_until_unix);
    expect(c.validUntil).toBe(EXPECTED.valid_until_unix);
    expect(c.votingIntervalSeconds).toBe(3600);
    expect([c.voteSeconds, c.distSeconds]).toEqual([300, 300]);
    expect(c.knownFlags).toContain('HSDir');
    expect(c.params.get('hsdir_spread_store')).toBe(4);
    expect(c.params.get('CircuitPriorityHalflifeMsec')).toBe(30000);
    expect(c.params.size).toBe(12);
    expect(c.sharedRandPrevious?.numReveals).toBe(9);
    expect(toHex(c.sharedRandPrevious!.value)).toBe(EXPECTED.shared_rand_previous_hex);
    expect(toHex(c.sharedRandCurrent!.value)).toBe(EXPECTED.shared_rand_current_hex);
  });

  it('reads every relay entry', () => {
    expect(c.relays.length).toBe(EXPECTED.relay_count);
    const r = c.relays[0]!;
    expect(r.nickname).toBe('relay10x');
    expect(r.rsaFingerprint).toMatch(/^[0-9A-F]{40}$/);
    expect(r.rsaFingerprint).toBe(toHex(r.identity).toUpperCase());
    expect(r.address).toBe('10.0.70.11');
    expect([r.orPort, r.dirPort]).toEqual([9011, 0]);
    expect(r.published).toBe(Date.UTC(2025, 10, 20, 8, 10, 10) / 1000);
    expect([...r.flags]).toEqual(['Fast', 'HSDir', 'Running', 'Stable', 'V2Dir', 'Valid']);
    expect(r.protocols?.get('LinkAuth')).toEqual([
      [1, 1],
      [3, 3],
    ]);
    expect(r.protocols?.get('Relay')).toEqual([[2, 4]]);
    expect(r.microdescDigest).toMatch(/^[A-Za-z0-9+/]{43}$/);
    expect(r.descriptorDigest).toBeUndefined();
    for (const fp of Object.keys(EXPECTED.excluded)) expect(c.relays.some((x) => x.rsaFingerprint === fp)).toBe(true);
  });

  it('reads HSDir protocol support the way tor does', () => {
    const kind = (fp: string): string => (EXPECTED.excluded[fp] as string | undefined) ?? 'member';
    for (const r of c.relays) {
      const k = kind(r.rsaFingerprint);
      expect(r.supportsHsdirV3, `${r.nickname} ${k}`).toBe(k !== 'old-protover' && k !== 'no-pr');
      expect(r.isHsdir, `${r.nickname} ${k}`).toBe(k !== 'no-hsdir-flag');
      if (k === 'no-pr') expect(r.protocols).toBeUndefined();
    }
  });
});

describe('parseMicrodescriptors on the fixture', () => {
  const c = parseMicrodescConsensus(CONSENSUS);
  const mds = parseMicrodescriptors(MICRODESCS);

  it('computes tor digests that match the consensus m lines', () => {
    expect(mds.length).toBe(EXPECTED.microdesc_count);
    const digests = new Set(mds.map((m) => m.digest));
    expect(digests.size).toBe(mds.length);
    for (const r of c.relays) {
      expect(digests.has(r.microdescDigest!), r.nickname).toBe(EXPECTED.excluded[r.rsaFingerprint] !== 'missing-md');
    }
    expect(mds.filter((m) => m.hasTapKey).length).toBeGreaterThan(0);
    expect(mds.filter((m) => !m.hasTapKey).length).toBeGreaterThan(0);
    expect(mds.every((m) => m.ntorOnionKey?.length === 32)).toBe(true);
    expect(mds.filter((m) => m.ed25519Id === undefined).length).toBe(1);
  });

  it('ignores annotations for the digest', () => {
    const first = parseMicrodescriptors(MICRODESCS)[0]!;
    const bare = MICRODESCS.replace(/^@last-listed [^\n]*\n/, '');
    expect(parseMicrodescriptors(bare)[0]!.digest).toBe(first.digest);
    expect(parseMicrodescriptors('@foo bar\n@baz\n' + bare)[0]!.digest).toBe(first.digest);
  });

  it('selects the ring members (HSDir flag, HSDir=2, ed25519 id)', () => {
    const ring = hsdirRelays(c, mds);
    expect(ring.map((r) => r.rsaFingerprint)).toEqual(EXPECTED.hsdir_ring_fingerprints);
    for (const r of ring) expect(toHex(r.ed25519Id)).toBe(EXPECTED.ed25519_by_fingerprint[r.rsaFingerprint]);
    // The same through a fingerprint → ed25519 map (e.g. from server descriptors).
    const byFp = new Map(Object.entries(EXPECTED.ed25519_by_fingerprint as Record<string, string>).map(([k, v]) => [k, fromHex(v)]));
    expect(hsdirRelays(c, byFp).map((r) => r.rsaFingerprint)).toEqual(EXPECTED.hsdir_ring_fingerprints);
  });
});

describe('descriptorTargets on the fixture', () => {
  const c = parseMicrodescConsensus(CONSENSUS);
  const relays = hsdirRelays(c, parseMicrodescriptors(MICRODESCS));
  const identity = ed25519PublicFromExpanded(ed25519ExpandSeed(new Uint8Array(32).fill(0x42)));

  it('gives each descriptor its period, SRV and 8 distinct ring members', () => {
    const t = descriptorTargets(c, identity, { relays });
    const tp = timePeriodNum(c.validAfter);
    expect(t.plan.currentPeriodNum).toBe(tp);
    expect(t.plan.inPeriodBetweenTpAndSrv).toBe(true); // 15:00 UTC
    const [first, second] = t.descriptors;
    expect(first.periodNum).toBe(tp - 1);
    expect(first.srvSource).toBe('previous');
    expect(first.srv).toEqual(c.sharedRandPrevious!.value);
    expect(second.periodNum).toBe(tp);
    expect(second.srvSource).toBe('current');
    expect(second.useSecondHsdirIndex).toBe(true);
    expect(t.hsdirParams).toEqual({ replicas: 2, spreadStore: 4, spreadFetch: 3 });
    const members = new Set(relays.map((r) => r.rsaFingerprint));
    for (const d of t.descriptors) {
      expect(d.blindedPublicKey).toEqual(blindPublicKey(identity, d.periodNum, 1440));
      expect(d.hsdirs.length).toBe(8);
      expect(new Set(d.hsdirs.map((h) => h.rsaFingerprint)).size).toBe(8);
      for (const h of d.hsdirs) expect(members.has(h.rsaFingerprint)).toBe(true);
      const manual = responsibleHsdirs({
        blindedPublicKey: d.blindedPublicKey,
        periodNum: d.periodNum,
        periodLengthMinutes: 1440,
        ring: buildRing(relays, d.srv, d.periodNum, 1440),
        replicas: 2,
        spread: 4,
      });
      expect(d.hsdirs).toEqual(manual.hsdirs);
    }
  });

  it('uses the disaster SRV when the consensus has none', () => {
    const noSrv = parseMicrodescConsensus(CONSENSUS.replace(/^shared-rand-[a-z]+-value [^\n]*\n/gm, ''));
    expect(noSrv.sharedRandCurrent).toBeUndefined();
    const t = descriptorTargets(noSrv, identity, { relays });
    for (const d of t.descriptors) {
      expect(d.srvSource).toBe('disaster');
      expect(d.srv).toEqual(disasterSrv(d.periodNum, 1440));
    }
  });

  it('reads the schedule from the consensus (hsdir_interval, test networks)', () => {
    const small = parseMicrodescConsensus(CONSENSUS.replace('cc_alg=2', 'cc_alg=2 hsdir_interval=2'));
    expect(ringPeriodParams(small, false)).toEqual({ lengthMinutes: 5, votingIntervalSeconds: 3600 });
    const big = parseMicrodescConsensus(CONSENSUS.replace('cc_alg=2', 'cc_alg=2 hsdir_interval=99999'));
    expect(ringPeriodParams(big, false).lengthMinutes).toBe(14400);
    // A test network voting every 10 s: periods are 24 × 10 s = 4 minutes; hsdir_interval is ignored.
    const fast = parseMicrodescConsensus(withLine(CONSENSUS, 'fresh-until ', 'fresh-until 2025-11-20 15:00:10').replace('valid-until 2025-11-20 18:00:00', 'valid-until 2025-11-20 15:00:30'));
    expect(ringPeriodParams(fast, true)).toEqual({ lengthMinutes: 4, votingIntervalSeconds: 10 });
    const t = descriptorTargets(fast, identity, { relays, testingTorNetwork: true });
    expect(t.plan.periodParams.lengthMinutes).toBe(4);
    expect(t.descriptors[0].blindedPublicKey).toEqual(blindPublicKey(identity, t.descriptors[0].periodNum, 4));
    expect(t.descriptors[1].periodNum).toBe(t.descriptors[0].periodNum + 1);
  });

  it('clamps consensus parameters like networkstatus_get_param', () => {
    const p = new Map([
      ['hsdir_n_replicas', 0],
      ['hsdir_spread_store', 500],
    ]);
    expect(hsdirParams(p)).toEqual({ replicas: 1, spreadStore: 128, spreadFetch: 3 });
    expect(consensusParam(p, 'hsdir_spread_store', 4, 1, 128)).toBe(128);
    expect(consensusParam(p, 'absent', 7, 1, 128)).toBe(7);
    // The first occurrence of a name wins.
    expect(parseMicrodescConsensus(CONSENSUS.replace('cc_alg=2', 'cc_alg=2 cc_alg=3')).params.get('cc_alg')).toBe(2);
  });
});

describe('ns flavor', () => {
  const ns = [
    'network-status-version 3',
    'vote-status consensus',
    'valid-after 2025-11-20 15:00:00',
    'fresh-until 2025-11-20 16:00:00',
    'valid-until 2025-11-20 18:00:00',
    'r relayA AAAAAAAAAAAAAAAAAAAAAAAAAAA qUO7dJ7ivvA9kCgcUNp69ybw/KQ 2025-11-20 08:00:00 10.0.0.5 9001 0',
    's Fast HSDir Running Valid',
    'pr HSDir=2',
    'p reject 1-65535',
    'r relayB AQEBAQEBAQEBAQEBAQEBAQEBAQE uQvqsdZ+YMtBmG3N/3bvHXZtuNc 2025-11-20 08:00:00 10.0.0.6 9001 9030',
    's HSDir Running Valid',
    'pr HSDir=1-2',
    'directory-footer',
    '',
  ].join('\n');

  it('parses r lines with the descriptor digest and joins ed25519 ids by fingerprint', () => {
    const c = parseMicrodescConsensus(ns);
    expect(c.flavor).toBe('ns');
    expect(c.relays.map((r) => r.rsaFingerprint)).toEqual(['0'.repeat(40), '01'.repeat(20)]);
    expect(c.relays[0]!.descriptorDigest).toMatch(/^[0-9a-f]{40}$/);
    expect(c.relays[0]!.microdescDigest).toBeUndefined();
    const ring = hsdirRelays(c, new Map([['01'.repeat(20).toUpperCase(), new Uint8Array(32).fill(1)]]));
    expect(ring.map((r) => r.nickname)).toEqual(['relayB']);
  });
});

describe('parser errors', () => {
  const cases: [string, string, string][] = [
    ['not a consensus', 'hello world\n', 'TB_ERR_CONSENSUS_SYNTAX'],
    ['empty', '', 'TB_ERR_CONSENSUS_SYNTAX'],
    ['unknown flavor', CONSENSUS.replace('3 microdesc', '3 bridge'), 'TB_ERR_CONSENSUS_SYNTAX'],
    ['a vote', CONSENSUS.replace('vote-status consensus', 'vote-status vote'), 'TB_ERR_CONSENSUS_SYNTAX'],
    ['missing valid-after', withLine(CONSENSUS, 'valid-after '), 'TB_ERR_CONSENSUS_MISSING_FIELD'],
    ['bad date', CONSENSUS.replace('valid-after 2025-11-20', 'valid-after 2025-02-30'), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['bad time', CONSENSUS.replace('valid-after 2025-11-20 15:00:00', 'valid-after 2025-11-20 25:00:00'), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['times out of order', CONSENSUS.replace('fresh-until 2025-11-20 16', 'fresh-until 2025-11-20 14'), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['duplicate header', withLine(CONSENSUS, 'params ', 'params a=1', 'params b=2'), 'TB_ERR_CONSENSUS_SYNTAX'],
    ['bad params', CONSENSUS.replace('cc_alg=2', 'cc_alg=two'), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['params over int32', CONSENSUS.replace('cc_alg=2', 'cc_alg=2147483648'), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['short SRV', CONSENSUS.replace(/shared-rand-current-value 9 (\S+)/, 'shared-rand-current-value 9 AAAA'), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['SRV without reveals', CONSENSUS.replace(/shared-rand-current-value 9 /, 'shared-rand-current-value x '), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['bad nickname', CONSENSUS.replace('r relay10x ', 'r relay-10x '), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['short r line', CONSENSUS.replace(/^r relay10x .*$/m, 'r relay10x B5VX2ByXj0NSCPKVp9mvlWWoKgs'), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['bad identity', CONSENSUS.replace('B5VX2ByXj0NSCPKVp9mvlWWoKgs', 'B5VX2ByXj0NSCPKVp9mvlWWoK'), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['bad address', CONSENSUS.replace('10.0.70.11', '10.0.70.256'), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['bad port', CONSENSUS.replace('10.0.70.11 9011 0', '10.0.70.11 90110 0'), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['missing s', CONSENSUS.replace('s Fast HSDir Running Stable V2Dir Valid\nv Tor 0.4.9.11\npr Conflux', 'v Tor 0.4.9.11\npr Conflux'), 'TB_ERR_CONSENSUS_MISSING_FIELD'],
    ['missing m', CONSENSUS.replace(/^m lI4K.*\n/m, ''), 'TB_ERR_CONSENSUS_MISSING_FIELD'],
    ['bad m', CONSENSUS.replace(/^m lI4K(.*)$/m, 'm lI4K'), 'TB_ERR_CONSENSUS_BAD_FIELD'],
    ['duplicate s', CONSENSUS.replace('v Tor 0.4.9.11\n', 's Fast\nv Tor 0.4.9.11\n'), 'TB_ERR_CONSENSUS_SYNTAX'],
    ['unsorted relays', swapFirstTwoRelays(CONSENSUS), 'TB_ERR_CONSENSUS_ORDER'],
    ['unterminated object', CONSENSUS.replace(/-----END SIGNATURE-----\n$/, ''), 'TB_ERR_CONSENSUS_SYNTAX'],
    ['not a keyword', CONSENSUS.replace('voting-delay', '!voting-delay'), 'TB_ERR_CONSENSUS_SYNTAX'],
    ['line too long', CONSENSUS.replace('contact auth0@test.test', 'contact ' + 'x'.repeat(70_000)), 'TB_ERR_CONSENSUS_TOO_LARGE'],
    ['document too large', 'network-status-version 3\n' + ' '.repeat(MAX_CONSENSUS_CHARS), 'TB_ERR_CONSENSUS_TOO_LARGE'],
  ];
  for (const [name, text, code] of cases) {
    it(`consensus: ${name} → ${code}`, () => {
      expect(codeOf(() => parseMicrodescConsensus(text))).toBe(code);
    });
  }

  it('treats a malformed pr line as no protocol support, as tor does', () => {
    const c = parseMicrodescConsensus(CONSENSUS.replace('HSDir=2 HSIntro=4-5 HSRend=1-2 Link=1-5 LinkAuth=1,3 Microdesc=2-3 Padding=2 Relay=2-4', 'HSDir=2 Link=5-1'));
    expect(c.relays[0]!.protocols).toBeUndefined();
    expect(c.relays[0]!.supportsHsdirV3).toBe(false);
  });

  it('rejects non-string input without a TypeError', () => {
    expect(codeOf(() => parseMicrodescConsensus(42 as unknown as string))).toBe('TB_ERR_CONSENSUS_SYNTAX');
    expect(codeOf(() => parseMicrodescriptors(null as unknown as string))).toBe('TB_ERR_MICRODESC_SYNTAX');
  });

  const ED = toBase64NoPad(new Uint8Array(32).fill(7));
  const md = 'onion-key\nntor-onion-key ' + 'A'.repeat(43) + '\nid ed25519 ' + ED + '\n';
  const mdCases: [string, string, string][] = [
    ['no onion-key', 'ntor-onion-key ' + 'A'.repeat(43) + '\n', 'TB_ERR_MICRODESC_SYNTAX'],
    ['onion-key with arguments', md.replace('onion-key\n', 'onion-key x\n'), 'TB_ERR_MICRODESC_BAD_FIELD'],
    ['two ed25519 ids', md + 'id ed25519 ' + 'A'.repeat(43) + '\n', 'TB_ERR_MICRODESC_SYNTAX'],
    ['bad ed25519 id', md.replace(ED, 'none'), 'TB_ERR_MICRODESC_BAD_FIELD'],
    ['bad ntor key', md.replace('A'.repeat(43), 'A'.repeat(40)), 'TB_ERR_MICRODESC_BAD_FIELD'],
    ['two ntor keys', md + 'ntor-onion-key ' + 'A'.repeat(43) + '\n', 'TB_ERR_MICRODESC_SYNTAX'],
    ['unterminated key', 'onion-key\n-----BEGIN RSA PUBLIC KEY-----\nAAAA\n', 'TB_ERR_MICRODESC_SYNTAX'],
    ['line too long', md + 'family ' + 'x'.repeat(1024 * 1024 + 1) + '\n', 'TB_ERR_MICRODESC_TOO_LARGE'],
  ];
  for (const [name, text, code] of mdCases) {
    it(`microdesc: ${name} → ${code}`, () => {
      expect(codeOf(() => parseMicrodescriptors(text))).toBe(code);
    });
  }

  it("skips malformed microdescriptors with onInvalid: 'skip', like tor", () => {
    const bad = md.replace(ED, 'none');
    const got = parseMicrodescriptors(bad + md + MICRODESCS, { onInvalid: 'skip' });
    expect(got.length).toBe((EXPECTED.microdesc_count as number) + 1);
    expect(got[0]!.ed25519Id).toEqual(new Uint8Array(32).fill(7));
    expect(codeOf(() => parseMicrodescriptors(bad + md))).toBe('TB_ERR_MICRODESC_BAD_FIELD');
  });
});

function swapFirstTwoRelays(text: string): string {
  const blocks = text.split(/(?=^r )/m);
  [blocks[1], blocks[2]] = [blocks[2]!, blocks[1]!];
  return blocks.join('');
}
