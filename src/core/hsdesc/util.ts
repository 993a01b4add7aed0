/**
 * Small shared helpers for the v3 descriptor layers: tor's base64 forms for curve25519 keys
 * (`curve25519_public_from_base64`: 43 unpadded or 44 padded characters), decimal parsing
 * (`tor_parse_ulong` / `tor_parse_uint64`, canonical digits only) and the no-space ISO time
 * (`format_iso_time_nospace` / `parse_iso_time_nospace`, `YYYY-MM-DDTHH:MM:SS`, UTC).
 */
import { fromBase64, toBase64 } from '../bytes.js';
import { DecodeError } from '../errors.js';

/** Decode a curve25519 key as tor does: 43 (unpadded) or 44 (padded) base64 characters → 32 bytes. */
export function curve25519FromBase64(s: string, code: string, what: string): Uint8Array {
  if (s.length !== 43 && s.length !== 44) throw new DecodeError(code, `${what} has the wrong length`);
  let b: Uint8Array;
  try {
    b = fromBase64(s);
  } catch (cause) {
    throw new DecodeError(code, `${what} is not base64`, undefined, { cause });
  }
  if (b.length !== 32) throw new DecodeError(code, `${what} is not 32 bytes`);
  return b;
}

/** tor's `curve25519_public_to_base64(..., pad=true)`: 44 characters. */
export function curve25519ToBase64(key: Uint8Array): string {
  if (key.length !== 32) throw new RangeError('curve25519 key must be 32 bytes');
  return toBase64(key);
}

/** Decode base64 that must yield exactly `len` bytes. */
export function base64Exact(s: string, len: number, code: string, what: string): Uint8Array {
  let b: Uint8Array;
  try {
    b = fromBase64(s);
  } catch (cause) {
    throw new DecodeError(code, `${what} is not base64`, undefined, { cause });
  }
  if (b.length !== len) throw new DecodeError(code, `${what} is ${b.length} bytes, not ${len}`);
  return b;
}

/** Parse a canonical unsigned decimal (no sign, no leading zeros) up to `max`. */
export function parseDecimal(s: string, max: bigint, code: string, what: string): bigint {
  if (!/^(0|[1-9][0-9]{0,19})$/.test(s)) throw new DecodeError(code, `${what} is not a decimal number`);
  const v = BigInt(s);
  if (v > max) throw new DecodeError(code, `${what} is out of range`);
  return v;
}

export const UINT32_MAX = 0xffffffffn;
export const UINT64_MAX = 0xffffffffffffffffn;

function daysFromCivil(y: number, m: number, d: number): number {
  // Howard Hinnant's algorithm (proleptic Gregorian), days since 1970-01-01.
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z0: number): [number, number, number] {
  const z = z0 + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

const p2 = (n: number): string => String(n).padStart(2, '0');

/** `YYYY-MM-DDTHH:MM:SS` (UTC) for unix seconds (tor `format_iso_time_nospace`). */
export function formatIsoTimeNoSpace(unixSeconds: number): string {
  if (!Number.isSafeInteger(unixSeconds) || unixSeconds < 0) throw new RangeError('time out of range');
  const days = Math.floor(unixSeconds / 86400);
  const secs = unixSeconds - days * 86400;
  const [y, m, d] = civilFromDays(days);
  if (y > 9999) throw new RangeError('time out of range');
  return `${String(y).padStart(4, '0')}-${p2(m)}-${p2(d)}T${p2(Math.floor(secs / 3600))}:${p2(Math.floor((secs % 3600) / 60))}:${p2(secs % 60)}`;
}

/** Parse `YYYY-MM-DDTHH:MM:SS` (tor `parse_iso_time_nospace`, strict). */
export function parseIsoTimeNoSpace(s: string, code: string, what: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(s);
  if (m === null) throw new DecodeError(code, `${what} is not an ISO time`);
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
    throw new DecodeError(code, `${what} is out of range`);
  }
  return daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
}

/** Re-throw a DecodeError under `code` with a context prefix (keeping its position and cause); anything else unchanged. */
export function rewrap(code: string, prefix: string, e: unknown): never {
  if (e instanceof DecodeError) {
    const msg = e.position === undefined ? e.message : e.message.replace(/ \(at \d+\)$/, '');
    throw new DecodeError(code, `${prefix}: ${msg}`, e.position, { cause: e });
  }
  throw e;
}
