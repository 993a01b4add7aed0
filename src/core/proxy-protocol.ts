/**
 * PROXY protocol version 1 (HAProxy "PROXY protocol" spec §2.1, human-readable header) as tor
 * writes it for `HiddenServiceExportCircuitID haproxy`.
 *
 * tor (`export_hs_client_circuit_id` in src/core/or/connection_edge.c) writes, before any
 * visitor byte:
 *
 *     "PROXY TCP6 fc00:dead:beef:4dad::%x:%x ::1 %d %d\r\n"
 *
 * with the circuit's 32-bit global identifier split into its high and low 16 bits (hex, no
 * leading zeros), then source port = gid & 0xffff (1 when there is no circuit) and the
 * onion service's virtual port. Example from tor's unit test:
 * `PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 42\r\n` for circuit 666.
 *
 * The parser accepts any well-formed v1 header (TCP4, TCP6, UNKNOWN), is incremental (returns
 * `undefined` while more bytes are needed), bounded (107 bytes including CRLF, the spec's
 * maximum), and extracts `circuitId` only from tor's fc00:dead:beef:4dad::/96 source form.
 * Errors are DecodeErrors: TB_ERR_PROXY_HEADER_MISSING, TB_ERR_PROXY_HEADER_TOO_LONG,
 * TB_ERR_PROXY_HEADER_MALFORMED.
 */
import { DecodeError } from './errors.js';

/** The v1 maximum header length including the CRLF (spec §2.1). */
export const PROXY_V1_MAX_LENGTH = 107;

/** A parsed v1 header. */
export interface ProxyHeaderV1 {
  readonly protocol: 'TCP4' | 'TCP6' | 'UNKNOWN';
  readonly sourceAddress?: string;
  readonly destinationAddress?: string;
  readonly sourcePort?: number;
  readonly destinationPort?: number;
  /** tor's global circuit identifier, when the source has tor's form. */
  readonly circuitId?: number;
  /** Header length in bytes including the CRLF (the caller strips this many bytes). */
  readonly length: number;
}

const SIGNATURE = 'PROXY ';
const TOR_SRC_RE = /^fc00:dead:beef:4dad::([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i;

function malformed(message: string, position?: number): DecodeError {
  return new DecodeError('TB_ERR_PROXY_HEADER_MALFORMED', `PROXY v1 header: ${message}`, position);
}

function parsePort(s: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) throw malformed('port is not a decimal number');
  const n = Number(s);
  if (n > 65535) throw malformed('port out of range');
  return n;
}

function checkIpv4(s: string): void {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) {
    throw malformed('not an IPv4 address');
  }
}

function checkIpv6(s: string): void {
  if (s.length < 2 || s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) throw malformed('not an IPv6 address');
  const dbl = s.split('::');
  if (dbl.length > 2) throw malformed('not an IPv6 address');
  const groups = s.split(':').filter((g) => g !== '');
  if (groups.length > 8 || (dbl.length === 1 && groups.length !== 8 && !s.includes('.'))) throw malformed('not an IPv6 address');
  for (const g of groups) {
    if (g.includes('.')) checkIpv4(g);
    else if (g.length > 4) throw malformed('not an IPv6 address');
  }
}

/**
 * Parse a PROXY v1 header at the start of `buf`. Returns `undefined` if `buf` is a valid
 * prefix of a header that is not complete yet; throws a DecodeError as soon as the bytes
 * cannot start a valid header.
 */
export function parseProxyV1(buf: Uint8Array): ProxyHeaderV1 | undefined {
  const sigLen = Math.min(buf.length, SIGNATURE.length);
  for (let i = 0; i < sigLen; i++) {
    if (buf[i] !== SIGNATURE.charCodeAt(i)) {
      throw new DecodeError('TB_ERR_PROXY_HEADER_MISSING', 'connection does not start with a PROXY v1 header');
    }
  }
  const limit = Math.min(buf.length, PROXY_V1_MAX_LENGTH);
  let end = -1;
  for (let i = 0; i < limit; i++) {
    const b = buf[i]!;
    if (b === 0x0d) {
      if (i + 1 >= buf.length) {
        if (i + 1 >= PROXY_V1_MAX_LENGTH) break;
        return undefined;
      }
      if (buf[i + 1] !== 0x0a) throw malformed('CR not followed by LF', i);
      end = i;
      break;
    }
    if (b === 0x0a) throw malformed('bare LF', i);
    if (b < 0x20 || b > 0x7e) throw malformed('non-printable byte', i);
  }
  if (end < 0) {
    if (buf.length >= PROXY_V1_MAX_LENGTH) {
      throw new DecodeError('TB_ERR_PROXY_HEADER_TOO_LONG', `PROXY v1 header longer than ${PROXY_V1_MAX_LENGTH} bytes`);
    }
    return undefined;
  }
  let line = '';
  for (let i = 0; i < end; i++) line += String.fromCharCode(buf[i]!);
  const fields = line.split(' ');
  const length = end + 2;
  if (fields[1] === 'UNKNOWN') return { protocol: 'UNKNOWN', length };
  if (fields.length !== 6) throw malformed(`expected 6 fields, got ${fields.length}`);
  const [, proto, src = '', dst = '', sport = '', dport = ''] = fields;
  if (proto === 'TCP4') {
    checkIpv4(src);
    checkIpv4(dst);
  } else if (proto === 'TCP6') {
    checkIpv6(src);
    checkIpv6(dst);
  } else {
    throw malformed('unknown protocol');
  }
  const sourcePort = parsePort(sport);
  const destinationPort = parsePort(dport);
  const m = proto === 'TCP6' ? TOR_SRC_RE.exec(src) : null;
  const base = { protocol: proto, sourceAddress: src, destinationAddress: dst, sourcePort, destinationPort, length } as const;
  if (m === null) return base;
  const circuitId = ((parseInt(m[1]!, 16) << 16) | parseInt(m[2]!, 16)) >>> 0;
  return { ...base, circuitId };
}

/** The header tor would write for circuit `gid` and virtual port `port` (for tests and tools). */
export function formatTorProxyHeader(gid: number, virtualPort: number): string {
  const g = gid >>> 0;
  const sport = g === 0 ? 1 : g & 0xffff;
  return `PROXY TCP6 fc00:dead:beef:4dad::${(g >>> 16).toString(16)}:${(g & 0xffff).toString(16)} ::1 ${sport} ${virtualPort}\r\n`;
}
