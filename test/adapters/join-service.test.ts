/**
 * The join service on loopback (src/node/join): the ledger file (0600, atomic, bounded,
 * strict), the join listener on a unix socket (rate limit, oversize frame, deadline, one frame,
 * tor's PROXY v1 header),
 * and the service's decisions with the real handshake (accept, used, unknown, revoked, expired
 * with an injected clock, bad proof, gossip merge, persistence) and its admin routes.
 */
import { lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/adapters/config/load.js';
import type { Config } from '../../src/adapters/config/schema.js';
import { systemRandomBytes } from '../../src/adapters/system/random.js';
import { toBase64, toHex } from '../../src/core/bytes.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { createJoinRequest, JoinFrameDecoder, openJoinResponse, type JoinBundle } from '../../src/core/join/handshake.js';
import type { LedgerEntry } from '../../src/core/join/ledger.js';
import { decodeJoinToken, issueJoinToken, type JoinToken } from '../../src/core/join/token.js';
import { formatTorProxyHeader } from '../../src/core/proxy-protocol.js';
import { LedgerStore, MAX_LEDGER_FILE_BYTES } from '../../src/node/join/ledger-store.js';
import { JoinListener, type JoinAttempt } from '../../src/node/join/listener.js';
import { joinLedgerPath, joinSocketPath } from '../../src/node/join/paths.js';
import { JoinService, type TokenGossip } from '../../src/node/join/service.js';

const MASTER = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(3));
const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const SECRET = new Uint8Array(32).fill(0x42);
const SELF = 'a'.repeat(32);
const JOINER = 'b'.repeat(32);
const log = pino({ level: 'silent' });
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tbj-'));
  dirs.push(d);
  return d;
}

/** Send raw bytes to the unix socket, collect everything until it closes. */
function talk(path: string, data: Uint8Array | undefined, endAfterWrite = false): Promise<{ bytes: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      resolve({ bytes: Buffer.concat(chunks), closed: true });
    });
    s.on('connect', () => {
      if (data !== undefined) s.write(data);
      if (endAfterWrite) s.end();
    });
  });
}

function bodyOf(bytes: Buffer): Uint8Array {
  const f = new JoinFrameDecoder().push(new Uint8Array(bytes))[0];
  if (f === undefined) throw new Error(`no whole frame in ${bytes.length} bytes`);
  return f;
}

function reasonOf(bytes: Buffer): string {
  return (JSON.parse(Buffer.from(bodyOf(bytes)).toString('utf8')) as { reason: string }).reason;
}

describe('LedgerStore', () => {
  const entry: LedgerEntry = { id: '1'.repeat(32), state: 'issued', expiresAt: 2_000_000_000, at: 1_900_000_000, by: SELF };

  it('round-trips, writes 0600 atomically, and reads a missing file as empty', async () => {
    const d = await tmp();
    const store = new LedgerStore(join(d, 'join-ledger.json'));
    expect(await store.load()).toEqual([]);
    await store.save([entry, { ...entry, id: '2'.repeat(32), state: 'used', joiner: JOINER }]);
    expect(((await stat(store.path)).mode & 0o777).toString(8)).toBe('600');
    expect(await store.load()).toEqual([entry, { ...entry, id: '2'.repeat(32), state: 'used', joiner: JOINER }]);
    // concurrent saves: the last one wins and no temp file is left
    await Promise.all([store.save([]), store.save([entry])]);
    expect(await store.load()).toEqual([entry]);
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(d)).toEqual(['join-ledger.json']);
  });

  it('refuses malformed, oversized, unknown-key and symlinked files', async () => {
    const d = await tmp();
    const p = join(d, 'l.json');
    const store = new LedgerStore(p);
    const cases: [string, string][] = [
      ['not json', 'TB_ERR_JOIN_LEDGER'],
      ['{"version":2,"entries":[]}', 'TB_ERR_JOIN_LEDGER'],
      ['{"version":1,"entries":[],"x":1}', 'TB_ERR_JOIN_LEDGER'],
      [JSON.stringify({ version: 1, entries: [{ ...entry, secret: 'x' }] }), 'TB_ERR_JOIN_LEDGER'],
      [JSON.stringify({ version: 1, entries: [{ ...entry, state: 'bogus' }] }), 'TB_ERR_JOIN_LEDGER'],
      [JSON.stringify({ version: 1, entries: Array.from({ length: 257 }, (_, i) => ({ ...entry, id: i.toString(16).padStart(32, '0') })) }), 'TB_ERR_JOIN_LEDGER'],
      [' '.repeat(MAX_LEDGER_FILE_BYTES + 1), 'TB_ERR_JOIN_LEDGER'],
    ];
    for (const [text, code] of cases) {
      await writeFile(p, text, { mode: 0o600 });
      await expect(store.load(), text.slice(0, 40)).rejects.toMatchObject({ code });
    }
    await rm(p);
    await writeFile(join(d, 'real.json'), JSON.stringify({ version: 1, entries: [] }));
    await symlink(join(d, 'real.json'), p);
    expect((await lstat(p)).isSymbolicLink()).toBe(true);
    await expect(store.load()).rejects.toMatchObject({ code: 'TB_ERR_JOIN_LEDGER_IO' });
  });
});

describe('JoinListener', () => {
  it('rate-limits attempts per sliding minute (injected clock), the socket is 0600', async () => {
    const d = await tmp();
    let nowMs = 1_000_000;
    const attempts: JoinAttempt[] = [];
    const l = new JoinListener({
      path: join(d, 'j.sock'),
      maxAttemptsPerMinute: 2,
      proxyHeader: false,
      handle: () => Promise.resolve({ response: new Uint8Array([0, 0, 0, 2, 0x7b, 0x7d]), result: 'accepted' as const }),
      onAttempt: (a) => attempts.push(a),
      now: () => nowMs,
    });
    await l.start();
    try {
      expect(((await stat(join(d, 'j.sock'))).mode & 0o777).toString(8)).toBe('600');
      const req = new Uint8Array([0, 0, 0, 2, 0x7b, 0x7d]);
      expect((await talk(join(d, 'j.sock'), req)).bytes).toEqual(Buffer.from(req));
      expect((await talk(join(d, 'j.sock'), req)).bytes).toEqual(Buffer.from(req));
      const third = await talk(join(d, 'j.sock'), req);
      expect(reasonOf(third.bytes)).toBe('rate-limited');
      nowMs += 59_000;
      expect(reasonOf((await talk(join(d, 'j.sock'), req)).bytes)).toBe('rate-limited');
      nowMs += 2_000; // the first two are now older than 60 s
      expect((await talk(join(d, 'j.sock'), req)).bytes).toEqual(Buffer.from(req));
      expect(attempts.map((a) => a.result)).toEqual(['accepted', 'accepted', 'rate-limited', 'rate-limited', 'accepted']);
    } finally {
      await l.stop();
    }
  });

  it('refuses an oversize frame as malformed without calling the handler; closes a slow one at the deadline', async () => {
    const d = await tmp();
    const attempts: JoinAttempt[] = [];
    let handled = 0;
    const l = new JoinListener({
      path: join(d, 'j.sock'),
      maxAttemptsPerMinute: 100,
      deadlineMs: 300,
      proxyHeader: false,
      handle: () => {
        handled += 1;
        return Promise.resolve({ response: new Uint8Array([0, 0, 0, 2, 0x7b, 0x7d]), result: 'accepted' as const });
      },
      onAttempt: (a) => attempts.push(a),
    });
    await l.start();
    try {
      const big = await talk(join(d, 'j.sock'), new Uint8Array([0, 1, 0, 1, 0x7b]));
      expect(reasonOf(big.bytes)).toBe('malformed');
      const slow = await talk(join(d, 'j.sock'), new Uint8Array([0, 0, 0, 10, 0x7b]));
      expect(slow.bytes.length).toBe(0);
      const none = await talk(join(d, 'j.sock'), undefined, true);
      expect(none.bytes.length).toBe(0);
      expect(handled).toBe(0);
      expect(attempts.map((a) => a.result)).toEqual(['malformed', 'timeout', 'closed']);
    } finally {
      await l.stop();
    }
  });
});

describe('JoinListener with tor\'s PROXY v1 header', () => {
  it('strips the header (even split across writes) and refuses a missing or bad one as malformed', async () => {
    const d = await tmp();
    const bodies: string[] = [];
    const l = new JoinListener({
      path: join(d, 'j.sock'),
      maxAttemptsPerMinute: 100,
      handle: (body) => {
        bodies.push(Buffer.from(body).toString());
        return Promise.resolve({ response: new Uint8Array([0, 0, 0, 2, 0x7b, 0x7d]), result: 'accepted' as const });
      },
    });
    await l.start();
    try {
      const frame = Buffer.from([0, 0, 0, 2, 0x7b, 0x7d]);
      const ok = await talk(join(d, 'j.sock'), Buffer.concat([Buffer.from(formatTorProxyHeader(666, 7101)), frame]));
      expect(ok.bytes).toEqual(frame);
      // split: the header arrives in two pieces, then the frame
      const split = await new Promise<Buffer>((resolveP, reject) => {
        const s = net.connect({ path: join(d, 'j.sock') });
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('error', reject);
        s.on('close', () => { resolveP(Buffer.concat(chunks)); });
        s.on('connect', () => {
          const h = Buffer.from(formatTorProxyHeader(1, 7101));
          s.write(h.subarray(0, 9));
          setTimeout(() => s.write(Buffer.concat([h.subarray(9), frame])), 50);
        });
      });
      expect(split).toEqual(frame);
      expect(bodies).toEqual(['{}', '{}']);
      expect(reasonOf((await talk(join(d, 'j.sock'), frame)).bytes)).toBe('malformed');
      expect(reasonOf((await talk(join(d, 'j.sock'), Buffer.from('PROXY BOGUS\r\n'))).bytes)).toBe('malformed');
      expect(bodies).toHaveLength(2);
    } finally {
      await l.stop();
    }
  });
});

interface Harness {
  svc: JoinService;
  config: Config;
  gossip: { sent: LedgerEntry[][]; push: (e: LedgerEntry[]) => void };
  setNow: (s: number) => void;
  dir: string;
}

async function service(over: Record<string, unknown> = {}): Promise<Harness> {
  const dir = await tmp();
  const config = configFromObject(
    {
      node: { data_dir: join(dir, 'data'), name: 'n1' },
      target: { address: TARGET, port: 8080, mode: 'tcp' },
      tor: { extra_config: ['DisableNetwork 1', 'Nickname n1'] },
      cluster: { enabled: true, listen: '127.0.0.1:7700', join: { max_attempts_per_minute: 50, ...over } },
    },
    { baseDir: dir },
  );
  const { mkdir } = await import('node:fs/promises');
  await mkdir(config.node.data_dir, { recursive: true, mode: 0o700 });
  let nowS = 1_800_000_000;
  let cb: ((e: readonly LedgerEntry[], from: string) => void) | undefined;
  const sent: LedgerEntry[][] = [];
  const mesh: TokenGossip = {
    setTokenLedger: (e) => {
      sent.push([...e]);
    },
    onTokenLedger: (f) => {
      cb = f;
      return () => {
        cb = undefined;
      };
    },
  };
  const svc = new JoinService({
    config,
    clusterSecret: SECRET,
    masterAddress: MASTER.address,
    masterSecretKey: () => MASTER.expandedSecretKey,
    nodeId: SELF,
    peers: () => ['tcp:127.0.0.1:7700', 'tcp:127.0.0.1:7701'],
    randomBytes: systemRandomBytes,
    logger: log,
    now: () => nowS * 1000,
  });
  await svc.start();
  svc.attachMesh(mesh);
  return {
    svc,
    config,
    dir,
    gossip: { sent, push: (e) => cb?.(e, 'c'.repeat(32)) },
    setNow: (s) => {
      nowS = s;
    },
  };
}

async function attempt(h: Harness, token: JoinToken): Promise<{ bundle?: JoinBundle; reason?: string }> {
  const req = createJoinRequest(token, JOINER, systemRandomBytes);
  const r = await talk(joinSocketPath(h.config.node.data_dir), Buffer.concat([Buffer.from(formatTorProxyHeader(7, 7101)), req.frame]));
  try {
    return { bundle: openJoinResponse(req.state, bodyOf(r.bytes)) };
  } catch (e) {
    const x = e as { code?: string; reason?: string };
    if (x.code === 'TB_ERR_JOIN_REFUSED') return { reason: x.reason! };
    throw e;
  }
}

describe('JoinService', () => {
  it('accepts an issued token once (bundle: master key, secret, peers, settings), then refuses it as used', async () => {
    const h = await service();
    try {
      const { token, id, expiresAt } = await h.svc.issue(600);
      expect(expiresAt).toBe(1_800_000_600);
      expect(h.gossip.sent.at(-1)).toEqual([{ id, state: 'issued', expiresAt, at: 1_800_000_000, by: SELF }]);
      const t = decodeJoinToken(token);
      expect(t.claims).toMatchObject({ id, master: MASTER.address, port: 7101, expiresAt });
      const ok = await attempt(h, t);
      expect(ok.bundle).toBeDefined();
      expect(toHex(ok.bundle!.masterSecretKey)).toBe(toHex(MASTER.expandedSecretKey));
      expect(toHex(ok.bundle!.clusterSecret)).toBe(toHex(SECRET));
      expect(ok.bundle!.peers).toEqual(['tcp:127.0.0.1:7700', 'tcp:127.0.0.1:7701']);
      expect(ok.bundle!.settings).toMatchObject({ transport: 'tcp', target: { address: TARGET, port: 8080, mode: 'tcp' }, torExtraConfig: ['DisableNetwork 1', 'Nickname n1'] });
      // used: persisted (before the accept) and gossiped
      const stored = JSON.parse(await readFile(joinLedgerPath(h.config.node.data_dir), 'utf8')) as { entries: LedgerEntry[] };
      expect(stored.entries).toEqual([{ id, state: 'used', expiresAt, at: 1_800_000_000, by: SELF, joiner: JOINER }]);
      expect(h.gossip.sent.at(-1)?.[0]?.state).toBe('used');
      expect((await attempt(h, t)).reason).toBe('used');
      expect(h.svc.status()).toMatchObject({ accepted: 1, refused: { used: 1 }, tokens: { used: 1 } });
    } finally {
      await h.svc.stop();
    }
  });

  it('refuses unknown, revoked, expired (injected clock) and wrong-secret tokens with their reasons', async () => {
    const h = await service();
    try {
      // valid for this cluster but never recorded in the ledger
      const unknown = issueJoinToken(SECRET, MASTER.address, 7101, 1_800_000_600, systemRandomBytes);
      expect((await attempt(h, unknown)).reason).toBe('unknown-token');
      // revoked
      const r = await h.svc.issue(600);
      expect((await h.svc.revoke(r.id))?.state).toBe('revoked');
      expect((await attempt(h, decodeJoinToken(r.token))).reason).toBe('revoked');
      // expired: the clock passes the expiry
      const e = await h.svc.issue(60);
      h.setNow(1_800_000_061);
      expect((await attempt(h, decodeJoinToken(e.token))).reason).toBe('expired');
      // another cluster's secret
      const foreign = issueJoinToken(new Uint8Array(32).fill(1), MASTER.address, 7101, 1_800_000_600, systemRandomBytes);
      expect((await attempt(h, foreign)).reason).toBe('bad-proof');
      // another master
      const other = issueJoinToken(SECRET, TARGET, 7101, 1_800_000_600, systemRandomBytes);
      expect((await attempt(h, other)).reason).toBe('wrong-master');
      expect(h.svc.status().refused).toEqual({ 'bad-proof': 1, expired: 1, revoked: 1, 'unknown-token': 1, 'wrong-master': 1 });
      expect(h.svc.status().accepted).toBe(0);
    } finally {
      await h.svc.stop();
    }
  });

  it('merges gossip (a peer\'s revocation wins, is persisted) and reloads the ledger after a restart', async () => {
    const h = await service();
    const r = await h.svc.issue(3600);
    h.gossip.push([{ id: r.id, state: 'revoked', expiresAt: r.expiresAt, at: 1_800_000_001, by: 'c'.repeat(32) }]);
    await new Promise((res) => setTimeout(res, 50));
    expect(h.svc.ledger()).toEqual([{ id: r.id, state: 'revoked', expiresAt: r.expiresAt, at: 1_800_000_001, by: 'c'.repeat(32) }]);
    expect((await attempt(h, decodeJoinToken(r.token))).reason).toBe('revoked');
    await h.svc.stop();
    const again = new JoinService({
      config: h.config,
      clusterSecret: SECRET,
      masterAddress: MASTER.address,
      masterSecretKey: () => MASTER.expandedSecretKey,
      nodeId: SELF,
      peers: () => [],
      randomBytes: systemRandomBytes,
      logger: log,
      now: () => 1_800_000_100_000,
    });
    await again.start();
    try {
      expect(again.ledger().map((e) => e.state)).toEqual(['revoked']);
    } finally {
      await again.stop();
    }
  });

  it('admin routes: ttl bounds, listing without secrets, revoke', async () => {
    const h = await service();
    try {
      const routes = new Map(h.svc.adminRoutes().map((r) => [`${r.method} ${r.path}`, r.handler]));
      const post = routes.get('POST /tokens')!;
      const q = new URLSearchParams();
      for (const ttl of [59, 7 * 86400 + 1, 1.5, '60']) expect((await post({ method: 'POST', path: '/tokens', query: q, body: { ttl_s: ttl } })).status, String(ttl)).toBe(400);
      const made = await post({ method: 'POST', path: '/tokens', query: q, body: undefined });
      expect(made.status).toBe(200);
      const { token, id, expiresAt } = made.json as { token: string; id: string; expiresAt: number };
      expect(expiresAt).toBe(1_800_000_000 + 3600);
      const list = await routes.get('GET /tokens')!({ method: 'GET', path: '/tokens', query: q, body: undefined });
      const text = JSON.stringify(list.json);
      expect(text).toContain(id);
      expect(text).not.toContain(token);
      expect(text).not.toContain(token.slice(8, 40));
      expect(text).not.toContain(toBase64(SECRET));
      const revoke = routes.get('POST /tokens/revoke')!;
      expect((await revoke({ method: 'POST', path: '/tokens/revoke', query: q, body: { id: 'f'.repeat(32) } })).status).toBe(404);
      expect((await revoke({ method: 'POST', path: '/tokens/revoke', query: q, body: { id: 'nothex' } })).status).toBe(400);
      const rv = await revoke({ method: 'POST', path: '/tokens/revoke', query: q, body: { id } });
      expect(rv).toEqual({ status: 200, json: { id, state: 'revoked' } });
    } finally {
      await h.svc.stop();
    }
  });
});
