/**
 * A private Tor network on 127.0.0.1 for tests, the demo and `torbalance testnet`.
 *
 * Layout and options follow /work/shared/torlab.md §2 (measured with tor 0.4.9.11): directory
 * authorities with tor-gencert keys, non-exit relays that all get the HSDir/Guard flags
 * (`TestingDirAuthVoteHSDir *` …), onion services (`HiddenServiceDir` + `HiddenServicePort`)
 * and clients (`SocksPort`), every node with `TestingTorNetwork 1` and short voting
 * intervals. Under `TestingTorNetwork` an onion-service time period is one SR protocol run,
 * 24 voting intervals (tor `hs_common.c: get_time_period_length`), e.g. 4 minutes at 10 s;
 * {@link TestnetDescription.timePeriod} carries the matching {@link TimePeriodParams}.
 *
 * Every tor runs under {@link TorProcess} with its control port on a unix socket in its
 * data dir. Readiness is polled with deadlines, never slept for: the consensus served by an
 * authority lists every router, and every client reports bootstrap 100% on its control port.
 *
 * Ports are allocated by binding port 0 and releasing it; a start that hits EADDRINUSE is
 * retried with fresh ports. `owned` networks die with this process (`__OwningControllerProcess`
 * plus exit/SIGINT/SIGTERM handlers); unowned ones (`testnet up`) are detached and recorded in
 * `<baseDir>/testnet.json` so {@link stopTestnetFromState} and {@link testnetStatus} find them.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { TorbalanceError } from '../../core/errors.js';
import { testingNetworkPeriodParams, type TimePeriodParams } from '../../core/hs/time-period.js';
import type { TorrcEntry } from '../../core/torrc.js';
import { isErrno } from '../system/errno.js';
import { TorControl, type ControlEndpoint } from './control.js';
import { parseBootstrapProgress, TorProcess } from './process.js';

/** A local TCP target (what a HiddenServicePort points at). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** An onion service to add to the network. */
export interface TestnetServiceSpec {
  /** Nickname / directory name (letters and digits). Default `hs<N>`. */
  readonly nickname?: string;
  /** Where `HiddenServicePort <virtualPort>` forwards to. */
  readonly target: HostPort;
  /** Virtual port. Default 80. */
  readonly virtualPort?: number;
  /** false → `PublishHidServDescriptors 0`. Default true. */
  readonly publishDescriptors?: boolean;
  /** Writes `ob_config` (`MasterOnionAddress <addr>.onion`) and sets `HiddenServiceOnionBalanceInstance 1`. */
  readonly onionBalanceMaster?: string;
  /** Files written into the HiddenServiceDir before start (e.g. `hs_ed25519_secret_key`), mode 0600. */
  readonly hiddenServiceFiles?: Readonly<Record<string, Uint8Array | string>>;
  /** Extra torrc entries for this tor. */
  readonly extraTorrc?: readonly TorrcEntry[];
  /** Wait until the service reported `HS_DESC UPLOADED` (needs publishDescriptors). Default false. */
  readonly waitForUpload?: boolean;
}

/** A client to add to the network. */
export interface TestnetClientSpec {
  readonly nickname?: string;
  readonly extraTorrc?: readonly TorrcEntry[];
  /** Wait for bootstrap 100%. Default true. */
  readonly waitForBootstrap?: boolean;
}

/** An authority or relay. */
export interface TestnetRouterInfo {
  readonly nickname: string;
  readonly role: 'authority' | 'relay';
  readonly dataDir: string;
  /** RSA identity fingerprint, 40 upper-case hex digits. */
  readonly fingerprint: string;
  /** Authority only: v3 identity (authority certificate fingerprint). */
  readonly v3ident?: string;
  readonly orPort: number;
  readonly dirPort: number;
  readonly control: ControlEndpoint;
  pid: number;
}

/** A client tor. */
export interface TestnetClientInfo {
  readonly nickname: string;
  readonly dataDir: string;
  readonly socksPort: number;
  readonly control: ControlEndpoint;
  pid: number;
}

/** An onion-service tor. */
export interface TestnetServiceInfo {
  readonly nickname: string;
  readonly dataDir: string;
  readonly hiddenServiceDir: string;
  /** 56-character address without `.onion`. */
  readonly address: string;
  /** `<address>.onion`. */
  readonly onion: string;
  readonly virtualPort: number;
  readonly target: HostPort;
  readonly publishDescriptors: boolean;
  readonly control: ControlEndpoint;
  pid: number;
}

/** A running network, as plain JSON (passed to tests through vitest's provide/inject). */
export interface TestnetDescription {
  readonly version: 1;
  readonly baseDir: string;
  readonly votingIntervalSeconds: number;
  /** Time-period schedule of this network (24 voting intervals per period). */
  readonly timePeriod: TimePeriodParams;
  /** `DirAuthority` torrc values; every tor joining the network needs all of them. */
  readonly dirAuthorities: readonly string[];
  readonly authorities: TestnetRouterInfo[];
  readonly relays: TestnetRouterInfo[];
  readonly clients: TestnetClientInfo[];
  readonly services: TestnetServiceInfo[];
  /** false for networks left running by `testnet up`. */
  readonly owned: boolean;
  readonly torBinary: string;
  readonly infoLogs: boolean;
  /** Wall-clock ms when the tors were launched / when the network was usable. */
  readonly startedAtMs: number;
  readyAtMs: number;
}

/** Options of {@link startTestnet}. */
export interface TestnetOptions {
  /** Absolute directory for all data dirs (created; emptied first). Keep it short: unix socket paths ≤ 100 bytes. */
  readonly baseDir: string;
  /** Default 3. */
  readonly authorities?: number;
  /** Default 5. */
  readonly relays?: number;
  /** Default 1. */
  readonly clients?: number;
  readonly services?: readonly TestnetServiceSpec[];
  /**
   * Consensus parameters the authorities vote for (`ConsensusParams`), e.g.
   * `[['hsdir_spread_store', 2]]` so a descriptor goes to 4 of 8 HSDirs and ring placement is
   * observable in a small network.
   */
  readonly consensusParams?: readonly (readonly [string, number])[];
  /** `V3AuthVotingInterval` in seconds. Default 10 (4-minute time periods). */
  readonly votingIntervalSeconds?: number;
  readonly torBinary?: string;
  readonly torGencertBinary?: string;
  /**
   * Tie the tors to this process (`__OwningControllerProcess`, kill on exit/SIGINT/SIGTERM).
   * Default true. false → detached tors that survive us (for `testnet up`).
   */
  readonly owned?: boolean;
  /** Also write `info.log` per node (≈4 MB per authority per 15 min). Default false. */
  readonly infoLogs?: boolean;
  /** Deadline for the whole start. Default 120 s. */
  readonly readyTimeoutMs?: number;
  readonly onProgress?: (message: string) => void;
  readonly signal?: AbortSignal;
}

/** Options for adding nodes to a running network. */
export interface JoinOptions {
  /** Default: the network's `owned`. */
  readonly owned?: boolean;
  readonly readyTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Called with the supervisor before tor starts (so a caller can stop it if the start hangs). */
  readonly onProcess?: (nickname: string, proc: TorProcess) => void;
}

/** A tor added to a network, with its supervisor. */
export interface StartedNode<I> {
  readonly info: I;
  readonly process: TorProcess;
}

const STATE_FILE = 'testnet.json';
const NICK_RE = /^[A-Za-z0-9]{1,19}$/;
const MAX_START_ATTEMPTS = 3;

function err(code: string, message: string, cause?: unknown): TorbalanceError {
  const kind =
    code === 'TB_ERR_TESTNET_CONFIG' || code === 'TB_ERR_TESTNET_STATE' ? 'config' : 'tor';
  return new TorbalanceError(code, kind, message, cause === undefined ? {} : { cause });
}

/**
 * Allocate `n` distinct free TCP ports on 127.0.0.1 (bind port 0 on n sockets at once, then
 * release them). Racy by nature; starts retry on EADDRINUSE.
 */
export async function allocatePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => {
            resolve(s);
          });
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    if (a === null || typeof a === 'string')
      throw err('TB_ERR_TESTNET_START', 'could not allocate a port');
    return a.port;
  });
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) =>
          s.close(() => {
            resolve();
          }),
        ),
    ),
  );
  return ports;
}

function run(bin: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      bin,
      args,
      { timeout: 60_000, maxBuffer: 1 << 20 },
      (e, stdout, stderr) => {
        if (e)
          reject(
            err('TB_ERR_TESTNET_KEYGEN', `${bin} failed: ${e.message} ${stderr.slice(0, 500)}`, e),
          );
        else resolve(stdout);
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Create an authority's keys (tor-gencert) and return its v3ident. */
async function authorityKeys(gencert: string, dataDir: string, dirPort: number): Promise<string> {
  const keys = join(dataDir, 'keys');
  await mkdir(keys, { recursive: true, mode: 0o700 });
  await run(
    gencert,
    [
      '--create-identity-key',
      '-m',
      '12',
      '-a',
      `127.0.0.1:${dirPort}`,
      '-i',
      join(keys, 'authority_identity_key'),
      '-s',
      join(keys, 'authority_signing_key'),
      '-c',
      join(keys, 'authority_certificate'),
      '--passphrase-fd',
      '0',
    ],
    '\n',
  );
  const cert = await readFile(join(keys, 'authority_certificate'), 'utf8');
  const m = /^fingerprint ([0-9A-F]{40})$/m.exec(cert);
  if (m === null)
    throw err('TB_ERR_TESTNET_KEYGEN', 'authority certificate has no fingerprint line');
  return m[1]!;
}

/** Create a router's identity keys and return its RSA fingerprint (`tor --list-fingerprint`). */
async function routerFingerprint(tor: string, dataDir: string, nickname: string): Promise<string> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  const empty = join(dataDir, 'torrc-empty');
  await writeFile(empty, '');
  const out = await run(tor, [
    '--quiet',
    '--list-fingerprint',
    '-f',
    empty,
    '--defaults-torrc',
    empty,
    '--ORPort',
    '1',
    '--Nickname',
    nickname,
    '--DataDirectory',
    dataDir,
    '--DirAuthority',
    'xyzzy 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff',
  ]);
  await rm(empty, { force: true });
  const m = new RegExp(`^${nickname} ((?:[0-9A-F]{4} ?){10})$`, 'm').exec(out);
  if (m === null)
    throw err('TB_ERR_TESTNET_KEYGEN', `unexpected --list-fingerprint output for ${nickname}`);
  return m[1]!.replace(/ /g, '');
}

/** The network-wide part of a description that a joining tor needs. */
export type TestnetJoinInfo = Pick<TestnetDescription, 'dirAuthorities' | 'infoLogs'>;

/** torrc entries every tor in the network carries (torlab §2 "common to every node"). */
export function testnetCommonTorrc(
  net: TestnetJoinInfo,
  nickname: string,
  dataDir: string,
): TorrcEntry[] {
  const e: TorrcEntry[] = [
    ['TestingTorNetwork', '1'],
    ['AssumeReachable', '1'],
    ['PathsNeededToBuildCircuits', '0.25'],
    ['TestingDirAuthVoteExit', '*'],
    ['TestingDirAuthVoteGuard', '*'],
    ['TestingDirAuthVoteHSDir', '*'],
    ['V3AuthNIntervalsValid', '2'],
    ['TestingMinExitFlagThreshold', '0'],
    ['ConnLimit', '60'],
    ['Nickname', nickname],
    ['ShutdownWaitLength', '0'],
    ['PidFile', join(dataDir, 'pid')],
    ['ProtocolWarnings', '1'],
    ['SafeLogging', '0'],
    ['DisableDebuggerAttachment', '0'],
    // No GeoIP database: a private network needs no country data, and parsing tor's ~10 MB
    // GeoIP files costs each tor seconds of CPU at start (up to 18 s seen on a loaded machine).
    ['GeoIPFile', '/dev/null'],
    ['GeoIPv6File', '/dev/null'],
  ];
  if (net.infoLogs) e.push(['Log', `info file ${join(dataDir, 'info.log')}`]);
  for (const d of net.dirAuthorities) e.push(['DirAuthority', d]);
  return e;
}

function checkNick(n: string): string {
  if (!NICK_RE.test(n))
    throw err('TB_ERR_TESTNET_CONFIG', `invalid tor nickname ${JSON.stringify(n.slice(0, 40))}`);
  return n;
}

function serviceTorrc(hsDir: string, spec: TestnetServiceSpec): TorrcEntry[] {
  const e: TorrcEntry[] = [
    ['SocksPort', '0'],
    ['HiddenServiceDir', hsDir],
    ['HiddenServicePort', `${spec.virtualPort ?? 80} ${spec.target.host}:${spec.target.port}`],
  ];
  if (spec.onionBalanceMaster !== undefined) e.push(['HiddenServiceOnionBalanceInstance', '1']);
  if (spec.publishDescriptors === false) e.push(['PublishHidServDescriptors', '0']);
  return e;
}

async function waitFor<T>(
  what: string,
  deadline: number,
  poll: () => Promise<T | undefined>,
  signal?: AbortSignal,
  intervalMs = 250,
): Promise<T> {
  let last: unknown;
  for (;;) {
    if (signal?.aborted === true)
      throw err('TB_ERR_TESTNET_ABORTED', `aborted while waiting for ${what}`);
    try {
      const v = await poll();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      throw err('TB_ERR_TESTNET_TIMEOUT', `timed out waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Count `r ` lines in the consensus an authority serves on its DirPort (undefined: none yet). */
export async function fetchConsensusRouterCount(
  dirPort: number,
  timeoutMs = 3000,
): Promise<number | undefined> {
  const res = await fetch(`http://127.0.0.1:${dirPort}/tor/status-vote/current/consensus`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status !== 200) {
    await res.body?.cancel();
    return undefined;
  }
  const text = await res.text();
  return text.split('\n').filter((l) => l.startsWith('r ')).length;
}

async function bootstrapProgress(control: TorControl): Promise<number | undefined> {
  return parseBootstrapProgress(await control.getInfo('status/bootstrap-phase'));
}

async function readHostname(hsDir: string): Promise<string | undefined> {
  try {
    const t = (await readFile(join(hsDir, 'hostname'), 'utf8')).trim();
    const m = /^([a-z2-7]{56})\.onion$/.exec(t);
    return m === null ? undefined : m[1];
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw e; // not written yet
    return undefined;
  }
}

function addressInUse(p: TorProcess): boolean {
  return p.output().some((l) => /Address already in use|Could not bind/i.test(l));
}

/**
 * Start an onion-service tor joining `net` (a running network or its injected description).
 * Resolves once its control port is up and its `hostname` exists (and, with
 * `waitForUpload`, after its first `HS_DESC UPLOADED`).
 */
export async function startTestnetService(
  net: TestnetDescription,
  spec: TestnetServiceSpec,
  opts: JoinOptions = {},
): Promise<StartedNode<TestnetServiceInfo>> {
  const nickname = checkNick(spec.nickname ?? `hs${net.services.length}`);
  const dataDir = join(net.baseDir, nickname);
  const hsDir = join(dataDir, 'hs');
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 120_000);
  await mkdir(hsDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  await chmod(hsDir, 0o700);
  for (const [name, content] of Object.entries(spec.hiddenServiceFiles ?? {})) {
    if (!/^[A-Za-z0-9_.-]+$/.test(name))
      throw err(
        'TB_ERR_TESTNET_CONFIG',
        `invalid hidden service file name ${JSON.stringify(name.slice(0, 40))}`,
      );
    await writeFile(join(hsDir, name), content, { mode: 0o600 });
  }
  if (spec.onionBalanceMaster !== undefined) {
    const master = spec.onionBalanceMaster.replace(/\.onion$/, '');
    if (!/^[a-z2-7]{56}$/.test(master))
      throw err('TB_ERR_TESTNET_CONFIG', 'onionBalanceMaster must be a v3 onion address');
    await writeFile(join(hsDir, 'ob_config'), `MasterOnionAddress ${master}.onion\n`, {
      mode: 0o600,
    });
  }
  const proc = new TorProcess({
    dataDir,
    torBinary: net.torBinary,
    owned: opts.owned ?? net.owned,
    detached: !(opts.owned ?? net.owned),
    readiness: 'control',
    startTimeoutMs: Math.max(1000, deadline - Date.now()),
    torrc: [
      ...testnetCommonTorrc(net, nickname, dataDir),
      ...serviceTorrc(hsDir, spec),
      ...(spec.extraTorrc ?? []),
    ],
  });
  opts.onProcess?.(nickname, proc);
  let uploaded = false;
  const offReady = proc.on('ready', () => {
    if (spec.waitForUpload !== true) return;
    const c = proc.control;
    c.onEvent('HS_DESC', (e) => {
      if (/^HS_DESC UPLOADED /.test(e.lines[0] ?? e.raw)) uploaded = true;
    });
    void c.setEvents(['HS_DESC']).catch(() => undefined);
  });
  try {
    await proc.start(opts.signal);
    const address = await waitFor(
      `${nickname} hostname`,
      deadline,
      () => readHostname(hsDir),
      opts.signal,
      100,
    );
    if (spec.waitForUpload === true)
      await waitFor(
        `${nickname} descriptor upload`,
        deadline,
        () => Promise.resolve(uploaded ? true : undefined),
        opts.signal,
      );
    const info: TestnetServiceInfo = {
      nickname,
      dataDir,
      hiddenServiceDir: hsDir,
      address,
      onion: `${address}.onion`,
      virtualPort: spec.virtualPort ?? 80,
      target: spec.target,
      publishDescriptors: spec.publishDescriptors ?? true,
      control: proc.controlEndpoint,
      pid: proc.pid ?? -1,
    };
    return { info, process: proc };
  } catch (e) {
    await proc.stop();
    throw e;
  } finally {
    offReady();
  }
}

/** Start a client tor (SocksPort on a free port) joining `net`; waits for bootstrap 100% by default. */
export async function startTestnetClient(
  net: TestnetDescription,
  spec: TestnetClientSpec = {},
  opts: JoinOptions = {},
): Promise<StartedNode<TestnetClientInfo>> {
  const nickname = checkNick(spec.nickname ?? `client${net.clients.length}`);
  const dataDir = join(net.baseDir, nickname);
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 120_000);
  for (let attempt = 1; ; attempt++) {
    const [socksPort] = await allocatePorts(1);
    const proc = new TorProcess({
      dataDir,
      torBinary: net.torBinary,
      owned: opts.owned ?? net.owned,
      detached: !(opts.owned ?? net.owned),
      readiness: spec.waitForBootstrap === false ? 'control' : 'bootstrap',
      startTimeoutMs: Math.max(1000, deadline - Date.now()),
      torrc: [
        ...testnetCommonTorrc(net, nickname, dataDir),
        ['SocksPort', `127.0.0.1:${socksPort!}`],
        ...(spec.extraTorrc ?? []),
      ],
    });
    opts.onProcess?.(nickname, proc);
    try {
      await proc.start(opts.signal);
    } catch (e) {
      const retry = attempt < MAX_START_ATTEMPTS && addressInUse(proc);
      await proc.stop();
      if (retry) continue;
      throw e;
    }
    const info: TestnetClientInfo = {
      nickname,
      dataDir,
      socksPort: socksPort!,
      control: proc.controlEndpoint,
      pid: proc.pid ?? -1,
    };
    return { info, process: proc };
  }
}

/** Kill every pid synchronously (for exit/signal handlers). */
function killSync(pids: Iterable<number>): void {
  for (const pid of pids) {
    if (pid <= 0) continue;
    try {
      process.kill(pid, 'SIGTERM');
    } catch (_ignored) {
      // in an exit handler: a pid that is gone (or reused) must not keep the others from being signalled
    }
  }
}

/** A running private network: its description plus the supervisors of its tors. */
export class Testnet {
  readonly description: TestnetDescription;
  readonly #procs = new Map<string, TorProcess>();
  readonly #onExit: () => void;
  readonly #onSignal: (sig: NodeJS.Signals) => void;
  #stopped = false;

  constructor(description: TestnetDescription) {
    this.description = description;
    this.#onExit = () => {
      killSync(this.pids());
    };
    this.#onSignal = (sig) => {
      killSync(this.pids());
      this.#unhook();
      // If nobody else handles the signal, restore the default action (terminate).
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    // Until detach(), our tors die with us (also unowned ones, e.g. when `testnet up` is interrupted).
    process.on('exit', this.#onExit);
    process.on('SIGINT', this.#onSignal);
    process.on('SIGTERM', this.#onSignal);
  }

  #unhook(): void {
    process.off('exit', this.#onExit);
    process.off('SIGINT', this.#onSignal);
    process.off('SIGTERM', this.#onSignal);
  }

  /** Register a supervisor (internal). */
  adopt(nickname: string, proc: TorProcess): void {
    this.#procs.set(nickname, proc);
    proc.on('ready', (r) => {
      const all = [
        ...this.description.authorities,
        ...this.description.relays,
        ...this.description.clients,
        ...this.description.services,
      ];
      const node = all.find((n) => n.nickname === nickname);
      if (node !== undefined) node.pid = r.pid;
    });
  }

  /** The supervisor of a node, by nickname. */
  process(nickname: string): TorProcess {
    const p = this.#procs.get(nickname);
    if (p === undefined)
      throw err('TB_ERR_TESTNET_CONFIG', `no tor named ${nickname} in this network`);
    return p;
  }

  /** Pids of the running tors. */
  pids(): number[] {
    return [...this.#procs.values()].map((p) => p.pid).filter((p): p is number => p !== undefined);
  }

  /** Add an onion service to the running network. */
  async addService(spec: TestnetServiceSpec, opts: JoinOptions = {}): Promise<TestnetServiceInfo> {
    const { info } = await startTestnetService(this.description, spec, {
      ...opts,
      onProcess: (n, p) => {
        this.adopt(n, p);
        opts.onProcess?.(n, p);
      },
    });
    this.description.services.push(info);
    return info;
  }

  /** Add a client to the running network. */
  async addClient(
    spec: TestnetClientSpec = {},
    opts: JoinOptions = {},
  ): Promise<TestnetClientInfo> {
    const { info } = await startTestnetClient(this.description, spec, {
      ...opts,
      onProcess: (n, p) => {
        this.adopt(n, p);
        opts.onProcess?.(n, p);
      },
    });
    this.description.clients.push(info);
    return info;
  }

  /** Write `<baseDir>/testnet.json` (pids, ports) for `testnet down/status`. */
  async writeState(): Promise<string> {
    const path = join(this.description.baseDir, STATE_FILE);
    await writeFile(path, JSON.stringify(this.description, null, 2) + '\n', { mode: 0o600 });
    return path;
  }

  /** Leave the (unowned) tors running and stop supervising them. */
  async detach(): Promise<void> {
    this.#unhook();
    await Promise.all([...this.#procs.values()].map((p) => p.detach()));
  }

  /** Stop every tor (SIGTERM, SIGKILL after 10 s); resolves when all exited. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all([...this.#procs.values()].map((p) => p.stop()));
    this.#unhook();
  }
}

/** Marker file: a directory holding it was made by {@link startTestnet} and may be wiped. */
const MARKER = '.torbalance-testnet';

/**
 * Empty `baseDir` for a new network. Only a missing or empty directory, or one an earlier
 * network left (marker file), is wiped; anything else is refused so a mistyped `--dir` never
 * deletes unrelated files.
 */
async function resetBaseDir(baseDir: string): Promise<void> {
  const entries = await readdir(baseDir).catch(() => undefined);
  if (entries !== undefined && entries.length > 0) {
    if (!entries.includes(MARKER)) {
      throw err(
        'TB_ERR_TESTNET_CONFIG',
        `${baseDir} is not empty and was not made by torbalance testnet; refusing to wipe it`,
      );
    }
    await rm(baseDir, { recursive: true, force: true });
  }
  await mkdir(baseDir, { recursive: true, mode: 0o700 });
  await writeFile(join(baseDir, MARKER), 'made by torbalance testnet; may be deleted\n');
}

interface PlannedRouter {
  nickname: string;
  role: 'authority' | 'relay';
  dataDir: string;
  orPort: number;
  dirPort: number;
  fingerprint: string;
  v3ident?: string;
}

/**
 * Start a private network and wait until it is usable: the consensus lists every
 * authority and relay, and every client is bootstrapped. Services are started in parallel;
 * their addresses are known on return (descriptors may still be uploading unless
 * `waitForUpload`). Retries with fresh ports on EADDRINUSE. On failure every tor is stopped
 * and logs are left in `baseDir`.
 */
export async function startTestnet(options: TestnetOptions): Promise<Testnet> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (e) {
      if (
        attempt < MAX_START_ATTEMPTS &&
        e instanceof TorbalanceError &&
        e.code === 'TB_ERR_TESTNET_PORT_IN_USE'
      ) {
        options.onProgress?.(`port clash, retrying with fresh ports (attempt ${attempt + 1})`);
        continue;
      }
      throw e;
    }
  }
}

async function startOnce(options: TestnetOptions): Promise<Testnet> {
  const t0 = Date.now();
  const say = (m: string): void =>
    options.onProgress?.(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
  const baseDir = options.baseDir;
  if (!isAbsolute(baseDir) || /\s/.test(baseDir))
    throw err(
      'TB_ERR_TESTNET_CONFIG',
      'testnet base dir must be an absolute path without whitespace',
    );
  const nAuth = options.authorities ?? 3;
  const nRelay = options.relays ?? 5;
  const nClient = options.clients ?? 1;
  const vi = options.votingIntervalSeconds ?? 10;
  if (nAuth < 1 || nAuth > 9 || nRelay < 0 || nRelay > 30 || nClient < 0 || nClient > 10)
    throw err('TB_ERR_TESTNET_CONFIG', 'unsupported network size');
  if (!Number.isInteger(vi) || vi < 10 || vi > 300)
    throw err(
      'TB_ERR_TESTNET_CONFIG',
      'voting interval must be an integer between 10 and 300 seconds',
    );
  const tor = options.torBinary ?? 'tor';
  const gencert = options.torGencertBinary ?? 'tor-gencert';
  const owned = options.owned ?? true;
  const deadline = t0 + (options.readyTimeoutMs ?? 120_000);

  await resetBaseDir(baseDir);

  // Plan: ports and keys.
  const ports = await allocatePorts(2 * (nAuth + nRelay));
  const routers: PlannedRouter[] = [];
  for (let i = 0; i < nAuth + nRelay; i++) {
    const role = i < nAuth ? 'authority' : 'relay';
    const nickname = role === 'authority' ? `auth${i}` : `relay${i - nAuth}`;
    routers.push({
      nickname,
      role,
      dataDir: join(baseDir, nickname),
      orPort: ports[2 * i]!,
      dirPort: ports[2 * i + 1]!,
      fingerprint: '',
    });
  }
  await Promise.all(
    routers.map(async (r) => {
      r.fingerprint = await routerFingerprint(tor, r.dataDir, r.nickname);
      if (r.role === 'authority') r.v3ident = await authorityKeys(gencert, r.dataDir, r.dirPort);
    }),
  );
  say(`keys for ${nAuth} authorities and ${nRelay} relays ready`);
  const dirAuthorities = routers
    .filter((r) => r.role === 'authority')
    .map(
      (r) =>
        `${r.nickname} orport=${r.orPort} no-v2 v3ident=${r.v3ident!} 127.0.0.1:${r.dirPort} ${r.fingerprint}`,
    );

  const desc: TestnetDescription = {
    version: 1,
    baseDir,
    votingIntervalSeconds: vi,
    timePeriod: testingNetworkPeriodParams(vi),
    dirAuthorities,
    authorities: [],
    relays: [],
    clients: [],
    services: [],
    owned,
    torBinary: tor,
    infoLogs: options.infoLogs ?? false,
    startedAtMs: Date.now(),
    readyAtMs: 0,
  };
  const net = new Testnet(desc);
  const launchedAt = Date.now();
  try {
    const routerStarts = routers.map(async (r) => {
      const torrc: TorrcEntry[] = [
        ...testnetCommonTorrc(desc, r.nickname, r.dataDir),
        ['SocksPort', '0'],
        ['ORPort', String(r.orPort)],
        ['Address', '127.0.0.1'],
        ['DirPort', String(r.dirPort)],
        ['ExitRelay', '0'],
        ['ExitPolicy', 'reject *:*'],
      ];
      if (r.role === 'authority') {
        torrc.push(
          ['AuthoritativeDirectory', '1'],
          ['V3AuthoritativeDirectory', '1'],
          ['ContactInfo', `${r.nickname}@test.test`],
          ['TestingV3AuthInitialVotingInterval', '5'],
          ['V3AuthVotingInterval', String(vi)],
          ['TestingV3AuthInitialVoteDelay', '2'],
          ['V3AuthVoteDelay', '2'],
          ['TestingV3AuthInitialDistDelay', '2'],
          ['V3AuthDistDelay', '2'],
        );
        if (options.consensusParams !== undefined && options.consensusParams.length > 0) {
          torrc.push(['ConsensusParams', options.consensusParams.map(([k, v]) => `${k}=${v}`).join(' ')]);
        }
      }
      const proc = new TorProcess({
        dataDir: r.dataDir,
        torBinary: tor,
        owned,
        detached: !owned,
        readiness: 'control',
        startTimeoutMs: Math.max(1000, deadline - Date.now()),
        torrc,
      });
      net.adopt(r.nickname, proc);
      try {
        await proc.start(options.signal);
      } catch (e) {
        if (addressInUse(proc))
          throw err('TB_ERR_TESTNET_PORT_IN_USE', `${r.nickname}: port already in use`, e);
        throw e;
      }
      const info: TestnetRouterInfo = {
        nickname: r.nickname,
        role: r.role,
        dataDir: r.dataDir,
        fingerprint: r.fingerprint,
        ...(r.v3ident === undefined ? {} : { v3ident: r.v3ident }),
        orPort: r.orPort,
        dirPort: r.dirPort,
        control: proc.controlEndpoint,
        pid: proc.pid ?? -1,
      };
      (r.role === 'authority' ? desc.authorities : desc.relays).push(info);
    });
    // Clients and services start right away too; they bootstrap once a consensus exists.
    const joinOpts: JoinOptions = {
      readyTimeoutMs: Math.max(1000, deadline - Date.now()),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
    const clientStarts = Array.from({ length: nClient }, async (_, i) => {
      const c = await net.addClient({ nickname: `client${i}` }, joinOpts);
      say(`${c.nickname} bootstrapped (socks 127.0.0.1:${c.socksPort})`);
    });
    const serviceStarts = (options.services ?? []).map(async (s, i) => {
      const info = await net.addService({ ...s, nickname: s.nickname ?? `hs${i}` }, joinOpts);
      say(`${info.nickname} is ${info.onion}`);
    });
    const consensus = (async () => {
      await Promise.all(routerStarts);
      say(`${nAuth + nRelay} routers running (control ports up)`);
      const dirPort = routers[0]!.dirPort;
      const want = nAuth + nRelay;
      const n = await waitFor(
        'a consensus listing every router',
        deadline,
        async () => {
          const c = await fetchConsensusRouterCount(dirPort);
          return c !== undefined && c >= want ? c : undefined;
        },
        options.signal,
        500,
      );
      say(`consensus served with ${n} routers`);
    })();
    // Fail fast: the first failure stops everything (Promise.all handles the later rejections).
    await Promise.all([consensus, ...clientStarts, ...serviceStarts]);
    desc.authorities.sort((a, b) => a.nickname.localeCompare(b.nickname, 'en', { numeric: true }));
    desc.relays.sort((a, b) => a.nickname.localeCompare(b.nickname, 'en', { numeric: true }));
    desc.clients.sort((a, b) => a.nickname.localeCompare(b.nickname, 'en', { numeric: true }));
    desc.services.sort((a, b) => a.nickname.localeCompare(b.nickname, 'en', { numeric: true }));
    desc.readyAtMs = Date.now();
    say(
      `network usable ${((desc.readyAtMs - launchedAt) / 1000).toFixed(1)}s after launching the tors`,
    );
    return net;
  } catch (e) {
    await net.stop();
    throw e;
  }
}

/** Read `<baseDir>/testnet.json`. */
export function readTestnetState(baseDir: string): TestnetDescription {
  const path = join(baseDir, STATE_FILE);
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (e) {
    throw err('TB_ERR_TESTNET_STATE', `no testnet state at ${path}`, e);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw err('TB_ERR_TESTNET_STATE', `testnet state ${path} is not JSON`, e);
  }
  const d = parsed as Partial<TestnetDescription> | null;
  if (
    d === null ||
    typeof d !== 'object' ||
    d.version !== 1 ||
    !Array.isArray(d.authorities) ||
    !Array.isArray(d.relays) ||
    !Array.isArray(d.clients) ||
    !Array.isArray(d.services) ||
    typeof d.baseDir !== 'string'
  ) {
    throw err('TB_ERR_TESTNET_STATE', `testnet state ${path} has an unexpected shape`);
  }
  return d as TestnetDescription;
}

interface AnyNode {
  readonly nickname: string;
  readonly dataDir: string;
  readonly pid: number;
}

function allNodes(d: TestnetDescription): AnyNode[] {
  return [...d.authorities, ...d.relays, ...d.clients, ...d.services];
}

/** The live pid of a node's tor: its recorded pid, verified by /proc cmdline naming its torrc; else its PidFile. */
export function livePid(node: AnyNode): number | undefined {
  const candidates = [node.pid];
  try {
    candidates.push(Number(readFileSync(join(node.dataDir, 'pid'), 'utf8').trim()));
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw e; // no pid file
  }
  for (const pid of candidates) {
    if (!Number.isSafeInteger(pid) || pid <= 0) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmdline.includes(join(node.dataDir, 'torrc'))) return pid;
    } catch (e) {
      if (!isErrno(e, 'ENOENT', 'ESRCH')) throw e; // not running
    }
  }
  return undefined;
}

/** Result of {@link stopTestnetFromState}. */
export interface TestnetDownResult {
  readonly stopped: { readonly nickname: string; readonly pid: number }[];
  readonly killed: number[];
  readonly notRunning: string[];
}

/** Stop every tor recorded in `<baseDir>/testnet.json` (SIGTERM, SIGKILL after `graceMs`), verified by pid. */
export async function stopTestnetFromState(
  baseDir: string,
  graceMs = 10_000,
): Promise<TestnetDownResult> {
  const d = readTestnetState(baseDir);
  const stopped: { nickname: string; pid: number }[] = [];
  const notRunning: string[] = [];
  for (const n of allNodes(d)) {
    const pid = livePid(n);
    if (pid === undefined) {
      notRunning.push(n.nickname);
      continue;
    }
    try {
      process.kill(pid, 'SIGTERM');
      stopped.push({ nickname: n.nickname, pid });
    } catch (e) {
      if (!isErrno(e, 'ESRCH')) throw e; // exited since livePid looked
      notRunning.push(n.nickname);
    }
  }
  const alive = isProcessAlive;
  const until = Date.now() + graceMs;
  while (stopped.some((s) => alive(s.pid)) && Date.now() < until)
    await new Promise((r) => setTimeout(r, 100));
  const killed: number[] = [];
  for (const s of stopped) {
    if (alive(s.pid)) {
      try {
        process.kill(s.pid, 'SIGKILL');
        killed.push(s.pid);
      } catch (e) {
        if (!isErrno(e, 'ESRCH')) throw e; // gone meanwhile
      }
    }
  }
  const until2 = Date.now() + 5000;
  while (killed.some(alive) && Date.now() < until2) await new Promise((r) => setTimeout(r, 100));
  const stuck = stopped.filter((s) => alive(s.pid));
  if (stuck.length > 0)
    throw err(
      'TB_ERR_TESTNET_STOP',
      `tor processes did not exit: ${stuck.map((s) => s.pid).join(', ')}`,
    );
  return { stopped, killed, notRunning };
}

/** True if `pid` runs and is not a zombie (Linux /proc; orphaned tors may linger as zombies until reaped). */
export function isProcessAlive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(safeRead(`/proc/${pid}/status`));
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (!isErrno(e, 'ENOENT', 'ESRCH')) throw e; // the process went away
    return '';
  }
}

/** `testnet status` output. */
export interface TestnetStatus {
  readonly baseDir: string;
  readonly processes: {
    readonly nickname: string;
    readonly pid: number | null;
    readonly alive: boolean;
  }[];
  readonly allAlive: boolean;
  readonly consensusRouters: number | null;
  readonly expectedRouters: number;
  readonly clients: {
    readonly nickname: string;
    readonly socksPort: number;
    readonly bootstrapProgress: number | null;
  }[];
  readonly bootstrapped: boolean;
  readonly services: { readonly nickname: string; readonly onion: string }[];
  readonly votingIntervalSeconds: number;
}

/** Inspect a network recorded in `<baseDir>/testnet.json`. */
export async function testnetStatus(baseDir: string): Promise<TestnetStatus> {
  const d = readTestnetState(baseDir);
  const processes = allNodes(d).map((n) => {
    const pid = livePid(n);
    return { nickname: n.nickname, pid: pid ?? null, alive: pid !== undefined };
  });
  let consensusRouters: number | null = null;
  for (const a of d.authorities) {
    try {
      const c = await fetchConsensusRouterCount(a.dirPort);
      if (c !== undefined) {
        consensusRouters = c;
        break;
      }
    } catch (e) {
      // fetch fails with TypeError (refused, reset) or a TimeoutError from its signal
      if (!(e instanceof TypeError || (e instanceof Error && e.name === 'TimeoutError'))) throw e;
      // try the next authority
    }
  }
  const clients = await Promise.all(
    d.clients.map(async (c) => {
      let p: number | null = null;
      try {
        const ctl = await TorControl.connect(c.control, {
          connectTimeoutMs: 3000,
          commandTimeoutMs: 3000,
        });
        try {
          p = (await bootstrapProgress(ctl)) ?? null;
        } finally {
          await ctl.close();
        }
      } catch (e) {
        if (!(e instanceof TorbalanceError)) throw e; // not reachable or not answering
        p = null;
      }
      return { nickname: c.nickname, socksPort: c.socksPort, bootstrapProgress: p };
    }),
  );
  return {
    baseDir: d.baseDir,
    processes,
    allAlive: processes.every((p) => p.alive),
    consensusRouters,
    expectedRouters: d.authorities.length + d.relays.length,
    clients,
    bootstrapped: clients.length > 0 && clients.every((c) => c.bootstrapProgress === 100),
    services: d.services.map((s) => ({ nickname: s.nickname, onion: s.onion })),
    votingIntervalSeconds: d.votingIntervalSeconds,
  };
}
