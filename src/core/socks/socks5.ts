/**
 * SOCKS5 client handshake (RFC 1928) with username/password authentication (RFC 1929), sans-IO:
 * the caller moves bytes, this module decides what to send and what the proxy's bytes mean.
 *
 * The exchange, in order (each reply may arrive split over reads or coalesced with the next):
 * ```
 * greeting   → VER=5 NMETHODS METHODS…              ← VER=5 METHOD
 * auth (02)  → VER=1 ULEN UNAME PLEN PASSWD         ← VER=1 STATUS          (RFC 1929 §2)
 * CONNECT    → VER=5 CMD=1 RSV=0 ATYP DST.ADDR DST.PORT
 *                                                  ← VER=5 REP RSV=0 ATYP BND.ADDR BND.PORT
 * ```
 * ATYP 0x01 IPv4 (4 bytes), 0x03 domain name (1 length byte, 1–255 bytes), 0x04 IPv6 (16 bytes).
 * When a username is given only method 0x02 is offered: tor's SocksPort isolates streams by
 * the SOCKS username and password (IsolateSOCKSAuth, on by default), so a proxy that picked
 * "no authentication" would silently merge streams meant to be apart; that is refused here.
 *
 * Reply codes (REP): RFC 1928 §6 0x01–0x08, and tor's onion-service codes 0xF0–0xF7 (prop304,
 * sent when the SocksPort has the `ExtendedErrors` flag; tor's `socks5_reply_status_t`). Each
 * maps to a {@link SocksReplyError} whose `kind` says who is at fault (docs/errors.md).
 * A refusal is reported as soon as VER and REP are known, since the proxy closes after it.
 *
 * Input is bounded: at most one incomplete message (≤ 262 bytes, the longest reply) is held;
 * bytes after the successful CONNECT reply belong to the stream and are handed back as `rest`.
 * A proxy that answers ahead (a reply coalesced with the next one before our request went out)
 * is read in order; the requests still to send come back in the same step.
 * Nothing here throws on the proxy's bytes: a violation is a failed {@link Socks5Step} with a
 * {@link SocksProtocolError}, and the handshake stays failed.
 */
import { concatBytes } from '../bytes.js';
import { BugError, TorbalanceError, type ErrorKind } from '../errors.js';

/** A SOCKS5 address: what to CONNECT to, or the proxy's BND.ADDR. */
export type SocksAddress =
  | { readonly type: 'domain'; readonly name: string }
  | { readonly type: 'ipv4'; readonly bytes: Uint8Array }
  | { readonly type: 'ipv6'; readonly bytes: Uint8Array };

export interface Socks5ConnectRequest {
  readonly address: SocksAddress;
  readonly port: number;
  /** RFC 1929 credentials (each 1–255 bytes of UTF-8); absent: offer "no authentication" only. */
  readonly auth?: { readonly username: string; readonly password: string };
}

export type Socks5Step =
  /** Send `send` (possibly empty) and wait for more bytes. */
  | { readonly state: 'pending'; readonly send: Uint8Array }
  /**
   * The stream is open: send `send` first (non-empty only if the proxy answered ahead of our
   * requests); `rest` are the first stream bytes that came with the reply.
   */
  | { readonly state: 'connected'; readonly send: Uint8Array; readonly bound: SocksAddress; readonly boundPort: number; readonly rest: Uint8Array }
  /** The handshake failed; close the connection. */
  | { readonly state: 'failed'; readonly error: SocksReplyError | SocksProtocolError };

/** Names of the SOCKS5 reply codes (RFC 1928 §6; tor's prop304 extensions). */
export const SOCKS5_REPLIES = {
  0x01: { name: 'GENERAL_FAILURE', kind: 'tor', message: 'general SOCKS server failure' },
  // tor: a SocksPolicy or OnionTrafficOnly refusal (END_STREAM_REASON_ENTRYPOLICY), i.e. the
  // destination the operator configured is not one this SocksPort serves.
  0x02: { name: 'NOT_ALLOWED', kind: 'config', message: 'connection not allowed by ruleset' },
  0x03: { name: 'NETWORK_UNREACHABLE', kind: 'tor', message: 'network unreachable' },
  0x04: { name: 'HOST_UNREACHABLE', kind: 'target', message: 'host unreachable' },
  0x05: { name: 'CONNECTION_REFUSED', kind: 'target', message: 'connection refused' },
  0x06: { name: 'TTL_EXPIRED', kind: 'target', message: 'TTL expired' },
  0x07: { name: 'COMMAND_NOT_SUPPORTED', kind: 'tor', message: 'command not supported' },
  0x08: { name: 'ADDRESS_TYPE_NOT_SUPPORTED', kind: 'tor', message: 'address type not supported' },
  0xf0: { name: 'HS_NOT_FOUND', kind: 'target', message: 'onion service descriptor not found' },
  0xf1: { name: 'HS_IS_INVALID', kind: 'target', message: 'onion service descriptor is invalid' },
  0xf2: { name: 'HS_INTRO_FAILED', kind: 'target', message: 'onion service introduction failed' },
  0xf3: { name: 'HS_REND_FAILED', kind: 'target', message: 'onion service rendezvous failed' },
  // Client authorization is the dialing side's configuration (ClientOnionAuthDir).
  0xf4: { name: 'HS_MISSING_CLIENT_AUTH', kind: 'config', message: 'onion service requires client authorization' },
  0xf5: { name: 'HS_BAD_CLIENT_AUTH', kind: 'config', message: 'onion service client authorization was rejected' },
  // The address we were given to dial is not a valid v3 onion address.
  0xf6: { name: 'HS_BAD_ADDRESS', kind: 'config', message: 'invalid onion service address' },
  0xf7: { name: 'HS_INTRO_TIMEDOUT', kind: 'target', message: 'onion service introduction timed out' },
} as const satisfies Readonly<Record<number, { name: string; kind: ErrorKind; message: string }>>;

export type Socks5ReplyName = (typeof SOCKS5_REPLIES)[keyof typeof SOCKS5_REPLIES]['name'] | 'UNKNOWN';

function replyInfo(code: number): { name: Socks5ReplyName; kind: ErrorKind; message: string } {
  const known = (SOCKS5_REPLIES as Readonly<Record<number, { name: Socks5ReplyName; kind: ErrorKind; message: string } | undefined>>)[code];
  // A code outside both lists means the proxy is not the tor we expect.
  return known ?? { name: 'UNKNOWN', kind: 'tor', message: `unknown SOCKS5 reply 0x${hex2(code)}` };
}

/** Human-readable meaning of a SOCKS5 reply code. */
export function describeSocksReply(code: number): string {
  return replyInfo(code).message;
}

/** The proxy refused the CONNECT: `socksReply` is REP, `replyName` its name. */
export class SocksReplyError extends TorbalanceError {
  readonly socksReply: number;
  readonly replyName: Socks5ReplyName;
  constructor(socksReply: number, destination: string) {
    const info = replyInfo(socksReply);
    super('TB_ERR_SOCKS_REPLY', info.kind, `tor could not reach ${destination}: ${info.message} (SOCKS5 reply 0x${hex2(socksReply)})`);
    this.name = 'SocksReplyError';
    this.socksReply = socksReply;
    this.replyName = info.name;
  }
}

/**
 * The proxy's bytes are not the SOCKS5 exchange we asked for (TB_ERR_SOCKS_PROTOCOL), or it
 * refused every offered method or our credentials (TB_ERR_SOCKS_AUTH).
 */
export class SocksProtocolError extends TorbalanceError {
  constructor(code: 'TB_ERR_SOCKS_PROTOCOL' | 'TB_ERR_SOCKS_AUTH', message: string) {
    super(code, 'tor', message);
    this.name = 'SocksProtocolError';
  }
}

const VER = 0x05;
const AUTH_VER = 0x01;
const METHOD_NONE = 0x00;
const METHOD_USERPASS = 0x02;
const METHOD_NO_ACCEPTABLE = 0xff;
const CMD_CONNECT = 0x01;
const ATYP_IPV4 = 0x01;
const ATYP_DOMAIN = 0x03;
const ATYP_IPV6 = 0x04;

const encoder = new TextEncoder();

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function invalid(message: string): TorbalanceError {
  return new TorbalanceError('TB_ERR_SOCKS_DEST', 'internal', message);
}

/** `host:port` for messages (IPv6 in brackets). */
export function describeSocksDestination(address: SocksAddress, port: number): string {
  switch (address.type) {
    case 'domain':
      return `${address.name}:${port}`;
    case 'ipv4':
      return `${[...address.bytes].join('.')}:${port}`;
    case 'ipv6': {
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) groups.push(((address.bytes[i]! << 8) | address.bytes[i + 1]!).toString(16));
      return `[${groups.join(':')}]:${port}`;
    }
  }
}

function encodeAddress(a: SocksAddress): Uint8Array {
  switch (a.type) {
    case 'domain': {
      // Printable ASCII without space: a name tor resolves (or an onion address), never a
      // string that could smuggle control bytes into tor's logs.
      if (!/^[\x21-\x7e]{1,255}$/.test(a.name)) throw invalid('destination hostname is empty, too long or not printable ASCII');
      const name = encoder.encode(a.name);
      const out = new Uint8Array(2 + name.length);
      out[0] = ATYP_DOMAIN;
      out[1] = name.length;
      out.set(name, 2);
      return out;
    }
    case 'ipv4':
    case 'ipv6': {
      const len = a.type === 'ipv4' ? 4 : 16;
      if (a.bytes.length !== len) throw invalid(`destination ${a.type} address must be ${len} bytes`);
      const out = new Uint8Array(1 + len);
      out[0] = a.type === 'ipv4' ? ATYP_IPV4 : ATYP_IPV6;
      out.set(a.bytes, 1);
      return out;
    }
  }
}

function credential(s: string, what: string): Uint8Array {
  const b = encoder.encode(s);
  if (b.length < 1 || b.length > 255) throw invalid(`SOCKS ${what} must be 1–255 bytes`);
  return b;
}

type Stage = 'greeting' | 'auth' | 'connect' | 'connected' | 'failed';

/**
 * One client handshake. Call {@link start} once and send its bytes, then {@link receive}
 * every chunk the proxy sends until the step is `connected` or `failed`; call {@link end}
 * if the proxy closes first. After `connected`, stop feeding: later bytes are the stream's.
 */
export class Socks5ClientHandshake {
  readonly #greeting: Uint8Array;
  readonly #auth: Uint8Array | undefined;
  readonly #connect: Uint8Array;
  readonly #destination: string;
  #stage: Stage = 'greeting';
  #started = false;
  #buf: Uint8Array = new Uint8Array(0);
  #failure: SocksReplyError | SocksProtocolError | undefined;

  /** Validates the request; an invalid one throws TB_ERR_SOCKS_DEST (a caller bug or bad config). */
  constructor(req: Socks5ConnectRequest) {
    if (!Number.isInteger(req.port) || req.port < 1 || req.port > 65535) throw invalid('destination port out of range');
    const addr = encodeAddress(req.address);
    this.#connect = new Uint8Array([VER, CMD_CONNECT, 0x00, ...addr, req.port >> 8, req.port & 0xff]);
    if (req.auth === undefined) {
      this.#greeting = new Uint8Array([VER, 1, METHOD_NONE]);
    } else {
      const u = credential(req.auth.username, 'username');
      const p = credential(req.auth.password, 'password');
      this.#greeting = new Uint8Array([VER, 1, METHOD_USERPASS]);
      this.#auth = new Uint8Array([AUTH_VER, u.length, ...u, p.length, ...p]);
    }
    this.#destination = describeSocksDestination(req.address, req.port);
  }

  /** Where the handshake is. */
  get stage(): Stage {
    return this.#stage;
  }

  /** The greeting to send first. */
  start(): Uint8Array {
    if (this.#started) throw new BugError('SOCKS5 handshake started twice');
    this.#started = true;
    return this.#greeting;
  }

  /** Feed bytes from the proxy. */
  receive(chunk: Uint8Array): Socks5Step {
    if (this.#stage === 'failed') return { state: 'failed', error: this.#failure! };
    if (this.#stage === 'connected' || !this.#started) {
      throw new BugError(`SOCKS5 handshake fed bytes while ${this.#started ? 'connected' : 'not started'}`);
    }
    const buf = new Uint8Array(this.#buf.length + chunk.length);
    buf.set(this.#buf, 0);
    buf.set(chunk, this.#buf.length);
    const out: Uint8Array[] = [];
    let off = 0;
    for (;;) {
      const r = this.#step(buf.subarray(off), out);
      if (r === undefined) break; // need more
      if (typeof r !== 'number') return r;
      off += r;
    }
    this.#buf = buf.slice(off);
    return { state: 'pending', send: concatBytes(...out) };
  }

  /** The proxy closed its side before the handshake finished. */
  end(): Socks5Step {
    if (this.#stage === 'failed') return { state: 'failed', error: this.#failure! };
    return this.#fail(new SocksProtocolError('TB_ERR_SOCKS_PROTOCOL', `SOCKS proxy closed the connection during the ${this.#stage === 'connect' ? 'CONNECT' : this.#stage} step of the handshake with ${this.#destination}`));
  }

  #fail(error: SocksReplyError | SocksProtocolError): Socks5Step {
    this.#stage = 'failed';
    this.#failure = error;
    this.#buf = new Uint8Array(0);
    return { state: 'failed', error };
  }

  #protocol(what: string): Socks5Step {
    return this.#fail(new SocksProtocolError('TB_ERR_SOCKS_PROTOCOL', `malformed SOCKS5 answer from the proxy during the handshake with ${this.#destination}: ${what}`));
  }

  /** Consume one message from `b`: bytes consumed, a final step, or undefined for "need more". */
  #step(b: Uint8Array, out: Uint8Array[]): number | Socks5Step | undefined {
    switch (this.#stage) {
      case 'greeting': {
        if (b.length < 1) return undefined;
        if (b[0] !== VER) return this.#protocol(`method selection version 0x${hex2(b[0]!)}, not 0x05`);
        if (b.length < 2) return undefined;
        const method = b[1]!;
        if (method === METHOD_NO_ACCEPTABLE) {
          return this.#fail(new SocksProtocolError('TB_ERR_SOCKS_AUTH', `the SOCKS proxy accepts none of the offered authentication methods (${this.#auth === undefined ? 'none' : 'username/password'})`));
        }
        const offered = this.#auth === undefined ? METHOD_NONE : METHOD_USERPASS;
        if (method !== offered) return this.#protocol(`the proxy chose method 0x${hex2(method)}, which was not offered`);
        if (this.#auth === undefined) {
          out.push(this.#connect);
          this.#stage = 'connect';
        } else {
          out.push(this.#auth);
          this.#stage = 'auth';
        }
        return 2;
      }
      case 'auth': {
        if (b.length < 1) return undefined;
        if (b[0] !== AUTH_VER) return this.#protocol(`username/password reply version 0x${hex2(b[0]!)}, not 0x01`);
        if (b.length < 2) return undefined;
        if (b[1] !== 0x00) return this.#fail(new SocksProtocolError('TB_ERR_SOCKS_AUTH', `the SOCKS proxy rejected the username/password (status 0x${hex2(b[1]!)})`));
        out.push(this.#connect);
        this.#stage = 'connect';
        return 2;
      }
      case 'connect': {
        if (b.length < 1) return undefined;
        if (b[0] !== VER) return this.#protocol(`CONNECT reply version 0x${hex2(b[0]!)}, not 0x05`);
        if (b.length < 2) return undefined;
        const rep = b[1]!;
        if (rep !== 0x00) return this.#fail(new SocksReplyError(rep, this.#destination));
        if (b.length < 4) return undefined;
        if (b[2] !== 0x00) return this.#protocol(`reserved byte 0x${hex2(b[2]!)}, not 0x00`);
        const atyp = b[3]!;
        let addrLen: number;
        let addrOff = 4;
        if (atyp === ATYP_IPV4) addrLen = 4;
        else if (atyp === ATYP_IPV6) addrLen = 16;
        else if (atyp === ATYP_DOMAIN) {
          if (b.length < 5) return undefined;
          addrLen = b[4]!;
          addrOff = 5;
          if (addrLen === 0) return this.#protocol('empty BND.ADDR domain name');
        } else return this.#protocol(`BND.ADDR type 0x${hex2(atyp)}`);
        const end = addrOff + addrLen + 2;
        if (b.length < end) return undefined;
        const raw = b.slice(addrOff, addrOff + addrLen);
        const bound: SocksAddress =
          atyp === ATYP_DOMAIN ? { type: 'domain', name: latin1(raw) } : atyp === ATYP_IPV4 ? { type: 'ipv4', bytes: raw } : { type: 'ipv6', bytes: raw };
        const boundPort = (b[end - 2]! << 8) | b[end - 1]!;
        this.#stage = 'connected';
        const rest = b.slice(end);
        this.#buf = new Uint8Array(0);
        return { state: 'connected', send: concatBytes(...out), bound, boundPort, rest };
      }
      case 'connected':
      case 'failed':
        return undefined;
    }
  }
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return s;
}

