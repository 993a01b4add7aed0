/** PublishModeSwitch, FailClosed and IntroCollector against a fake control port and clock. */
import { describe, expect, it } from 'vitest';
import { ControlReplyError } from '../../../src/adapters/tor/control.js';
import { HsIdentityKeypair } from '../../../src/core/hs/keys.js';
import { testingNetworkPeriodParams, timePeriodNum } from '../../../src/core/hs/time-period.js';
import { buildDescriptor } from '../../../src/core/hsdesc/descriptor.js';
import { FailClosed, serviceIntroCircuits } from '../../../src/node/publisher/fail-closed.js';
import { IntroCollector } from '../../../src/node/publisher/intro-collector.js';
import { parsePublishSetting, PublishModeSwitch } from '../../../src/node/publisher/mode-switch.js';
import { introDigest, introPointFromWire } from '../../../src/core/intro/wire.js';
import { FakeClock, FakeControl, makeIntroPoints, seededRandom, silentLogger } from './fakes.js';

const id = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(9));
const other = 'c'.repeat(56);

describe('PublishModeSwitch', () => {
  it('reads tor’s value once and sends SETCONF only on a change', async () => {
    const c = new FakeControl();
    const sw = new PublishModeSwitch({ control: c, logger: silentLogger });
    await sw.setClustered(true);
    await sw.setClustered(true);
    await sw.setClustered(false);
    await sw.setClustered(false);
    expect(c.requests).toEqual(['GETCONF PublishHidServDescriptors']);
    expect(c.setConfs).toEqual([[['PublishHidServDescriptors', '0']], [['PublishHidServDescriptors', '1']]]);
    expect(sw.torPublishes).toBe(true);
  });
  it('does nothing when tor already has the wanted value', async () => {
    const c = new FakeControl();
    c.getconfValue = 'PublishHidServDescriptors=0';
    await new PublishModeSwitch({ control: c, logger: silentLogger }).setClustered(true);
    expect(c.setConfs).toEqual([]);
  });
  it('parses GETCONF replies and rejects others', () => {
    expect(parsePublishSetting('PublishHidServDescriptors')).toBe(true);
    expect(parsePublishSetting('PublishHidServDescriptors=0')).toBe(false);
    expect(() => parsePublishSetting('Foo=1')).toThrow(expect.objectContaining({ code: 'TB_ERR_PUBLISHER_GETCONF' }) as Error);
  });
});

const CS = [
  `5 BUILT $${'A'.repeat(40)}~a,$${'B'.repeat(40)}~b PURPOSE=HS_SERVICE_INTRO HS_STATE=HSSI_ESTABLISHED REND_QUERY=${id.label} TIME_CREATED=2025-01-01T00:00:00.000000`,
  `6 BUILT $${'A'.repeat(40)}~a PURPOSE=HS_SERVICE_INTRO HS_STATE=HSSI_ESTABLISHED REND_QUERY=${other}`,
  `7 BUILT $${'A'.repeat(40)}~a PURPOSE=GENERAL`,
  `8 EXTENDED $${'A'.repeat(40)}~a PURPOSE=HS_SERVICE_INTRO HS_STATE=HSSI_CONNECTING REND_QUERY=${id.label}`,
  'garbage line',
].join('\n');

describe('FailClosed', () => {
  it('lists only the master address’s intro circuits', () => {
    expect(serviceIntroCircuits(CS, id.label).map((c) => c.id)).toEqual(['5', '8']);
  });
  it('closes them when unhealthy, keeps closing new ones and re-sweeps, stops when healthy', async () => {
    const clock = new FakeClock(0);
    const c = new FakeControl(clock);
    c.getInfoImpl = (k) => Promise.resolve(k === 'circuit-status' ? CS : '');
    const fc = new FailClosed({ control: c, masterAddress: id.address, timers: clock, logger: silentLogger, sweepMs: 1000 });
    await fc.setHealthy(true);
    expect(c.closed).toEqual([]);
    await fc.setHealthy(false);
    expect(c.closed).toEqual(['5', '8']);
    c.emit(`CIRC 9 BUILT $${'A'.repeat(40)}~a PURPOSE=HS_SERVICE_INTRO HS_STATE=HSSI_CONNECTING REND_QUERY=${id.label}`);
    c.emit(`CIRC 10 BUILT $${'A'.repeat(40)}~a PURPOSE=HS_SERVICE_INTRO REND_QUERY=${other}`);
    await clock.advance(0);
    expect(c.closed).toEqual(['5', '8', '9']);
    await clock.advance(1000);
    expect(c.closed).toEqual(['5', '8', '9', '5', '8']);
    await fc.setHealthy(true);
    c.emit(`CIRC 11 BUILT $${'A'.repeat(40)}~a PURPOSE=HS_SERVICE_INTRO REND_QUERY=${id.label}`);
    await clock.advance(5000);
    expect(c.closed).toHaveLength(5);
    expect(clock.pending).toBe(0);
    expect(fc.closedCount).toBe(5);
  });
});

describe('IntroCollector', () => {
  const params = testingNetworkPeriodParams(10);
  const wallS = 1_760_000_000;
  const pts = makeIntroPoints(seededRandom(3), 3);
  const desc = (rev: bigint, points = pts): string =>
    buildDescriptor({
      identity: { expandedSecretKey: id.expandedSecretKey, publicKey: id.publicKey },
      periodNum: timePeriodNum(wallS, params),
      periodLengthMinutes: params.lengthMinutes,
      revisionCounter: rev,
      nowSeconds: wallS,
      introPoints: points.map(introPointFromWire),
      randomBytes: seededRandom(4),
    }).text.slice(0, -1); // GETINFO values come without the final newline

  it('harvests intro points once the revision counter is set, re-polls on events, and reports changes', async () => {
    const clock = new FakeClock(wallS * 1000);
    const c = new FakeControl(clock);
    let reply: () => Promise<string> = () =>
      Promise.reject(new ControlReplyError('GETINFO', { status: 551, lines: [{ status: 551, separator: ' ', text: 'Not found in cache' }] }));
    c.getInfoImpl = (k) => (k === `hs/service/desc/id/${id.label}` ? reply() : Promise.reject(new Error(k)));
    const col = new IntroCollector({ control: c, masterAddress: id.address, identityPublicKey: id.publicKey, now: () => clock.wallMs, timers: clock, logger: silentLogger, pollMs: 60_000 });
    const seen: (number | undefined)[] = [];
    col.onChange((s) => seen.push(s?.points.length));
    col.start();
    await clock.advance(10);
    expect(col.current()).toBeUndefined();
    reply = () => Promise.resolve(desc(0n));
    await clock.advance(60_000);
    expect(col.current()).toBeUndefined();
    reply = () => Promise.resolve(desc(5n));
    c.emit(`CIRC 5 BUILT $${'A'.repeat(40)}~a PURPOSE=HS_SERVICE_INTRO HS_STATE=HSSI_ESTABLISHED REND_QUERY=${id.label}`);
    await clock.advance(600);
    expect(col.current()).toMatchObject({ digest: introDigest(pts), revisionCounter: '5' });
    expect(col.current()!.points).toEqual(expect.arrayContaining(pts));
    const newer = makeIntroPoints(seededRandom(8), 4);
    reply = () => Promise.resolve(desc(6n, newer));
    c.emit(`HS_DESC CREATED ${id.label} UNKNOWN UNKNOWN ${'A'.repeat(43)}`);
    await clock.advance(600);
    expect(col.current()!.digest).toBe(introDigest(newer));
    reply = () => Promise.reject(new Error('connection closed'));
    await clock.advance(60_000);
    expect(col.current()!.digest).toBe(introDigest(newer)); // keeps the last set on transient errors
    expect(col.lastError).toBe('connection closed');
    reply = () => Promise.resolve('garbage');
    await clock.advance(60_000);
    expect(col.lastError).toMatch(/^TB_ERR_HSDESC/);
    expect(seen).toEqual([3, 4]);
    col.stop();
    expect(c.listenerCount('CIRC') + c.listenerCount('HS_DESC')).toBe(0);
    expect(clock.pending).toBe(0);
  });
});
