/** UploadTracker: scripted HS_DESC events against a fake clock. */
import { describe, expect, it } from 'vitest';
import { parseHsDesc } from '../../../src/core/torctl/events.js';
import { UploadTracker } from '../../../src/node/publisher/upload-tracker.js';
import { FakeClock } from './fakes.js';

const ADDR = 'a'.repeat(56);
const OTHER = 'b'.repeat(56);
const FP = (n: number): string => String(n).repeat(40).slice(0, 40);
const KEY = 'K'.repeat(43);
const up = (fp: string, addr = ADDR) => parseHsDesc(`HS_DESC UPLOADED ${addr} UNKNOWN $${fp}~r`);
const failed = (fp: string, reason: string, key = KEY) => parseHsDesc(`HS_DESC FAILED ${ADDR} NO_AUTH $${fp}~r ${key} REASON=${reason}`);

describe('UploadTracker', () => {
  it('resolves when every HSDir answered, in the given order, with reasons and times', async () => {
    const clock = new FakeClock(0);
    const t = new UploadTracker({ timers: clock, address: `${ADDR}.onion` });
    const round = t.begin([FP(1), `$${FP(2)}`, FP(3).toLowerCase()], 30_000, KEY);
    expect(t.busy).toBe(true);
    await clock.advance(100);
    t.handleEvent(up(FP(2)));
    await clock.advance(50);
    t.handleEvent(failed(FP(3), 'UPLOAD_REJECTED'));
    t.handleEvent(up(FP(1)));
    const out = await round.done;
    expect(out).toEqual([
      { fp: FP(1), result: 'uploaded', ms: 150 },
      { fp: FP(2), result: 'uploaded', ms: 100 },
      { fp: FP(3), result: 'failed', reason: 'UPLOAD_REJECTED', ms: 150 },
    ]);
    expect(t.busy).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('marks silent HSDirs as timeouts after the timeout', async () => {
    const clock = new FakeClock(0);
    const t = new UploadTracker({ timers: clock, address: ADDR });
    const round = t.begin([FP(1), FP(2)], 5000);
    t.handleEvent(up(FP(1)));
    let done = false;
    void round.done.then(() => (done = true));
    await clock.advance(4999);
    expect(done).toBe(false);
    await clock.advance(1);
    expect(await round.done).toEqual([
      { fp: FP(1), result: 'uploaded', ms: 0 },
      { fp: FP(2), result: 'timeout', ms: 5000 },
    ]);
  });

  it('ignores other addresses, HSDirs outside the round, other actions, FAILED for another blinded key, and duplicates', async () => {
    const clock = new FakeClock(0);
    const t = new UploadTracker({ timers: clock, address: ADDR });
    const round = t.begin([FP(1), FP(2)], 1000, KEY);
    t.handleEvent(up(FP(1), OTHER));
    t.handleEvent(up(FP(9)));
    t.handleEvent(parseHsDesc(`HS_DESC UPLOAD ${ADDR} UNKNOWN $${FP(2)}~r ${KEY} HSDIR_INDEX=${'0'.repeat(64)}`));
    t.handleEvent(failed(FP(2), 'UPLOAD_REJECTED', 'Z'.repeat(43)));
    t.handleEvent(up(FP(2)));
    t.handleEvent(failed(FP(2), 'UNEXPECTED'));
    await clock.advance(1000);
    expect((await round.done).map((o) => o.result)).toEqual(['timeout', 'uploaded']);
  });

  it('allows one round at a time; events between rounds are dropped; cancel ends a round', async () => {
    const clock = new FakeClock(0);
    const t = new UploadTracker({ timers: clock, address: ADDR });
    const r1 = t.begin([FP(1)], 1000);
    expect(() => t.begin([FP(2)], 1000)).toThrow(expect.objectContaining({ code: 'TB_ERR_BUG' }) as Error);
    r1.cancel();
    expect((await r1.done)[0]!.result).toBe('timeout');
    t.handleEvent(up(FP(2)));
    const r2 = t.begin([FP(2)], 1000);
    t.handleEvent(up(FP(2)));
    expect((await r2.done)[0]!.result).toBe('uploaded');
    const r3 = t.begin([], 1000);
    expect(await r3.done).toEqual([]);
    expect(clock.pending).toBe(0);
  });
});
