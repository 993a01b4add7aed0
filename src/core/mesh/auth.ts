/**
 * Mesh message authentication (cluster contract, "Cluster secret", "Frame", "Replay/skew").
 *
 * {@link MessageVerifier.verify} checks a frame (without its length prefix) in this order,
 * stopping at the first failure, and never throws:
 *
 * | step | check                                                                 | reason      |
 * |------|-----------------------------------------------------------------------|-------------|
 * | 1    | MIN_PAYLOAD_BYTES + 96 ≤ |frame| ≤ maxFrameBytes                      | `size`      |
 * | 2    | HMAC-SHA256(K, payload) = mac, constant time — before any parsing     | `mac`       |
 * |      | (K: the frame's link key, handshake.ts `linkFrameKey`; the mesh node  |             |
 * |      | always passes it — K_mac of the cluster secret is only the default)   |             |
 * | 3    | strict UTF-8, JSON nesting ≤ MAX_JSON_DEPTH, JSON.parse              | `schema`    |
 * | 4    | envelope fields (strict keys, lengths, ranges)                        | `schema`    |
 * | 5    | `v` = MESH_PROTOCOL_VERSION                                           | `version`   |
 * | 6    | body of the message type (strict; unknown type is a schema error;     | `schema`    |
 * |      | addresses of another kind than the cluster transport are errors)      |             |
 * | 7    | nodeIdOf(pub) = from (self-certifying identity)                       | `identity`  |
 * | 8    | ed25519 signature of payload by pub                                   | `signature` |
 * | 9    | |ts − now| ≤ maxSkewMs                                                | `skew`      |
 * | 10   | (from, nonce) not seen before and ts above the eviction watermark     | `replay`    |
 *
 * Replay cache, **per sender** (a member's flood must not make another member's frames fail as
 * `replay`; docs/SECURITY.md "One member"): each sender has its own cache of accepted nonces
 * and its own watermark. Accepted nonces are kept until now + 2·maxSkewMs (after that the skew
 * check rejects any replay of them: ts ≤ now_accept + maxSkewMs). An expired entry raises its
 * sender's watermark to its ts, which is harmless (such ts already fail the skew check) but
 * makes the cache safe against a local clock that jumps back. A sender's cache holds at most
 * `replayCacheSize` entries; when full it evicts the oldest entry and raises that sender's
 * watermark to the entry's `ts`: later frames *of that sender* with ts ≤ watermark are
 * rejected as `replay` (we can no longer prove they are fresh). At most `maxSenders` senders
 * are tracked; a new one evicts the sender heard from least recently, whose highest ts then
 * raises the watermark for senders without state (`forgottenWatermark`) — a flood of fresh ids
 * can reach a sender only once it is the least recently heard of `maxSenders`. So memory is
 * bounded, no replay is ever let through, and at worst a sender's own flood rejects its own
 * old but genuine frames.
 *
 * Rejection details are short and name only the failed check (field paths, sizes) — never
 * payload values, keys or the cluster secret.
 */
import { DecodeError } from '../errors.js';
import { fromBase64, fromUtf8 } from '../bytes.js';
import { constantTimeEqual, ed25519Verify, hmacSha256 } from '../crypto/index.js';
import { meshMacKey, splitFrame } from './codec.js';
import { nodeIdOf } from './identity.js';
import {
  DEFAULT_MAX_SKEW_MS,
  FRAME_TRAILER_BYTES,
  MAX_FRAME_BYTES,
  MAX_JSON_DEPTH,
  MESH_PROTOCOL_VERSION,
  MIN_PAYLOAD_BYTES,
  SchemaViolation,
  jsonDepthExceeds,
  validateEnvelope,
  validateMessage,
  type MeshMessage,
  type MeshTransportKind,
} from './protocol.js';

/** Why a frame was rejected. */
export type RejectReason = 'mac' | 'signature' | 'replay' | 'skew' | 'size' | 'schema' | 'version' | 'identity' | 'handshake';

/** Every RejectReason, for counters (`handshake`: a connection handshake failed or timed out, handshake.ts). */
export const REJECT_REASONS: readonly RejectReason[] = ['mac', 'signature', 'replay', 'skew', 'size', 'schema', 'version', 'identity', 'handshake'];

/** An accepted message. */
export interface VerifiedMessage {
  readonly ok: true;
  /** Sender nodeId (proven: pub hashes to it and signed the payload). */
  readonly from: string;
  readonly publicKey: Uint8Array;
  /** Sender's timestamp, unix ms (within maxSkewMs of our now). */
  readonly ts: number;
  readonly msg: MeshMessage;
}

/** A rejected frame. `from` is set only once the identity was proven (steps ≥ 9). */
export interface RejectedMessage {
  readonly ok: false;
  readonly reason: RejectReason;
  readonly detail: string;
  readonly from?: string;
}

export type VerifyResult = VerifiedMessage | RejectedMessage;

/** Options of {@link MessageVerifier}. */
export interface MessageVerifierOptions {
  readonly clusterSecret: Uint8Array;
  /** The cluster's transport: hello/heartbeat addresses of the other kind are refused (`schema`). */
  readonly transport: MeshTransportKind;
  /** Default 30 000. */
  readonly maxSkewMs?: number;
  /** Most remembered nonces per sender; default 4096. */
  readonly replayCacheSize?: number;
  /** Most senders with replay state; default 512. */
  readonly maxSenders?: number;
  /** Default MAX_FRAME_BYTES. */
  readonly maxFrameBytes?: number;
}

interface ReplayEntry {
  readonly ts: number;
  readonly expiresAt: number;
}

/** One sender's replay state: nonce → entry in insertion order, and its watermark. */
interface SenderReplay {
  readonly seen: Map<string, ReplayEntry>;
  watermarkTs: number;
  /** Highest ts accepted from it (raises the forgotten-senders watermark when it is evicted). */
  maxTs: number;
}

function reject(reason: RejectReason, detail: string, from?: string): RejectedMessage {
  return from === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, from };
}

/** Verifies frames and owns the replay cache. One per node (shared by all connections). */
export class MessageVerifier {
  private readonly macKey: Uint8Array;
  private readonly maxSkewMs: number;
  private readonly replayCacheSize: number;
  private readonly maxSenders: number;
  private readonly maxFrameBytes: number;
  private readonly transport: MeshTransportKind;
  /** sender id → its replay state, least recently accepted first. */
  private readonly senders = new Map<string, SenderReplay>();
  /** Frames of a sender without state are refused at ts ≤ this (see the module doc). */
  private forgottenWatermarkTs = -1;
  private entries = 0;

  constructor(opts: MessageVerifierOptions) {
    this.macKey = meshMacKey(opts.clusterSecret);
    this.maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
    this.replayCacheSize = Math.max(1, opts.replayCacheSize ?? 4096);
    this.maxSenders = Math.max(1, opts.maxSenders ?? 512);
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.transport = opts.transport;
  }

  /** Entries in the replay cache (all senders). */
  get replayCacheEntries(): number {
    return this.entries;
  }

  /** Senders with replay state. */
  get replaySenders(): number {
    return this.senders.size;
  }

  /**
   * Check one frame (without length prefix) at local time nowMs, its MAC with `macKey` (the
   * frame's link key; default K_mac of the cluster secret). Never throws.
   */
  verify(frame: Uint8Array, nowMs: number, macKey?: Uint8Array): VerifyResult {
    try {
      return this.verifyUnsafe(frame, nowMs, macKey ?? this.macKey);
    } catch (_ignored) {
      // Unreachable by design (every step is guarded); any fault here must not escape the transport.
      return reject('schema', 'internal verification fault');
    }
  }

  private verifyUnsafe(frame: Uint8Array, nowMs: number, macKey: Uint8Array): VerifyResult {
    // 1. size
    if (frame.length > this.maxFrameBytes) return reject('size', `frame of ${frame.length} bytes exceeds ${this.maxFrameBytes}`);
    const parts = splitFrame(frame);
    if (!parts) return reject('size', `frame of ${frame.length} bytes is shorter than ${MIN_PAYLOAD_BYTES + FRAME_TRAILER_BYTES}`);
    // 2. MAC, before any parsing
    if (!constantTimeEqual(hmacSha256(macKey, parts.payload), parts.mac)) return reject('mac', 'bad cluster MAC');
    // 3. JSON
    let text: string;
    try {
      text = fromUtf8(parts.payload);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return reject('schema', 'payload is not UTF-8');
    }
    if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) return reject('schema', `JSON nested deeper than ${MAX_JSON_DEPTH}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
      return reject('schema', 'payload is not JSON');
    }
    // 4-6. envelope, version, body
    let msg: MeshMessage;
    let header;
    try {
      header = validateEnvelope(parsed);
    } catch (e) {
      return reject('schema', e instanceof SchemaViolation ? e.message : 'bad envelope');
    }
    if (header.v !== MESH_PROTOCOL_VERSION) return reject('version', `protocol version ${header.v} (want ${MESH_PROTOCOL_VERSION})`);
    try {
      msg = validateMessage(header.type, header.body, this.transport);
    } catch (e) {
      return reject('schema', e instanceof SchemaViolation ? e.message : 'bad body');
    }
    // 7. identity
    const publicKey = fromBase64(header.pub);
    if (nodeIdOf(publicKey) !== header.from) return reject('identity', 'pub does not hash to from');
    // 8. signature
    if (!ed25519Verify(parts.sig, parts.payload, publicKey)) return reject('signature', 'bad node signature');
    const from = header.from;
    // 9. skew
    const skew = header.ts - nowMs;
    if (!(Math.abs(skew) <= this.maxSkewMs)) return reject('skew', `clock skew ${skew} ms exceeds ${this.maxSkewMs}`, from);
    // 10. replay (per sender)
    let st = this.senders.get(from);
    if (st !== undefined) this.expire(st, nowMs);
    if (st?.seen.has(header.nonce) === true) return reject('replay', 'nonce already seen', from);
    if (header.ts <= (st?.watermarkTs ?? this.forgottenWatermarkTs)) return reject('replay', 'older than the replay-cache watermark', from);
    if (st === undefined) {
      while (this.senders.size >= this.maxSenders) this.evictSender();
      st = { seen: new Map(), watermarkTs: this.forgottenWatermarkTs, maxTs: -1 };
    }
    // Re-insert: the map stays ordered by the last accepted frame (least recent first).
    this.senders.delete(from);
    this.senders.set(from, st);
    while (st.seen.size >= this.replayCacheSize) this.evictOldest(st);
    st.seen.set(header.nonce, { ts: header.ts, expiresAt: nowMs + 2 * this.maxSkewMs });
    this.entries += 1;
    if (header.ts > st.maxTs) st.maxTs = header.ts;
    return { ok: true, from, publicKey, ts: header.ts, msg };
  }

  /**
   * Drop a sender's entries whose expiry has passed (insertion order = expiry order for a
   * non-decreasing clock; otherwise expiry is merely delayed). Expired entries also raise its
   * watermark, so even a local clock that jumps back cannot readmit a forgotten frame.
   */
  private expire(st: SenderReplay, nowMs: number): void {
    for (const [k, e] of st.seen) {
      if (e.expiresAt >= nowMs) break;
      st.seen.delete(k);
      this.entries -= 1;
      if (e.ts > st.watermarkTs) st.watermarkTs = e.ts;
    }
  }

  private evictOldest(st: SenderReplay): void {
    const first = st.seen.entries().next();
    if (first.done === true) return;
    const [k, e] = first.value;
    st.seen.delete(k);
    this.entries -= 1;
    if (e.ts > st.watermarkTs) st.watermarkTs = e.ts;
  }

  /** Forget the least recently heard sender; its frames so far stay refused (forgotten watermark). */
  private evictSender(): void {
    const first = this.senders.entries().next();
    if (first.done === true) return;
    const [id, st] = first.value;
    this.senders.delete(id);
    this.entries -= st.seen.size;
    const high = Math.max(st.maxTs, st.watermarkTs);
    if (high > this.forgottenWatermarkTs) this.forgottenWatermarkTs = high;
  }
}
