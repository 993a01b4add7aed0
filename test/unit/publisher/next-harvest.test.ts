/**
 * NextPeriodHarvester against a scripted control port (src/node/publisher/next-harvest.ts):
 * the pulse (SETCONF 1 then back to 0), desc_next's blinded key taken from tor's UPLOAD
 * events, attribution by the PoW seed tor drew during the pulse, and the refusals. The same
 * flow against real tor is test/integration/next-harvest.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { realTimers } from '../../../src/adapters/system/timers.js';
import { toBase64NoPad } from '../../../src/core/bytes.js';
import { blindPublicKey } from '../../../src/core/hs/blinding.js';
import { buildDescriptor } from '../../../src/core/hsdesc/descriptor.js';
import { encodeOnionAddress } from '../../../src/core/hs/address.js';
import { PublishModeSwitch } from '../../../src/node/publisher/mode-switch.js';
import { NextPeriodHarvester } from '../../../src/node/publisher/next-harvest.js';
import { introPointFromWire } from '../../../src/core/intro/wire.js';
import { identityFrom } from '../../helpers/hsdesc-fixtures.js';
import { FakeControl, makeIntroPoint, seededRandom, silentLogger } from './fakes.js';

const LEN = 1440;
const NOW = 1_700_050_000;
const P = 19675;
const id = identityFrom('harvest');
const address = encodeOnionAddress(id.publicKey);
const label = address.replace(/\.onion$/, '');
const rnd = seededRandom(7);
const seed = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const HSDIRS = ['A'.repeat(40), 'B'.repeat(40), 'C'.repeat(40)];
const currentKey = toBase64NoPad(blindPublicKey(id.publicKey, P, LEN));
const nextKey = toBase64NoPad(blindPublicKey(id.publicKey, P + 1, LEN));
const currentPoints = [1, 2, 3].map((n) => makeIntroPoint(rnd, n));
const nextPoints = [4, 5, 6].map((n) => makeIntroPoint(rnd, n));

function desc(periodNum: number, points: typeof currentPoints, powSeed: Uint8Array | undefined): string {
  return buildDescriptor({
    identity: id,
    periodNum,
    periodLengthMinutes: LEN,
    revisionCounter: 1000n,
    nowSeconds: NOW,
    introPoints: points.map(introPointFromWire),
    powParams: powSeed === undefined ? undefined : { seed: powSeed, suggestedEffort: 0, expirationSeconds: NOW + 7200 },
    randomBytes: rnd,
  }).text;
}

/** A fake node tor: seed 1 before the pulse, seed 2 after; uploads both descriptors on SETCONF 1. */
function nodeTor(o: { pow?: boolean; nextAnswer?: (fp: string) => 'ok' | 'rejected'; served?: (fp: string) => Uint8Array } = {}): FakeControl {
  const c = new FakeControl();
  c.getconfValue = 'PublishHidServDescriptors=0';
  let drawn = seed(1);
  c.getInfoImpl = () => Promise.resolve(desc(P, currentPoints, o.pow === false ? undefined : drawn));
  const setConf = c.setConf.bind(c);
  c.setConf = async (entries) => {
    await setConf(entries);
    drawn = seed(drawn[0]! + 1);
    if (entries[0]?.[1] !== '1') return;
    setImmediate(() => {
      for (const fp of HSDIRS) {
        c.emit(`HS_DESC UPLOAD ${label} UNKNOWN $${fp}~relay ${currentKey} HSDIR_INDEX=${'0'.repeat(64)}`);
        c.emit(`HS_DESC UPLOAD ${label} UNKNOWN $${fp}~relay ${nextKey} HSDIR_INDEX=${'0'.repeat(64)}`);
      }
      for (const fp of HSDIRS) {
        c.emit(`HS_DESC UPLOADED ${label} UNKNOWN $${fp}~relay`);
        if ((o.nextAnswer?.(fp) ?? 'ok') === 'ok') c.emit(`HS_DESC UPLOADED ${label} UNKNOWN $${fp}~relay`);
        else c.emit(`HS_DESC FAILED ${label} NO_AUTH $${fp}~relay ${nextKey} REASON=UPLOAD_REJECTED`);
      }
    });
  };
  c.keys.add(nextKey);
  c.fetchAnswer = (fp) => ({ text: desc(P + 1, nextPoints, o.served?.(fp) ?? seed(2)) });
  return c;
}

function harvester(c: FakeControl): NextPeriodHarvester {
  return new NextPeriodHarvester({
    control: c,
    mode: new PublishModeSwitch({ control: c, logger: silentLogger }),
    masterAddress: address,
    identityPublicKey: id.publicKey,
    now: () => NOW * 1000,
    timers: realTimers,
    logger: silentLogger,
    uploadTimeoutMs: 2000,
    fetchTimeoutMs: 2000,
  });
}

describe('NextPeriodHarvester', () => {
  it("returns desc_next's intro points when the fetched descriptor carries the seed tor drew in the pulse", async () => {
    const c = nodeTor();
    const got = await harvester(c).harvest();
    expect(got.blindedKey).toBe(nextKey);
    expect(got.points.map((p) => p.authKey).sort()).toEqual(nextPoints.map((p) => p.authKey).sort());
    expect(got.hsdir).toBe(HSDIRS[0]);
    expect(c.setConfs).toEqual([[['PublishHidServDescriptors', '1']], [['PublishHidServDescriptors', '0']]]);
    expect(c.fetches).toHaveLength(1);
  });

  it("skips an HSDir that holds another node's descriptor (other seed) and takes the next", async () => {
    const c = nodeTor({ served: (fp) => (fp === HSDIRS[0] ? seed(99) : seed(2)) });
    const got = await harvester(c).harvest();
    expect(got.hsdir).toBe(HSDIRS[1]);
    expect(c.fetches.map((f) => f.servers[0])).toEqual([HSDIRS[0], HSDIRS[1]]);
  });

  it("refuses when every HSDir serves another node's descriptor, and restores PublishHidServDescriptors", async () => {
    const c = nodeTor({ served: () => seed(99) });
    await expect(harvester(c).harvest()).rejects.toMatchObject({ code: 'TB_ERR_HARVEST_NOT_OURS' });
    expect(c.setConfs.at(-1)).toEqual([['PublishHidServDescriptors', '0']]);
  });

  it('refuses without fetching when every HSDir rejected our desc_next (another node uploaded first)', async () => {
    const c = nodeTor({ nextAnswer: () => 'rejected' });
    await expect(harvester(c).harvest()).rejects.toMatchObject({ code: 'TB_ERR_HARVEST_NOT_OURS' });
    expect(c.fetches).toHaveLength(0);
  });

  it('fetches only from HSDirs that accepted desc_next', async () => {
    const c = nodeTor({ nextAnswer: (fp) => (fp === HSDIRS[2] ? 'ok' : 'rejected') });
    const got = await harvester(c).harvest();
    expect(got.hsdir).toBe(HSDIRS[2]);
    expect(c.fetches.map((f) => f.servers[0])).toEqual([HSDIRS[2]]);
  });

  it('refuses a service without PoW defenses before touching tor', async () => {
    const c = nodeTor({ pow: false });
    await expect(harvester(c).harvest()).rejects.toMatchObject({ code: 'TB_ERR_HARVEST_NO_POW' });
    expect(c.setConfs).toEqual([]);
  });

  it('times out when tor uploads nothing, and restores PublishHidServDescriptors', async () => {
    const c = nodeTor();
    // a tor that takes the SETCONF but uploads nothing
    c.setConf = (entries) => {
      c.setConfs.push(entries);
      return Promise.resolve();
    };
    await expect(harvester(c).harvest()).rejects.toMatchObject({ code: 'TB_ERR_HARVEST_NO_UPLOAD' });
    expect(c.setConfs.at(-1)).toEqual([['PublishHidServDescriptors', '0']]);
  });
});
