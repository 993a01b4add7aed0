/**
 * Byte helpers: hex, base64, base32, big-endian integers and a bounds-checked reader.
 *
 * Bytes are always `Uint8Array` (never `Buffer`) in core; adapters convert at the edge.
 * Decoders of untrusted text throw {@link DecodeError} with a stable code.
 */
import { DecodeError } from './errors.js';

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 encode. */
export function utf8(s: string): Uint8Array {
  return textEncoder.encode(s);
}

/** Strict UTF-8 decode; invalid sequences raise TB_ERR_UTF8. */
export function fromUtf8(b: Uint8Array): string {
  try {
    return textDecoder.decode(b);
  } catch (cause) {
    throw new DecodeError('TB_ERR_UTF8', 'invalid UTF-8', undefined, { cause });
  }
}

/** Latin-1 style decode (one char per byte); never fails. For descriptor text we check ASCII separately. */
export function fromAscii(b: Uint8Array): string {
  // Pure ASCII (the common case: descriptors, consensus text) decodes identically as UTF-8,
  // which the native decoder does far faster than building the string by hand.
  let ascii = true;
  for (const x of b) {
    if (x >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return textDecoder.decode(b);
  let s = '';
  for (let i = 0; i < b.length; i += 0x2000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x2000));
  }
  return s;
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Non-constant-time equality; use `constantTimeEqual` from core/crypto for secrets and MACs. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Unsigned big-endian compare (memcmp), as tor sorts hash-ring indices. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

const HEX = '0123456789abcdef';

export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += HEX[x >> 4]! + HEX[x & 15]!;
  return s;
}

/** Decode hex (either case). Raises TB_ERR_HEX on odd length or a non-hex digit. */
export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new DecodeError('TB_ERR_HEX', 'invalid hex string');
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/** Standard base64 with `=` padding. */
export function toBase64(b: Uint8Array): string {
  let s = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = ((b[i] as number) << 16) | ((b[i + 1] as number) << 8) | (b[i + 2] as number);
    s += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  const rest = b.length - i;
  if (rest === 1) {
    const n = (b[i] as number) << 16;
    s += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = ((b[i] as number) << 16) | ((b[i + 1] as number) << 8);
    s += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + '=';
  }
  return s;
}

/** Base64 without padding (tor's `digest256_to_base64` / `ed25519_public_to_base64` style). */
export function toBase64NoPad(b: Uint8Array): string {
  return toBase64(b).replace(/=+$/, '');
}

/**
 * Strict base64 decode. Accepts input with or without `=` padding (tor uses both), but no
 * whitespace and no non-zero trailing bits. Raises TB_ERR_BASE64.
 */
export function fromBase64(s: string): Uint8Array {
  // Count trailing '=' with a bounded loop (a regex like /=*$/ is quadratic on long runs).
  let pad = 0;
  while (pad < 3 && pad < s.length && s.charCodeAt(s.length - 1 - pad) === 61) pad++;
  if (pad > 2) throw new DecodeError('TB_ERR_BASE64', 'invalid base64 padding');
  const body = s.slice(0, s.length - pad);
  if (pad > 0 && (body.length + pad) % 4 !== 0) {
    throw new DecodeError('TB_ERR_BASE64', 'invalid base64 padding');
  }
  if (body.length % 4 === 1) throw new DecodeError('TB_ERR_BASE64', 'invalid base64 length');
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    const v = c < 128 ? (B64_INDEX[c] as number) : -1;
    if (v < 0) throw new DecodeError('TB_ERR_BASE64', 'invalid base64 character');
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) {
    throw new DecodeError('TB_ERR_BASE64', 'invalid base64 trailing bits');
  }
  return out;
}

/** Split base64 into 64-column lines, each terminated by `\n` (tor's `pem_encode`). */
export function wrapBase64(b64: string, width = 64): string {
  let s = '';
  for (let i = 0; i < b64.length; i += width) s += b64.slice(i, i + width) + '\n';
  return s;
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lower case, no padding (onion addresses). */
export function toBase32(b: Uint8Array): string {
  let s = '';
  let acc = 0;
  let bits = 0;
  for (const x of b) {
    acc = ((acc << 8) | x) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      s += B32[(acc >> bits) & 31]!;
    }
  }
  if (bits > 0) s += B32[(acc << (5 - bits)) & 31]!;
  return s;
}

/** Decode RFC 4648 base32 (either case, no padding). Raises TB_ERR_BASE32. */
export function fromBase32(s: string): Uint8Array {
  const lower = s.toLowerCase();
  const out = new Uint8Array(Math.floor((lower.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < lower.length; i++) {
    const v = B32.indexOf(lower[i]!);
    if (v < 0) throw new DecodeError('TB_ERR_BASE32', 'invalid base32 character');
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** 8-byte big-endian (tor's INT_8). Accepts number (must be a safe non-negative integer) or bigint. */
export function u64be(x: number | bigint): Uint8Array {
  const v = typeof x === 'bigint' ? x : BigInt(x);
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError('u64 out of range');
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v, false);
  return out;
}

export function u32be(x: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, x, false);
  return out;
}

export function u16be(x: number): Uint8Array {
  const out = new Uint8Array(2);
  new DataView(out.buffer).setUint16(0, x, false);
  return out;
}

/**
 * A bounds-checked reader over untrusted bytes. Every read past the end raises
 * DecodeError(code) with the byte offset, so parsers never index out of range.
 */
export class ByteReader {
  private off = 0;
  private readonly view: DataView;
  private readonly buf: Uint8Array;
  private readonly code: string;

  constructor(buf: Uint8Array, code = 'TB_ERR_TRUNCATED') {
    this.buf = buf;
    this.code = code;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get offset(): number {
    return this.off;
  }

  get remaining(): number {
    return this.buf.length - this.off;
  }

  private need(n: number): void {
    if (n > this.remaining) throw new DecodeError(this.code, 'input truncated', this.off);
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.off++);
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.off, false);
    this.off += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.off, false);
    this.off += 4;
    return v;
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.buf.slice(this.off, this.off + n);
    this.off += n;
    return v;
  }

  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
}
