/**
 * The slice of the tor control port the publisher components use, so they run against a
 * {@link TorControl}, a {@link ReconnectingTorControl} (via {@link controlFromReconnecting})
 * or a fake in tests; plus {@link EventSubscriptions}, which merges the event types several
 * components need into one `SETEVENTS` (SETEVENTS replaces a connection's whole
 * subscription, control-spec §3.4, so components must not call it on their own).
 *
 * Events needed: IntroCollector `HS_DESC` + `CIRC`; Publisher `HS_DESC` + `HS_DESC_CONTENT`
 * (HSFETCH verification). FailClosed needs no events (it only SETCONFs).
 */
import type { ControlEvent, ReconnectingTorControl, RequestOptions, TorControl } from '../../adapters/tor/control.js';

export type { ControlEvent } from '../../adapters/tor/control.js';

/** Commands and events used by src/node/publisher (TorControl has all of them). */
export interface PublisherControl {
  getInfo(key: string, options?: RequestOptions): Promise<string>;
  hsPost(
    descriptor: string,
    opts: { readonly hsAddress: string; readonly servers: readonly string[]; readonly timeoutMs?: number },
  ): Promise<void>;
  /** `HSFETCH <label> SERVER=<fp>…` (results arrive as HS_DESC / HS_DESC_CONTENT events). */
  hsFetch(address: string, servers: readonly string[]): Promise<void>;
  setConf(entries: readonly (readonly [string, string | null])[]): Promise<void>;
  closeCircuit(id: string): Promise<void>;
  request(line: string, body?: string, options?: RequestOptions): Promise<{ readonly status: number; readonly lines: readonly { readonly text: string }[] }>;
  onEvent(type: string, listener: (e: ControlEvent) => void): () => void;
}

/** A {@link PublisherControl} over a reconnecting connection (commands wait for a live connection). */
export function controlFromReconnecting(rc: ReconnectingTorControl): PublisherControl {
  return {
    getInfo: (key, options) => rc.use((c) => c.getInfo(key, options)),
    hsPost: (descriptor, opts) => rc.use((c) => c.hsPost(descriptor, opts)),
    hsFetch: (address, servers) => rc.use((c) => c.hsFetch(address, servers)),
    setConf: (entries) => rc.use((c) => c.setConf(entries)),
    closeCircuit: (id) => rc.use((c) => c.closeCircuit(id)),
    request: (line, body, options) => rc.use((c) => c.request(line, body, options)),
    onEvent: (type, listener) => rc.onEvent(type, listener),
  };
}

/** TorControl is a PublisherControl (compile-time check). */
export function controlFromTorControl(c: TorControl): PublisherControl {
  return c;
}

/** Where SETEVENTS goes (TorControl and ReconnectingTorControl both fit). */
export interface EventSink {
  setEvents(events: readonly string[]): Promise<void>;
}

/**
 * Keeps the union of the event types every registered user needs and re-sends SETEVENTS
 * when it changes. `base` are types some other part of the node already wants.
 */
export class EventSubscriptions {
  readonly #sink: EventSink;
  readonly #users = new Map<string, readonly string[]>();
  readonly #base: readonly string[];
  #sent = '';

  constructor(sink: EventSink, base: readonly string[] = []) {
    this.#sink = sink;
    this.#base = base;
  }

  /** The current union, sorted. */
  get events(): readonly string[] {
    return [...new Set([...this.#base, ...[...this.#users.values()].flat()])].sort();
  }

  /** Set `user`'s event types (empty removes it) and SETEVENTS if the union changed. */
  async need(user: string, types: readonly string[]): Promise<void> {
    if (types.length === 0) this.#users.delete(user);
    else this.#users.set(user, [...types]);
    const ev = this.events;
    const key = ev.join(' ');
    if (key === this.#sent) return;
    await this.#sink.setEvents(ev);
    this.#sent = key;
  }
}
