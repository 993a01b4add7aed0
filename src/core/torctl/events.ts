/**
 * Typed parsers for the asynchronous events torbalance uses (control-spec §4.1; tor's
 * `control_events.c`, `hs_control.c`; exact formats in /work/shared/tor-facts.md §1.2):
 *
 * ```
 * 650 HS_DESC Action HSAddress AuthType HsDir [DescriptorID] [REASON=r] [REPLICA=n] [HSDIR_INDEX=hex]
 *   Action = REQUESTED / UPLOAD / RECEIVED / UPLOADED / IGNORE / FAILED / CREATED
 *   HSAddress = 16 or 56 base32 chars / UNKNOWN;  HsDir = $FP~nick / $FP / UNKNOWN
 *   DescriptorID = 43 base64 chars (v3 blinded key) / 32 base32 chars (v2)
 * 650+HS_DESC_CONTENT HSAddress DescId HsDir CRLF Descriptor CRLF "." CRLF 650 OK
 * 650 STATUS_CLIENT Severity Action [args]   e.g. NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"
 * 650 CIRC CircuitID CircStatus [Path] [BUILD_FLAGS=..] [PURPOSE=..] [HS_STATE=..]
 *          [REND_QUERY=..] [TIME_CREATED=..] [REASON=..] [REMOTE_REASON=..] …
 * ```
 * Unknown extra keywords are kept in `extra` (the spec allows new ones). Malformed events
 * raise DecodeError TB_ERR_TOR_EVENT_FORMAT.
 */
import { DecodeError } from '../errors.js';
import { type ControlEvent, splitReplyArgs } from './reply.js';

function bad(message: string): DecodeError {
  return new DecodeError('TB_ERR_TOR_EVENT_FORMAT', message);
}

/** A relay as tor names it in events: `$FP~nick`, `$FP=nick` or `$FP`. */
export interface RelayRef {
  /** 40 upper-case hex digits. */
  readonly fingerprint: string;
  readonly nickname: string | undefined;
}

/** Parse `$FP~nick` / `$FP=nick` / `$FP` (LongName / Fingerprint, control-spec §2.4). */
export function parseRelayRef(s: string): RelayRef {
  const m = /^\$([0-9A-Fa-f]{40})(?:[~=]([A-Za-z0-9]{1,19}))?$/.exec(s);
  if (m === null) throw bad('malformed relay name in event');
  return { fingerprint: m[1]!.toUpperCase(), nickname: m[2] };
}

function splitEvent(e: ControlEvent | string, type: string): { positional: string[]; keyed: Map<string, string> } {
  const text = typeof e === 'string' ? e : (e.lines[0] ?? '');
  if (!(text === type || text.startsWith(type + ' '))) throw bad(`not a ${type} event`);
  const { positional, keyed } = splitReplyArgs(text.slice(type.length + 1));
  return { positional, keyed };
}

function extraOf(keyed: Map<string, string>, known: readonly string[]): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of keyed) if (!known.includes(k)) out.set(k, v);
  return out;
}

// ---------------------------------------------------------------------------------------
// HS_DESC

export const HS_DESC_ACTIONS = ['REQUESTED', 'UPLOAD', 'RECEIVED', 'UPLOADED', 'IGNORE', 'FAILED', 'CREATED'] as const;
export type HsDescAction = (typeof HS_DESC_ACTIONS)[number];

export interface HsDescEvent {
  readonly action: HsDescAction;
  /** Lower-case base32 address without ".onion", or undefined for `UNKNOWN`. */
  readonly address: string | undefined;
  /** NO_AUTH / BASIC_AUTH / STEALTH_AUTH / UNKNOWN. */
  readonly authType: string;
  /** The HSDir, or undefined for `UNKNOWN`. */
  readonly hsDir: RelayRef | undefined;
  /** Blinded key (base64, 43 chars) for v3; undefined if absent or `UNKNOWN`. */
  readonly descriptorId: string | undefined;
  /** REASON= (FAILED): BAD_DESC, QUERY_REJECTED, UPLOAD_REJECTED, NOT_FOUND, UNEXPECTED, QUERY_NO_HSDIR, QUERY_RATE_LIMITED. */
  readonly reason: string | undefined;
  readonly replica: number | undefined;
  /** HSDIR_INDEX= (64 hex, upper case as tor sends it). */
  readonly hsDirIndex: string | undefined;
  readonly extra: ReadonlyMap<string, string>;
}

const ADDRESS_RE = /^(?:[a-z2-7]{16}|[a-z2-7]{56})$/;
const DESC_ID_RE = /^(?:[A-Za-z0-9+/]{43}|[a-z2-7]{32})$/;

function parseAddressField(s: string): string | undefined {
  if (s === 'UNKNOWN') return undefined;
  const l = s.toLowerCase();
  if (!ADDRESS_RE.test(l)) throw bad('malformed onion address in event');
  return l;
}

/** Parse an HS_DESC event (a ControlEvent or its first line text, `HS_DESC …`). */
export function parseHsDesc(e: ControlEvent | string): HsDescEvent {
  const { positional, keyed } = splitEvent(e, 'HS_DESC');
  if (positional.length < 4 || positional.length > 5) throw bad('HS_DESC event has the wrong number of fields');
  const [actionS, addrS, authType, hsDirS, descIdS] = positional as [string, string, string, string, string | undefined];
  if (!(HS_DESC_ACTIONS as readonly string[]).includes(actionS)) throw bad('unknown HS_DESC action');
  if (!/^[A-Z_]{1,32}$/.test(authType)) throw bad('malformed HS_DESC auth type');
  const hsDir = hsDirS === 'UNKNOWN' ? undefined : parseRelayRef(hsDirS);
  let descriptorId: string | undefined;
  if (descIdS !== undefined && descIdS !== 'UNKNOWN') {
    if (!DESC_ID_RE.test(descIdS)) throw bad('malformed HS_DESC descriptor id');
    descriptorId = descIdS;
  }
  const reason = keyed.get('REASON');
  if (reason !== undefined && !/^[A-Z_]{1,64}$/.test(reason)) throw bad('malformed HS_DESC reason');
  const replicaS = keyed.get('REPLICA');
  let replica: number | undefined;
  if (replicaS !== undefined) {
    if (!/^[0-9]{1,6}$/.test(replicaS)) throw bad('malformed HS_DESC replica');
    replica = Number(replicaS);
  }
  const hsDirIndex = keyed.get('HSDIR_INDEX');
  if (hsDirIndex !== undefined && !/^[0-9A-Fa-f]{64}$/.test(hsDirIndex)) throw bad('malformed HSDIR_INDEX');
  return {
    action: actionS as HsDescAction,
    address: parseAddressField(addrS),
    authType,
    hsDir,
    descriptorId,
    reason,
    replica,
    hsDirIndex,
    extra: extraOf(keyed, ['REASON', 'REPLICA', 'HSDIR_INDEX']),
  };
}

// ---------------------------------------------------------------------------------------
// HS_DESC_CONTENT

export interface HsDescContentEvent {
  readonly address: string | undefined;
  readonly descriptorId: string | undefined;
  readonly hsDir: RelayRef | undefined;
  /** The descriptor text with a final "\n" ("" when the fetch failed). */
  readonly descriptor: string;
}

/** Parse `650+HS_DESC_CONTENT addr descId hsdir` + data block + `650 OK`. */
export function parseHsDescContent(e: ControlEvent): HsDescContentEvent {
  const first = e.reply.lines[0];
  if (first === undefined) throw bad('empty HS_DESC_CONTENT event');
  const { positional } = splitEvent(first.text, 'HS_DESC_CONTENT');
  if (positional.length !== 3) throw bad('HS_DESC_CONTENT event has the wrong number of fields');
  const [addrS, descIdS, hsDirS] = positional as [string, string, string];
  let descriptorId: string | undefined;
  if (descIdS !== 'UNKNOWN') {
    if (!DESC_ID_RE.test(descIdS)) throw bad('malformed HS_DESC_CONTENT descriptor id');
    descriptorId = descIdS;
  }
  const data = first.separator === '+' ? (first.data ?? '') : '';
  return {
    address: parseAddressField(addrS),
    descriptorId,
    hsDir: hsDirS === 'UNKNOWN' ? undefined : parseRelayRef(hsDirS),
    descriptor: data === '' ? '' : data + '\n',
  };
}

// ---------------------------------------------------------------------------------------
// STATUS_CLIENT / STATUS_GENERAL / STATUS_SERVER

export interface StatusEvent {
  /** STATUS_CLIENT, STATUS_GENERAL or STATUS_SERVER. */
  readonly type: string;
  /** NOTICE / WARN / ERR. */
  readonly severity: string;
  /** BOOTSTRAP, CIRCUIT_ESTABLISHED, ENOUGH_DIR_INFO, … */
  readonly action: string;
  readonly args: ReadonlyMap<string, string>;
}

/** Parse `STATUS_* Severity Action args…`. */
export function parseStatusEvent(e: ControlEvent | string): StatusEvent {
  const text = typeof e === 'string' ? e : (e.lines[0] ?? '');
  const m = /^(STATUS_CLIENT|STATUS_GENERAL|STATUS_SERVER) /.exec(text);
  if (m === null) throw bad('not a STATUS_* event');
  const type = m[1]!;
  const { positional, keyed } = splitEvent(text, type);
  if (positional.length < 2) throw bad('STATUS event lacks severity or action');
  const [severity, action] = positional as [string, string];
  if (!/^[A-Z_]{1,16}$/.test(severity) || !/^[A-Z_]{1,64}$/.test(action)) throw bad('malformed STATUS event');
  return { type, severity, action, args: keyed };
}

export interface BootstrapStatus {
  readonly severity: string;
  /** 0–100. */
  readonly progress: number;
  readonly tag: string;
  readonly summary: string | undefined;
  /** WARNING=, REASON=, … on a bootstrap problem (severity WARN). */
  readonly warning: string | undefined;
  readonly reason: string | undefined;
}

/**
 * Parse a `STATUS_CLIENT <sev> BOOTSTRAP PROGRESS=n TAG=t SUMMARY="…"` event; undefined if the
 * STATUS_CLIENT event is not a BOOTSTRAP one.
 */
export function parseBootstrap(e: ControlEvent | string): BootstrapStatus | undefined {
  const s = parseStatusEvent(e);
  if (s.type !== 'STATUS_CLIENT' || s.action !== 'BOOTSTRAP') return undefined;
  const p = s.args.get('PROGRESS');
  const tag = s.args.get('TAG');
  if (p === undefined || !/^[0-9]{1,3}$/.test(p) || Number(p) > 100) throw bad('malformed BOOTSTRAP PROGRESS');
  if (tag === undefined || !/^[A-Za-z0-9_]{1,64}$/.test(tag)) throw bad('malformed BOOTSTRAP TAG');
  return {
    severity: s.severity,
    progress: Number(p),
    tag,
    summary: s.args.get('SUMMARY'),
    warning: s.args.get('WARNING'),
    reason: s.args.get('REASON'),
  };
}

// ---------------------------------------------------------------------------------------
// CIRC

export const CIRC_STATUSES = ['LAUNCHED', 'BUILT', 'GUARD_WAIT', 'EXTENDED', 'FAILED', 'CLOSED'] as const;
export type CircStatus = (typeof CIRC_STATUSES)[number];

export interface CircEvent {
  readonly id: string;
  readonly status: CircStatus;
  readonly path: readonly RelayRef[];
  readonly buildFlags: readonly string[];
  /** GENERAL, HS_CLIENT_INTRO, HS_SERVICE_INTRO, HS_SERVICE_REND, HS_VANGUARDS, … */
  readonly purpose: string | undefined;
  /** HSCI_CONNECTING, HSSI_ESTABLISHED, HSSR_JOINED, … */
  readonly hsState: string | undefined;
  /** Onion address (without .onion) for HS circuits. */
  readonly rendQuery: string | undefined;
  readonly timeCreated: string | undefined;
  readonly reason: string | undefined;
  readonly remoteReason: string | undefined;
  readonly extra: ReadonlyMap<string, string>;
}

/** Parse `CIRC id status [path] [KEY=value]…`. */
export function parseCirc(e: ControlEvent | string): CircEvent {
  const { positional, keyed } = splitEvent(e, 'CIRC');
  if (positional.length < 2 || positional.length > 3) throw bad('CIRC event has the wrong number of fields');
  const [id, statusS, pathS] = positional as [string, string, string | undefined];
  if (!/^[0-9]{1,10}$/.test(id)) throw bad('malformed circuit id');
  if (!(CIRC_STATUSES as readonly string[]).includes(statusS)) throw bad('unknown circuit status');
  const path = pathS === undefined ? [] : pathS.split(',').map(parseRelayRef);
  const flags = keyed.get('BUILD_FLAGS');
  const rq = keyed.get('REND_QUERY');
  return {
    id,
    status: statusS as CircStatus,
    path,
    buildFlags: flags === undefined || flags === '' ? [] : flags.split(','),
    purpose: keyed.get('PURPOSE'),
    hsState: keyed.get('HS_STATE'),
    rendQuery: rq === undefined ? undefined : parseAddressField(rq),
    timeCreated: keyed.get('TIME_CREATED'),
    reason: keyed.get('REASON'),
    remoteReason: keyed.get('REMOTE_REASON'),
    extra: extraOf(keyed, ['BUILD_FLAGS', 'PURPOSE', 'HS_STATE', 'REND_QUERY', 'TIME_CREATED', 'REASON', 'REMOTE_REASON']),
  };
}

/**
 * Parse the value of `GETINFO status/bootstrap-phase` (`NOTICE BOOTSTRAP PROGRESS=100
 * TAG=done SUMMARY="Done"`, the same arguments as the STATUS_CLIENT event).
 */
export function parseBootstrapPhase(value: string): BootstrapStatus {
  const b = parseBootstrap(`STATUS_CLIENT ${value}`);
  if (b === undefined) throw bad('status/bootstrap-phase is not a BOOTSTRAP status');
  return b;
}
