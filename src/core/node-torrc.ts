/**
 * The torrc of a torbalance node's own tor, and the `ob_config` file of its HiddenServiceDir.
 *
 * Tor facts used (/work/shared/tor-facts.md §1.7–1.9, §4, §8; tor's manual):
 * - the master key lives in a file-based HiddenServiceDir (ADD_ONION cannot be an OnionBalance
 *   instance); `HiddenServiceOnionBalanceInstance 1` needs `<HiddenServiceDir>/ob_config` with
 *   `MasterOnionAddress <56 chars>.onion` (the `.onion` suffix is mandatory, `hs_ob.c`), and
 *   must be in the torrc before tor starts (enabling it at runtime leaves `ob_subcreds` NULL);
 * - `HiddenServiceNumIntroductionPoints` is 3..20 (`hs_config.c`);
 * - `HiddenServicePoWDefensesEnabled/QueueRate/QueueBurst` (burst ≥ rate);
 * - `HiddenServiceExportCircuitID haproxy` makes tor send a PROXY protocol v1 header with the
 *   rendezvous circuit id on every stream to the HiddenServicePort target;
 * - `HiddenServiceMaxStreams` caps simultaneous streams per rendezvous circuit;
 * - `PublishHidServDescriptors 1` (single-node mode: tor publishes its own descriptors; a
 *   multi-node publisher needs 0, §1.9);
 * - several `HiddenServicePort` lines may follow one HiddenServiceDir (tor's manual: "may be
 *   specified multiple times"); the join port (`extraPorts`) is one of the MASTER service's, so
 *   a joining node reaches whichever node of the cluster tor's client picks;
 * - `SocksPort 127.0.0.1:<port> OnionTrafficOnly`: the node only ever reaches .onion targets,
 *   so the SOCKS port refuses everything else (no DNS, no IPv4/IPv6 exits).
 * All `HiddenService*` lines form one ordered group after their HiddenServiceDir; they are
 * written last so that operator-supplied extra lines cannot attach to the group.
 *
 * DataDirectory / ControlPort / CookieAuthentication / __OwningControllerProcess are added by
 * the tor supervisor (src/adapters/tor/process.ts), so they are not produced here.
 */
import { TorbalanceError } from './errors.js';
import { decodeOnionAddress } from './hs/address.js';
import type { TorrcEntry } from './torrc.js';

/** Where tor forwards onion-service streams (the node's proxy listener). */
export type HsPortTarget =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/** The narrow input of {@link nodeTorrcEntries}. */
export interface NodeTorrcInput {
  /** Absolute path of the HiddenServiceDir (holds the master key copy and `ob_config`). */
  readonly hsDir: string;
  /** The node's SOCKS port on 127.0.0.1 (for reaching the target). */
  readonly socksPort: number;
  /** The onion-service port visitors use (HiddenServicePort's VIRTPORT). */
  readonly virtualPort: number;
  /** The proxy listener. */
  readonly proxyListen: HsPortTarget;
  /** HiddenServiceNumIntroductionPoints, 3..20. */
  readonly numIntroPoints: number;
  /** HiddenServiceMaxStreams (per rendezvous circuit), 0 = unlimited. */
  readonly maxStreamsPerCircuit: number;
  readonly pow: { readonly enabled: boolean; readonly queueRate: number; readonly queueBurst: number };
  /** PublishHidServDescriptors. True in single-node mode. */
  readonly publishDescriptors: boolean;
  /** Raw operator lines (tor.extra_config), already split; checked with {@link checkExtraTorrcKeyword}. */
  readonly extra: readonly TorrcEntry[];
  /**
   * More `HiddenServicePort <virtualPort> <target>` lines in the MASTER service's group (e.g.
   * the join port, `cluster.join.onion_port` → `unix:<data_dir>/join.sock`). Each virtual
   * port must differ from `virtualPort` and from each other.
   */
  readonly extraPorts?: readonly { readonly virtualPort: number; readonly target: HsPortTarget }[];
}

/**
 * Keywords torbalance manages itself; `tor.extra_config` may not set them (tor options are
 * case-insensitive). Everything about the onion service, the control port and the data
 * directory belongs here.
 */
const MANAGED_KEYWORD_RE =
  /^(DataDirectory|ControlPort|ControlSocket|ControlSocketsGroupWritable|CookieAuthentication|CookieAuthFile|CookieAuthFileGroupReadable|HashedControlPassword|SocksPort|HiddenService\w*|PublishHidServDescriptors|RunAsDaemon|Sandbox|User|__\w*)$/i;

/** Undefined if `keyword` may appear in `tor.extra_config`, else the reason it may not. */
export function checkExtraTorrcKeyword(keyword: string): string | undefined {
  return MANAGED_KEYWORD_RE.test(keyword) ? `${keyword} is managed by torbalance and cannot be set in tor.extra_config` : undefined;
}

function bad(message: string): TorbalanceError {
  return new TorbalanceError('TB_ERR_NODE_TORRC', 'config', message);
}

function checkPort(what: string, p: number): void {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw bad(`${what} must be a port number from 1 to 65535`);
}

function checkPath(what: string, p: string): void {
  if (!p.startsWith('/') || /[\s\0"\\]/.test(p)) throw bad(`${what} must be an absolute path without whitespace, quotes or backslashes`);
}

/** The HiddenServicePort target: `unix:<path>` or `<host>:<port>`. */
export function hsPortTargetString(t: HsPortTarget): string {
  if (t.kind === 'unix') {
    checkPath('proxy unix socket', t.path);
    return `unix:${t.path}`;
  }
  checkPort('proxy port', t.port);
  if (t.host !== '127.0.0.1') throw bad('the proxy must listen on 127.0.0.1 or a unix socket');
  return `${t.host}:${t.port}`;
}

/**
 * The node's torrc entries (without the supervisor's DataDirectory/ControlPort/cookie lines):
 * global options, the operator's extra lines, then the onion-service group. Throws
 * TorbalanceError TB_ERR_NODE_TORRC on invalid input.
 */
export function nodeTorrcEntries(input: NodeTorrcInput): TorrcEntry[] {
  checkPath('HiddenServiceDir', input.hsDir);
  checkPort('SOCKS port', input.socksPort);
  checkPort('virtual port', input.virtualPort);
  if (!Number.isInteger(input.numIntroPoints) || input.numIntroPoints < 3 || input.numIntroPoints > 20) {
    throw bad('HiddenServiceNumIntroductionPoints must be from 3 to 20');
  }
  if (!Number.isInteger(input.maxStreamsPerCircuit) || input.maxStreamsPerCircuit < 0 || input.maxStreamsPerCircuit > 65535) {
    throw bad('HiddenServiceMaxStreams must be from 0 to 65535');
  }
  const e: TorrcEntry[] = [
    ['SocksPort', `127.0.0.1:${input.socksPort} OnionTrafficOnly`],
    ['SafeLogging', '1'],
    ['PublishHidServDescriptors', input.publishDescriptors ? '1' : '0'],
  ];
  for (const [k, v] of input.extra) {
    const why = checkExtraTorrcKeyword(k);
    if (why !== undefined) throw bad(why);
    e.push([k, v]);
  }
  e.push(
    ['HiddenServiceDir', input.hsDir],
    ['HiddenServicePort', `${input.virtualPort} ${hsPortTargetString(input.proxyListen)}`],
  );
  const seen = new Set<number>([input.virtualPort]);
  for (const p of input.extraPorts ?? []) {
    checkPort('extra virtual port', p.virtualPort);
    if (seen.has(p.virtualPort)) throw bad(`virtual port ${p.virtualPort} is used twice in the onion service`);
    seen.add(p.virtualPort);
    e.push(['HiddenServicePort', `${p.virtualPort} ${hsPortTargetString(p.target)}`]);
  }
  e.push(
    ['HiddenServiceOnionBalanceInstance', '1'],
    ['HiddenServiceExportCircuitID', 'haproxy'],
    ['HiddenServiceNumIntroductionPoints', String(input.numIntroPoints)],
    ['HiddenServiceMaxStreams', String(input.maxStreamsPerCircuit)],
  );
  if (input.pow.enabled) {
    if (!(Number.isInteger(input.pow.queueRate) && input.pow.queueRate >= 1 && input.pow.queueBurst >= input.pow.queueRate)) {
      throw bad('PoW queue rate must be ≥ 1 and the burst ≥ the rate');
    }
    e.push(
      ['HiddenServicePoWDefensesEnabled', '1'],
      ['HiddenServicePoWQueueRate', String(input.pow.queueRate)],
      ['HiddenServicePoWQueueBurst', String(input.pow.queueBurst)],
    );
  }
  return e;
}

/** The `ob_config` file naming the master address (`MasterOnionAddress <addr>.onion\n`). */
export function obConfigContent(masterAddress: string): string {
  let addr: string;
  try {
    addr = decodeOnionAddress(masterAddress).address;
  } catch (cause) {
    throw new TorbalanceError('TB_ERR_NODE_TORRC', 'config', 'master address is not a valid v3 onion address', { cause });
  }
  return `MasterOnionAddress ${addr}\n`;
}
