/**
 * The joining side of `torbalance join` (the CLI in src/cli/commands/join.ts parses the options
 * and prints; the node side is listener.ts and service.ts here): make a directory a new node of
 * an existing cluster using a join token (docs/OPERATIONS.md).
 *
 * 1. The token comes from a file or stdin only (there is no option that takes it on the
 *    command line, so it never shows in argv); it names the master onion and its join port.
 *    Everything that can be checked locally is checked before the token is spent (options,
 *    `--tor-extra-file` lines, DIR not holding a config yet).
 * 2. A fresh node key is generated; the join request (src/core/join/handshake.ts) proves the
 *    token and carries an ephemeral X25519 key bound to the token secret.
 * 3. The request goes to `<master>.onion:<join port>` through tor's SOCKS port (`--socks`, or a
 *    temporary tor started here with `--tor-extra-file`'s lines and removed afterwards); the
 *    hostname is sent to tor, never resolved locally. Each attempt uses its own SOCKS
 *    isolation, so tor builds a fresh rendezvous circuit through a random intro point — of a
 *    random node: only the node that issued the token redeems it, and other nodes either have
 *    their join port closed or answer `not-here` (docs/SECURITY.md "Join tokens"). Dial
 *    failures, answerless closes and `not-here` are retried until `--timeout` (a fresh
 *    descriptor may take a while to reach the HSDirs); a refusal is final except
 *    `rate-limited` and `not-ready`, which are retried more slowly. A token whose expiry has
 *    passed on this machine's clock is refused before dialing (TB_ERR_JOIN_TOKEN).
 * 4. The sealed bundle is opened and written: `DIR/master/` (tor's key format, 0700/0600;
 *    its address must be the token's master), `DIR/cluster/secret` and `DIR/cluster/node_key`
 *    (0600), `DIR/torbalance.toml` (0600; loads with `loadConfig`, checked before writing):
 *    target, health and cluster timings copied from the cluster, the mesh peers it sent, tor's
 *    extra lines (`--tor-extra-file`'s if given, else the cluster's without the per-node
 *    Nickname/PidFile/Log lines).
 *
 * With the tcp transport the node needs a mesh listener: without `listen` the files are
 * written with `[cluster] enabled = false` and {@link JoinResult.clusterEnabled} is false (the
 * CLI then fails with TB_ERR_JOIN_NEEDS_LISTEN telling what to set).
 *
 * Errors: TB_ERR_JOIN_OPTION (bad option value), TB_ERR_JOIN_EXISTS (DIR already has a config),
 * TB_ERR_JOIN_TOKEN_FILE (unreadable/oversized token file), the core's TB_ERR_JOIN_TOKEN /
 * TB_ERR_JOIN_REFUSED / TB_ERR_JOIN_RESPONSE, TB_ERR_JOIN_UNREACHABLE (no answer before the
 * deadline), TB_ERR_JOIN_MASTER (the bundle's key is not the token's master).
 */
import { constants } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type net from 'node:net';
import { CONFIG_FILE_NAME, extraConfigLines, parseConfigText } from '../../adapters/config/load.js';
import { parseClusterAddress, parseHostPort, parseTorrcLine } from '../../adapters/config/schema.js';
import { EMPTY_MEMBERS, mergeMembers } from '../../core/mesh/members.js';
import { MEMBERS_FILE_NAME } from '../members.js';
import { exists, readAtMost, writeFileAtomic, writeKeyDirectory } from '../../adapters/fs/key-store.js';
import { NODE_SECRET_BYTES, writeNodeSecret } from '../../adapters/fs/node-secrets.js';
import { dialThroughTor, type SocksEndpoint } from '../../adapters/net/socks-dialer.js';
import { systemRandomBytes } from '../../adapters/system/random.js';
import { realTimers, type Timers } from '../../adapters/system/timers.js';
import { TorProcess } from '../../adapters/tor/process.js';
import { fromUtf8, toHex, utf8 } from '../../core/bytes.js';
import { DecodeError, TorbalanceError } from '../../core/errors.js';
import { HsIdentityKeypair } from '../../core/hs/keys.js';
import { createJoinRequest, JoinFrameDecoder, JoinRefusedError, openJoinResponse, type JoinBundle } from '../../core/join/handshake.js';
import { decodeJoinToken, type JoinToken } from '../../core/join/token.js';
import { nodeKeyFromSeed } from '../../core/mesh/index.js';
import { checkExtraTorrcKeyword } from '../../core/node-torrc.js';
import type { TorrcEntry } from '../../core/torrc.js';
import { freeLoopbackPort } from '../../adapters/net/loopback-port.js';

/** Largest token file read. */
const MAX_TOKEN_FILE = 4096;
/** Largest `--tor-extra-file`. */
const MAX_TOR_EXTRA_FILE = 256 * 1024;

/** Options of {@link joinCluster}. */
export interface JoinOptions {
  /** Token file path, or `-` for stdin. */
  readonly tokenFile: string;
  readonly dir: string;
  readonly name: string;
  /** tor's SOCKS port; without it a temporary tor is started. */
  readonly socks?: string;
  readonly torExtraFile?: string;
  /** Mesh listener "<IP>:<port>" (tcp transport). */
  readonly listen?: string;
  readonly priority?: number;
  /** Overall deadline for reaching the join port, seconds. Default 300. */
  readonly timeoutS?: number;
  /** Progress messages (none by default; the CLI prints them to stderr). */
  readonly progress?: (m: string) => void;
  /** Clock and timers of the retry loop (deadline, waits between attempts, answer timeout). Default the real ones. */
  readonly timers?: Timers;
}

/** Wait before the next attempt after a refusal `rate-limited` / `not-ready` (the node asks to try later). */
export const RETRY_LATER_MS = 15_000;
/** Wait before the next attempt after `not-here` (another node answered: try a fresh circuit soon). */
export const RETRY_ELSEWHERE_MS = 500;
/** Wait before the next attempt after a dial failure or an answerless close. */
export const RETRY_UNREACHABLE_MS = 3000;

/** What {@link joinCluster} wrote. */
export interface JoinResult {
  readonly masterAddress: string;
  readonly nodeId: string;
  readonly configPath: string;
  readonly clusterEnabled: boolean;
}

/** A TB_ERR_JOIN_OPTION error (also for the CLI's own option checks). */
export function joinOptionError(message: string): TorbalanceError {
  return new TorbalanceError('TB_ERR_JOIN_OPTION', 'input', message);
}

/** Parse `127.0.0.1:PORT` (the SOCKS port must be on loopback). */
export function parseSocks(s: string): SocksEndpoint {
  const hp = parseHostPort(s);
  if (hp === undefined || hp.host !== '127.0.0.1') throw joinOptionError('--socks must be 127.0.0.1:<port> (tor\'s SocksPort)');
  return hp;
}

/** Parse a `--tor-extra-file`: one torrc line per line, `#` comments and blank lines ignored; managed keywords refused. */
export function parseTorExtraText(text: string): TorrcEntry[] {
  const out: TorrcEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (/^\s*(#.*)?$/.test(line)) return;
    const e = parseTorrcLine(line);
    if (e === undefined) throw joinOptionError(`--tor-extra-file line ${i + 1} is not a torrc line "Keyword value"`);
    const why = checkExtraTorrcKeyword(e[0]);
    if (why !== undefined) throw joinOptionError(`--tor-extra-file line ${i + 1}: ${why}`);
    out.push(e);
  });
  return out;
}

async function readBounded(path: string, max: number, code: string, what: string): Promise<Uint8Array> {
  try {
    if (path === '-') {
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of process.stdin) {
        const b = c as Buffer;
        n += b.length;
        if (n > max) throw new TorbalanceError(code, 'input', `${what} on stdin is larger than ${max} bytes`);
        chunks.push(b);
      }
      const out = new Uint8Array(Buffer.concat(chunks));
      for (const c of chunks) c.fill(0);
      return out;
    }
    const fh = await open(resolve(path), constants.O_RDONLY);
    try {
      const data = await readAtMost(fh, max + 1);
      if (data.length > max) throw new TorbalanceError(code, 'input', `${what} ${path} is larger than ${max} bytes`);
      return data;
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (e instanceof TorbalanceError) throw e;
    throw new TorbalanceError(code, 'input', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
}

/** Read and decode the token (file or stdin). */
export async function readToken(path: string): Promise<JoinToken> {
  const data = await readBounded(path, MAX_TOKEN_FILE, 'TB_ERR_JOIN_TOKEN_FILE', 'token file');
  try {
    return decodeJoinToken(fromUtf8(data));
  } catch (e) {
    if (e instanceof TorbalanceError) throw e;
    throw new TorbalanceError('TB_ERR_JOIN_TOKEN', 'input', 'the token file is not a torbalance join token');
  } finally {
    data.fill(0);
  }
}

/** One attempt: send the request frame, read one response frame (or fail). */
function exchange(sock: net.Socket, frame: Uint8Array, timeoutMs: number, timers: Timers): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolveP, reject) => {
    const dec = new JoinFrameDecoder();
    const timer = timers.setTimeout(() => {
      done(new TorbalanceError('TB_ERR_JOIN_UNREACHABLE', 'tor', 'no answer from the join port in time'));
    }, timeoutMs);
    let settled = false;
    const done = (e: Error | undefined, body?: Uint8Array): void => {
      if (settled) return;
      settled = true;
      timers.clearTimeout(timer);
      sock.destroy();
      if (e !== undefined) reject(e);
      else resolveP(body!);
    };
    sock.on('data', (c: Buffer) => {
      try {
        const f = dec.push(new Uint8Array(c.buffer, c.byteOffset, c.byteLength))[0];
        if (f !== undefined) done(undefined, f);
      } catch (e) {
        done(e as Error);
      }
    });
    sock.on('error', (e) => {
      done(new TorbalanceError('TB_ERR_JOIN_UNREACHABLE', 'tor', `the join connection failed: ${e.message}`));
    });
    sock.on('close', () => {
      done(new TorbalanceError('TB_ERR_JOIN_UNREACHABLE', 'tor', 'the join port closed the connection without an answer'));
    });
    sock.resume();
    sock.write(frame);
  });
}

/** The `[tor] extra_config` lines a joined node keeps from the cluster's (per-node lines dropped). */
export function inheritedTorLines(lines: readonly string[]): string[] {
  return lines.filter((l) => !/^\s*(Nickname|PidFile|Log)\b/i.test(l));
}

/** The config text a joined node gets. */
export function joinConfigText(o: { name: string; bundle: JoinBundle; listen?: string | undefined; priority?: number | undefined; onionPort: number; torLines: readonly string[] }): { text: string; clusterEnabled: boolean } {
  const s = o.bundle.settings;
  const tcp = s.transport === 'tcp';
  const enabled = !tcp || o.listen !== undefined;
  const peers = o.bundle.peers.filter((p) => parseClusterAddress(p)?.kind === s.transport && (o.listen === undefined || p !== `tcp:${o.listen}`));
  const q = (x: string): string => JSON.stringify(x);
  const text = `# torbalance node configuration (written by \`torbalance join\`).
# Reference: docs/config.md. Relative paths are relative to this file's directory.

[node]
name = ${q(o.name)}
data_dir = "data"

[master]
# The master key received from the cluster (tor HiddenServiceDir format; 0700/0600).
key_dir = "master"

[target]
address = ${q(s.target.address)}
port = ${s.target.port}
mode = ${q(s.target.mode)}

[tor]
extra_config = [${o.torLines.map((l) => `\n  ${q(l)},`).join('')}${o.torLines.length > 0 ? '\n' : ''}]

[health]
kind = ${q(s.health.kind)}
path = ${q(s.health.path)}
interval_ms = ${s.health.interval_ms}
timeout_ms = ${s.health.timeout_ms}

[cluster]
${enabled ? '' : '# Set listen (this node\'s mesh address "<IP>:<port>", reachable by the other nodes), then enable.\n'}enabled = ${enabled}
secret_file = "cluster/secret"
node_key_file = "cluster/node_key"
transport = ${q(s.transport)}
${o.listen === undefined ? '' : `listen = ${q(o.listen)}\n`}peers = [${peers.map(q).join(', ')}]
${o.priority === undefined ? '' : `priority = ${o.priority}\n`}heartbeat_ms = ${s.cluster.heartbeat_ms}
suspect_after_ms = ${s.cluster.suspect_after_ms}
dead_after_ms = ${s.cluster.dead_after_ms}
lease_ms = ${s.cluster.lease_ms}
max_skew_ms = ${s.cluster.max_skew_ms}

[cluster.join]
onion_port = ${o.onionPort}
`;
  return { text, clusterEnabled: enabled };
}


/** Start a temporary tor with a SOCKS port (OnionTrafficOnly) and `extra` lines; bootstrapped. */
async function temporaryTor(extra: readonly TorrcEntry[], progress: (m: string) => void): Promise<{ socks: SocksEndpoint; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tbjoin-'));
  await chmod(dir, 0o700);
  const port = await freeLoopbackPort();
  const tor = new TorProcess({ dataDir: dir, torrc: [['SocksPort', `127.0.0.1:${port} OnionTrafficOnly`], ...extra], readiness: 'bootstrap', restart: false, owned: true, startTimeoutMs: 300_000 });
  progress('starting a temporary tor (removed afterwards)');
  try {
    await tor.start();
  } catch (e) {
    await tor.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  progress('temporary tor bootstrapped');
  return {
    socks: { host: '127.0.0.1', port },
    stop: async () => {
      await tor.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Run the join (see the module doc). */
export async function joinCluster(o: JoinOptions): Promise<JoinResult> {
  const progress = o.progress ?? ((_m: string) => undefined);
  const timers = o.timers ?? realTimers;
  const dir = resolve(o.dir);
  const configPath = join(dir, CONFIG_FILE_NAME);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(o.name)) throw joinOptionError('--name must be 1–64 letters, digits, ".", "_" or "-"');
  if (o.listen !== undefined && parseHostPort(o.listen) === undefined) throw joinOptionError('--listen must be <IP>:<port> (IPv6 as [addr]:port)');
  if (o.priority !== undefined && !(Number.isInteger(o.priority) && o.priority >= 0 && o.priority <= 1000)) throw joinOptionError('--priority must be an integer from 0 to 1000');
  const timeoutS = o.timeoutS ?? 300;
  if (!(Number.isInteger(timeoutS) && timeoutS >= 1 && timeoutS <= 3600)) throw joinOptionError('--timeout must be from 1 to 3600 seconds');
  const socksGiven = o.socks === undefined ? undefined : parseSocks(o.socks);
  let torExtra: TorrcEntry[] | undefined;
  if (o.torExtraFile !== undefined) {
    torExtra = parseTorExtraText(fromUtf8(await readBounded(o.torExtraFile, MAX_TOR_EXTRA_FILE, 'TB_ERR_JOIN_OPTION', '--tor-extra-file')));
  }
  if (await exists(configPath)) throw new TorbalanceError('TB_ERR_JOIN_EXISTS', 'config', `${configPath} already exists; join into a new directory`);
  const token = await readToken(o.tokenFile);
  const { master, port } = token.claims;
  if (Date.now() >= token.claims.expiresAt * 1000) {
    token.secret.fill(0);
    throw new TorbalanceError('TB_ERR_JOIN_TOKEN', 'input', `the join token expired at ${new Date(token.claims.expiresAt * 1000).toISOString()}; create a new one`);
  }

  const seed = systemRandomBytes(NODE_SECRET_BYTES);
  const nodeId = nodeKeyFromSeed(seed).nodeId;
  const req = createJoinRequest(token, nodeId, systemRandomBytes);
  token.secret.fill(0);

  let bundle: JoinBundle | undefined;
  const tmpTor = socksGiven === undefined ? await temporaryTor(torExtra ?? [], progress) : undefined;
  try {
    const socks = socksGiven ?? tmpTor!.socks;
    const deadline = timers.now() + timeoutS * 1000;
    progress(`asking ${master}:${port} to admit node ${nodeId}`);
    let last = '';
    for (let attempt = 1; bundle === undefined; attempt++) {
      const left = deadline - timers.now();
      if (left <= 0) throw new TorbalanceError('TB_ERR_JOIN_UNREACHABLE', 'tor', `could not reach the join port ${master}:${port} within ${timeoutS} s (last error: ${last}); only the node that created the token admits it: is that node running with [cluster.join] enabled, and is the token still unused and not revoked?`);
      try {
        // A fresh circuit per attempt (tor isolates streams by SOCKS credentials).
        const isolation = `tbjoin-${toHex(systemRandomBytes(8))}`;
        const sock = await dialThroughTor({ ...socks, isolation }, { host: master, port }, Math.min(left, 120_000));
        const body = await exchange(sock, req.frame, Math.min(Math.max(left, 1000), 120_000), timers);
        bundle = openJoinResponse(req.state, body);
      } catch (e) {
        // A refusal is final, except "rate-limited" / "not-ready" (try again later) and
        // "not-here" (another node issued the token: try again on a fresh circuit).
        const transient = e instanceof JoinRefusedError && (e.reason === 'rate-limited' || e.reason === 'not-ready');
        const elsewhere = e instanceof JoinRefusedError && e.reason === 'not-here';
        if (!transient && !elsewhere && e instanceof TorbalanceError && (e.code === 'TB_ERR_JOIN_REFUSED' || e.code === 'TB_ERR_JOIN_RESPONSE' || e.code === 'TB_ERR_JOIN_FRAME')) throw e;
        last = e instanceof TorbalanceError ? `${e.code}: ${e.message}` : String(e);
        if (attempt === 1 || attempt % 5 === 0) progress(`not reachable yet (${last}); retrying`);
        await new Promise<void>((r) => timers.setTimeout(r, transient ? RETRY_LATER_MS : elsewhere ? RETRY_ELSEWHERE_MS : RETRY_UNREACHABLE_MS));
      }
    }
  } finally {
    await tmpTor?.stop();
  }

  try {
    let keypair: HsIdentityKeypair;
    try {
      keypair = HsIdentityKeypair.fromExpandedSecretKey(bundle.masterSecretKey);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      throw new TorbalanceError('TB_ERR_JOIN_MASTER', 'peer', 'the cluster sent an invalid master key');
    }
    if (keypair.address !== master) throw new TorbalanceError('TB_ERR_JOIN_MASTER', 'peer', `the cluster sent the key of ${keypair.address}, not of the token's master ${master}`);
    const torLines = torExtra !== undefined ? extraConfigLines(torExtra) : inheritedTorLines(bundle.settings.torExtraConfig);
    const { text, clusterEnabled } = joinConfigText({ name: o.name, bundle, listen: o.listen, priority: o.priority, onionPort: port, torLines });
    parseConfigText(text, { baseDir: dir, source: configPath });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    await writeKeyDirectory(join(dir, 'master'), keypair);
    await writeNodeSecret('cluster-secret', join(dir, 'cluster', 'secret'), bundle.clusterSecret);
    await writeNodeSecret('node-key', join(dir, 'cluster', 'node_key'), seed);
    // The cluster's node allowlist, so this node refuses non-members from its first connection.
    if (bundle.members !== undefined) {
      await mkdir(join(dir, 'data'), { recursive: true, mode: 0o700 });
      await writeFileAtomic(join(dir, 'data'), join(dir, 'data', MEMBERS_FILE_NAME), utf8(`${JSON.stringify({ version: 1, ...mergeMembers(EMPTY_MEMBERS, bundle.members) })}\n`));
    }
    const data = utf8(text);
    await writeFileAtomic(dir, configPath, data);
    return { masterAddress: master, nodeId, configPath, clusterEnabled };
  } finally {
    seed.fill(0);
    bundle.masterSecretKey.fill(0);
    bundle.clusterSecret.fill(0);
  }
}
