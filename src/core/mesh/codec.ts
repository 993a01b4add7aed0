/**
 * Mesh frame encoding (docs/mesh-protocol.md, "Frames"), sans-IO:
 *
 *     u32be length ‖ payload ‖ mac(32) ‖ sig(64)        length = |payload| + 96 ≤ maxFrameBytes
 *
 * payload = UTF-8 JSON `{ v: 2, type, from, pub, ts, nonce, body }`;
 * mac = HMAC-SHA256(K, payload). On the wire K is always the frame's link key
 * (handshake.ts `linkFrameKey`: per connection, direction and frame number), passed as
 * `macKey`; K_mac = SHA3-256("torbalance mesh mac v1" ‖ secret) is only the default when
 * no `macKey` is given (pure tests of the later verification steps);
 * sig = ed25519 signature of payload by the node key. Both cover exactly the payload bytes.
 *
 * {@link encodeFrame} builds a frame (with its length prefix). {@link FrameDecoder} splits a
 * byte stream into frames (without the prefix) for MessageVerifier; it rejects an oversize
 * length prefix as soon as the 4 prefix bytes are in, before buffering the body.
 */
import { concatBytes, fromUtf8, toBase64, u32be, utf8 } from '../bytes.js';
import { hmacSha256, sha3_256 } from '../crypto/index.js';
import { DecodeError, TorbalanceError } from '../errors.js';
import type { RandomBytes } from '../random.js';
import { signWithNodeKey, type NodeKey } from './identity.js';
import {
  FRAME_TRAILER_BYTES,
  MAX_FRAME_BYTES,
  MESH_PROTOCOL_VERSION,
  MIN_PAYLOAD_BYTES,
  NONCE_BYTES,
  SchemaViolation,
  validateEnvelope,
  validateMessage,
  type MeshMessage,
  type MeshTransportKind,
} from './protocol.js';

const MAC_KEY_PREFIX = utf8('torbalance mesh mac v1');

/** K_mac = SHA3-256("torbalance mesh mac v1" ‖ clusterSecret). */
export function meshMacKey(clusterSecret: Uint8Array): Uint8Array {
  return sha3_256(MAC_KEY_PREFIX, clusterSecret);
}

/** Options of {@link encodeFrame}. */
export interface EncodeFrameOptions {
  readonly key: NodeKey;
  /** The cluster secret (32 bytes); or pass `macKey` (precomputed {@link meshMacKey}) instead. */
  readonly clusterSecret?: Uint8Array;
  readonly macKey?: Uint8Array;
  /** Sender's clock, unix ms (integer). */
  readonly nowMs: number;
  readonly randomBytes: RandomBytes;
  readonly maxFrameBytes?: number;
  /** The cluster's transport: refuse to send addresses receivers of that cluster reject. */
  readonly transport?: MeshTransportKind;
}

/**
 * Build one frame (length prefix included) for `msg`. The message is serialised, re-parsed
 * and schema-checked exactly as a receiver would, so we never send what peers reject.
 * Throws TorbalanceError (kind 'internal'): `TB_ERR_MESH_ENCODE` for an invalid message,
 * clock or key, `TB_ERR_MESH_SIZE` if the frame would exceed maxFrameBytes.
 */
export function encodeFrame(msg: MeshMessage, opts: EncodeFrameOptions): Uint8Array {
  const maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
  if (!Number.isSafeInteger(opts.nowMs) || opts.nowMs < 0) {
    throw new TorbalanceError('TB_ERR_MESH_ENCODE', 'internal', 'nowMs must be a non-negative integer');
  }
  if (opts.key.publicKey.length !== 32) throw new TorbalanceError('TB_ERR_MESH_ENCODE', 'internal', 'bad node key');
  const nonce = opts.randomBytes(NONCE_BYTES);
  if (nonce.length !== NONCE_BYTES) throw new TorbalanceError('TB_ERR_MESH_ENCODE', 'internal', 'randomBytes returned the wrong length');
  const envelope = {
    v: MESH_PROTOCOL_VERSION,
    type: msg.type,
    from: opts.key.nodeId,
    pub: toBase64(opts.key.publicKey),
    ts: opts.nowMs,
    nonce: toBase64(nonce),
    body: msg.body,
  };
  const payload = utf8(JSON.stringify(envelope));
  try {
    const header = validateEnvelope(JSON.parse(fromUtf8(payload)));
    validateMessage(header.type, header.body, opts.transport);
  } catch (e) {
    const what = e instanceof SchemaViolation ? e.message : 'unserialisable message';
    throw new TorbalanceError('TB_ERR_MESH_ENCODE', 'internal', `invalid outgoing ${msg.type} message: ${what}`);
  }
  const length = payload.length + FRAME_TRAILER_BYTES;
  if (length > maxFrameBytes) {
    throw new TorbalanceError('TB_ERR_MESH_SIZE', 'internal', `outgoing ${msg.type} frame too large (${length} > ${maxFrameBytes})`);
  }
  let macKey = opts.macKey;
  if (macKey === undefined) {
    if (opts.clusterSecret === undefined) throw new TorbalanceError('TB_ERR_MESH_ENCODE', 'internal', 'no cluster secret');
    macKey = meshMacKey(opts.clusterSecret);
  }
  const mac = hmacSha256(macKey, payload);
  const sig = signWithNodeKey(opts.key, payload);
  return concatBytes(u32be(length), payload, mac, sig);
}

/** A frame (without its length prefix) split into its parts. Views into `frame`, no copies. */
export interface FrameParts {
  readonly payload: Uint8Array;
  readonly mac: Uint8Array;
  readonly sig: Uint8Array;
}

/** Split a frame (no length prefix) into payload, MAC and signature; undefined if too short. */
export function splitFrame(frame: Uint8Array): FrameParts | undefined {
  if (frame.length < MIN_PAYLOAD_BYTES + FRAME_TRAILER_BYTES) return undefined;
  const p = frame.length - FRAME_TRAILER_BYTES;
  return { payload: frame.subarray(0, p), mac: frame.subarray(p, p + 32), sig: frame.subarray(p + 32) };
}

/** Options of {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest accepted length-prefix value (default MAX_FRAME_BYTES). */
  readonly maxFrameBytes?: number;
  /** Smallest accepted length-prefix value (default: the smallest mesh frame). */
  readonly minFrameBytes?: number;
  /** The error for a length outside the bounds (default: TB_ERR_MESH_SIZE). */
  readonly sizeError?: (length: number) => DecodeError;
  /**
   * A smaller bound for the first frames of the stream: the first `count` frames may be at
   * most `maxBytes` (the mesh handshake messages, before the peer is authenticated).
   */
  readonly firstFrames?: { readonly count: number; readonly maxBytes: number };
}

/**
 * Sans-IO stream splitter: push bytes as they arrive, get complete frames (without the length
 * prefix, as fresh copies). Buffers at most one frame plus one pushed chunk; linear in the
 * input whatever the chunking. On a length prefix above maxFrameBytes or below the smallest
 * possible frame it throws DecodeError(`TB_ERR_MESH_SIZE`) without buffering the body; the
 * decoder is then poisoned (every later push throws the same) and the caller must drop the
 * connection.
 */
export class FrameDecoder {
  private readonly maxFrameBytes: number;
  private readonly minFrameBytes: number;
  private readonly sizeError: ((length: number) => DecodeError) | undefined;
  private readonly firstFrames: { readonly count: number; readonly maxBytes: number } | undefined;
  /** Frames emitted so far (counted only while the first-frames bound applies). */
  private emitted = 0;
  private chunks: Uint8Array[] = [];
  /** Index of the first chunk still holding unconsumed bytes. */
  private first = 0;
  /** Offset into chunks[first] of the first unconsumed byte. */
  private head = 0;
  private buffered = 0;
  private failed: DecodeError | undefined;

  constructor(opts: FrameDecoderOptions = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.minFrameBytes = opts.minFrameBytes ?? MIN_PAYLOAD_BYTES + FRAME_TRAILER_BYTES;
    this.sizeError = opts.sizeError;
    this.firstFrames = opts.firstFrames;
  }

  /** Bytes held waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(bytes: Uint8Array): Uint8Array[] {
    if (this.failed) throw this.failed;
    if (bytes.length > 0) {
      this.chunks.push(bytes.slice());
      this.buffered += bytes.length;
    }
    const out: Uint8Array[] = [];
    while (this.buffered >= 4) {
      const prefix = this.peek(4);
      const length = ((prefix[0]! << 24) >>> 0) + (prefix[1]! << 16) + (prefix[2]! << 8) + prefix[3]!;
      const ff = this.firstFrames;
      const early = ff !== undefined && this.emitted < ff.count;
      const max = early ? Math.min(this.maxFrameBytes, ff.maxBytes) : this.maxFrameBytes;
      if (length > max || length < this.minFrameBytes) {
        this.poison(
          this.sizeError?.(length) ??
            new DecodeError('TB_ERR_MESH_SIZE', length > max ? `mesh frame length ${length} exceeds ${max}` : `mesh frame length ${length} is too short`),
        );
      }
      if (this.buffered < 4 + length) break;
      this.take(4);
      out.push(this.take(length));
      if (early) this.emitted += 1;
    }
    return out;
  }

  private poison(e: DecodeError): never {
    this.failed = e;
    this.chunks = [];
    this.first = 0;
    this.head = 0;
    this.buffered = 0;
    throw e;
  }

  /** Copy of the next n buffered bytes without consuming them (n ≤ buffered). */
  private peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let o = 0;
    let off = this.head;
    for (let i = this.first; o < n; i++) {
      const c = this.chunks[i]!;
      const k = Math.min(n - o, c.length - off);
      out.set(c.subarray(off, off + k), o);
      o += k;
      off = 0;
    }
    return out;
  }

  /** Consume the next n buffered bytes (n ≤ buffered). */
  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[this.first]!;
      const k = Math.min(n - o, c.length - this.head);
      out.set(c.subarray(this.head, this.head + k), o);
      o += k;
      this.head += k;
      if (this.head === c.length) {
        this.first++;
        this.head = 0;
      }
    }
    this.buffered -= n;
    // Drop consumed chunks in amortised O(1) (shift() per chunk would be quadratic).
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first >= 64 && this.first * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
    return out;
  }
}
