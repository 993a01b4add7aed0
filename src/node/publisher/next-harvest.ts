/**
 * Reads this node's `desc_next` intro points — the set tor built for the NEXT descriptor,
 * which survives the node's next rotation — although tor offers no GETINFO for it
 * (docs/DESIGN.md "Rotation-safe intro points"; tor `control_getinfo.c` serves
 * `desc_current` only).
 *
 * How, with stock tor 0.4.9:
 * 1. {@link PublishModeSwitch.pulse}: `SETCONF PublishHidServDescriptors=1`. On a service with
 *    PoW defenses every SETCONF re-draws the PoW seeds, and a seed change makes tor schedule an
 *    upload of both descriptors at once (`hs_service.c: update_all_descriptors_pow_params`),
 *    so tor uploads its own `desc_current` and `desc_next` within a second (`HS_DESC UPLOAD`,
 *    one event per HSDir, each naming the descriptor's blinded key).
 * 2. While still publishing, `GETINFO hs/service/desc/id/<addr>` gives `desc_current` with the
 *    NEW PoW seed; tor writes the same `seed_current` into both of its descriptors. Then the
 *    pulse restores `PublishHidServDescriptors=0` (which re-draws the seeds once more: the
 *    caller reads the seed to publish from `desc_current` afterwards, never from here).
 * 3. `HSFETCH <addr> SERVER=<fp>` from HSDirs that answered `UPLOADED`: tor fetches the
 *    client-current period, which is `desc_next`'s period between the period start (12:00 UTC
 *    live) and the node's rotation — the only window in which this works. The fetched
 *    descriptor is decrypted with the public identity key.
 * 4. Attribution: another node with the same master key may have uploaded to that HSDir in
 *    between (the HSDir keeps the highest revision counter). The descriptor is this node's
 *    iff its blinded key is the one our tor uploaded for `desc_next` AND its PoW seed is the
 *    seed our tor drew in step 1 (32 random bytes per draw). Anything else is refused
 *    (`TB_ERR_HARVEST_NOT_OURS`) and the next HSDir is tried.
 *
 * Requires `HiddenServicePoWDefensesEnabled 1` on the node's master service
 * (`TB_ERR_HARVEST_NO_POW` otherwise). The caller subscribes `HS_DESC` and `HS_DESC_CONTENT`.
 * Side effects, by design: tor's own descriptors are on the HSDirs until the publisher posts
 * again (a valid one-node descriptor), and outstanding PoW solutions for this node's old seed
 * are void.
 */
import type { Logger } from '../../adapters/log/logger.js';
import type { TimerHandle, Timers } from '../../adapters/system/timers.js';
import { bytesEqual, toBase64NoPad } from '../../core/bytes.js';
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import { decodeOnionAddress } from '../../core/hs/address.js';
import { decodeDescriptor, decodeOwnServiceDescriptor, type DecodedDescriptor } from '../../core/hsdesc/descriptor.js';
import { parseHsDesc, parseHsDescContent, type HsDescContentEvent, type HsDescEvent } from '../../core/torctl/events.js';
import type { ControlEvent, PublisherControl } from './control.js';
import type { PublishModeSwitch } from './mode-switch.js';
import { introDigest, introPointToWire, type IntroPointWire } from './wire.js';

/** This node's `desc_next` intro points, as harvested. */
export interface HarvestedNextSet {
  /** Blinded key of the period they were built for (base64, 43 chars, as in HS_DESC events). */
  readonly blindedKey: string;
  readonly points: readonly IntroPointWire[];
  readonly digest: string;
  /** tor's revision counter of the fetched descriptor (decimal). */
  readonly revisionCounter: string;
  /** The HSDir it was fetched from. */
  readonly hsdir: string;
  /** Wall-clock ms when the harvest finished. */
  readonly harvestedAtMs: number;
  /** ms from the SETCONF to the verified descriptor. */
  readonly tookMs: number;
}

/** Options of {@link NextPeriodHarvester}. */
export interface NextPeriodHarvesterOptions {
  readonly control: Pick<PublisherControl, 'getInfo' | 'hsFetch' | 'onEvent'>;
  readonly mode: Pick<PublishModeSwitch, 'pulse'>;
  /** The master address (with or without `.onion`). */
  readonly masterAddress: string;
  readonly identityPublicKey: Uint8Array;
  /** Wall clock, ms since the epoch. */
  readonly now: () => number;
  readonly timers: Timers;
  readonly logger: Logger;
  /** How long to wait for tor's upload (UPLOAD of desc_next and one UPLOADED). Default 20 s. */
  readonly uploadTimeoutMs?: number;
  /** How long to wait for each HSFETCH answer. Default 20 s. */
  readonly fetchTimeoutMs?: number;
  /** HSDirs to try fetching from, at most. Default 3. */
  readonly maxFetches?: number;
}

/** Reads `desc_next`'s intro points; see the module doc. */
export class NextPeriodHarvester {
  /** Event types the harvester needs subscribed. */
  static readonly EVENTS: readonly string[] = ['HS_DESC', 'HS_DESC_CONTENT'];

  readonly #o: NextPeriodHarvesterOptions;
  readonly #label: string;
  readonly #log: Logger;
  #running: Promise<HarvestedNextSet> | undefined;

  constructor(o: NextPeriodHarvesterOptions) {
    this.#o = o;
    this.#label = decodeOnionAddress(o.masterAddress).label;
    this.#log = o.logger.child({ component: 'next-harvest' });
  }

  /** Harvest now (a call while one runs joins it). */
  harvest(): Promise<HarvestedNextSet> {
    this.#running ??= this.#harvest().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /**
   * Let tor upload its own descriptors once (a publish pulse) and wait until the HSDirs
   * answered, without fetching anything: after a rotation this puts the node's own
   * descriptor of the NEXT period on its HSDirs (docs/DESIGN.md "Rotation-safe intro
   * points"). Resolves with the wall-clock ms at which tor began uploading (the caller
   * re-posts merged descriptors in a later second: every HSDir answered before it) and the
   * HSDirs that accepted desc_next.
   */
  async seed(): Promise<{ uploadedAtMs: number; nextKey: string; hsdirs: string[] }> {
    const before = await this.#readCurrent();
    const currentKey = toBase64NoPad(before.blindedPublicKey);
    const upload = this.#watchUpload(currentKey);
    const t0 = this.#o.now();
    try {
      const u = await this.#o.mode.pulse(() => upload.done);
      // Every upload was answered by now, so tor computed its revision counters before this.
      const end = this.#o.now();
      this.#log.info({ hsdirs: u.hsdirs.length, tookMs: end - t0 }, "seeded the next period's descriptor with tor's own upload");
      return { uploadedAtMs: end, ...u };
    } finally {
      upload.cancel();
    }
  }

  async #readCurrent(): Promise<DecodedDescriptor> {
    const text = await this.#o.control.getInfo(`hs/service/desc/id/${this.#label}`, { timeoutMs: 30_000 });
    return decodeOwnServiceDescriptor(text, this.#o.identityPublicKey, Math.floor(this.#o.now() / 1000));
  }

  async #harvest(): Promise<HarvestedNextSet> {
    const t0 = this.#o.now();
    const before = await this.#readCurrent();
    if (before.inner.powParams === undefined) {
      throw new TorbalanceError('TB_ERR_HARVEST_NO_POW', 'config', 'the master service has no PoW defenses: desc_next cannot be attributed to this node');
    }
    const currentKey = toBase64NoPad(before.blindedPublicKey);
    const upload = this.#watchUpload(currentKey);
    let pulled: { nextKey: string; hsdirs: string[]; seed: Uint8Array };
    try {
      pulled = await this.#o.mode.pulse(async () => {
        const u = await upload.done;
        const after = await this.#readCurrent();
        const seed = after.inner.powParams?.seed;
        if (seed === undefined) throw new TorbalanceError('TB_ERR_HARVEST_NO_POW', 'tor', 'desc_current lost its pow-params during the upload');
        if (toBase64NoPad(after.blindedPublicKey) !== currentKey) {
          throw new TorbalanceError(
            'TB_ERR_HARVEST_ROTATED',
            'tor',
            `tor rotated its descriptors during the harvest (desc_current revision ${before.revisionCounter} → ${after.revisionCounter}, blinded key changed)`,
          );
        }
        return { ...u, seed };
      });
    } finally {
      upload.cancel();
    }
    const tried: string[] = [];
    for (const fp of pulled.hsdirs.slice(0, this.#o.maxFetches ?? 3)) {
      tried.push(fp);
      const content = await this.#fetch(fp);
      if (content === undefined) continue;
      if (content.descriptorId !== pulled.nextKey) {
        throw new TorbalanceError('TB_ERR_HARVEST_WRONG_PERIOD', 'tor', "HSFETCH returned another period's descriptor: desc_next is not the client-current period now");
      }
      let d: DecodedDescriptor;
      try {
        d = decodeDescriptor(content.descriptor, { identityPublicKey: this.#o.identityPublicKey, anyPeriod: true, nowSeconds: Math.floor(this.#o.now() / 1000) });
      } catch (e) {
        if (e instanceof DecodeError) {
          this.#log.warn({ hsdir: fp, err: e.code }, 'the fetched descriptor does not decode');
          continue;
        }
        throw e;
      }
      const seed = d.inner.powParams?.seed;
      if (toBase64NoPad(d.blindedPublicKey) !== pulled.nextKey || seed === undefined || !bytesEqual(seed, pulled.seed)) {
        this.#log.info({ hsdir: fp }, "the HSDir holds another node's descriptor (PoW seed differs)");
        continue;
      }
      const points = d.introPoints.map(introPointToWire);
      const end = this.#o.now();
      const out: HarvestedNextSet = {
        blindedKey: pulled.nextKey,
        points,
        digest: introDigest(points),
        revisionCounter: d.revisionCounter.toString(),
        hsdir: fp,
        harvestedAtMs: end,
        tookMs: end - t0,
      };
      this.#log.info({ introPoints: points.length, hsdir: fp, tookMs: out.tookMs }, 'harvested desc_next intro points');
      return out;
    }
    throw new TorbalanceError('TB_ERR_HARVEST_NOT_OURS', 'tor', `no HSDir served this node's desc_next (tried ${tried.length})`);
  }

  /** Wait for tor's upload of desc_next: its blinded key and the HSDirs that accepted something. */
  #watchUpload(currentKey: string): { done: Promise<{ nextKey: string; hsdirs: string[] }>; cancel: () => void } {
    let off: (() => void) | undefined;
    let timer: TimerHandle | undefined;
    const cancel = (): void => {
      off?.();
      off = undefined;
      if (timer !== undefined) this.#o.timers.clearTimeout(timer);
      timer = undefined;
    };
    const done = new Promise<{ nextKey: string; hsdirs: string[] }>((resolve, reject) => {
      let nextKey: string | undefined;
      // Per HSDir: uploads launched, answers received, and whether desc_next was refused.
      const dirs = new Map<string, { uploads: number; answers: number; nextRefused: boolean; next: boolean }>();
      const dir = (fp: string): { uploads: number; answers: number; nextRefused: boolean; next: boolean } => {
        let d = dirs.get(fp);
        if (d === undefined) {
          d = { uploads: 0, answers: 0, nextRefused: false, next: false };
          dirs.set(fp, d);
        }
        return d;
      };
      const candidates = (): string[] => [...dirs].filter(([, d]) => d.next && !d.nextRefused && d.answers > 0).map(([fp]) => fp);
      const finish = (timedOut: boolean): void => {
        const ok = candidates();
        cancel();
        if (nextKey !== undefined && ok.length > 0) resolve({ nextKey, hsdirs: ok });
        else if (nextKey === undefined) reject(new TorbalanceError('TB_ERR_HARVEST_NO_UPLOAD', 'tor', 'tor did not upload desc_next after the publish pulse'));
        else if (!timedOut) {
          // Every HSDir refused it: another node's upload with an equal or higher revision
          // counter (the same second) got there first. Retrying in a later second wins.
          reject(new TorbalanceError('TB_ERR_HARVEST_NOT_OURS', 'tor', "every HSDir holds another node's newer desc_next"));
        } else reject(new TorbalanceError('TB_ERR_HARVEST_NO_UPLOAD', 'tor', 'no HSDir accepted desc_next in time'));
      };
      const check = (): void => {
        if (nextKey === undefined) return;
        const nextDirs = [...dirs.values()].filter((d) => d.next);
        if (nextDirs.length > 0 && nextDirs.every((d) => d.answers >= d.uploads)) finish(false);
      };
      off = this.#o.control.onEvent('HS_DESC', (e: ControlEvent) => {
        let ev: HsDescEvent;
        try {
          ev = parseHsDesc(e);
        } catch (err) {
          if (err instanceof DecodeError) return;
          throw err;
        }
        if (ev.address !== this.#label || ev.hsDir === undefined) return;
        const d = dir(ev.hsDir.fingerprint);
        if (ev.action === 'UPLOAD') {
          d.uploads++;
          if (ev.descriptorId !== undefined && ev.descriptorId !== currentKey) {
            nextKey ??= ev.descriptorId;
            if (ev.descriptorId === nextKey) d.next = true;
          }
        } else if (ev.action === 'UPLOADED') {
          d.answers++;
        } else if (ev.action === 'FAILED') {
          d.answers++;
          if (nextKey !== undefined && ev.descriptorId === nextKey) d.nextRefused = true;
        } else {
          return;
        }
        check();
      });
      timer = this.#o.timers.setTimeout(() => {
        timer = undefined;
        finish(true);
      }, this.#o.uploadTimeoutMs ?? 20_000);
    });
    return { done, cancel };
  }

  /** HSFETCH from one HSDir; the HS_DESC_CONTENT answer, or undefined (failed, empty, timed out). */
  async #fetch(fp: string): Promise<HsDescContentEvent | undefined> {
    let off: (() => void) | undefined;
    let timer: TimerHandle | undefined;
    const answer = new Promise<HsDescContentEvent | undefined>((resolve) => {
      off = this.#o.control.onEvent('HS_DESC_CONTENT', (e: ControlEvent) => {
        let c: HsDescContentEvent;
        try {
          c = parseHsDescContent(e);
        } catch (err) {
          if (err instanceof DecodeError) return;
          throw err;
        }
        if (c.address !== this.#label || c.hsDir?.fingerprint !== fp) return;
        resolve(c.descriptor === '' ? undefined : c);
      });
      timer = this.#o.timers.setTimeout(() => {
        timer = undefined;
        resolve(undefined);
      }, this.#o.fetchTimeoutMs ?? 20_000);
    });
    try {
      await this.#o.control.hsFetch(this.#label, [fp]);
      return await answer;
    } finally {
      off?.();
      if (timer !== undefined) this.#o.timers.clearTimeout(timer);
    }
  }
}

