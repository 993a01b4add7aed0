/**
 * Test doubles for src/node/publisher: a fake clock/timer queue, a fake control port that
 * records HSPOSTs and answers with scripted HS_DESC events, synthetic intro points and a
 * synthetic network (ring members + SRVs) for the hash ring.
 */
import { pino } from 'pino';
import type { TimerHandle, Timers } from '../../../src/adapters/system/timers.js';
import { toHex } from '../../../src/core/bytes.js';
import { x25519PublicKey } from '../../../src/core/crypto/index.js';
import type { HsdirRelay, RingConsensus } from '../../../src/core/hs/hashring.js';
import {
  ed25519IdLinkSpecifier,
  ipv4LinkSpecifier,
  legacyIdLinkSpecifier,
} from '../../../src/core/hsdesc/link-specifiers.js';
import { checkOuterLayer, parseOuterLayer } from '../../../src/core/hsdesc/outer.js';
import type { RandomBytes } from '../../../src/core/random.js';
import { toBase64NoPad } from '../../../src/core/bytes.js';
import type { ControlEvent } from '../../../src/core/torctl/reply.js';
import type { PublisherControl } from '../../../src/node/publisher/control.js';
import type { NetworkSnapshot, NetworkSource } from '../../../src/node/publisher/publisher.js';
import { introPointToWire, type IntroPointWire } from '../../../src/core/intro/wire.js';

export const silentLogger = pino({ level: 'silent' });

/** Deterministic random bytes (xorshift32 per instance). */
export function seededRandom(seed: number): RandomBytes {
  let x = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  };
}

/** Let pending promise chains run (several macrotask turns). */
export async function flush(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

/** A fake clock: `wallMs` (Date.now-like) and a timer queue, both advanced by {@link advance}. */
export class FakeClock implements Timers {
  #mono = 0;
  wallMs: number;
  #seq = 0;
  readonly #q = new Set<Pending>();

  constructor(wallMs: number) {
    this.wallMs = wallMs;
  }

  now(): number {
    return this.#mono;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const p: Pending = { at: this.#mono + Math.max(0, ms), seq: this.#seq++, fn };
    this.#q.add(p);
    return p;
  }

  clearTimeout(h: TimerHandle): void {
    this.#q.delete(h as Pending);
  }

  /** Pending timers. */
  get pending(): number {
    return this.#q.size;
  }

  /** Advance by `ms`, running due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const target = this.#mono + ms;
    await flush();
    for (;;) {
      const next = [...this.#q].filter((p) => p.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.#q.delete(next);
      this.wallMs += next.at - this.#mono;
      this.#mono = next.at;
      next.fn();
      await flush();
    }
    this.wallMs += target - this.#mono;
    this.#mono = target;
    await flush();
  }
}

function event(line: string): ControlEvent {
  return { type: line.split(' ')[0]!, lines: [line], raw: `650 ${line}`, reply: { status: 650, lines: [{ status: 650, separator: ' ', text: line }] } };
}

/** A recorded HSPOST. */
export interface RecordedPost {
  readonly text: string;
  readonly servers: readonly string[];
  readonly hsAddress: string;
  readonly wallMs: number;
}

/** What the fake HSDir answers: 'ok', a FAILED reason, or 'silent'. */
export type HsdirAnswer = 'ok' | 'silent' | { readonly failed: string };

/**
 * What an HSDir answers to HSFETCH: 'store' (what it holds: RECEIVED + content, or NOT_FOUND),
 * 'silent', a FAILED reason, or this descriptor text (RECEIVED + content).
 */
export type FetchAnswer = 'store' | 'silent' | { readonly failed: string } | { readonly text: string };

/** A recorded HSFETCH. */
export interface RecordedFetch {
  readonly address: string;
  readonly servers: readonly string[];
  readonly wallMs: number;
}

/** A multi-line event (`650+TYPE args` + data block + `650 OK`). */
export function dataEvent(line: string, data: string): ControlEvent {
  return {
    type: line.split(' ')[0]!,
    lines: [line, 'OK'],
    raw: `650+${line}\r\n${data}\r\n.\r\n650 OK`,
    reply: {
      status: 650,
      lines: [
        { status: 650, separator: '+', text: line, data },
        { status: 650, separator: ' ', text: 'OK' },
      ],
    },
  };
}

/** A fake control port. */
export class FakeControl implements PublisherControl {
  readonly posts: RecordedPost[] = [];
  readonly fetches: RecordedFetch[] = [];
  /** What each fake HSDir stores: fp → blinded key → { text, counter } (highest counter wins). */
  readonly store = new Map<string, Map<string, { text: string; counter: bigint }>>();
  /** Blinded keys ever posted (a fetch answers for each; the publisher filters its own). */
  readonly keys = new Set<string>();
  /** Answer per HSDir to HSFETCH number `fetchIndex`. */
  fetchAnswer: (fp: string, fetchIndex: number) => FetchAnswer = () => 'store';
  /** Make hsFetch reject. */
  hsFetchError: Error | undefined;
  readonly setConfs: (readonly (readonly [string, string | null])[])[] = [];
  readonly closed: string[] = [];
  readonly requests: string[] = [];
  readonly #listeners = new Map<string, Set<(e: ControlEvent) => void>>();
  /** Answer per HSDir for the next posts (consumed per post if a function). */
  answer: (fp: string, postIndex: number) => HsdirAnswer = () => 'ok';
  /** Make hsPost reject. */
  hsPostError: Error | undefined;
  getInfoImpl: (key: string) => Promise<string> = () => Promise.reject(new Error('no getinfo'));
  getconfValue = 'PublishHidServDescriptors=1';
  readonly clock: FakeClock | undefined;

  constructor(clock?: FakeClock) {
    this.clock = clock;
  }

  getInfo(key: string): Promise<string> {
    return this.getInfoImpl(key);
  }

  async hsPost(text: string, opts: { hsAddress: string; servers: readonly string[] }): Promise<void> {
    await Promise.resolve();
    if (this.hsPostError !== undefined) throw this.hsPostError;
    const idx = this.posts.length;
    this.posts.push({ text, servers: [...opts.servers], hsAddress: opts.hsAddress, wallMs: this.clock?.wallMs ?? 0 });
    // Answers arrive after the 250 reply, like tor's.
    const outer = checkOuterLayer(parseOuterLayer(text), { nowSeconds: Math.floor((this.clock?.wallMs ?? Date.now()) / 1000) });
    const key = toBase64NoPad(outer.blindedPublicKey);
    this.keys.add(key);
    setImmediate(() => {
      for (const fp of opts.servers) {
        const a = this.answer(fp, idx);
        if (a === 'silent') continue;
        if (a === 'ok') {
          let m = this.store.get(fp);
          if (m === undefined) this.store.set(fp, (m = new Map()));
          const held = m.get(key);
          if (held === undefined || held.counter < outer.revisionCounter) m.set(key, { text, counter: outer.revisionCounter });
          this.emit(`HS_DESC UPLOADED ${opts.hsAddress} UNKNOWN $${fp}~relay`);
        }
        else this.emit(`HS_DESC FAILED ${opts.hsAddress} NO_AUTH $${fp}~relay ${key} REASON=${a.failed}`);
      }
    });
  }

  async hsFetch(address: string, servers: readonly string[]): Promise<void> {
    await Promise.resolve();
    if (this.hsFetchError !== undefined) throw this.hsFetchError;
    const idx = this.fetches.length;
    this.fetches.push({ address, servers: [...servers], wallMs: this.clock?.wallMs ?? 0 });
    setImmediate(() => {
      for (const fp of servers) {
        const a = this.fetchAnswer(fp, idx);
        if (a === 'silent') continue;
        for (const key of this.keys) {
          const text = a === 'store' ? this.store.get(fp)?.get(key)?.text : 'text' in a ? a.text : undefined;
          const failed = a !== 'store' && 'failed' in a ? a.failed : text === undefined ? 'NOT_FOUND' : undefined;
          if (failed === undefined && text !== undefined) {
            this.emit(`HS_DESC RECEIVED ${address} NO_AUTH $${fp}~relay ${key}`);
            this.emitEvent(dataEvent(`HS_DESC_CONTENT ${address} ${key} $${fp}~relay`, text.replace(/\n$/, '')));
          } else {
            this.emit(`HS_DESC FAILED ${address} NO_AUTH $${fp}~relay ${key} REASON=${failed ?? 'UNEXPECTED'}`);
            this.emitEvent(dataEvent(`HS_DESC_CONTENT ${address} ${key} $${fp}~relay`, ''));
          }
        }
      }
    });
  }

  setConf(entries: readonly (readonly [string, string | null])[]): Promise<void> {
    this.setConfs.push(entries);
    return Promise.resolve();
  }

  closeCircuit(id: string): Promise<void> {
    this.closed.push(id);
    return Promise.resolve();
  }

  request(line: string): Promise<{ status: number; lines: { text: string }[] }> {
    this.requests.push(line);
    return Promise.resolve({ status: 250, lines: [{ text: this.getconfValue }] });
  }

  onEvent(type: string, listener: (e: ControlEvent) => void): () => void {
    let s = this.#listeners.get(type);
    if (s === undefined) {
      s = new Set();
      this.#listeners.set(type, s);
    }
    s.add(listener);
    const set = s;
    return () => set.delete(listener);
  }

  /** Deliver an event line (without "650 "). */
  emit(line: string): void {
    this.emitEvent(event(line));
  }

  /** Deliver an event. */
  emitEvent(e: ControlEvent): void {
    for (const l of this.#listeners.get(e.type) ?? []) l(e);
  }

  listenerCount(type: string): number {
    return this.#listeners.get(type)?.size ?? 0;
  }
}

/** A synthetic intro point (valid keys, IPv4 + legacy id + ed25519 id link specifiers). */
export function makeIntroPoint(rnd: RandomBytes, n: number): IntroPointWire {
  return introPointToWire({
    linkSpecifiers: [
      ipv4LinkSpecifier(`10.0.${(n >> 8) & 255}.${n & 255}`, 9000 + (n % 1000)),
      legacyIdLinkSpecifier(rnd(20)),
      ed25519IdLinkSpecifier(rnd(32)),
    ],
    onionKey: x25519PublicKey(rnd(32)),
    authKey: rnd(32),
    encKey: x25519PublicKey(rnd(32)),
  });
}

/** `count` intro points. */
export function makeIntroPoints(rnd: RandomBytes, count: number, base = 0): IntroPointWire[] {
  return Array.from({ length: count }, (_, i) => makeIntroPoint(rnd, base + i));
}

/** Synthetic HSDir ring members. */
export function makeRelays(rnd: RandomBytes, count: number): HsdirRelay[] {
  return Array.from({ length: count }, (_, i) => ({
    rsaFingerprint: toHex(rnd(20)).toUpperCase(),
    ed25519Id: rnd(32),
    nickname: `relay${i}`,
  }));
}

/** A mutable fake network source (test network schedule: voting interval 10 s). */
export class FakeNetwork implements NetworkSource {
  consensus: RingConsensus;
  relays: HsdirRelay[];
  reads = 0;
  error: Error | undefined;

  constructor(validAfter: number, relays: HsdirRelay[], srvCurrent: Uint8Array, srvPrevious: Uint8Array) {
    this.relays = relays;
    this.consensus = {
      validAfter,
      votingIntervalSeconds: 10,
      params: new Map(),
      sharedRandCurrent: { value: srvCurrent },
      sharedRandPrevious: { value: srvPrevious },
    };
  }

  setValidAfter(va: number): void {
    this.consensus = { ...this.consensus, validAfter: va };
  }

  setSrvs(current: Uint8Array, previous: Uint8Array): void {
    this.consensus = { ...this.consensus, sharedRandCurrent: { value: current }, sharedRandPrevious: { value: previous } };
  }

  read(): Promise<NetworkSnapshot> {
    this.reads++;
    if (this.error !== undefined) return Promise.reject(this.error);
    return Promise.resolve({ consensus: this.consensus, relays: this.relays });
  }
}

