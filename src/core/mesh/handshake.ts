/**
 * The mesh connection handshake and per-connection frame keys (docs/mesh-protocol.md,
 * "Handshake"). Pure: the node's nonces are passed in.
 *
 * Every mesh connection starts with three binary messages, each carried in an ordinary
 * length-prefixed frame (`u32be length ‖ message`); nothing else is sent on a connection
 * before the peer's proof verified. The dialler is the initiator I, the accepting side the
 * responder R. This is the ISO/IEC 9798-3 three-pass mutual authentication (signatures over
 * both fresh nonces and the recipient's identity), with every message also MACed with a key
 * derived from the cluster secret, so only cluster members get past the first message:
 *
 *     K_hs   = HKDF-SHA256(ikm = secret, salt = "", info = "torbalance mesh v2 handshake", 32)
 *     M1 I→R = hdr(1) ‖ nI(32) ‖ pubI(32) ‖ HMAC(K_hs, L1 ‖ nI ‖ pubI)                      104 bytes
 *     T2     = L2 ‖ nI ‖ nR ‖ pubI ‖ pubR ‖ id(I)
 *     M2 R→I = hdr(2) ‖ nR(32) ‖ pubR(32) ‖ sigR(64) = Ed25519_R(T2) ‖ HMAC(K_hs, T2 ‖ sigR)  168 bytes
 *     T3     = L3 ‖ nI ‖ nR ‖ pubI ‖ pubR ‖ id(R)
 *     M3 I→R = hdr(3) ‖ sigI(64) = Ed25519_I(T3) ‖ HMAC(K_hs, T3 ‖ sigI)                   104 bytes
 *
 * hdr(t) = "TBMESH" ‖ version(1) = {@link MESH_PROTOCOL_VERSION} ‖ t(1); L1..L3 are the
 * 21-byte labels "torbalance mesh v2 m1" … "m3"; id(X) = the 16 bytes of X's nodeId.
 * The responder sends nothing before a valid M1 (a scanner without the secret gets no byte),
 * and each side's signature covers the other's fresh nonce and the other's identity, so a
 * recorded M1/M3 replayed on a new connection, a reflected message, or a proof made for
 * another node fails. After M3 both sides derive the link keys
 *
 *     K_i2r ‖ K_r2i = HKDF-SHA256(ikm = secret, salt = nI ‖ nR, info = "torbalance mesh v2 link" ‖ pubI ‖ pubR, 64)
 *
 * and every later frame's MAC (codec.ts) uses K_seq = HMAC(K_dir, "torbalance mesh v2 frame" ‖ u64be(seq)),
 * seq = 0, 1, … the frame's index in its direction on this connection: a frame replayed onto
 * another connection, reordered, or dropped-and-replaced fails the MAC.
 *
 * Messages carry no timestamp: freshness comes from the nonces alone. The node bounds a
 * handshake's duration with a timer (src/node/mesh/mesh-node.ts).
 */
import { bytesEqual, concatBytes, fromHex, toHex, u64be, utf8 } from '../bytes.js';
import { constantTimeEqual, ed25519Verify, hkdfSha256, hmacSha256 } from '../crypto/index.js';
import { nodeIdOf, signWithNodeKey, type NodeKey } from './identity.js';
import { MESH_PROTOCOL_VERSION } from './protocol.js';

/** First six bytes of every handshake message. */
export const HANDSHAKE_MAGIC = utf8('TBMESH');
/** Length of each side's handshake nonce. */
export const HANDSHAKE_NONCE_BYTES = 32;
/** Sizes of the three messages (without the frame's length prefix). */
export const HANDSHAKE_M1_BYTES = 104;
export const HANDSHAKE_M2_BYTES = 168;
export const HANDSHAKE_M3_BYTES = 104;
/**
 * Largest frame accepted before a connection is authenticated. The handshake messages are
 * ≤ 168 bytes; the bound is larger so that the first frame of a v1 peer (a JSON `hello`) still
 * arrives whole and is reported as a version mismatch rather than a size violation.
 */
export const HANDSHAKE_MAX_FRAME_BYTES = 4096;

const HEADER_BYTES = 8;
const L1 = utf8('torbalance mesh v2 m1');
const L2 = utf8('torbalance mesh v2 m2');
const L3 = utf8('torbalance mesh v2 m3');
const HS_INFO = utf8('torbalance mesh v2 handshake');
const LINK_INFO = utf8('torbalance mesh v2 link');
const FRAME_LABEL = utf8('torbalance mesh v2 frame');

/** K_hs of a cluster secret. */
export function handshakeKey(clusterSecret: Uint8Array): Uint8Array {
  return hkdfSha256(clusterSecret, new Uint8Array(0), HS_INFO, 32);
}

/** The per-frame MAC key K_seq for frame number `seq` of one direction of a link. */
export function linkFrameKey(directionKey: Uint8Array, seq: number): Uint8Array {
  return hmacSha256(directionKey, FRAME_LABEL, u64be(seq));
}

/** An authenticated connection: the peer's proven identity and the two direction keys. */
export interface MeshLink {
  readonly peerId: string;
  readonly peerPublicKey: Uint8Array;
  readonly sendKey: Uint8Array;
  readonly recvKey: Uint8Array;
}

/** Why a handshake failed: `version` (not a v2 handshake at all, e.g. a v1 peer) or `handshake`. */
export interface HandshakeFailure {
  readonly ok: false;
  readonly reason: 'version' | 'handshake';
  readonly detail: string;
  /** Set when M1 carried our own key: its nonce (lets the node recognise a dial to itself). */
  readonly selfNonce?: Uint8Array;
}

/** One step's outcome: bytes to send (one message, without length prefix) and/or the finished link. */
export interface HandshakeProgress {
  readonly ok: true;
  readonly send?: Uint8Array;
  readonly link?: MeshLink;
}

export type HandshakeStep = HandshakeProgress | HandshakeFailure;

function fail(reason: HandshakeFailure['reason'], detail: string, selfNonce?: Uint8Array): HandshakeFailure {
  return selfNonce === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, selfNonce };
}

function header(type: 1 | 2 | 3): Uint8Array {
  return concatBytes(HANDSHAKE_MAGIC, Uint8Array.of(MESH_PROTOCOL_VERSION, type));
}

/**
 * Check the header of a received handshake message of `type` and exact `size`. The version
 * check comes first and recognises a v1 peer (its frames are JSON, starting with `{`).
 */
function checkHeader(msg: Uint8Array, type: 1 | 2 | 3, size: number): HandshakeFailure | undefined {
  if (msg.length > 0 && msg[0] === 0x7b) {
    return fail('version', `peer speaks mesh protocol 1 (JSON frames without a handshake); this node speaks ${MESH_PROTOCOL_VERSION}: upgrade every node`);
  }
  if (msg.length < HEADER_BYTES || !bytesEqual(msg.subarray(0, 6), HANDSHAKE_MAGIC)) return fail('handshake', 'not a mesh handshake message');
  if (msg[6] !== MESH_PROTOCOL_VERSION) return fail('version', `peer speaks mesh protocol ${msg[6]!} (want ${MESH_PROTOCOL_VERSION})`);
  if (msg[7] !== type) return fail('handshake', `expected handshake message ${type}, got ${msg[7]!}`);
  if (msg.length !== size) return fail('handshake', `handshake message ${type} of ${msg.length} bytes (want ${size})`);
  return undefined;
}

function idBytes(publicKey: Uint8Array): Uint8Array {
  return fromHex(nodeIdOf(publicKey));
}

function deriveLink(secret: Uint8Array, nI: Uint8Array, nR: Uint8Array, pubI: Uint8Array, pubR: Uint8Array, initiator: boolean): MeshLink {
  const okm = hkdfSha256(secret, concatBytes(nI, nR), concatBytes(LINK_INFO, pubI, pubR), 64);
  const i2r = okm.slice(0, 32);
  const r2i = okm.slice(32, 64);
  const peerPublicKey = (initiator ? pubR : pubI).slice();
  return { peerId: nodeIdOf(peerPublicKey), peerPublicKey, sendKey: initiator ? i2r : r2i, recvKey: initiator ? r2i : i2r };
}

function t2(nI: Uint8Array, nR: Uint8Array, pubI: Uint8Array, pubR: Uint8Array): Uint8Array {
  return concatBytes(L2, nI, nR, pubI, pubR, idBytes(pubI));
}

function t3(nI: Uint8Array, nR: Uint8Array, pubI: Uint8Array, pubR: Uint8Array): Uint8Array {
  return concatBytes(L3, nI, nR, pubI, pubR, idBytes(pubR));
}

/** Options shared by both roles. */
export interface HandshakeOptions {
  readonly clusterSecret: Uint8Array;
  readonly key: NodeKey;
  /** This side's fresh nonce ({@link HANDSHAKE_NONCE_BYTES} random bytes). */
  readonly nonce: Uint8Array;
}

function checkOptions(o: HandshakeOptions): void {
  if (o.nonce.length !== HANDSHAKE_NONCE_BYTES) throw new RangeError(`handshake nonce must be ${HANDSHAKE_NONCE_BYTES} bytes`);
  if (o.key.publicKey.length !== 32) throw new RangeError('bad node key');
}

/**
 * The dialling side. {@link start} gives M1; {@link receive} takes M2 and returns M3 and the
 * link. Any message after a failure or after completion is a failure.
 */
export class InitiatorHandshake {
  readonly #o: HandshakeOptions;
  readonly #kHs: Uint8Array;
  #state: 'new' | 'sent' | 'done' | 'failed' = 'new';

  constructor(o: HandshakeOptions) {
    checkOptions(o);
    this.#o = { ...o, nonce: o.nonce.slice() };
    this.#kHs = handshakeKey(o.clusterSecret);
  }

  /** This side's nonce (the node keeps it to recognise a dial to itself). */
  get nonce(): Uint8Array {
    return this.#o.nonce.slice();
  }

  /** M1. Call once. */
  start(): Uint8Array {
    if (this.#state !== 'new') throw new RangeError('handshake already started');
    this.#state = 'sent';
    const { nonce, key } = this.#o;
    return concatBytes(header(1), nonce, key.publicKey, hmacSha256(this.#kHs, L1, nonce, key.publicKey));
  }

  /** Take M2; on success returns M3 to send and the link. Never throws. */
  receive(msg: Uint8Array): HandshakeStep {
    if (this.#state !== 'sent') {
      this.#state = 'failed';
      return fail('handshake', 'unexpected handshake message');
    }
    this.#state = 'failed';
    const bad = checkHeader(msg, 2, HANDSHAKE_M2_BYTES);
    if (bad) return bad;
    const nI = this.#o.nonce;
    const pubI = this.#o.key.publicKey;
    const nR = msg.subarray(8, 40);
    const pubR = msg.subarray(40, 72);
    const sigR = msg.subarray(72, 136);
    const mac = msg.subarray(136, 168);
    const tr = t2(nI, nR, pubI, pubR);
    if (!constantTimeEqual(hmacSha256(this.#kHs, tr, sigR), mac)) return fail('handshake', 'bad cluster MAC on handshake message 2');
    if (bytesEqual(pubR, pubI)) return fail('handshake', 'responder uses our own node key');
    if (bytesEqual(nR, nI)) return fail('handshake', 'responder echoed our nonce');
    if (!ed25519Verify(sigR, tr, pubR)) return fail('handshake', 'bad node signature on handshake message 2');
    const tr3 = t3(nI, nR, pubI, pubR);
    const sigI = signWithNodeKey(this.#o.key, tr3);
    this.#state = 'done';
    return {
      ok: true,
      send: concatBytes(header(3), sigI, hmacSha256(this.#kHs, tr3, sigI)),
      link: deriveLink(this.#o.clusterSecret, nI, nR, pubI, pubR, true),
    };
  }
}

/**
 * The accepting side. {@link receive} takes M1 (returns M2), then M3 (returns the link).
 * Nothing is returned to send unless M1's cluster MAC verified.
 */
export class ResponderHandshake {
  readonly #o: HandshakeOptions;
  readonly #kHs: Uint8Array;
  #state: 'wait1' | 'wait3' | 'done' | 'failed' = 'wait1';
  #nI: Uint8Array | undefined;
  #pubI: Uint8Array | undefined;

  constructor(o: HandshakeOptions) {
    checkOptions(o);
    this.#o = { ...o, nonce: o.nonce.slice() };
    this.#kHs = handshakeKey(o.clusterSecret);
  }

  /** Take the next handshake message. Never throws. */
  receive(msg: Uint8Array): HandshakeStep {
    const state = this.#state;
    this.#state = 'failed';
    if (state === 'wait1') return this.#m1(msg);
    if (state === 'wait3') return this.#m3(msg);
    return fail('handshake', 'unexpected handshake message');
  }

  #m1(msg: Uint8Array): HandshakeStep {
    const bad = checkHeader(msg, 1, HANDSHAKE_M1_BYTES);
    if (bad) return bad;
    const nI = msg.slice(8, 40);
    const pubI = msg.slice(40, 72);
    const mac = msg.subarray(72, 104);
    if (!constantTimeEqual(hmacSha256(this.#kHs, L1, nI, pubI), mac)) return fail('handshake', 'bad cluster MAC on handshake message 1');
    const pubR = this.#o.key.publicKey;
    if (bytesEqual(pubI, pubR)) return fail('handshake', 'initiator uses our own node key', nI);
    const nR = this.#o.nonce;
    if (bytesEqual(nI, nR)) return fail('handshake', 'initiator echoed our nonce');
    this.#nI = nI;
    this.#pubI = pubI;
    const tr = t2(nI, nR, pubI, pubR);
    const sigR = signWithNodeKey(this.#o.key, tr);
    this.#state = 'wait3';
    return { ok: true, send: concatBytes(header(2), nR, pubR, sigR, hmacSha256(this.#kHs, tr, sigR)) };
  }

  #m3(msg: Uint8Array): HandshakeStep {
    const bad = checkHeader(msg, 3, HANDSHAKE_M3_BYTES);
    if (bad) return bad;
    const nI = this.#nI!;
    const pubI = this.#pubI!;
    const nR = this.#o.nonce;
    const pubR = this.#o.key.publicKey;
    const sigI = msg.subarray(8, 72);
    const mac = msg.subarray(72, 104);
    const tr = t3(nI, nR, pubI, pubR);
    if (!constantTimeEqual(hmacSha256(this.#kHs, tr, sigI), mac)) return fail('handshake', 'bad cluster MAC on handshake message 3');
    if (!ed25519Verify(sigI, tr, pubI)) return fail('handshake', 'bad node signature on handshake message 3');
    this.#state = 'done';
    return { ok: true, link: deriveLink(this.#o.clusterSecret, nI, nR, pubI, pubR, false) };
  }
}

/** Hex of a nonce (map keys). */
export function nonceKey(nonce: Uint8Array): string {
  return toHex(nonce);
}
