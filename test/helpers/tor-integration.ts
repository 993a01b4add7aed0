/**
 * Shared utilities for the "real tor underneath" integration tests (hash ring, descriptor
 * decryption, HSPOST publication, period roll-over) against the shared private network of
 * test/integration/global-setup.ts:
 *
 * - {@link waitUntil}: poll a condition with a deadline (never a fixed sleep);
 * - {@link EventRecorder}: a dedicated control connection that records events (with arrival
 *   times) and lets a test wait for one after a mark;
 * - {@link readNetworkView}: the microdesc consensus and microdescriptors a tor holds
 *   (adapters/tor/consensus-feed.ts), parsed, with the HSDir ring members and tor's descriptor
 *   plan (`node_set_hsdir_index` periods/SRVs, core/hs/hashring.ts);
 * - {@link serviceDescriptor}: `GETINFO hs/service/desc/id/<addr>` decoded with our core, once
 *   the revision counter is set and intro points are listed (torlab pitfall 3);
 * - {@link introCircuits}: `GETINFO circuit-status` intro circuits (PURPOSE=HS_SERVICE_INTRO);
 * - {@link startObSelfService}: an onion service with `PublishHidServDescriptors 0` and
 *   `HiddenServiceOnionBalanceInstance 1` whose ob_config names its own address (tor-facts §4);
 * - {@link publishDescriptors}: our publisher in miniature: build both descriptors
 *   (first/second, tor-facts §2.11) with the service's intro points, HSPOST each to the HSDirs
 *   our ring computes, and track `HS_DESC UPLOADED/FAILED` per HSDir with a timeout.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import {
  fetchAllMicrodescriptors,
  fetchConsensusValidAfter,
  fetchMicrodescConsensus,
} from '../../src/adapters/tor/consensus-feed.js';
import { TorControl, type ControlEndpoint, type ControlEvent } from '../../src/adapters/tor/control.js';
import type { TorProcess } from '../../src/adapters/tor/process.js';
import {
  startTestnetService,
  type StartedNode,
  type TestnetServiceInfo,
  type TestnetServiceSpec,
} from '../../src/adapters/tor/testnet.js';
import { toBase64NoPad, toHex } from '../../src/core/bytes.js';
import {
  descriptorTargets,
  hsdirIndex,
  ringPeriodParams,
  type DescriptorTarget,
  type DescriptorTargets,
  type HsdirRelay,
} from '../../src/core/hs/hashring.js';
import { encodeTorKeyFiles, HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { revisionCounterFor } from '../../src/core/hs/revision-counter.js';
import type { TimePeriodParams } from '../../src/core/hs/time-period.js';
import {
  buildDescriptor,
  decodeDescriptor,
  introPointInputFrom,
  type DecodedDescriptor,
} from '../../src/core/hsdesc/descriptor.js';
import type { FlowControl, IntroPoint } from '../../src/core/hsdesc/inner.js';
import { LS_LEGACY_ID } from '../../src/core/hsdesc/link-specifiers.js';
import {
  hsdirRelays,
  parseMicrodescConsensus,
  parseMicrodescriptors,
  type Consensus,
} from '../../src/core/netdoc/consensus.js';
import { parseCirc, parseHsDesc, type CircEvent, type HsDescEvent } from '../../src/core/torctl/events.js';
import { sharedTestnet, stopAdded, uniqueNickname } from './testnet.js';

/** Wall clock in unix seconds (the tors run on this machine's clock). */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Milliseconds → "12.3s". */
export function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** Format unix seconds as `HH:MM:SS` UTC for logs. */
export function hms(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().slice(11, 19);
}

/**
 * Poll `poll` every `intervalMs` until it returns a value other than undefined, or throw
 * after `timeoutMs` naming `what` and the last error.
 */
export async function waitUntil<T>(
  what: string,
  poll: () => Promise<T | undefined> | T | undefined,
  opts: { readonly timeoutMs: number; readonly intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await poll();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? ` (last error: ${last.message})` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
  }
}

/** One recorded event. */
export interface RecordedEvent {
  /** Date.now() when it arrived. */
  readonly at: number;
  readonly event: ControlEvent;
}

/**
 * A control connection of its own (SETEVENTS replaces a connection's subscription, so each
 * recorder has one) that keeps every event of the subscribed types.
 */
export class EventRecorder {
  readonly control: TorControl;
  readonly events: RecordedEvent[] = [];
  readonly #waiters = new Set<() => void>();

  private constructor(control: TorControl) {
    this.control = control;
  }

  /** Connect to `endpoint` and subscribe to `types`. */
  static async open(endpoint: ControlEndpoint, types: readonly string[]): Promise<EventRecorder> {
    const control = await TorControl.connect(endpoint);
    const r = new EventRecorder(control);
    for (const t of types) {
      control.onEvent(t, (event) => {
        r.events.push({ at: Date.now(), event });
        for (const w of r.#waiters) w();
      });
    }
    await control.setEvents(types);
    return r;
  }

  /** Index to pass as `since` to only consider events from now on. */
  mark(): number {
    return this.events.length;
  }

  /** Parsed HS_DESC events (from index `since`), with arrival times. */
  hsDesc(since = 0): { at: number; ev: HsDescEvent }[] {
    const out: { at: number; ev: HsDescEvent }[] = [];
    for (const r of this.events.slice(since)) {
      if (r.event.type !== 'HS_DESC') continue;
      out.push({ at: r.at, ev: parseHsDesc(r.event) });
    }
    return out;
  }

  /**
   * Resolve with `match`'s first non-undefined result over the events from `since` on
   * (already recorded ones included); reject after `timeoutMs`.
   */
  async waitFor<T>(
    what: string,
    match: (e: RecordedEvent, index: number) => T | undefined,
    opts: { readonly since?: number; readonly timeoutMs: number },
  ): Promise<T> {
    let next = opts.since ?? 0;
    const scan = (): T | undefined => {
      for (; next < this.events.length; next++) {
        const v = match(this.events[next]!, next);
        if (v !== undefined) return v;
      }
      return undefined;
    };
    const now = scan();
    if (now !== undefined) return now;
    return new Promise<T>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      const check = (): void => {
        try {
          const v = scan();
          if (v !== undefined) {
            done();
            resolve(v);
          }
        } catch (e) {
          done();
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}`));
      }, opts.timeoutMs);
      this.#waiters.add(check);
    });
  }

  async close(): Promise<void> {
    this.#waiters.clear();
    await this.control.close().catch(() => undefined);
  }
}

/** The HS_DESC event in a recorded event, parsed (undefined for other types). */
export function hsDescOf(r: RecordedEvent): HsDescEvent | undefined {
  return r.event.type === 'HS_DESC' ? parseHsDesc(r.event) : undefined;
}

/** What a tor knows about the network, parsed, plus tor's descriptor plan for it. */
export interface NetworkView {
  readonly consensusText: string;
  readonly microdescText: string;
  readonly consensus: Consensus;
  /** HSDir ring members (HSDir flag, HSDir=2, ed25519 id known). */
  readonly relays: readonly HsdirRelay[];
  /** TestingTorNetwork schedule derived from the consensus (24 voting intervals). */
  readonly periodParams: TimePeriodParams;
}

/** Fetch and parse the consensus + microdescriptors `ctl`'s tor holds. */
export async function readNetworkView(ctl: TorControl): Promise<NetworkView> {
  const consensusText = await fetchMicrodescConsensus(ctl);
  const microdescText = await fetchAllMicrodescriptors(ctl);
  const consensus = parseMicrodescConsensus(consensusText);
  const mds = parseMicrodescriptors(microdescText, { onInvalid: 'skip' });
  const relays = hsdirRelays(consensus, mds);
  return {
    consensusText,
    microdescText,
    consensus,
    relays,
    periodParams: ringPeriodParams(consensus, true),
  };
}

/**
 * {@link readNetworkView} once `ctl`'s tor has a consensus and at least `minRelays` ring
 * members (a freshly started tor has neither for a few seconds).
 */
export async function waitForNetworkView(
  ctl: TorControl,
  opts: { readonly minRelays?: number; readonly timeoutMs?: number } = {},
): Promise<NetworkView> {
  return waitUntil(
    'a consensus with microdescriptors',
    async () => {
      const v = await readNetworkView(ctl);
      return v.relays.length >= (opts.minRelays ?? 1) ? v : undefined;
    },
    { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 500 },
  );
}

/** The two descriptors tor would upload for `identity` under `view` (core/hs/hashring.ts). */
export function targetsFor(view: NetworkView, identityPublicKey: Uint8Array): DescriptorTargets {
  return descriptorTargets(view.consensus, identityPublicKey, {
    relays: view.relays,
    periodParams: view.periodParams,
  });
}

/** A plan's identity: periods and SRVs of both descriptors (changes only at an SR-run start). */
export function planKey(t: DescriptorTargets): string {
  const s = (d: DescriptorTarget): string =>
    `${d.periodNum}/${d.srvSource}/${toHex(d.srv).slice(0, 16)}`;
  return `${t.plan.periodParams.lengthMinutes}:${s(t.descriptors[0])}|${s(t.descriptors[1])}`;
}

/** Blinded key as tor prints it in HS_DESC events (base64 without padding, 43 chars). */
export function blindedB64(key: Uint8Array): string {
  return toBase64NoPad(key);
}

/** `consensus/valid-after` as unix seconds (tor prints `YYYY-MM-DD HH:MM:SS` UTC). */
export async function consensusValidAfter(ctl: TorControl): Promise<number | undefined> {
  const v = await fetchConsensusValidAfter(ctl);
  if (v === undefined) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(v);
  if (m === null) throw new Error(`unexpected consensus/valid-after ${JSON.stringify(v)}`);
  return (
    Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) / 1000
  );
}

/** Upper-case hex RSA fingerprints of an intro point's legacy-id link specifiers. */
export function legacyIds(ip: IntroPoint): string[] {
  return ip.linkSpecifiers
    .filter((l) => l.type === LS_LEGACY_ID)
    .map((l) => toHex(l.data).toUpperCase());
}

/** The (single) legacy id of each intro point, sorted. */
export function introPointRelays(d: DecodedDescriptor): string[] {
  return d.introPoints.map((ip) => {
    const ids = legacyIds(ip);
    if (ids.length !== 1) throw new Error(`intro point with ${ids.length} legacy-id link specifiers`);
    return ids[0]!;
  }).sort();
}

/** Circuits of `GETINFO circuit-status` (each line parsed as a CIRC event). */
export async function circuitStatus(ctl: TorControl): Promise<CircEvent[]> {
  const text = await ctl.getInfo('circuit-status');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => parseCirc(`CIRC ${l}`));
}

/** Intro circuits of a service (PURPOSE=HS_SERVICE_INTRO), optionally only established ones. */
export async function introCircuits(
  ctl: TorControl,
  opts: { readonly address?: string; readonly established?: boolean } = {},
): Promise<CircEvent[]> {
  return (await circuitStatus(ctl)).filter(
    (c) =>
      c.purpose === 'HS_SERVICE_INTRO' &&
      c.status === 'BUILT' &&
      (opts.established !== true || c.hsState === 'HSSI_ESTABLISHED') &&
      (opts.address === undefined || c.rendQuery === opts.address),
  );
}

/** Last hop (intro point) fingerprint of a circuit. */
export function lastHop(c: CircEvent): string {
  const h = c.path[c.path.length - 1];
  if (h === undefined) throw new Error(`circuit ${c.id} has an empty path`);
  return h.fingerprint;
}

/** A service's current descriptor from GETINFO, decoded with our core. */
export interface ServiceDescriptor {
  readonly text: string;
  readonly decoded: DecodedDescriptor;
  readonly intro: string[];
}

/**
 * `GETINFO hs/service/desc/id/<addr>` decoded with the identity public key, or undefined while
 * its revision counter is 0 or it lists fewer than `minIntroPoints` intro points.
 */
export async function readServiceDescriptor(
  ctl: TorControl,
  address: string,
  identityPublicKey: Uint8Array,
  periodParams: TimePeriodParams,
  minIntroPoints = 1,
): Promise<ServiceDescriptor | undefined> {
  const text = (await ctl.getInfo(`hs/service/desc/id/${address}`)) + '\n';
  const decoded = decodeDescriptor(text, { identityPublicKey, periodParams, nowSeconds: nowSeconds() });
  if (decoded.revisionCounter === 0n || decoded.introPoints.length < minIntroPoints) return undefined;
  return { text, decoded, intro: introPointRelays(decoded) };
}

/**
 * `GETINFO hs/service/desc/id/<addr>` decoded with the identity public key, once it has a
 * non-zero revision counter and at least `minIntroPoints` intro points (tor sets both at its
 * first, possibly suppressed, upload attempt; torlab pitfall 3). `accept` can demand more
 * (e.g. that its intro points are established circuits).
 */
export async function serviceDescriptor(
  ctl: TorControl,
  address: string,
  identityPublicKey: Uint8Array,
  periodParams: TimePeriodParams,
  opts: {
    readonly timeoutMs?: number;
    readonly minIntroPoints?: number;
    readonly accept?: (d: ServiceDescriptor) => Promise<boolean> | boolean;
  } = {},
): Promise<ServiceDescriptor> {
  return waitUntil(
    `a published-ready descriptor of ${address.slice(0, 12)}…`,
    async () => {
      const d = await readServiceDescriptor(
        ctl,
        address,
        identityPublicKey,
        periodParams,
        opts.minIntroPoints ?? 1,
      );
      if (d === undefined) return undefined;
      if (opts.accept !== undefined && !(await opts.accept(d))) return undefined;
      return d;
    },
    { timeoutMs: opts.timeoutMs ?? 90_000, intervalMs: 500 },
  );
}

const started: TorProcess[] = [];
const recorders: EventRecorder[] = [];

/**
 * Start an onion service in the shared network with an {@link EventRecorder} on its control
 * port that subscribes as soon as the control port is up (before intro circuits exist, so
 * the service's first CREATED/UPLOAD events are seen). Stopped by {@link cleanupTors}.
 */
export async function startRecordedService(
  spec: TestnetServiceSpec,
  types: readonly string[] = ['HS_DESC'],
): Promise<{ node: StartedNode<TestnetServiceInfo>; recorder: EventRecorder }> {
  let opening: Promise<EventRecorder> | undefined;
  const node = await startTestnetService(
    sharedTestnet(),
    { ...spec, nickname: spec.nickname ?? uniqueNickname('hsf') },
    {
      owned: true,
      onProcess: (_n, p) => {
        started.push(p);
        const off = p.on('ready', () => {
          off();
          opening = EventRecorder.open(p.controlEndpoint, types);
          void opening.then((r) => recorders.push(r)).catch(() => undefined);
        });
      },
    },
  );
  if (opening === undefined) throw new Error('service became ready without a ready event');
  return { node, recorder: await opening };
}

/** Open a recorder that {@link cleanupTors} closes. */
export async function openRecorder(
  endpoint: ControlEndpoint,
  types: readonly string[],
): Promise<EventRecorder> {
  const r = await EventRecorder.open(endpoint, types);
  recorders.push(r);
  return r;
}

/** Close every recorder and stop every tor started by these helpers (and test/helpers/testnet.ts). */
export async function cleanupTors(): Promise<void> {
  await Promise.all(recorders.splice(0).map((r) => r.close()));
  await Promise.all(started.splice(0).map((p) => p.stop()));
  await stopAdded();
}

/** An onion service in OB-self mode that does not publish (we publish for it). */
export interface ObSelfService {
  readonly node: StartedNode<TestnetServiceInfo>;
  /** Our copy of its identity (generated here, handed to tor as key files). */
  readonly identity: HsIdentityKeypair;
  /** HS_DESC events of the service's tor (HSPOST's UPLOADED/FAILED land here). */
  readonly recorder: EventRecorder;
}

/**
 * Start an onion service with `PublishHidServDescriptors 0` and
 * `HiddenServiceOnionBalanceInstance 1`, `ob_config` naming its own address (both before tor
 * starts; tor-facts §1.8/§4), forwarding port 80 to `target`. The identity is generated here
 * and written as tor's key files. Stopped by {@link cleanupTors}.
 */
export async function startObSelfService(target: {
  host: string;
  port: number;
}): Promise<ObSelfService> {
  const identity = HsIdentityKeypair.generate(systemRandomBytes);
  const files = encodeTorKeyFiles(identity);
  const { node, recorder } = await startRecordedService({
    target,
    publishDescriptors: false,
    onionBalanceMaster: identity.label,
    hiddenServiceFiles: {
      hs_ed25519_secret_key: files.secretKeyFile,
      hs_ed25519_public_key: files.publicKeyFile,
      hostname: files.hostnameFile,
    },
  }, ['HS_DESC']);
  if (node.info.address !== identity.label) {
    throw new Error(`tor serves ${node.info.address}, expected ${identity.label}`);
  }
  return { node, identity, recorder };
}

/** Outcome of one HSPOST. */
export interface PostResult {
  readonly descriptor: 'first' | 'second';
  readonly periodNum: number;
  readonly blindedKey: string;
  readonly revisionCounter: bigint;
  /** HSDirs posted to (upper-case fingerprints, ring order). */
  readonly servers: readonly string[];
  readonly uploaded: readonly string[];
  readonly failed: readonly { readonly hsdir: string; readonly reason: string }[];
  /** HSDirs that gave no answer before the timeout (tor emits nothing on connection failure). */
  readonly silent: readonly string[];
  readonly buildMs: number;
  /** From sending HSPOST to the last answer (or the timeout). */
  readonly uploadMs: number;
  readonly postedAt: number;
}

/** Arguments of {@link publishDescriptors}. */
export interface PublishInput {
  /** Control connection that sends HSPOST. */
  readonly control: TorControl;
  /** Recorder of HS_DESC events on the same tor. */
  readonly recorder: EventRecorder;
  readonly identity: HsIdentityKeypair;
  readonly targets: DescriptorTargets;
  /** The intro points to list (taken from the service's GETINFO descriptor). */
  readonly introPoints: readonly IntroPoint[];
  readonly flowControl?: FlowControl | undefined;
  readonly uploadTimeoutMs?: number;
}

/**
 * Build both descriptors (tor's desc_current/desc_next: `targets.descriptors`) with our core
 * (revision counter per revision-counter.ts at the current time) and HSPOST each to its own
 * HSDirs, one after the other (UPLOADED events carry no blinded key, so posts to
 * overlapping HSDir sets are told apart by time), waiting for UPLOADED/FAILED from every
 * HSDir or the timeout.
 */
export async function publishDescriptors(input: PublishInput): Promise<PostResult[]> {
  const out: PostResult[] = [];
  const len = input.targets.plan.periodParams.lengthMinutes;
  const expanded = input.identity.expandedSecretKey;
  try {
    for (const t of input.targets.descriptors) {
      const t0 = performance.now();
      const blinded = input.identity.blind(t.periodNum, len);
      const now = nowSeconds();
      const revisionCounter = revisionCounterFor({
        periodNum: t.periodNum,
        params: input.targets.plan.periodParams,
        nowSeconds: now,
        blindedExpandedSecretKey: blinded.expandedSecretKey,
      });
      const built = buildDescriptor({
        identity: { expandedSecretKey: expanded, publicKey: input.identity.publicKey },
        periodNum: t.periodNum,
        periodLengthMinutes: len,
        revisionCounter,
        nowSeconds: now,
        introPoints: input.introPoints.map(introPointInputFrom),
        flowControl: input.flowControl,
        randomBytes: systemRandomBytes,
      });
      const buildMs = performance.now() - t0;
      const b64 = blindedB64(built.blindedPublicKey);
      if (b64 !== blindedB64(t.blindedPublicKey)) throw new Error('built descriptor has another blinded key than the ring target');
      const servers = t.hsdirs.map((h) => h.rsaFingerprint);
      const pending = new Set(servers);
      const uploaded: string[] = [];
      const failed: { hsdir: string; reason: string }[] = [];
      const since = input.recorder.mark();
      const postedAt = Date.now();
      await input.control.hsPost(built.text, { hsAddress: input.identity.label, servers });
      await input.recorder
        .waitFor(
          `HS_DESC UPLOADED/FAILED from ${servers.length} HSDirs`,
          (r) => {
            if (r.event.type !== 'HS_DESC') return undefined;
            const ev = parseHsDesc(r.event);
            if (ev.address !== input.identity.label || ev.hsDir === undefined) return undefined;
            const fp = ev.hsDir.fingerprint;
            if (!pending.has(fp)) return undefined;
            if (ev.action === 'UPLOADED') {
              pending.delete(fp);
              uploaded.push(fp);
            } else if (ev.action === 'FAILED') {
              pending.delete(fp);
              failed.push({ hsdir: fp, reason: ev.reason ?? 'UNKNOWN' });
            }
            return pending.size === 0 ? true : undefined;
          },
          { since, timeoutMs: input.uploadTimeoutMs ?? 30_000 },
        )
        .catch(() => undefined);
      out.push({
        descriptor: t.descriptor,
        periodNum: t.periodNum,
        blindedKey: b64,
        revisionCounter,
        servers,
        uploaded,
        failed,
        silent: [...pending],
        buildMs,
        uploadMs: Date.now() - postedAt,
        postedAt,
      });
    }
  } finally {
    expanded.fill(0);
  }
  return out;
}

/** One line per post for the test log. */
export function describePosts(posts: readonly PostResult[]): string {
  return posts
    .map(
      (p) =>
        `${p.descriptor} tp=${p.periodNum} rev=${p.revisionCounter} build=${p.buildMs.toFixed(0)}ms ` +
        `uploaded ${p.uploaded.length}/${p.servers.length} in ${p.uploadMs}ms` +
        (p.failed.length > 0 ? ` FAILED ${p.failed.map((f) => f.reason).join(',')}` : '') +
        (p.silent.length > 0 ? ` silent ${p.silent.length}` : ''),
    )
    .join('; ');
}

/** One publication round of {@link TestPublisher}. */
export interface PublishRound {
  readonly at: number;
  /** Consensus valid-after the round was computed from. */
  readonly validAfter: number;
  readonly reason: string;
  readonly planKey: string;
  readonly intro: readonly string[];
  readonly posts: readonly PostResult[];
}

/**
 * The publisher in miniature, for an {@link ObSelfService}: every second it looks at the
 * service tor's consensus and its `GETINFO` descriptor, and whenever the descriptor plan
 * (periods/SRVs; changes at each SR-run start) or the intro-point set (changes when tor
 * rotates its descriptors and closes desc_current's intro circuits) differs from what it last
 * published, it builds and HSPOSTs both descriptors again ({@link publishDescriptors}).
 */
export class TestPublisher {
  readonly rounds: PublishRound[] = [];
  readonly errors: string[] = [];
  /** Highest consensus valid-after at which a round found everything already published. */
  idleValidAfter = 0;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #lastPostSecond = 0;
  readonly #svc: ObSelfService;

  constructor(svc: ObSelfService) {
    this.#svc = svc;
  }

  /** stop() was called. */
  isStopped(): boolean {
    return this.#stopped;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }

  /** Resolve once a round at consensus valid-after ≥ `validAfter` had nothing to publish. */
  async settledAt(validAfter: number, timeoutMs: number): Promise<void> {
    await waitUntil(
      `the publisher to be up to date at valid-after ${hms(validAfter)}`,
      () => (this.idleValidAfter >= validAfter ? true : undefined),
      { timeoutMs, intervalMs: 250 },
    );
  }

  async #run(): Promise<void> {
    const { node, identity, recorder } = this.#svc;
    const ctl = recorder.control;
    const address = node.info.address;
    let lastVa: number | undefined;
    let view: NetworkView | undefined;
    let published: { plan: string; intro: string } | undefined;
    while (!this.isStopped()) {
      try {
        const va = await consensusValidAfter(ctl);
        if (va !== undefined && (va !== lastVa || view === undefined)) {
          view = await readNetworkView(ctl);
          lastVa = view.consensus.validAfter;
        }
        if (view !== undefined && lastVa !== undefined) {
          const targets = targetsFor(view, identity.publicKey);
          const plan = planKey(targets);
          const desc = await readServiceDescriptor(ctl, address, identity.publicKey, view.periodParams, 3);
          if (desc !== undefined) {
            const intro = desc.intro.join(',');
            if (published === undefined || published.plan !== plan || published.intro !== intro) {
              // Revision counters are per second: a repost within the same second would not be higher.
              while (nowSeconds() <= this.#lastPostSecond) await new Promise((r) => setTimeout(r, 100));
              this.#lastPostSecond = nowSeconds();
              const reason =
                published === undefined
                  ? 'initial'
                  : [published.plan !== plan ? 'plan' : '', published.intro !== intro ? 'intro points' : '']
                      .filter((x) => x !== '')
                      .join('+');
              const posts = await publishDescriptors({
                control: ctl,
                recorder,
                identity,
                targets,
                introPoints: desc.decoded.introPoints,
                flowControl: desc.decoded.inner.flowControl,
              });
              this.rounds.push({ at: Date.now(), validAfter: lastVa, reason, planKey: plan, intro: desc.intro, posts });
              published = { plan, intro };
            } else {
              this.idleValidAfter = Math.max(this.idleValidAfter, lastVa);
            }
          }
        }
      } catch (e) {
        this.errors.push(e instanceof Error ? e.message : String(e));
      }
      const until = Date.now() + 1000;
      while (!this.isStopped() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Compare tor's first round of `HS_DESC UPLOAD` events for one descriptor with our ring target: the same
 * HSDirs in the same order, each with our hsdir_index for the target's (SRV, period).
 * Returns the differences (empty when they agree).
 */
export function uploadMismatches(
  uploads: readonly HsDescEvent[],
  target: DescriptorTarget,
  periodLengthMinutes: number,
): string[] {
  const key = blindedB64(target.blindedPublicKey);
  // The first upload round only (tor re-uploads when intro points change).
  const ups = uploads
    .filter((e) => e.action === 'UPLOAD' && e.descriptorId === key)
    .slice(0, target.hsdirs.length);
  const problems: string[] = [];
  const theirs = ups.map((e) => e.hsDir?.nickname ?? '?').join(',');
  const ours = target.hsdirs.map((h) => h.nickname ?? h.rsaFingerprint).join(',');
  if (theirs !== ours) problems.push(`${target.descriptor}: tor uploaded to [${theirs}], our ring says [${ours}]`);
  for (const e of ups) {
    const relay = target.hsdirs.find((h) => h.rsaFingerprint === e.hsDir?.fingerprint);
    if (relay === undefined) continue;
    const want = toHex(hsdirIndex(relay.ed25519Id, target.srv, target.periodNum, periodLengthMinutes)).toUpperCase();
    if (e.hsDirIndex?.toUpperCase() !== want) problems.push(`${target.descriptor}: HSDIR_INDEX of ${relay.nickname} differs`);
  }
  return problems;
}

const FIXTURE_DIR = join(
  resolve(dirname(fileURLToPath(import.meta.url)), '..'),
  'fixtures',
  'consensus',
);

/**
 * With TORBALANCE_SAVE_FIXTURES=1: write `view`'s consensus and microdescriptors plus tor's
 * UPLOAD events for `address` to test/fixtures/consensus/<prefix>-{consensus-microdesc.txt,
 * microdescs.txt,uploads.json} (checked offline by test/unit/regressions-f.test.ts).
 */
export async function maybeSaveRingFixture(
  prefix: string,
  view: NetworkView,
  address: string,
  uploads: readonly HsDescEvent[],
  source: string,
): Promise<void> {
  if (process.env['TORBALANCE_SAVE_FIXTURES'] !== '1') return;
  await mkdir(FIXTURE_DIR, { recursive: true });
  await writeFile(join(FIXTURE_DIR, `${prefix}-consensus-microdesc.txt`), view.consensusText);
  await writeFile(join(FIXTURE_DIR, `${prefix}-microdescs.txt`), view.microdescText);
  const expected = {
    provenance:
      'tor 0.4.9.11 private test network (3 authorities, 5 relays, V3AuthVotingInterval 10, TestingTorNetwork 1); ' +
      `HS_DESC UPLOAD events of the service, recorded by ${source} with TORBALANCE_SAVE_FIXTURES=1`,
    address,
    validAfter: view.consensus.validAfter,
    periodLengthMinutes: view.periodParams.lengthMinutes,
    uploads: uploads
      .filter((e) => e.action === 'UPLOAD' && e.address === address)
      .map((e) => ({
        blindedKey: e.descriptorId,
        hsdir: e.hsDir?.fingerprint,
        nickname: e.hsDir?.nickname,
        hsdirIndex: e.hsDirIndex,
      })),
  };
  await writeFile(join(FIXTURE_DIR, `${prefix}-uploads.json`), JSON.stringify(expected, null, 2) + '\n');
}
