/**
 * Link specifiers (tor-spec §5.1.2 EXTEND2; rend-spec-v3 §2.5.2.2 `introduction-point`;
 * trunnel `ed25519_cert.trunnel: link_specifier, link_specifier_list`; tor
 * `hs_descriptor.c: encode_link_specifiers, decode_link_specifiers`).
 *
 * `link_specifier_list = n_spec(1) ‖ n_spec × (ls_type(1) ‖ ls_len(1) ‖ body(ls_len))`.
 * Known types must have exactly their length (trunnel's `union … with length`): 0 IPv4
 * (4-byte address + 2-byte port, 6), 1 IPv6 (16 + 2, 18), 2 legacy RSA identity digest (20),
 * 3 ed25519 identity (32). Unknown types are kept verbatim. The list must use every byte
 * (`link_specifier_list_parse(...) < decoded_len` fails in tor).
 *
 * A specifier is stored as `{type, data}` (the raw body), so copying intro points between
 * descriptors re-encodes byte for byte; {@link describeLinkSpecifier} gives a typed view.
 */
import { ByteReader, concatBytes, toHex, u16be } from '../bytes.js';
import { DecodeError } from '../errors.js';

export const LS_IPV4 = 0;
export const LS_IPV6 = 1;
export const LS_LEGACY_ID = 2;
export const LS_ED25519_ID = 3;

const KNOWN_LENGTH: Readonly<Record<number, number>> = { [LS_IPV4]: 6, [LS_IPV6]: 18, [LS_LEGACY_ID]: 20, [LS_ED25519_ID]: 32 };

/** One link specifier: its type and raw body. */
export interface LinkSpecifier {
  readonly type: number;
  readonly data: Uint8Array;
}

/** Typed view of a link specifier. */
export type LinkSpecifierInfo =
  | { readonly kind: 'ipv4'; readonly address: string; readonly port: number }
  | { readonly kind: 'ipv6'; readonly address: string; readonly port: number }
  | { readonly kind: 'legacy-id'; readonly fingerprint: string }
  | { readonly kind: 'ed25519-id'; readonly key: Uint8Array }
  | { readonly kind: 'unknown'; readonly type: number; readonly data: Uint8Array };

/**
 * Decode a link-specifier list from untrusted bytes. Throws DecodeError
 * TB_ERR_LINKSPEC_TRUNCATED, TB_ERR_LINKSPEC_LENGTH (a known type with the wrong length) or
 * TB_ERR_LINKSPEC_TRAILING (bytes after the list).
 */
export function decodeLinkSpecifiers(bytes: Uint8Array): LinkSpecifier[] {
  const r = new ByteReader(bytes, 'TB_ERR_LINKSPEC_TRUNCATED');
  const n = r.u8();
  const out: LinkSpecifier[] = [];
  for (let i = 0; i < n; i++) {
    const type = r.u8();
    const len = r.u8();
    const data = r.bytes(len);
    const want = KNOWN_LENGTH[type];
    if (want !== undefined && want !== len) {
      throw new DecodeError('TB_ERR_LINKSPEC_LENGTH', `link specifier type ${type} has length ${len}, not ${want}`);
    }
    out.push({ type, data });
  }
  if (r.remaining !== 0) throw new DecodeError('TB_ERR_LINKSPEC_TRAILING', `${r.remaining} bytes after the link specifier list`);
  return out;
}

/**
 * Encode a list (tor asserts 1..255 entries; so do we, with TB_ERR_LINKSPEC_INVALID, also for
 * a known type with the wrong length or a body over 255 bytes).
 */
export function encodeLinkSpecifiers(specs: readonly LinkSpecifier[]): Uint8Array {
  if (specs.length === 0 || specs.length > 255) {
    throw new DecodeError('TB_ERR_LINKSPEC_INVALID', `an intro point needs 1 to 255 link specifiers, got ${specs.length}`);
  }
  const parts: Uint8Array[] = [new Uint8Array([specs.length])];
  for (const s of specs) {
    if (!Number.isInteger(s.type) || s.type < 0 || s.type > 255 || s.data.length > 255) {
      throw new DecodeError('TB_ERR_LINKSPEC_INVALID', 'link specifier type or length out of range');
    }
    const want = KNOWN_LENGTH[s.type];
    if (want !== undefined && want !== s.data.length) {
      throw new DecodeError('TB_ERR_LINKSPEC_INVALID', `link specifier type ${s.type} must be ${want} bytes`);
    }
    parts.push(new Uint8Array([s.type, s.data.length]), s.data);
  }
  return concatBytes(...parts);
}

/** Typed view of one specifier. */
export function describeLinkSpecifier(s: LinkSpecifier): LinkSpecifierInfo {
  const d = s.data;
  if (s.type === LS_IPV4 && d.length === 6) {
    return { kind: 'ipv4', address: `${d[0]}.${d[1]}.${d[2]}.${d[3]}`, port: (d[4]! << 8) | d[5]! };
  }
  if (s.type === LS_IPV6 && d.length === 18) {
    return { kind: 'ipv6', address: formatIpv6(d.subarray(0, 16)), port: (d[16]! << 8) | d[17]! };
  }
  if (s.type === LS_LEGACY_ID && d.length === 20) return { kind: 'legacy-id', fingerprint: toHex(d) };
  if (s.type === LS_ED25519_ID && d.length === 32) return { kind: 'ed25519-id', key: d.slice() };
  return { kind: 'unknown', type: s.type, data: d.slice() };
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new DecodeError('TB_ERR_LINKSPEC_INVALID', 'port out of range');
}

/** IPv4 specifier from dotted-quad text. */
export function ipv4LinkSpecifier(address: string, port: number): LinkSpecifier {
  checkPort(port);
  return { type: LS_IPV4, data: concatBytes(parseIpv4(address), u16be(port)) };
}

/** IPv6 specifier from text (any RFC 4291 form without zone or embedded IPv4). */
export function ipv6LinkSpecifier(address: string, port: number): LinkSpecifier {
  checkPort(port);
  return { type: LS_IPV6, data: concatBytes(parseIpv6(address), u16be(port)) };
}

/** Legacy RSA identity (20-byte SHA-1 fingerprint). */
export function legacyIdLinkSpecifier(fingerprint: Uint8Array): LinkSpecifier {
  if (fingerprint.length !== 20) throw new DecodeError('TB_ERR_LINKSPEC_INVALID', 'legacy id must be 20 bytes');
  return { type: LS_LEGACY_ID, data: fingerprint.slice() };
}

/** Ed25519 relay identity. */
export function ed25519IdLinkSpecifier(key: Uint8Array): LinkSpecifier {
  if (key.length !== 32) throw new DecodeError('TB_ERR_LINKSPEC_INVALID', 'ed25519 id must be 32 bytes');
  return { type: LS_ED25519_ID, data: key.slice() };
}

/** Parse dotted-quad IPv4 (no leading zeros). */
export function parseIpv4(address: string): Uint8Array {
  const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(address);
  const out = new Uint8Array(4);
  if (m === null) throw new DecodeError('TB_ERR_LINKSPEC_INVALID', 'invalid IPv4 address');
  for (let i = 0; i < 4; i++) {
    const v = Number(m[i + 1]);
    if (v > 255) throw new DecodeError('TB_ERR_LINKSPEC_INVALID', 'invalid IPv4 address');
    out[i] = v;
  }
  return out;
}

/** Parse IPv6 text (`::` compression allowed; no zone, no dotted IPv4 tail). */
export function parseIpv6(address: string): Uint8Array {
  const bad = (): DecodeError => new DecodeError('TB_ERR_LINKSPEC_INVALID', 'invalid IPv6 address');
  if (address.length > 39 || !/^[0-9a-fA-F:]+$/.test(address)) throw bad();
  const halves = address.split('::');
  if (halves.length > 2) throw bad();
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad();
    return parseInt(g, 16);
  }));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  let groups: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) throw bad();
    groups = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) throw bad();
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** RFC 5952 canonical text for a 16-byte IPv6 address. */
export function formatIpv6(addr: Uint8Array): string {
  if (addr.length !== 16) throw new RangeError('IPv6 address must be 16 bytes');
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((addr[2 * i]! << 8) | addr[2 * i + 1]!);
  // Longest run of zero groups (length ≥ 2), first one on ties.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (bestLen < 2) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** The fully expanded form (`2604:86c0:f001:0000:…`). */
export function formatIpv6Expanded(addr: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < 8; i++) parts.push(toHex(addr.subarray(2 * i, 2 * i + 2)));
  return parts.join(':');
}
