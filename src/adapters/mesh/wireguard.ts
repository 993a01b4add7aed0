/**
 * WireGuard helpers for running the mesh over a private WireGuard network (the `tcp:`
 * transport then uses the WireGuard addresses). Uses the `wg` tool of wireguard-tools
 * (Debian: `wireguard-tools`; userspace interfaces: `wireguard-go`), see wg(8), wg-quick(8)
 * and /work/shared/torlab.md §8.
 *
 * Secrets: private keys never appear in argv, environment or logs. `wg genkey` prints the
 * key to our pipe; `wg pubkey` reads it from stdin; key files are written 0600 in a 0700
 * directory through the key store's atomic writer; `wg set … private-key <file>` takes a
 * path. wg-quick configs (which embed the private key) are rendered to a string that the
 * caller writes with {@link writeWgConfig} (0600).
 *
 * Every command can run inside a network namespace (`ip netns exec <ns> wg …`).
 *
 * Errors: TorbalanceError TB_ERR_WG_INVALID (kind `config`: an interface name, key, endpoint or
 * CIDR that is not well formed) and TB_ERR_WG_COMMAND (kind `config`: `wg`/`ip` missing, failed
 * or timed out; the message carries wg's stderr, which never contains a private key).
 */
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import net from 'node:net';
import { TorbalanceError } from '../../core/errors.js';
import { ensurePrivateDirectory, syncDirectory, writeFileAtomic } from '../fs/key-store.js';

/** Where and how to run `wg`. */
export interface WgRunOptions {
  /** Run inside this network namespace (`ip netns exec <ns>`). */
  readonly netns?: string;
  /** The wg binary. Default `wg`. */
  readonly wgBinary?: string;
  /** Deadline per command. Default 10 s. */
  readonly timeoutMs?: number;
}

/** A WireGuard peer for `wg set` / a wg-quick config. */
export interface WgPeer {
  /** base64 public key (44 chars). */
  readonly publicKey: string;
  /** `ip:port` (IPv6 as `[ip]:port`). Optional for peers that only dial us. */
  readonly endpoint?: string;
  /** CIDRs routed to this peer, e.g. `10.200.0.2/32`. */
  readonly allowedIps: readonly string[];
  /** PersistentKeepalive in seconds (0/absent: off). */
  readonly persistentKeepalive?: number;
}

/** Input of {@link renderWgQuickConfig}. */
export interface WgQuickConfig {
  readonly privateKey: string;
  /** Interface addresses, e.g. `10.200.0.1/24`. */
  readonly addresses: readonly string[];
  readonly listenPort?: number;
  readonly peers: readonly WgPeer[];
}

const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
const IFNAME_RE = /^[A-Za-z0-9_=+.-]{1,15}$/;
const NETNS_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_OUTPUT = 64 * 1024;

function invalid(message: string): TorbalanceError {
  return new TorbalanceError('TB_ERR_WG_INVALID', 'config', message);
}

/** Check a base64 WireGuard key (32 bytes). Never echoes the value (it may be a private key). */
export function checkWgKey(what: string, key: string): string {
  if (!KEY_RE.test(key)) throw invalid(`${what} is not a base64 WireGuard key (44 characters)`);
  return key;
}

/** Check an interface name (Linux IFNAMSIZ: at most 15 characters). */
export function checkInterfaceName(name: string): string {
  if (!IFNAME_RE.test(name)) throw invalid(`invalid interface name ${JSON.stringify(name.slice(0, 32))}`);
  return name;
}

/** Check `ip/prefix` (IPv4 or IPv6). */
export function checkCidr(cidr: string): string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  const fam = m === null ? 0 : net.isIP(m[1]!);
  const max = fam === 4 ? 32 : 128;
  if (m === null || fam === 0 || Number(m[2]) > max) throw invalid(`invalid CIDR ${JSON.stringify(cidr.slice(0, 64))}`);
  return cidr;
}

/** Check `ip:port` or `[ipv6]:port`. */
export function checkEndpoint(ep: string): string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(ep);
  const ip = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || ip === undefined || net.isIP(ip) === 0 || port < 1 || port > 65535) throw invalid(`invalid endpoint ${JSON.stringify(ep.slice(0, 64))}`);
  return ep;
}

function checkPort(p: number): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw invalid('listen port must be from 1 to 65535');
  return p;
}

/**
 * Run `wg <args>` (optionally in a netns), feeding `stdin`. Resolves with stdout; rejects with
 * TB_ERR_WG_COMMAND on a non-zero exit, a missing binary or the deadline.
 */
export function runWg(args: readonly string[], opts: WgRunOptions = {}, stdin?: string): Promise<string> {
  const wg = opts.wgBinary ?? 'wg';
  let cmd = wg;
  let argv = [...args];
  if (opts.netns !== undefined) {
    if (!NETNS_RE.test(opts.netns)) return Promise.reject(invalid('invalid network namespace name'));
    cmd = 'ip';
    argv = ['netns', 'exec', opts.netns, wg, ...args];
  }
  const what = `wg ${args[0] ?? ''}`.trim();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise<string>((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let settled = false;
    const finish = (e: TorbalanceError | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e === undefined) resolve(out);
      else reject(e);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new TorbalanceError('TB_ERR_WG_COMMAND', 'config', `${what} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      if (out.length < MAX_OUTPUT) out += d;
    });
    child.stderr.on('data', (d: string) => {
      if (err.length < 4096) err += d;
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      finish(new TorbalanceError('TB_ERR_WG_COMMAND', 'config', `cannot run ${cmd}: ${e.code ?? e.message} (is wireguard-tools installed?)`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      if (code === 0) finish(undefined);
      else finish(new TorbalanceError('TB_ERR_WG_COMMAND', 'config', `${what} failed (${signal ?? `exit ${code ?? '?'}`}): ${err.trim().slice(0, 500)}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin ?? '');
  });
}

/** `wg genkey`: a fresh private key (base64). Keep it in memory or write it with {@link writeWgPrivateKey}. */
export async function wgGenKey(opts: WgRunOptions = {}): Promise<string> {
  const { netns: _ignored, ...rest } = opts; // key generation needs no namespace
  const key = (await runWg(['genkey'], rest)).trim();
  return checkWgKey('wg genkey output', key);
}

/** `wg pubkey` with the private key on stdin. */
export async function wgPubKey(privateKey: string, opts: WgRunOptions = {}): Promise<string> {
  checkWgKey('private key', privateKey);
  const { netns: _ignored, ...rest } = opts;
  const pub = (await runWg(['pubkey'], rest, `${privateKey}\n`)).trim();
  return checkWgKey('wg pubkey output', pub);
}

/** Write a private key file (`<base64>\n`, mode 0600, directory 0700, atomic). */
export async function writeWgPrivateKey(path: string, privateKey: string): Promise<void> {
  checkWgKey('private key', privateKey);
  await writeSecretText(path, `${privateKey}\n`);
}

/** Generate a key pair, write the private key to `path` (0600) and return the public key. */
export async function generateWgKeyFile(path: string, opts: WgRunOptions = {}): Promise<{ publicKey: string }> {
  const priv = await wgGenKey(opts);
  await writeWgPrivateKey(path, priv);
  return { publicKey: await wgPubKey(priv, opts) };
}

async function writeSecretText(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  await ensurePrivateDirectory(dir);
  const data = new TextEncoder().encode(text);
  try {
    await writeFileAtomic(dir, path, data);
  } finally {
    data.fill(0);
  }
  await syncDirectory(dir);
}

/** Render a wg-quick(8) config (`[Interface]` + one `[Peer]` per peer). It contains the private key: write it with {@link writeWgConfig}. */
export function renderWgQuickConfig(c: WgQuickConfig): string {
  const lines = ['[Interface]', `PrivateKey = ${checkWgKey('private key', c.privateKey)}`];
  for (const a of c.addresses) lines.push(`Address = ${checkCidr(a)}`);
  if (c.listenPort !== undefined) lines.push(`ListenPort = ${checkPort(c.listenPort)}`);
  for (const p of c.peers) {
    lines.push('', '[Peer]', `PublicKey = ${checkWgKey('peer public key', p.publicKey)}`);
    if (p.endpoint !== undefined) lines.push(`Endpoint = ${checkEndpoint(p.endpoint)}`);
    lines.push(`AllowedIPs = ${p.allowedIps.map(checkCidr).join(', ')}`);
    if (p.persistentKeepalive !== undefined && p.persistentKeepalive > 0) {
      if (!Number.isInteger(p.persistentKeepalive) || p.persistentKeepalive > 65535) throw invalid('PersistentKeepalive must be from 1 to 65535');
      lines.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Write a rendered config (mode 0600, directory 0700, atomic). */
export async function writeWgConfig(path: string, config: string): Promise<void> {
  await writeSecretText(path, config);
}

/** `wg set <if> private-key <file> [listen-port <port>]` (the key is passed as a file path). */
export async function wgSetPrivateKey(ifname: string, privateKeyFile: string, listenPort: number | undefined, opts: WgRunOptions = {}): Promise<void> {
  const args = ['set', checkInterfaceName(ifname), 'private-key', privateKeyFile];
  if (listenPort !== undefined) args.push('listen-port', String(checkPort(listenPort)));
  await runWg(args, opts);
}

/** `wg set <if> peer <pub> [endpoint <ip:port>] allowed-ips <cidrs> [persistent-keepalive <s>]`. */
export async function wgSetPeer(ifname: string, peer: WgPeer, opts: WgRunOptions = {}): Promise<void> {
  const args = ['set', checkInterfaceName(ifname), 'peer', checkWgKey('peer public key', peer.publicKey)];
  if (peer.endpoint !== undefined) args.push('endpoint', checkEndpoint(peer.endpoint));
  args.push('allowed-ips', peer.allowedIps.map(checkCidr).join(','));
  if (peer.persistentKeepalive !== undefined) args.push('persistent-keepalive', String(peer.persistentKeepalive));
  await runWg(args, opts);
}

/** `wg set <if> peer <pub> remove`. */
export async function wgRemovePeer(ifname: string, publicKey: string, opts: WgRunOptions = {}): Promise<void> {
  await runWg(['set', checkInterfaceName(ifname), 'peer', checkWgKey('peer public key', publicKey), 'remove'], opts);
}

/** One peer line of `wg show <if> dump`. */
export interface WgPeerStatus {
  readonly publicKey: string;
  readonly endpoint: string | undefined;
  readonly allowedIps: readonly string[];
  /** Unix seconds of the latest handshake, 0 = never. */
  readonly latestHandshake: number;
  readonly rxBytes: number;
  readonly txBytes: number;
}

/**
 * Parse `wg show <if> dump`: the first line is the interface (private key, public key, port,
 * fwmark — the private key is discarded here), then one tab-separated line per peer
 * (public key, preshared key, endpoint, allowed ips, latest handshake, rx, tx, keepalive).
 */
export function parseWgDump(text: string): { publicKey: string; listenPort: number; peers: WgPeerStatus[] } {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const first = lines[0]?.split('\t');
  if (first === undefined || first.length < 4) throw new TorbalanceError('TB_ERR_WG_COMMAND', 'config', 'unexpected `wg show dump` output');
  const peers: WgPeerStatus[] = [];
  for (const l of lines.slice(1)) {
    const f = l.split('\t');
    if (f.length < 8) throw new TorbalanceError('TB_ERR_WG_COMMAND', 'config', 'unexpected `wg show dump` peer line');
    peers.push({
      publicKey: f[0]!,
      endpoint: f[2] === '(none)' ? undefined : f[2],
      allowedIps: f[3] === '(none)' ? [] : f[3]!.split(','),
      latestHandshake: Number(f[4]),
      rxBytes: Number(f[5]),
      txBytes: Number(f[6]),
    });
  }
  return { publicKey: first[1]!, listenPort: Number(first[2]), peers };
}

/** `wg show <if> dump`, parsed. */
export async function wgShow(ifname: string, opts: WgRunOptions = {}): Promise<ReturnType<typeof parseWgDump>> {
  return parseWgDump(await runWg(['show', checkInterfaceName(ifname), 'dump'], opts));
}
