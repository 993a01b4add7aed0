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
 * - `HiddenServiceMaxStreams` caps simultaneous streams per rendezvous circuit (0..65535,
 *   `HS_CONFIG_MAX_STREAMS_PER_RDV_CIRCUIT`); with `HiddenServiceMaxStreamsCloseCircuit 1` a
 *   circuit that exceeds it is closed instead of the extra stream refused (`hs_config.c`);
 * - `HiddenServiceEnableIntroDoSDefense 1` asks each intro point (ESTABLISH_INTRO DoS
 *   extension) to rate-limit INTRODUCE2 cells with a token bucket of
 *   `HiddenServiceEnableIntroDoSRatePerSec` / `…BurstPerSec` (tor's defaults 25 / 200, range
 *   0..INT32_MAX, burst ≥ rate or tor refuses the service; an intro point treats a 0 as
 *   "defences off", `hs_intropoint.c`, so torbalance asks for ≥ 1);
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
  /** HiddenServiceMaxStreamsCloseCircuit: close a circuit that exceeds the stream limit. Default false. */
  readonly maxStreamsCloseCircuit?: boolean;
  /** HiddenServiceEnableIntroDoSDefense with its rate and burst (INTRODUCE2 cells per second). */
  readonly introDos?: { readonly enabled: boolean; readonly ratePerSec: number; readonly burstPerSec: number };
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
 * Tor options torbalance sets, or keeps unset, itself — in this torrc or in the supervisor's
 * lines (src/adapters/tor/process.ts) — with tor's value when the torrc does not set them
 * (`undefined`: a list option, GETCONF then answers the bare name). Every HiddenService*
 * option is managed too (checked as one group, `GETCONF HiddenServiceOptions`). The node's
 * tor must run with exactly these values; `tor.extra_config` may not name them, nor any
 * abbreviation of them (tor takes an unknown keyword that is a prefix of an option name as
 * that option, with only a warning).
 */
export const MANAGED_TOR_OPTIONS: Readonly<Record<string, string | undefined>> = {
  DataDirectory: undefined,
  DataDirectoryGroupReadable: '0',
  CacheDirectory: undefined,
  KeyDirectory: undefined,
  ControlPort: undefined,
  ControlSocket: undefined,
  ControlSocketsGroupWritable: '0',
  ControlPortWriteToFile: undefined,
  ControlPortFileGroupReadable: '0',
  CookieAuthentication: '0',
  CookieAuthFile: undefined,
  CookieAuthFileGroupReadable: '0',
  HashedControlPassword: undefined,
  SocksPort: undefined,
  ORPort: undefined,
  DirPort: undefined,
  ExtORPort: undefined,
  DNSPort: undefined,
  TransPort: undefined,
  NATDPort: undefined,
  HTTPTunnelPort: undefined,
  MetricsPort: undefined,
  PublishHidServDescriptors: '1',
  RunAsDaemon: '0',
  Sandbox: '0',
  User: undefined,
  __OwningControllerProcess: undefined,
  __ControlPort: undefined,
  __SocksPort: undefined,
  __ORPort: undefined,
  __DirPort: undefined,
  __ExtORPort: undefined,
  __DNSPort: undefined,
  __TransPort: undefined,
  __NATDPort: undefined,
  __HTTPTunnelPort: undefined,
  __MetricsPort: undefined,
  __HashedControlSessionPassword: undefined,
};

/** The managed HiddenService* options (one per-service group in tor, `hs_options.inc`). */
const HS_PREFIX = 'hiddenservice';

/**
 * The tor options an operator may add with `tor.extra_config` (docs/config.md lists them):
 * running offline, reaching the tor network from a restricted host (bridges, proxies,
 * firewalls), path and guard choice, resources, tor's own logs, and the lines that join a
 * private test network. Matched case-insensitively and exactly (tor takes an exact name
 * before any abbreviation); each is a real tor 0.4.9 option name (a test checks them against
 * `tor --list-torrc-options`). Anything else — listeners, the control port, directories,
 * the onion service, `%include` — is refused.
 */
export const EXTRA_TOR_OPTIONS: readonly string[] = [
  // offline, and reaching the tor network from a restricted host
  'DisableNetwork',
  'UseBridges',
  'Bridge',
  'ClientTransportPlugin',
  'HTTPSProxy',
  'HTTPSProxyAuthenticator',
  'Socks4Proxy',
  'Socks5Proxy',
  'Socks5ProxyUsername',
  'Socks5ProxyPassword',
  'ReachableAddresses',
  'ClientUseIPv4',
  'ClientUseIPv6',
  'ClientPreferIPv6ORPort',
  'ConnectionPadding',
  'ReducedConnectionPadding',
  // paths and guards
  'EntryNodes',
  'ExcludeNodes',
  'ExcludeExitNodes',
  'StrictNodes',
  'NumEntryGuards',
  'NumPrimaryGuards',
  'VanguardsLiteEnabled',
  'HSLayer2Nodes',
  'HSLayer3Nodes',
  'CircuitBuildTimeout',
  'LearnCircuitBuildTimeout',
  // resources
  'MaxMemInQueues',
  'NumCPUs',
  'AvoidDiskWrites',
  'HardwareAccel',
  'KeepalivePeriod',
  'ConnLimit',
  'DisableDebuggerAttachment',
  'ShutdownWaitLength',
  // tor's logs
  'Log',
  'LogMessageDomains',
  'LogTimeGranularity',
  'SafeLogging',
  'TruncateLogFile',
  'ProtocolWarnings',
  'GeoIPFile',
  'GeoIPv6File',
  // private test networks (src/adapters/tor/testnet.ts testnetCommonTorrc)
  'TestingTorNetwork',
  'DirAuthority',
  'AssumeReachable',
  'PathsNeededToBuildCircuits',
  'TestingDirAuthVoteExit',
  'TestingDirAuthVoteGuard',
  'TestingDirAuthVoteHSDir',
  'V3AuthNIntervalsValid',
  'TestingMinExitFlagThreshold',
  'Nickname',
  'PidFile',
];

const EXTRA_ALLOWED = new Set(EXTRA_TOR_OPTIONS.map((k) => k.toLowerCase()));
const MANAGED_LOWER = Object.keys(MANAGED_TOR_OPTIONS).map((k) => k.toLowerCase());

/** True if tor could take `keyword` for a managed option: its name, or a prefix of one. */
function namesManaged(keyword: string): boolean {
  const k = keyword.toLowerCase();
  if (k.startsWith('__') || k.startsWith(HS_PREFIX) || HS_PREFIX.startsWith(k)) return true;
  return MANAGED_LOWER.some((m) => m.startsWith(k));
}

/** Undefined if `keyword` may appear in `tor.extra_config`, else the reason it may not. */
export function checkExtraTorrcKeyword(keyword: string): string | undefined {
  if (namesManaged(keyword)) return `${keyword} is (or abbreviates) an option torbalance manages and cannot be set in tor.extra_config`;
  if (!EXTRA_ALLOWED.has(keyword.toLowerCase())) return `${keyword} is not one of the tor options tor.extra_config may set (docs/config.md lists them)`;
  return undefined;
}

/** The GETCONF keys {@link managedOptionMismatches} needs answers for. */
export function managedGetconfKeys(): string[] {
  return [...Object.keys(MANAGED_TOR_OPTIONS), 'HiddenServiceOptions'];
}

/**
 * The managed options whose value in the running tor differs from the torrc torbalance wrote.
 * `rendered`: every entry of that torrc (supervisor lines included); `answers`: the reply
 * lines of `GETCONF <managedGetconfKeys()>` (`Key=Value`, or a bare `Key` when unset; the
 * HiddenService* lines of all services in torrc order). Returns option names, sorted.
 */
export function managedOptionMismatches(rendered: readonly TorrcEntry[], answers: readonly string[]): string[] {
  const got = new Map<string, string[]>();
  const gotHs: string[] = [];
  for (const line of answers) {
    const eq = line.indexOf('=');
    const key = (eq < 0 ? line : line.slice(0, eq)).toLowerCase();
    if (key.startsWith(HS_PREFIX)) {
      if (eq >= 0) gotHs.push(`${key}=${line.slice(eq + 1)}`);
      continue;
    }
    const list = got.get(key) ?? [];
    if (eq >= 0) list.push(line.slice(eq + 1));
    got.set(key, list);
  }
  const bad: string[] = [];
  for (const [name, unset] of Object.entries(MANAGED_TOR_OPTIONS)) {
    const lname = name.toLowerCase();
    const mine = rendered.filter(([k]) => k.toLowerCase() === lname).map(([, v]) => v);
    const want = mine.length > 0 ? mine : unset === undefined ? [] : [unset];
    const have = got.get(lname);
    if (have === undefined || have.length !== want.length || have.some((v, i) => v !== want[i])) bad.push(name);
  }
  const wantHs = rendered.filter(([k]) => k.toLowerCase().startsWith(HS_PREFIX)).map(([k, v]) => `${k.toLowerCase()}=${v}`);
  if (gotHs.length !== wantHs.length || gotHs.some((v, i) => v !== wantHs[i])) bad.push('HiddenServiceOptions');
  return bad.sort();
}

/** tor's bound for the intro-point DoS rate and burst (`HS_CONFIG_V3_DOS_DEFENSE_*_MAX`). */
export const INT32_MAX = 2_147_483_647;

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
  if (input.maxStreamsCloseCircuit === true) e.push(['HiddenServiceMaxStreamsCloseCircuit', '1']);
  const dos = input.introDos;
  if (dos !== undefined && dos.enabled) {
    const okInt = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= INT32_MAX;
    if (!(okInt(dos.ratePerSec) && okInt(dos.burstPerSec) && dos.burstPerSec >= dos.ratePerSec)) {
      throw bad(`intro-point DoS rate and burst must be from 1 to ${INT32_MAX} and the burst ≥ the rate`);
    }
    e.push(
      ['HiddenServiceEnableIntroDoSDefense', '1'],
      ['HiddenServiceEnableIntroDoSRatePerSec', String(dos.ratePerSec)],
      ['HiddenServiceEnableIntroDoSBurstPerSec', String(dos.burstPerSec)],
    );
  }
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

/**
 * The onion-service option group of a node's torrc with and without the MASTER service, for
 * pausing it at runtime (docs/DESIGN.md "Fail closed without spending tor's intro-circuit
 * budget"). tor keeps every `HiddenService*` line in one ordered list, each
 * `HiddenServiceDir` starting a new service whose options are the lines after it
 * (`hs_config.c`), and a SETCONF naming any of them replaces that whole list — so a SETCONF of
 * `paused` removes the master service and keeps the others (the coordination onion) exactly
 * as they were, and a SETCONF of `serving` restores the torrc's group.
 * `serving`: every HiddenService* entry of `entries`, in order; `paused`: the same without
 * the service whose HiddenServiceDir is `masterHsDir`. Throws TB_ERR_NODE_TORRC when the
 * master's HiddenServiceDir is missing or appears twice, or a HiddenService* line precedes
 * the first HiddenServiceDir.
 */
export function hsOptionGroups(entries: readonly TorrcEntry[], masterHsDir: string): { readonly serving: readonly TorrcEntry[]; readonly paused: readonly TorrcEntry[] } {
  const serving: TorrcEntry[] = [];
  const paused: TorrcEntry[] = [];
  let inMaster: boolean | undefined;
  let masters = 0;
  for (const e of entries) {
    const k = e[0].toLowerCase();
    if (!k.startsWith(HS_PREFIX)) continue;
    if (k === 'hiddenservicedir') {
      inMaster = e[1] === masterHsDir;
      if (inMaster) masters++;
    } else if (inMaster === undefined) {
      throw bad(`${e[0]} appears before any HiddenServiceDir`);
    }
    serving.push(e);
    if (!inMaster) paused.push(e);
  }
  if (masters !== 1) throw bad(`the master HiddenServiceDir appears ${masters} times in the torrc (expected once)`);
  return { serving, paused };
}

/**
 * The SETCONF arguments that give tor exactly `group` as its HiddenService* options: the
 * entries themselves, or, for an empty group, the bare virtual option `HiddenServiceOptions`
 * (a SETCONF of an option without a value resets it, and this one covers the whole group;
 * checked against tor 0.4.9.11, which then answers `GETCONF HiddenServiceOptions` with the
 * bare name).
 */
export function hsSetConfArgs(group: readonly TorrcEntry[]): (readonly [string, string | null])[] {
  return group.length === 0 ? [['HiddenServiceOptions', null]] : group.map(([k, v]) => [k, v] as const);
}
