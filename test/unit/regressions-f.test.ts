/**
 * Offline checks on documents recorded from real tor 0.4.9.11 in the private test network
 * (test/fixtures/consensus/real-testnet*; see the README there): our consensus and
 * microdescriptor parsers read tor's real text, and our hash ring reproduces the HSDirs, their
 * order and the HSDIR_INDEX values tor put in its own `HS_DESC UPLOAD` events under that
 * consensus (`real-testnet`: disaster SRVs, recorded right after network start;
 * `real-testnet-srv`: a real shared random value, recorded after an SR-run rotation).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { toBase64NoPad, toHex } from '../../src/core/bytes.js';
import { decodeOnionAddress } from '../../src/core/hs/address.js';
import { descriptorTargets, hsdirIndex } from '../../src/core/hs/hashring.js';
import {
  hsdirRelays,
  parseMicrodescConsensus,
  parseMicrodescriptors,
} from '../../src/core/netdoc/consensus.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'consensus');

interface Upload {
  readonly blindedKey: string;
  readonly hsdir: string;
  readonly nickname: string;
  readonly hsdirIndex: string;
}
interface Recorded {
  readonly address: string;
  readonly validAfter: number;
  readonly periodLengthMinutes: number;
  readonly uploads: readonly Upload[];
}

function load(prefix: string): { consensus: string; mds: string; rec: Recorded } {
  return {
    consensus: readFileSync(join(DIR, `${prefix}-consensus-microdesc.txt`), 'utf8'),
    mds: readFileSync(join(DIR, `${prefix}-microdescs.txt`), 'utf8'),
    rec: JSON.parse(readFileSync(join(DIR, `${prefix}-uploads.json`), 'utf8')) as Recorded,
  };
}

const CASES = [
  { prefix: 'real-testnet', srv: 'disaster', keys: 2 },
  { prefix: 'real-testnet-srv', srv: 'current', keys: 1 },
] as const;

for (const c of CASES) {
  describe(`real tor consensus ${c.prefix}`, () => {
    const { consensus: text, mds: mdText, rec } = load(c.prefix);

    it('parses: 8 routers, all HSDirs with ed25519 ids, 10 s voting interval', () => {
      const consensus = parseMicrodescConsensus(text);
      expect(consensus.flavor).toBe('microdesc');
      expect(consensus.validAfter).toBe(rec.validAfter);
      expect(consensus.votingIntervalSeconds).toBe(10);
      expect(consensus.relays).toHaveLength(8);
      const mds = parseMicrodescriptors(mdText);
      const digests = new Set(mds.map((m) => m.digest));
      for (const rs of consensus.relays) {
        expect(rs.isHsdir).toBe(true);
        expect(rs.supportsHsdirV3).toBe(true);
        expect(digests.has(rs.microdescDigest!)).toBe(true);
      }
      for (const md of mds) {
        expect(md.ed25519Id).toHaveLength(32);
        expect(md.ntorOnionKey).toHaveLength(32);
      }
      expect(hsdirRelays(consensus, mds)).toHaveLength(8);
      if (c.srv === 'disaster') expect(consensus.sharedRandCurrent).toBeUndefined();
      else expect(consensus.sharedRandCurrent?.value).toHaveLength(32);
    });

    it("reproduces tor's upload HSDirs, order and HSDIR_INDEX", () => {
      const consensus = parseMicrodescConsensus(text);
      const relays = hsdirRelays(consensus, parseMicrodescriptors(mdText));
      const pk = decodeOnionAddress(rec.address).publicKey;
      const t = descriptorTargets(consensus, pk, { relays, testingTorNetwork: true });
      const len = t.plan.periodParams.lengthMinutes;
      expect(len).toBe(rec.periodLengthMinutes);
      const keys = [...new Set(rec.uploads.map((u) => u.blindedKey))];
      expect(keys).toHaveLength(c.keys);
      for (const key of keys) {
        const target = t.descriptors.find((d) => toBase64NoPad(d.blindedPublicKey) === key);
        expect(target, `blinded key ${key} is one of ours`).toBeDefined();
        expect(target!.srvSource).toBe(c.srv);
        const ups = rec.uploads.filter((u) => u.blindedKey === key).slice(0, target!.hsdirs.length);
        expect(ups.map((u) => u.hsdir)).toEqual(target!.hsdirs.map((h) => h.rsaFingerprint));
        for (const [i, u] of ups.entries()) {
          const h = target!.hsdirs[i]!;
          expect(u.hsdirIndex.toUpperCase()).toBe(
            toHex(hsdirIndex(h.ed25519Id, target!.srv, target!.periodNum, len)).toUpperCase(),
          );
        }
      }
    });
  });
}
