/**
 * Control-port authentication, pure parts (control-spec §3.5 AUTHENTICATE, §3.21
 * PROTOCOLINFO, §3.24 AUTHCHALLENGE; proposal 193 "Safe cookie authentication"; tor's
 * `control_auth.c: handle_control_authchallenge`, `handle_control_authenticate`).
 *
 * SAFECOOKIE: the controller sends a 32-byte random ClientNonce, tor answers with
 * ServerNonce and `ServerHash = HMAC-SHA256("Tor safe cookie authentication
 * server-to-controller hash", Cookie ‖ ClientNonce ‖ ServerNonce)`. The controller checks
 * ServerHash (proving tor knows the cookie, so a fake control port cannot harvest it) and
 * sends `AUTHENTICATE hex(HMAC-SHA256("Tor safe cookie authentication controller-to-server
 * hash", Cookie ‖ ClientNonce ‖ ServerNonce))`.
 */
import { fromHex, toHex, utf8 } from '../bytes.js';
import { constantTimeEqual, hmacSha256 } from '../crypto/index.js';
import { DecodeError, TorbalanceError } from '../errors.js';
import { quoteString } from './command.js';
import { type ControlReply, splitReplyArgs } from './reply.js';

/** Cookie length tor writes (`AUTHENTICATION_COOKIE_LEN`). */
export const COOKIE_LENGTH = 32;
/** Nonce length for SAFECOOKIE (both sides). */
export const SAFECOOKIE_NONCE_LENGTH = 32;

const SERVER_TO_CONTROLLER = utf8('Tor safe cookie authentication server-to-controller hash');
const CONTROLLER_TO_SERVER = utf8('Tor safe cookie authentication controller-to-server hash');

/** Auth methods tor can advertise. */
export type AuthMethod = 'NULL' | 'HASHEDPASSWORD' | 'COOKIE' | 'SAFECOOKIE';
const KNOWN_METHODS: readonly string[] = ['NULL', 'HASHEDPASSWORD', 'COOKIE', 'SAFECOOKIE'];

/** Parsed PROTOCOLINFO reply. */
export interface ProtocolInfo {
  readonly protocolVersion: number;
  /** Known methods advertised by tor (unknown ones are in `otherMethods`). */
  readonly methods: readonly AuthMethod[];
  readonly otherMethods: readonly string[];
  /** Absolute cookie path, if tor uses cookie authentication. */
  readonly cookieFile: string | undefined;
  /** `VERSION Tor=` value, e.g. "0.4.9.11". */
  readonly torVersion: string | undefined;
}

function protoError(message: string): DecodeError {
  return new DecodeError('TB_ERR_TOR_CONTROL_PROTOCOL', message);
}

/** The PROTOCOLINFO command line. */
export const PROTOCOLINFO_COMMAND = 'PROTOCOLINFO 1\r\n';

/**
 * Parse a PROTOCOLINFO reply (control-spec §3.21):
 * ```
 * 250-PROTOCOLINFO 1
 * 250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/var/run/tor/control.authcookie"
 * 250-VERSION Tor="0.4.9.11"
 * 250 OK
 * ```
 * Unknown line types are ignored as the spec requires. Throws DecodeError.
 */
export function parseProtocolInfo(reply: ControlReply): ProtocolInfo {
  if (reply.status !== 250) throw protoError(`PROTOCOLINFO failed with status ${reply.status}`);
  let protocolVersion: number | undefined;
  let methods: AuthMethod[] | undefined;
  const otherMethods: string[] = [];
  let cookieFile: string | undefined;
  let torVersion: string | undefined;
  for (const line of reply.lines) {
    const sp = line.text.indexOf(' ');
    const kw = sp < 0 ? line.text : line.text.slice(0, sp);
    const rest = sp < 0 ? '' : line.text.slice(sp + 1);
    if (kw === 'PROTOCOLINFO') {
      const v = /^([0-9]{1,6})\b/.exec(rest);
      if (v === null) throw protoError('PROTOCOLINFO version missing');
      protocolVersion = Number(v[1]);
    } else if (kw === 'AUTH') {
      const { keyed } = splitReplyArgs(rest);
      const m = keyed.get('METHODS');
      if (m === undefined) throw protoError('PROTOCOLINFO AUTH line without METHODS');
      methods = [];
      for (const name of m.split(',')) {
        if (name === '') continue;
        if (KNOWN_METHODS.includes(name)) methods.push(name as AuthMethod);
        else otherMethods.push(name.slice(0, 64));
      }
      cookieFile = keyed.get('COOKIEFILE');
    } else if (kw === 'VERSION') {
      torVersion = splitReplyArgs(rest).keyed.get('Tor');
    }
  }
  if (protocolVersion === undefined) throw protoError('PROTOCOLINFO reply has no PROTOCOLINFO line');
  if (methods === undefined) throw protoError('PROTOCOLINFO reply has no AUTH line');
  return { protocolVersion, methods, otherMethods, cookieFile, torVersion };
}

/** Which method to use, in preference order SAFECOOKIE > COOKIE > HASHEDPASSWORD (if a password is given) > NULL. */
export function chooseAuthMethod(info: ProtocolInfo, havePassword: boolean): AuthMethod {
  const has = (m: AuthMethod): boolean => info.methods.includes(m);
  if (havePassword && has('HASHEDPASSWORD')) return 'HASHEDPASSWORD';
  if (has('SAFECOOKIE') && info.cookieFile !== undefined) return 'SAFECOOKIE';
  if (has('COOKIE') && info.cookieFile !== undefined) return 'COOKIE';
  if (has('NULL')) return 'NULL';
  if (has('HASHEDPASSWORD')) {
    throw new TorbalanceError('TB_ERR_TOR_CONTROL_AUTH', 'config', 'tor requires a control password, but none is configured');
  }
  throw new TorbalanceError('TB_ERR_TOR_CONTROL_AUTH', 'tor', `no supported control auth method (tor offers ${info.methods.concat(info.otherMethods as AuthMethod[]).join(',') || 'none'})`);
}

/** Check a cookie's length (tor's cookie is exactly 32 bytes). Throws TB_ERR_TOR_CONTROL_COOKIE. */
export function checkCookie(cookie: Uint8Array): void {
  if (cookie.length !== COOKIE_LENGTH) {
    throw new TorbalanceError('TB_ERR_TOR_CONTROL_COOKIE', 'config', `control auth cookie must be ${COOKIE_LENGTH} bytes, got ${cookie.length}`);
  }
}

/** `AUTHCHALLENGE SAFECOOKIE <hex nonce>\r\n`. */
export function authChallengeCommand(clientNonce: Uint8Array): string {
  if (clientNonce.length !== SAFECOOKIE_NONCE_LENGTH) throw new RangeError('client nonce must be 32 bytes');
  return `AUTHCHALLENGE SAFECOOKIE ${toHex(clientNonce).toUpperCase()}\r\n`;
}

/** Parsed AUTHCHALLENGE reply: `250 AUTHCHALLENGE SERVERHASH=<64 hex> SERVERNONCE=<64 hex>`. */
export interface AuthChallenge {
  readonly serverHash: Uint8Array;
  readonly serverNonce: Uint8Array;
}

/** Parse an AUTHCHALLENGE reply. Throws DecodeError (or TB_ERR_TOR_CONTROL_AUTH on a non-250). */
export function parseAuthChallenge(reply: ControlReply): AuthChallenge {
  if (reply.status !== 250) {
    throw new TorbalanceError('TB_ERR_TOR_CONTROL_AUTH', 'tor', `AUTHCHALLENGE failed: ${reply.status} ${(reply.lines[0]?.text ?? '').slice(0, 200)}`);
  }
  const text = reply.lines[0]?.text ?? '';
  if (!text.startsWith('AUTHCHALLENGE ')) throw protoError('malformed AUTHCHALLENGE reply');
  const { keyed } = splitReplyArgs(text.slice('AUTHCHALLENGE '.length));
  const h = keyed.get('SERVERHASH');
  const n = keyed.get('SERVERNONCE');
  if (h === undefined || n === undefined || !/^[0-9A-Fa-f]{64}$/.test(h) || !/^[0-9A-Fa-f]{64}$/.test(n)) {
    throw protoError('malformed AUTHCHALLENGE reply');
  }
  return { serverHash: fromHex(h), serverNonce: fromHex(n) };
}

/** HMAC-SHA256(server-to-controller key, cookie ‖ clientNonce ‖ serverNonce). */
export function safeCookieServerHash(cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array): Uint8Array {
  return hmacSha256(SERVER_TO_CONTROLLER, cookie, clientNonce, serverNonce);
}

/** HMAC-SHA256(controller-to-server key, cookie ‖ clientNonce ‖ serverNonce). */
export function safeCookieClientHash(cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array): Uint8Array {
  return hmacSha256(CONTROLLER_TO_SERVER, cookie, clientNonce, serverNonce);
}

/**
 * Verify tor's ServerHash and compute our answer. Throws TB_ERR_TOR_CONTROL_AUTH if the
 * server hash is wrong (the peer does not know the cookie: not our tor).
 */
export function safeCookieResponse(cookie: Uint8Array, clientNonce: Uint8Array, challenge: AuthChallenge): Uint8Array {
  checkCookie(cookie);
  const expected = safeCookieServerHash(cookie, clientNonce, challenge.serverNonce);
  if (!constantTimeEqual(expected, challenge.serverHash)) {
    throw new TorbalanceError('TB_ERR_TOR_CONTROL_AUTH', 'tor', 'SAFECOOKIE server hash mismatch: the control port does not know our cookie');
  }
  return safeCookieClientHash(cookie, clientNonce, challenge.serverNonce);
}

/** `AUTHENTICATE <hex>` (COOKIE / SAFECOOKIE), `AUTHENTICATE "<password>"` or bare `AUTHENTICATE` (NULL). */
export function authenticateCommand(secret: { readonly hex: Uint8Array } | { readonly password: string } | null): string {
  if (secret === null) return 'AUTHENTICATE\r\n';
  if ('hex' in secret) return `AUTHENTICATE ${toHex(secret.hex).toUpperCase()}\r\n`;
  return `AUTHENTICATE ${quoteString(secret.password)}\r\n`;
}
