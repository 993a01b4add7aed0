/**
 * Consensus feed: raw directory documents from the local tor over the control port, for the
 * netdoc parsers (src/core/netdoc/*) that build the HSDir hash ring.
 *
 * GETINFO keys (tor `control_getinfo.c: getinfo_helper_dir`, names checked against
 * `GETINFO info/names` on tor 0.4.9.11):
 * - `dir/status-vote/current/consensus-microdesc`: the cached microdesc consensus file.
 *   Without one tor replies `551 Could not open cached consensus. Make sure
 *   FetchUselessDescriptors is set to 1.` (verified with DisableNetwork 1).
 * - `dir/status-vote/current/consensus`: the full ns consensus (clients usually lack it).
 * - `md/all`: every known microdescriptor; `md/id/<HEXFP>` one relay's (an unknown id gives
 *   `552 Unrecognized key`).
 * - `consensus/valid-after`: e.g. `2025-11-24 01:00:00` ("" without a consensus).
 *
 * Replies come back as data blocks whose lines we join with `\n`; we add one final `\n` so the
 * text matches the document as tor stored it. Sizes are bounded (default 16 MiB, which is
 * above the public network's ~3 MiB microdesc consensus and ~10 MiB of microdescriptors).
 */
import { normalizeFingerprint } from '../../core/torctl/command.js';
import type { TorControl } from './control.js';

/** Default size bound for consensus and microdescriptor replies. */
export const DEFAULT_MAX_DIRDOC_BYTES = 16 * 1024 * 1024;
/** Default timeout for one directory GETINFO (big replies over a busy control port). */
export const DEFAULT_DIRDOC_TIMEOUT_MS = 60_000;

export interface ConsensusFeedOptions {
  readonly maxBytes?: number;
  readonly timeoutMs?: number;
}

/** GETINFO keys used here. */
export const CONSENSUS_MICRODESC_KEY = 'dir/status-vote/current/consensus-microdesc';
export const CONSENSUS_NS_KEY = 'dir/status-vote/current/consensus';
export const MICRODESC_ALL_KEY = 'md/all';

function withNewline(s: string): string {
  return s === '' || s.endsWith('\n') ? s : s + '\n';
}

function reqOpts(o: ConsensusFeedOptions): { maxReplyBytes: number; timeoutMs: number } {
  return { maxReplyBytes: o.maxBytes ?? DEFAULT_MAX_DIRDOC_BYTES, timeoutMs: o.timeoutMs ?? DEFAULT_DIRDOC_TIMEOUT_MS };
}

/** The microdesc consensus as tor cached it (rejects with ControlReplyError 551 if tor has none). */
export async function fetchMicrodescConsensus(ctl: TorControl, options: ConsensusFeedOptions = {}): Promise<string> {
  return withNewline(await ctl.getInfo(CONSENSUS_MICRODESC_KEY, reqOpts(options)));
}

/** The full (ns) consensus, if tor has one cached (clients normally do not). */
export async function fetchNsConsensus(ctl: TorControl, options: ConsensusFeedOptions = {}): Promise<string> {
  return withNewline(await ctl.getInfo(CONSENSUS_NS_KEY, reqOpts(options)));
}

/** Every microdescriptor tor knows, concatenated ("" if none). */
export async function fetchAllMicrodescriptors(ctl: TorControl, options: ConsensusFeedOptions = {}): Promise<string> {
  return withNewline(await ctl.getInfo(MICRODESC_ALL_KEY, reqOpts(options)));
}

/**
 * Microdescriptors of the given relays (`md/id/<FP>`, 40 hex digits, `$` optional), in one
 * GETINFO per `batchSize` ids. The map is keyed by upper-case fingerprint. Tor fails the
 * whole GETINFO with 552 if one id is unknown, so ask only for relays in the consensus.
 */
export async function fetchMicrodescriptors(
  ctl: TorControl,
  fingerprints: readonly string[],
  options: ConsensusFeedOptions & { readonly batchSize?: number } = {},
): Promise<Map<string, string>> {
  const fps = [...new Set(fingerprints.map(normalizeFingerprint))];
  const out = new Map<string, string>();
  const batch = Math.max(1, options.batchSize ?? 100);
  for (let i = 0; i < fps.length; i += batch) {
    const keys = fps.slice(i, i + batch).map((fp) => `md/id/${fp}`);
    const values = await ctl.getInfoMany(keys, reqOpts(options));
    for (const k of keys) {
      const v = values.get(k);
      if (v !== undefined) out.set(k.slice('md/id/'.length), withNewline(v));
    }
  }
  return out;
}

/** `consensus/valid-after` (e.g. "2025-11-24 01:00:00"), or undefined if tor has no consensus. */
export async function fetchConsensusValidAfter(ctl: TorControl, options: ConsensusFeedOptions = {}): Promise<string | undefined> {
  const v = await ctl.getInfo('consensus/valid-after', { timeoutMs: options.timeoutMs ?? DEFAULT_DIRDOC_TIMEOUT_MS });
  return v === '' ? undefined : v;
}
