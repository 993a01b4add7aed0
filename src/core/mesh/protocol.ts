/**
 * Mesh protocol v2 (docs/mesh-protocol.md): constants, message and body types, and their schema validation.
 *
 * This is torbalance's own cluster protocol; it implements no tor spec. After the connection handshake (handshake.ts) a frame on the wire is
 *
 *     u32be length ‖ payload ‖ mac(32) ‖ sig(64)        length = |payload| + 96 ≤ MAX_FRAME_BYTES
 *
 * where `payload` is the UTF-8 JSON envelope `{ v, type, from, pub, ts, nonce, body }`.
 *
 * Validation is hand-written and strict, because every byte here comes from the network:
 * - objects must be plain JSON objects with exactly the known keys (unknown keys, including
 *   `__proto__`, `constructor` and `prototype`, are violations — so prototype pollution
 *   through a parsed body is impossible, and validated values are rebuilt as fresh objects);
 * - strings have bounded lengths and fixed character sets; base64 fields have exact lengths
 *   and must be canonical (padded, no stray bits);
 * - numbers are finite safe integers within stated ranges;
 * - arrays are bounded (≤ {@link MAX_GOSSIP_PEERS} peers, ≤ {@link MAX_INTRO_POINTS} intro points,
 *   ≤ {@link MAX_HEALTH_REASONS} reasons, ≤ MAX_LEDGER_ENTRIES token-ledger entries);
 * - mesh addresses (hello/heartbeat `addr`, gossiped peers) are `tcp:<IP literal>:<port>` or
 *   `tor:<56>.onion:<port>`, never a host name, and of the cluster's transport only (the
 *   verifier is told it): docs/SECURITY.md, "Mesh addresses".
 *
 * A heartbeat may carry two optional summaries (still protocol v1: old peers send neither,
 * and a heartbeat without them stays valid): `traffic`, the sender's cumulative proxy counters
 * ({@link TrafficSummary}), and — from the node that currently publishes — `publish`, its
 * last publish round as its HSDirs answered ({@link PublishSummary}). Both are strict objects
 * of bounded integers / decimal strings like every other field.
 *
 * `tokens` (docs/OPERATIONS.md) carries the sender's whole join-token
 * ledger, `{ entries: LedgerEntry[] }`, validated by src/core/join/ledger.ts's strict checker.
 *
 * Violations throw {@link SchemaViolation} (a DecodeError `TB_ERR_MESH_SCHEMA` carrying a path
 * and a short problem, never the offending value, so nothing attacker-controlled or secret
 * reaches logs).
 */
import { MembersViolation, validateMembers, type MembersLedger } from './members.js';
import { fromBase64 } from '../bytes.js';
import { DecodeError } from '../errors.js';
import { MAX_LINK_SPECIFIER_BYTES, type IntroPointWire, type PowParamsWire } from '../intro/wire.js';
import { UINT64_MAX } from '../hsdesc/util.js';
import { isIPv4Literal, isIPv6Literal } from '../ip.js';
import { LedgerViolation, MAX_LEDGER_ENTRIES, validateLedgerEntries, type LedgerEntry } from '../join/ledger.js';

/**
 * The `v` field of every envelope, and the version byte of the connection handshake
 * (handshake.ts). 2: frames travel only on a connection authenticated by the handshake and
 * are MACed with that connection's keys (docs/mesh-protocol.md); 1 had no handshake.
 */
export const MESH_PROTOCOL_VERSION = 2;
/** Largest frame (the length-prefix value: payload + MAC + signature). */
export const MAX_FRAME_BYTES = 256 * 1024;
/** HMAC-SHA256 tag length. */
export const MAC_BYTES = 32;
/** ed25519 signature length. */
export const SIG_BYTES = 64;
/** Bytes after the payload in a frame (MAC then signature). */
export const FRAME_TRAILER_BYTES = MAC_BYTES + SIG_BYTES;
/** Length of the random per-message nonce. */
export const NONCE_BYTES = 16;
/** Smallest payload that can possibly be a valid envelope (`{}` is 2 bytes; real ones are ~200). */
export const MIN_PAYLOAD_BYTES = 2;
/** Deepest JSON nesting accepted (envelope → body → peers → peer is 4). */
export const MAX_JSON_DEPTH = 6;
/** Most peers gossiped in one heartbeat. */
export const MAX_GOSSIP_PEERS = 64;
/** Most intro points in one `intro-points` message (a descriptor holds at most 20). */
export const MAX_INTRO_POINTS = 20;
/** Most health reasons in a heartbeat/hello. */
export const MAX_HEALTH_REASONS = 16;
/** Longest health reason / leave reason. */
export const MAX_REASON_CHARS = 200;
/** Longest node name. */
export const MAX_NAME_CHARS = 64;
/** Longest mesh address ("tcp:host:port" or "tor:<56>.onion:port"). */
export const MAX_ADDR_CHARS = 128;
/** Longest encoded link-specifier list of one intro point, in bytes (src/core/intro/wire.ts). */
export { MAX_LINK_SPECIFIER_BYTES };
/** Priorities are integers in [MIN_PRIORITY, MAX_PRIORITY]; higher wins the election. */
export const MIN_PRIORITY = 0;
export const MAX_PRIORITY = 1000;
/** Largest `lastSeenAgoMs` in gossip (about 24.8 days; larger values are nonsense). */
export const MAX_AGO_MS = 2 ** 31 - 1;
/** Most HSDirs responsible for one descriptor: hsdir_n_replicas (≤ 16) × hsdir_spread_store (≤ 128). */
export const MAX_RESPONSIBLE_HSDIRS = 16 * 128;
/** Most nodes in one publish summary (a descriptor holds at most 20 intro points). */
export const MAX_PUBLISH_NODES = 64;
/** Longest decimal revision counter (a u64 has at most 20 digits). */
export const MAX_REVISION_DIGITS = 20;
/** Default maximum clock skew between nodes. */
export const DEFAULT_MAX_SKEW_MS = 30_000;

/** Message types of protocol v1. */
export const MESSAGE_TYPES = ['hello', 'heartbeat', 'intro-points', 'leave', 'lease', 'tokens', 'members'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** A node's health as it reports it. */
export interface HealthInfo {
  readonly healthy: boolean;
  readonly reasons: readonly string[];
}

/** A lease the sender holds: `holder` must equal the envelope's `from` (others are ignored). */
export interface LeaseClaim {
  readonly holder: string;
  /** Expiry in the holder's clock, unix ms. */
  readonly until: number;
}

/** One gossiped peer: a node the sender hears from directly. */
export interface GossipPeer {
  readonly id: string;
  readonly addr: string;
  readonly lastSeenAgoMs: number;
}

/** `hello`: sent first on every connection (node info). */
export interface HelloBody {
  readonly name: string;
  /** How to reach the sender ("tcp:10.99.0.1:7700" or "tor:<56>.onion:7700"). */
  readonly addr: string;
  readonly priority: number;
  readonly health: HealthInfo;
  /** {@link introDigest} of the sender's intro points. */
  readonly introDigest: string;
}

/** The sender's visitor traffic: cumulative counters of its proxy (non-negative safe integers). */
export interface TrafficSummary {
  /** Visitor connections open now. */
  readonly open: number;
  /** Visitor connections accepted (cumulative). */
  readonly accepted: number;
  /** HTTP requests answered (cumulative). */
  readonly requests: number;
  /** Bytes received from visitors (cumulative). */
  readonly bytesIn: number;
  /** Bytes sent to visitors (cumulative). */
  readonly bytesOut: number;
}

/** HSDirs that accepted a descriptor's last upload, of those responsible for it: `[accepted, responsible]`. */
export type AcceptedCount = readonly [number, number];

/** The publisher's last publish round, as its heartbeats report it. */
export interface PublishSummary {
  /** When the round started, unix ms (the publisher's clock). */
  readonly at: number;
  /** Revision counters (decimal, ≤ 2^64 − 1) of tor's first and second descriptor; null = not published. */
  readonly revisions: readonly [string | null, string | null];
  /** Per descriptor (first, second): HSDirs of the responsible set whose last upload was accepted / responsible. */
  readonly accepted: readonly [AcceptedCount | null, AcceptedCount | null];
  /** Nodes whose intro points are in the descriptor. */
  readonly nodes: number;
}

/** `heartbeat`: every heartbeatMs. */
export interface HeartbeatBody extends HelloBody {
  /** Present while the sender holds the publisher lease (renewed every heartbeat). */
  readonly lease?: LeaseClaim | undefined;
  /** Peers the sender hears from directly (gossip). */
  readonly peers: readonly GossipPeer[];
  /** The sender's traffic counters (optional: older nodes do not send them). */
  readonly traffic?: TrafficSummary | undefined;
  /** The sender's last publish round, while it publishes (optional). */
  readonly publish?: PublishSummary | undefined;
}

/** An intro point as carried between nodes: defined in src/core/intro/wire.ts. */
export type { IntroPointWire, PowParamsWire };

/**
 * `intro-points`: the sender's intro points (docs/mesh-protocol.md "intro-points").
 * `points` are its tor's desc_current; the optional fields (absent from older senders) make
 * rotation-safe publishing possible (docs/DESIGN.md "Rotation-safe intro points").
 */
export interface IntroPointsBody {
  /** {@link introDigest} of `points`. */
  readonly digest: string;
  /** When the sender read them from its tor, unix ms. */
  readonly fetchedAt: number;
  readonly points: readonly IntroPointWire[];
  /** Blinded key of the desc_current `points` came from (canonical base64 of 32 bytes, no padding). */
  readonly key?: string | undefined;
  /** The sender harvests desc_next: list its `points` only under their own period. */
  readonly rotationSafe?: boolean | undefined;
  /** The sender's harvested desc_next intro points and their period's blinded key. */
  readonly next?: NextIntroPoints | undefined;
  /** The sender tor's current pow-params (PoW defenses on), for per-node placement. */
  readonly pow?: PowParamsWire | undefined;
}

/** `intro-points.next`. */
export interface NextIntroPoints {
  readonly key: string;
  /** When the sender harvested them, unix ms. */
  readonly harvestedAt: number;
  readonly points: readonly IntroPointWire[];
}

/** `leave`: the sender is shutting down. */
export interface LeaveBody {
  readonly reason: string;
}

/** `lease`: explicit claim or renewal; `until` ≤ now (sender's clock) releases it. */
export interface LeaseBody {
  readonly until: number;
}

/** `tokens`: the sender's join-token ledger (≤ MAX_LEDGER_ENTRIES entries; no secrets). */
export interface TokensBody {
  readonly entries: readonly LedgerEntry[];
}

/** A `members` body: the sender's node allowlist (src/core/mesh/members.ts). */
export type MembersBody = MembersLedger;

export type MeshMessage =
  | { readonly type: 'tokens'; readonly body: TokensBody }
  | { readonly type: 'members'; readonly body: MembersBody }
  | { readonly type: 'hello'; readonly body: HelloBody }
  | { readonly type: 'heartbeat'; readonly body: HeartbeatBody }
  | { readonly type: 'intro-points'; readonly body: IntroPointsBody }
  | { readonly type: 'leave'; readonly body: LeaveBody }
  | { readonly type: 'lease'; readonly body: LeaseBody };

/** The parsed envelope with its body still unvalidated (see {@link validateEnvelope}). */
export interface EnvelopeHeader {
  readonly v: number;
  readonly type: string;
  readonly from: string;
  readonly pub: string;
  readonly ts: number;
  readonly nonce: string;
  readonly body: unknown;
}

/**
 * A schema check failed (`TB_ERR_MESH_SCHEMA`). `path` names the field (e.g.
 * `body.peers[3].addr`); the message never contains the offending value.
 */
export class SchemaViolation extends DecodeError {
  readonly path: string;
  readonly problem: string;
  constructor(path: string, problem: string) {
    super('TB_ERR_MESH_SCHEMA', `${path}: ${problem}`);
    this.name = 'SchemaViolation';
    this.path = path;
    this.problem = problem;
  }
}

// ---------------------------------------------------------------------------------------
// Field checks. Each throws SchemaViolation; callers catch it at the boundary.

type Obj = Readonly<Record<string, unknown>>;

function fail(path: string, problem: string): never {
  throw new SchemaViolation(path, problem);
}

function object(v: unknown, path: string, required: readonly string[], optional: readonly string[] = []): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'not an object');
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) fail(path, 'not a plain object');
  const keys = Object.keys(v);
  for (const k of keys) {
    if (!required.includes(k) && !optional.includes(k)) fail(path, 'unknown key');
  }
  for (const k of required) {
    if (!Object.hasOwn(v, k)) fail(`${path}.${k}`, 'missing');
  }
  return v as Obj;
}

function field(o: Obj, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(path, 'not a safe integer');
  if (v < min || v > max) fail(path, 'out of range');
  return v;
}

function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') fail(path, 'not a boolean');
  return v;
}

function str(v: unknown, path: string, min: number, max: number, re: RegExp): string {
  if (typeof v !== 'string') fail(path, 'not a string');
  if (v.length < min || v.length > max) fail(path, 'bad length');
  if (!re.test(v)) fail(path, 'bad characters');
  return v;
}

function array(v: unknown, path: string, max: number): readonly unknown[] {
  if (!Array.isArray(v)) fail(path, 'not an array');
  if (v.length > max) fail(path, 'too many elements');
  return v as readonly unknown[];
}

/** Padded base64 length of n bytes. */
function b64Len(n: number): number {
  return 4 * Math.ceil(n / 3);
}

/** Canonical padded base64 of exactly `n` bytes; returns the string. */
function b64Exact(v: unknown, path: string, n: number): string {
  if (typeof v !== 'string') fail(path, 'not a string');
  if (v.length !== b64Len(n)) fail(path, 'bad length');
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(v);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    fail(path, 'bad base64');
  }
  if (bytes.length !== n) fail(path, 'bad length');
  return v;
}

/** Canonical padded base64 of minBytes..maxBytes bytes; returns the string. */
function b64Bounded(v: unknown, path: string, minBytes: number, maxBytes: number): string {
  if (typeof v !== 'string') fail(path, 'not a string');
  if (v.length < b64Len(minBytes) || v.length > b64Len(maxBytes) || v.length % 4 !== 0) fail(path, 'bad length');
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(v);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    fail(path, 'bad base64');
  }
  if (bytes.length < minBytes || bytes.length > maxBytes) fail(path, 'bad length');
  return v;
}

/** nodeId: 32 lowercase hex characters (16 bytes). */
export const NODE_ID_RE = /^[0-9a-f]{32}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const PRINTABLE_RE = /^[\x20-\x7e]*$/;
const TYPE_RE = /^[a-z-]+$/;
const TCP_ADDR_RE = /^tcp:(?:\[([0-9A-Fa-f:.]{2,45})\]|([0-9.]{7,15})):([0-9]{1,5})$/;
const TOR_ADDR_RE = /^tor:([a-z2-7]{56})\.onion:([0-9]{1,5})$/;

/** A parsed mesh address. */
export type MeshAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'tor'; readonly onion: string; readonly port: number };

/**
 * The mesh transport of a cluster (`cluster.transport`). A node accepts, stores, gossips and
 * dials addresses of this kind only (docs/SECURITY.md, "Mesh addresses"): in a tor cluster a
 * `tcp:` address from a peer would make every node connect to it directly, from its own IP.
 */
export type MeshTransportKind = MeshAddress['kind'];

/**
 * Parse "tcp:IP:PORT" (IP a literal: dotted-quad IPv4 or `[IPv6]`) or
 * "tor:<56 base32>.onion:PORT". Host names are refused: nothing from the wire is ever
 * resolved. Returns undefined if malformed (never throws).
 */
export function parseMeshAddress(s: string): MeshAddress | undefined {
  if (s.length > MAX_ADDR_CHARS) return undefined;
  const t = TCP_ADDR_RE.exec(s);
  if (t) {
    const port = Number(t[3]);
    if (port < 1 || port > 65535) return undefined;
    if (t[1] !== undefined ? !isIPv6Literal(t[1]) : !isIPv4Literal(t[2]!)) return undefined;
    return { kind: 'tcp', host: t[1] ?? t[2]!, port };
  }
  const o = TOR_ADDR_RE.exec(s);
  if (o) {
    const port = Number(o[2]);
    if (port < 1 || port > 65535) return undefined;
    return { kind: 'tor', onion: `${o[1]!}.onion`, port };
  }
  return undefined;
}

/** True if `s` is a well-formed nodeId. */
export function isNodeId(s: unknown): s is string {
  return typeof s === 'string' && NODE_ID_RE.test(s);
}

function nodeId(v: unknown, path: string): string {
  return str(v, path, 32, 32, NODE_ID_RE);
}

/** A mesh address; with `transport`, only of that kind (undefined: either kind, for tools). */
function addr(v: unknown, path: string, transport: MeshTransportKind | undefined): string {
  const s = str(v, path, 1, MAX_ADDR_CHARS, PRINTABLE_RE);
  const a = parseMeshAddress(s);
  if (a === undefined) fail(path, 'not a mesh address');
  if (transport !== undefined && a.kind !== transport) fail(path, `not a ${transport}: address (the cluster transport)`);
  return s;
}

function health(v: unknown, path: string): HealthInfo {
  const o = object(v, path, ['healthy', 'reasons']);
  const reasons = array(field(o, 'reasons'), `${path}.reasons`, MAX_HEALTH_REASONS).map((r, i) =>
    str(r, `${path}.reasons[${i}]`, 0, MAX_REASON_CHARS, PRINTABLE_RE),
  );
  return { healthy: bool(field(o, 'healthy'), `${path}.healthy`), reasons };
}

const HELLO_KEYS = ['name', 'addr', 'priority', 'health', 'introDigest'] as const;

function helloFields(o: Obj, path: string, transport: MeshTransportKind | undefined): HelloBody {
  return {
    name: str(field(o, 'name'), `${path}.name`, 1, MAX_NAME_CHARS, NAME_RE),
    addr: addr(field(o, 'addr'), `${path}.addr`, transport),
    priority: int(field(o, 'priority'), `${path}.priority`, MIN_PRIORITY, MAX_PRIORITY),
    health: health(field(o, 'health'), `${path}.health`),
    introDigest: str(field(o, 'introDigest'), `${path}.introDigest`, 64, 64, HEX64_RE),
  };
}

/** Validate a `hello` body (its `addr` of kind `transport`, if given). Throws SchemaViolation. */
export function validateHello(v: unknown, path = 'body', transport?: MeshTransportKind): HelloBody {
  return helloFields(object(v, path, HELLO_KEYS), path, transport);
}

const TRAFFIC_KEYS = ['open', 'accepted', 'requests', 'bytesIn', 'bytesOut'] as const;
const REVISION_RE = /^(?:0|[1-9][0-9]*)$/;

/** Validate a {@link TrafficSummary}. Throws SchemaViolation. */
export function validateTrafficSummary(v: unknown, path = 'traffic'): TrafficSummary {
  const o = object(v, path, TRAFFIC_KEYS);
  const n = (k: (typeof TRAFFIC_KEYS)[number]): number => int(field(o, k), `${path}.${k}`, 0, Number.MAX_SAFE_INTEGER);
  return { open: n('open'), accepted: n('accepted'), requests: n('requests'), bytesIn: n('bytesIn'), bytesOut: n('bytesOut') };
}

function revision(v: unknown, path: string): string | null {
  if (v === null) return null;
  const s = str(v, path, 1, MAX_REVISION_DIGITS, REVISION_RE);
  if (BigInt(s) > UINT64_MAX) fail(path, 'out of range');
  return s;
}

function acceptedCount(v: unknown, path: string): AcceptedCount | null {
  if (v === null) return null;
  const a = array(v, path, 2);
  if (a.length !== 2) fail(path, 'not a pair');
  const total = int(a[1], `${path}[1]`, 0, MAX_RESPONSIBLE_HSDIRS);
  const accepted = int(a[0], `${path}[0]`, 0, MAX_RESPONSIBLE_HSDIRS);
  if (accepted > total) fail(path, 'accepted exceeds responsible');
  return [accepted, total];
}

/** Validate a {@link PublishSummary}. Throws SchemaViolation. */
export function validatePublishSummary(v: unknown, path = 'publish'): PublishSummary {
  const o = object(v, path, ['at', 'revisions', 'accepted', 'nodes']);
  const revs = array(field(o, 'revisions'), `${path}.revisions`, 2);
  if (revs.length !== 2) fail(`${path}.revisions`, 'not a pair');
  const acc = array(field(o, 'accepted'), `${path}.accepted`, 2);
  if (acc.length !== 2) fail(`${path}.accepted`, 'not a pair');
  return {
    at: int(field(o, 'at'), `${path}.at`, 0, Number.MAX_SAFE_INTEGER),
    revisions: [revision(revs[0], `${path}.revisions[0]`), revision(revs[1], `${path}.revisions[1]`)],
    accepted: [acceptedCount(acc[0], `${path}.accepted[0]`), acceptedCount(acc[1], `${path}.accepted[1]`)],
    nodes: int(field(o, 'nodes'), `${path}.nodes`, 0, MAX_PUBLISH_NODES),
  };
}

/** Validate a `heartbeat` body (its own and every gossiped `addr` of kind `transport`, if given). Throws SchemaViolation. */
export function validateHeartbeat(v: unknown, path = 'body', transport?: MeshTransportKind): HeartbeatBody {
  const o = object(v, path, [...HELLO_KEYS, 'peers'], ['lease', 'traffic', 'publish']);
  const base = helloFields(o, path, transport);
  const peers = array(field(o, 'peers'), `${path}.peers`, MAX_GOSSIP_PEERS).map((p, i): GossipPeer => {
    const pp = `${path}.peers[${i}]`;
    const po = object(p, pp, ['id', 'addr', 'lastSeenAgoMs']);
    return {
      id: nodeId(field(po, 'id'), `${pp}.id`),
      addr: addr(field(po, 'addr'), `${pp}.addr`, transport),
      lastSeenAgoMs: int(field(po, 'lastSeenAgoMs'), `${pp}.lastSeenAgoMs`, 0, MAX_AGO_MS),
    };
  });
  const trafficRaw = field(o, 'traffic');
  const publishRaw = field(o, 'publish');
  const extras = {
    ...(trafficRaw === undefined ? {} : { traffic: validateTrafficSummary(trafficRaw, `${path}.traffic`) }),
    ...(publishRaw === undefined ? {} : { publish: validatePublishSummary(publishRaw, `${path}.publish`) }),
  };
  const leaseRaw = field(o, 'lease');
  if (leaseRaw === undefined) return { ...base, peers, ...extras };
  const lo = object(leaseRaw, `${path}.lease`, ['holder', 'until']);
  const lease: LeaseClaim = {
    holder: nodeId(field(lo, 'holder'), `${path}.lease.holder`),
    until: int(field(lo, 'until'), `${path}.lease.until`, 0, Number.MAX_SAFE_INTEGER),
  };
  return { ...base, lease, peers, ...extras };
}

/** Validate one IntroPointWire. Throws SchemaViolation. */
export function validateIntroPointWire(v: unknown, path = 'point'): IntroPointWire {
  const o = object(v, path, ['ls', 'onionKey', 'authKey', 'encKey']);
  return {
    ls: b64Bounded(field(o, 'ls'), `${path}.ls`, 1, MAX_LINK_SPECIFIER_BYTES),
    onionKey: b64Exact(field(o, 'onionKey'), `${path}.onionKey`, 32),
    authKey: b64Exact(field(o, 'authKey'), `${path}.authKey`, 32),
    encKey: b64Exact(field(o, 'encKey'), `${path}.encKey`, 32),
  };
}

/** Validate an `intro-points` body. Throws SchemaViolation. */
/** A blinded key as the mesh carries it: canonical unpadded base64 of 32 bytes (as in HS_DESC events). */
function blindedKey(v: unknown, path: string): string {
  const s = str(v, path, 43, 43, /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]$/);
  return s;
}

function introPointList(v: unknown, path: string): IntroPointWire[] {
  return array(v, path, MAX_INTRO_POINTS).map((p, i) => validateIntroPointWire(p, `${path}[${i}]`));
}

export function validateIntroPoints(v: unknown, path = 'body'): IntroPointsBody {
  const o = object(v, path, ['digest', 'fetchedAt', 'points'], ['key', 'rotationSafe', 'next', 'pow']);
  const key = field(o, 'key');
  const powRaw = field(o, 'pow');
  let pow: PowParamsWire | undefined;
  if (powRaw !== undefined) {
    const p = object(powRaw, `${path}.pow`, ['seed', 'effort', 'expires']);
    pow = {
      seed: b64Exact(field(p, 'seed'), `${path}.pow.seed`, 32),
      effort: int(field(p, 'effort'), `${path}.pow.effort`, 0, 0xffffffff),
      expires: int(field(p, 'expires'), `${path}.pow.expires`, 0, Number.MAX_SAFE_INTEGER),
    };
  }
  const safe = field(o, 'rotationSafe');
  const nextRaw = field(o, 'next');
  let next: NextIntroPoints | undefined;
  if (nextRaw !== undefined) {
    const n = object(nextRaw, `${path}.next`, ['key', 'harvestedAt', 'points']);
    next = {
      key: blindedKey(field(n, 'key'), `${path}.next.key`),
      harvestedAt: int(field(n, 'harvestedAt'), `${path}.next.harvestedAt`, 0, Number.MAX_SAFE_INTEGER),
      points: introPointList(field(n, 'points'), `${path}.next.points`),
    };
  }
  return {
    digest: str(field(o, 'digest'), `${path}.digest`, 64, 64, HEX64_RE),
    fetchedAt: int(field(o, 'fetchedAt'), `${path}.fetchedAt`, 0, Number.MAX_SAFE_INTEGER),
    points: introPointList(field(o, 'points'), `${path}.points`),
    ...(key === undefined ? {} : { key: blindedKey(key, `${path}.key`) }),
    ...(safe === undefined ? {} : { rotationSafe: bool(safe, `${path}.rotationSafe`) }),
    ...(next === undefined ? {} : { next }),
    ...(pow === undefined ? {} : { pow }),
  };
}

/** Validate a `leave` body. Throws SchemaViolation. */
export function validateLeave(v: unknown, path = 'body'): LeaveBody {
  const o = object(v, path, ['reason']);
  return { reason: str(field(o, 'reason'), `${path}.reason`, 0, MAX_REASON_CHARS, PRINTABLE_RE) };
}

/** Validate a `lease` body. Throws SchemaViolation. */
export function validateLease(v: unknown, path = 'body'): LeaseBody {
  const o = object(v, path, ['until']);
  return { until: int(field(o, 'until'), `${path}.until`, 0, Number.MAX_SAFE_INTEGER) };
}

/** Validate a `tokens` body. Throws SchemaViolation. */
export function validateTokens(v: unknown, path = 'body'): TokensBody {
  const o = object(v, path, ['entries']);
  const raw = field(o, 'entries');
  // Bound before validating entries one by one.
  array(raw, `${path}.entries`, MAX_LEDGER_ENTRIES);
  try {
    return { entries: validateLedgerEntries(raw, `${path}.entries`) };
  } catch (e) {
    if (e instanceof LedgerViolation) fail(e.path, e.problem);
    throw e;
  }
}

/**
 * Validate the envelope's fields except `body` (checked after the version). `v` must be a
 * positive integer here; whether it is {@link MESH_PROTOCOL_VERSION} is the caller's
 * separate `version` check. Throws SchemaViolation.
 */
export function validateEnvelope(v: unknown): EnvelopeHeader {
  const o = object(v, 'envelope', ['v', 'type', 'from', 'pub', 'ts', 'nonce', 'body']);
  return {
    v: int(field(o, 'v'), 'v', 1, 0xffff),
    type: str(field(o, 'type'), 'type', 1, 32, TYPE_RE),
    from: nodeId(field(o, 'from'), 'from'),
    pub: b64Exact(field(o, 'pub'), 'pub', 32),
    ts: int(field(o, 'ts'), 'ts', 0, Number.MAX_SAFE_INTEGER),
    nonce: b64Exact(field(o, 'nonce'), 'nonce', NONCE_BYTES),
    body: field(o, 'body'),
  };
}

/**
 * Validate a body for a (v1) message type. `transport` is the cluster's: addresses of the
 * other kind are violations (omit it only where no cluster is involved, e.g. inspecting a
 * frame). Throws SchemaViolation (also for unknown types).
 */
export function validateMessage(type: string, body: unknown, transport?: MeshTransportKind): MeshMessage {
  switch (type) {
    case 'hello':
      return { type, body: validateHello(body, 'body', transport) };
    case 'heartbeat':
      return { type, body: validateHeartbeat(body, 'body', transport) };
    case 'intro-points':
      return { type, body: validateIntroPoints(body) };
    case 'leave':
      return { type, body: validateLeave(body) };
    case 'lease':
      return { type, body: validateLease(body) };
    case 'tokens':
      return { type, body: validateTokens(body) };
    case 'members':
      try {
        return { type, body: validateMembers(body, 'body') };
      } catch (e) {
        if (e instanceof MembersViolation) fail(e.path, e.problem);
        throw e;
      }
    default:
      return fail('type', 'unknown message type');
  }
}

/**
 * Deepest bracket nesting of JSON text, scanning at most until `limit` is exceeded (then
 * returns limit + 1). Linear, no recursion; run before JSON.parse so hostile nesting never
 * reaches the parser.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped char
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Intro points on the wire: one definition, in src/core/intro/wire.ts.

export { introDigest, introPointFromWire, introPointToWire } from '../intro/wire.js';
