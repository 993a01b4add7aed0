/**
 * `torbalance inspect descriptor --address <addr> [FILE|-]`: decode and verify a v3
 * onion-service descriptor offline (rend-spec-v3 §2.4–2.5) and print what it says as JSON.
 *
 * The descriptor is read from FILE, or from stdin when FILE is `-` or absent (at most
 * {@link MAX_INPUT_BYTES}; the decoder itself rejects descriptors of 50 000 bytes or more).
 * It is checked exactly as src/core/hsdesc/descriptor.ts `decodeDescriptor` does: the
 * signing-key certificate (type 08, not expired at `--now`), the descriptor signature, the
 * blinded key derived from `--address` for the time period around `--now` (or `--period`),
 * both layer MACs, and every intro point's certificates. Intro points tor would skip are
 * listed under `skippedIntroPoints` with the code of the check that failed.
 *
 * On failure the decoder's DecodeError reaches main.ts, which prints
 * `torbalance: error <CODE>: <message>` on stderr and exits 1; the code names the failed check
 * (TB_ERR_HSDESC_SIGNATURE, TB_ERR_HSDESC_CERT_EXPIRED, TB_ERR_HSDESC_SUPERENCRYPTED_MAC,
 * TB_ERR_HSDESC_WRONG_BLINDED_KEY, TB_ERR_HSDESC_OUTER_PARSE, …).
 *
 * Output (one JSON object): `address`, `checkedAt`, `outer` (lifetime, revision counter as a
 * decimal string — it is a 64-bit value —, signing-key certificate expiry, descriptor signing
 * key, blinded key, matched period), `middle` (auth type, number of auth-client lines),
 * `inner` (create2-formats, intro-auth-required, single-onion-service, flow-control,
 * pow-params, intro points with decoded link specifiers, keys and certificate expiries).
 * Keys are base64 as tor writes them. Nothing secret is printed: a public descriptor carries
 * none, and client-authorization data (the auth-client lines' contents, the descriptor
 * cookie) is never shown.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { toBase64, toBase64NoPad, toHex } from '../../core/bytes.js';
import { certExpiresAt, type Ed25519Cert } from '../../core/cert/ed25519-cert.js';
import { TorbalanceError } from '../../core/errors.js';
import { decodeOnionAddress } from '../../core/hs/address.js';
import { DEFAULT_PERIOD_LENGTH_MINUTES } from '../../core/hs/blinding.js';
import { decodeDescriptor, type DecodedDescriptor } from '../../core/hsdesc/descriptor.js';
import { describeLinkSpecifier, type LinkSpecifier } from '../../core/hsdesc/link-specifiers.js';
import { inspectCommand } from './inspect.js';

/** Largest input read (bytes); anything at or above 50 000 is rejected by the decoder anyway. */
export const MAX_INPUT_BYTES = 1024 * 1024;

/** Options of {@link inspectDescriptor}. */
export interface InspectDescriptorOptions {
  /** The service's v3 onion address (with or without ".onion"). */
  readonly address: string;
  /** Check certificate expiry and pick time periods at this time (unix seconds). */
  readonly nowSeconds: number;
  /** Pin the time period instead of trying the ones around `nowSeconds`. */
  readonly periodNum?: number | undefined;
  /** Time-period length in minutes (default 1440; test networks use shorter ones). */
  readonly periodLengthMinutes?: number | undefined;
}

/** One link specifier as printed. */
export type LinkSpecifierJson =
  | { readonly type: 'ipv4'; readonly address: string }
  | { readonly type: 'ipv6'; readonly address: string }
  | { readonly type: 'legacy-id'; readonly hex: string }
  | { readonly type: 'ed25519-id'; readonly base64: string }
  | { readonly type: 'unknown'; readonly typeNumber: number; readonly hex: string };

function iso(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace('.000Z', 'Z');
}

function certJson(cert: Ed25519Cert): { expires: string; expiresUnix: number } {
  return { expires: iso(certExpiresAt(cert)), expiresUnix: certExpiresAt(cert) };
}

/** `address:port` for IPv4, `[address]:port` for IPv6, hex / base64 for identities. */
export function linkSpecifierJson(ls: LinkSpecifier): LinkSpecifierJson {
  const d = describeLinkSpecifier(ls);
  switch (d.kind) {
    case 'ipv4':
      return { type: 'ipv4', address: `${d.address}:${d.port}` };
    case 'ipv6':
      return { type: 'ipv6', address: `[${d.address}]:${d.port}` };
    case 'legacy-id':
      return { type: 'legacy-id', hex: d.fingerprint };
    case 'ed25519-id':
      return { type: 'ed25519-id', base64: toBase64NoPad(d.key) };
    case 'unknown':
      return { type: 'unknown', typeNumber: d.type, hex: toHex(d.data) };
  }
}

/** The JSON document for a decoded descriptor (public fields only). */
export function describeDecodedDescriptor(address: string, nowSeconds: number, d: DecodedDescriptor): Record<string, unknown> {
  return {
    address,
    checkedAt: iso(nowSeconds),
    outer: {
      version: d.version,
      lifetimeMinutes: d.lifetimeMinutes,
      revisionCounter: d.revisionCounter.toString(),
      signingKeyCert: certJson(d.signingKeyCert),
      descriptorSigningKey: toBase64NoPad(d.descriptorSigningKey),
      blindedKey: toBase64NoPad(d.blindedPublicKey),
      periodNum: d.periodNum ?? null,
      signedBytes: d.signedTextLength,
    },
    middle: {
      authType: d.middle.authType,
      authClients: d.middle.authClients.length,
    },
    inner: {
      create2Formats: d.inner.create2Formats,
      introAuthRequired: d.inner.introAuthRequired ?? null,
      singleOnionService: d.inner.singleOnionService,
      flowControl: d.inner.flowControl ?? null,
      powParams:
        d.inner.powParams === undefined
          ? null
          : {
              type: 'v1',
              seed: toBase64(d.inner.powParams.seed),
              suggestedEffort: d.inner.powParams.suggestedEffort,
              expires: iso(d.inner.powParams.expirationSeconds),
            },
      unknownPowParams: d.inner.unknownPowParams.map((p) => p.scheme),
      introPoints: d.introPoints.map((ip) => ({
        linkSpecifiers: ip.linkSpecifiers.map(linkSpecifierJson),
        onionKey: toBase64(ip.onionKey),
        authKey: toBase64NoPad(ip.authKey),
        encKey: toBase64(ip.encKey),
        authKeyCert: certJson(ip.authKeyCert),
        encKeyCert: certJson(ip.encKeyCert),
        legacyKey: ip.legacy !== undefined,
      })),
      skippedIntroPoints: d.inner.skippedIntroPoints.map((s) => ({ index: s.index, code: s.code, message: s.message })),
    },
  };
}

/**
 * Decode and verify `text` for `options.address`; returns the JSON document. Throws the
 * decoder's DecodeError (or TorbalanceError) on failure; an expired signing-key certificate
 * gets a hint about `--now`.
 */
export function inspectDescriptor(text: string, options: InspectDescriptorOptions): Record<string, unknown> {
  const { publicKey, address } = decodeOnionAddress(options.address);
  let d: DecodedDescriptor;
  try {
    d = decodeDescriptor(text, {
      identityPublicKey: publicKey,
      nowSeconds: options.nowSeconds,
      periodLengthMinutes: options.periodLengthMinutes ?? DEFAULT_PERIOD_LENGTH_MINUTES,
      ...(options.periodNum === undefined ? {} : { periodNum: options.periodNum }),
    });
  } catch (e) {
    if (e instanceof TorbalanceError && e.code === 'TB_ERR_HSDESC_CERT_EXPIRED') {
      throw new TorbalanceError(e.code, e.kind, `${e.message} (checked at ${iso(options.nowSeconds)}; use --now to check at another time)`, { cause: e });
    }
    throw e;
  }
  return describeDecodedDescriptor(address, options.nowSeconds, d);
}

function optionError(message: string): TorbalanceError {
  return new TorbalanceError('TB_ERR_INSPECT_OPTION', 'config', message);
}

/** `--now`: unix seconds (digits) or an ISO 8601 date-time with a timezone ("Z" or ±hh:mm). */
export function parseNow(s: string): number {
  if (/^[0-9]{1,12}$/.test(s)) return Number(s);
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?$/.test(s)) {
    throw optionError(`--now must be unix seconds or an ISO 8601 time, not ${JSON.stringify(s)}`);
  }
  const withZone = /T/.test(s) && !/(Z|[+-]\d{2}:\d{2})$/.test(s) ? `${s}Z` : s;
  const ms = Date.parse(withZone);
  if (!Number.isFinite(ms) || ms < 0) throw optionError(`--now is not a valid time: ${JSON.stringify(s)}`);
  return Math.floor(ms / 1000);
}

function parseNonNegativeInt(name: string, s: string, min: number): number {
  if (!/^[0-9]{1,9}$/.test(s) || Number(s) < min) throw optionError(`${name} must be an integer ≥ ${min}, not ${JSON.stringify(s)}`);
  return Number(s);
}

async function readBounded(file: string | undefined): Promise<string> {
  let buf: Buffer;
  try {
    if (file === undefined || file === '-') {
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const chunk of process.stdin) {
        const b = chunk as Buffer;
        n += b.length;
        if (n > MAX_INPUT_BYTES) throw new TorbalanceError('TB_ERR_INSPECT_READ', 'input', `input is larger than ${MAX_INPUT_BYTES} bytes`);
        chunks.push(b);
      }
      buf = Buffer.concat(chunks);
    } else {
      buf = await readFile(file);
      if (buf.length > MAX_INPUT_BYTES) throw new TorbalanceError('TB_ERR_INSPECT_READ', 'input', `${file} is larger than ${MAX_INPUT_BYTES} bytes`);
    }
  } catch (e) {
    if (e instanceof TorbalanceError) throw e;
    throw new TorbalanceError('TB_ERR_INSPECT_READ', 'config', `cannot read ${file === undefined || file === '-' ? 'stdin' : file}: ${(e as Error).message}`, { cause: e });
  }
  // One character per byte: a non-ASCII byte then fails the decoder's character check.
  return buf.toString('latin1');
}

/** Register `inspect descriptor` under the `inspect` group. */
export function register(program: Command): void {
  inspectCommand(program)
    .command('descriptor')
    .description('decode and verify a v3 onion-service descriptor and print its contents as JSON')
    .argument('[file]', 'descriptor file, or - (default) for stdin')
    .requiredOption('--address <address>', "the service's v3 onion address (needed to decrypt the descriptor)")
    .option('--now <time>', 'check certificate expiry at this time: unix seconds or ISO 8601 (default: now)')
    .option('--period <n>', 'time-period number to use (default: the periods around --now)')
    .option('--period-length <minutes>', 'time-period length in minutes (default 1440)')
    .action(async (file: string | undefined, opts: { address: string; now?: string; period?: string; periodLength?: string }) => {
      const nowSeconds = opts.now === undefined ? Math.floor(Date.now() / 1000) : parseNow(opts.now);
      const periodNum = opts.period === undefined ? undefined : parseNonNegativeInt('--period', opts.period, 0);
      const periodLengthMinutes = opts.periodLength === undefined ? undefined : parseNonNegativeInt('--period-length', opts.periodLength, 1);
      const text = await readBounded(file);
      const out = inspectDescriptor(text, { address: opts.address, nowSeconds, periodNum, periodLengthMinutes });
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    });
}
