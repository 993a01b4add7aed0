/** PublishModeSwitch, FailClosed and IntroCollector against a fake control port and clock. */
import { describe, expect, it } from 'vitest';
import { ControlReplyError } from '../../../src/adapters/tor/control.js';
import { HsIdentityKeypair } from '../../../src/core/hs/keys.js';
import { testingNetworkPeriodParams, timePeriodNum } from '../../../src/core/hs/time-period.js';
import { buildDescriptor } from '../../../src/core/hsdesc/descriptor.js';
import { FailClosed } from '../../../src/node/publisher/fail-closed.js';
import { TorbalanceError } from '../../../src/core/errors.js';
import { hsOptionGroups, hsSetConfArgs, nodeTorrcEntries } from '../../../src/core/node-torrc.js';
import { meshTorrcEntries } from '../../../src/core/mesh-torrc.js';
import { IntroCollector } from '../../../src/node/publisher/intro-collector.js';
import { parsePublishSetting, PublishModeSwitch } from '../../../src/node/publisher/mode-switch.js';
import { introDigest, introPointFromWire } from '../../../src/core/intro/wire.js';
import { captureLogger } from '../../helpers/mesh-fixtures.js';
import { FakeClock, FakeControl, makeIntroPoints, seededRandom, silentLogger } from './fakes.js';

const id = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(9));

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

const HS = {
  serving: [
    ['HiddenServiceDir', '/d/hs'],
    ['HiddenServicePort', '80 unix:/d/proxy.sock'],
    ['HiddenServiceOnionBalanceInstance', '1'],
    ['HiddenServiceDir', '/d/mesh-hs'],
    ['HiddenServicePort', '7700 unix:/d/mesh.sock'],
  ],
  paused: [
    ['HiddenServiceDir', '/d/mesh-hs'],
    ['HiddenServicePort', '7700 unix:/d/mesh.sock'],
  ],
} as const;

describe('FailClosed', () => {
  const setup = (o: { minIntervalMs?: number } = {}) => {
    const clock = new FakeClock(0);
    const c = new FakeControl(clock);
    const fc = new FailClosed({ control: c, hs: HS, timers: clock, logger: silentLogger, ...o });
    const changes: boolean[] = [];
    fc.onChange((p) => changes.push(p));
    return { clock, c, fc, changes };
  };

  it('pauses the master service with one SETCONF of the other services, restores the full group when healthy', async () => {
    const { clock, c, fc, changes } = setup();
    await fc.setHealthy(true);
    expect(c.setConfs).toEqual([]); // tor already serves (its torrc)
    await fc.setHealthy(false);
    expect(c.setConfs).toEqual([HS.paused]);
    expect(fc.active).toBe(true);
    await fc.setHealthy(false);
    expect(c.setConfs).toHaveLength(1);
    await clock.advance(5000);
    await fc.setHealthy(true);
    expect(c.setConfs).toEqual([HS.paused, HS.serving]);
    expect(fc.active).toBe(false);
    expect(fc.pauses).toBe(1);
    expect(changes).toEqual([true, false]);
    expect(clock.pending).toBe(0);
  });

  it('sends the bare HiddenServiceOptions when no other service remains', async () => {
    const clock = new FakeClock(0);
    const c = new FakeControl(clock);
    const fc = new FailClosed({ control: c, hs: { serving: HS.serving.slice(0, 3), paused: [] }, timers: clock, logger: silentLogger });
    await fc.setHealthy(false);
    expect(c.setConfs).toEqual([[['HiddenServiceOptions', null]]]);
  });

  it('a flapping target costs at most one SETCONF per interval, and the newest wish wins', async () => {
    const { clock, c, fc } = setup({ minIntervalMs: 4000 });
    await fc.setHealthy(false); // t=0: paused at once
    await clock.advance(500);
    for (let i = 0; i < 20; i++) {
      await fc.setHealthy(i % 2 === 0);
      await clock.advance(100);
    }
    // 20 changes in 2 s, the last one unhealthy: nothing to do once the interval ends
    expect(c.setConfs).toEqual([HS.paused]);
    await clock.advance(4000);
    expect(c.setConfs).toEqual([HS.paused]);
    await fc.setHealthy(true);
    await fc.setHealthy(false);
    await fc.setHealthy(true);
    expect(c.setConfs).toEqual([HS.paused, HS.serving]);
    await fc.setHealthy(false); // within 4 s of the resume: deferred
    expect(c.setConfs).toHaveLength(2);
    expect(fc.active).toBe(false);
    await clock.advance(3999);
    expect(c.setConfs).toHaveLength(2);
    await clock.advance(1);
    expect(c.setConfs).toEqual([HS.paused, HS.serving, HS.paused]);
    expect(fc.pauses).toBe(2);
  });

  it('retries a failed SETCONF after the interval; a tor restart (its torrc again) re-applies the pause', async () => {
    const { clock, c, fc, changes } = setup({ minIntervalMs: 1000 });
    let fail = true;
    c.setConf = (entries) => {
      c.setConfs.push(entries);
      return fail ? Promise.reject(new TorbalanceError('TB_ERR_TOR_CONTROL_CLOSED', 'tor', 'closed')) : Promise.resolve();
    };
    await fc.setHealthy(false);
    expect(fc.active).toBe(false);
    fail = false;
    await clock.advance(1000);
    expect(c.setConfs).toEqual([HS.paused, HS.paused]);
    expect(fc.active).toBe(true);
    fc.invalidate();
    expect(fc.active).toBe(false);
    await clock.advance(1000);
    expect(c.setConfs).toEqual([HS.paused, HS.paused, HS.paused]);
    expect(fc.active).toBe(true);
    expect(changes).toEqual([true, false, true]);
    fc.stop();
    await fc.setHealthy(true);
    await clock.advance(5000);
    expect(c.setConfs).toHaveLength(3);
  });
});

describe('hsOptionGroups', () => {
  const torrc = [
    ['SocksPort', '127.0.0.1:9 OnionTrafficOnly'],
    ...HS.serving,
  ] as const;
  it('splits the HiddenService* group by HiddenServiceDir, keeping order', () => {
    expect(hsOptionGroups(torrc, '/d/hs')).toEqual({ serving: HS.serving, paused: HS.paused });
    expect(hsOptionGroups(torrc, '/d/mesh-hs')).toEqual({ serving: HS.serving, paused: HS.serving.slice(0, 3) });
    expect(hsOptionGroups(HS.serving.slice(0, 3), '/d/hs').paused).toEqual([]);
    expect(hsSetConfArgs([])).toEqual([['HiddenServiceOptions', null]]);
    expect(hsSetConfArgs(HS.paused)).toEqual(HS.paused);
  });
  it('refuses a torrc without the master service, with it twice, or with an orphan HiddenService line', () => {
    expect(() => hsOptionGroups(torrc, '/elsewhere')).toThrow(expect.objectContaining({ code: 'TB_ERR_NODE_TORRC' }) as Error);
    expect(() => hsOptionGroups([...torrc, ['HiddenServiceDir', '/d/hs']], '/d/hs')).toThrow(/2 times/);
    expect(() => hsOptionGroups([['HiddenServicePort', '80 127.0.0.1:1'], ...HS.serving], '/d/hs')).toThrow(/before any HiddenServiceDir/);
  });
  it('matches what nodeTorrcEntries and meshTorrcEntries render', () => {
    const node = nodeTorrcEntries({
      hsDir: '/d/hs',
      socksPort: 9050,
      virtualPort: 80,
      proxyListen: { kind: 'unix', path: '/d/proxy.sock' },
      numIntroPoints: 3,
      maxStreamsPerCircuit: 0,
      pow: { enabled: true, queueRate: 250, queueBurst: 2500 },
      publishDescriptors: true,
      extra: [['Log', 'notice stderr']],
    });
    const mesh = meshTorrcEntries({ dataDir: '/d', onionBalanceSelf: true });
    const g = hsOptionGroups([...node, ...mesh], '/d/hs');
    expect(g.paused).toEqual(mesh);
    expect(g.serving).toEqual([...node.filter(([k]) => k.startsWith('HiddenService')), ...mesh]);
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
  it('a paused master service (tor answers 551 Not found in cache) empties the set without a warning, then harvests again', async () => {
    const clock = new FakeClock(wallS * 1000);
    const c = new FakeControl(clock);
    const { logger, lines } = captureLogger('info');
    let paused = false;
    c.getInfoImpl = () =>
      paused ? Promise.reject(new ControlReplyError('GETINFO', { status: 551, lines: [{ status: 551, separator: ' ', text: 'Not found in cache' }] })) : Promise.resolve(desc(7n));
    const col = new IntroCollector({ control: c, masterAddress: id.address, identityPublicKey: id.publicKey, now: () => clock.wallMs, timers: clock, logger, pollMs: 10_000 });
    const seen: (number | undefined)[] = [];
    col.onChange((s) => seen.push(s?.points.length));
    col.start();
    await clock.advance(10);
    paused = true;
    await clock.advance(60_000); // six polls while paused
    expect(col.current()).toBeUndefined();
    expect(col.lastError).toBeUndefined();
    paused = false;
    await col.poll();
    expect(seen).toEqual([3, undefined, 3]);
    expect(lines.filter((l) => (JSON.parse(l) as { level: number }).level >= 40)).toEqual([]);
    col.stop();
  });
});
