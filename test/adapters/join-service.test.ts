/**
 * The join service on loopback (src/node/join): the ledger file (0600, atomic, bounded,
 * strict), the join listener on a unix socket (rate limit, oversize frame, deadline, one frame,
 * tor's PROXY v1 header),
 * and the service's decisions with the real handshake (accept, used, unknown, revoked, expired
 * with an injected clock, bad proof, gossip merge, persistence) and its admin routes.
 */
import type { MembersLedger } from '../../src/core/mesh/members.js';
import { lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
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
import { JoinService, type JoinServiceOptions, type TokenGossip } from '../../src/node/join/service.js';

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
  const ok = (): Promise<{ response: Uint8Array; result: 'accepted' }> => Promise.resolve({ response: new Uint8Array([0, 0, 0, 2, 0x7b, 0x7d]), result: 'accepted' as const });
  const frame = Buffer.from([0, 0, 0, 2, 0x7b, 0x7d]);
  const hdr = (circ: number): Buffer => Buffer.from(formatTorProxyHeader(circ, 7101));

  it('limits attempts per circuit (sliding minute, injected clock) without touching other circuits; the socket is 0600', async () => {
    const d = await tmp();
    let nowMs = 1_000_000;
    const attempts: JoinAttempt[] = [];
    const l = new JoinListener({ path: join(d, 'j.sock'), perCircuitPerMinute: 2, handle: ok, onAttempt: (a) => attempts.push(a), now: () => nowMs });
    await l.start();
    try {
      expect(((await stat(join(d, 'j.sock'))).mode & 0o777).toString(8)).toBe('600');
      const p = join(d, 'j.sock');
      expect((await talk(p, Buffer.concat([hdr(666), frame]))).bytes).toEqual(frame);
      expect((await talk(p, Buffer.concat([hdr(666), frame]))).bytes).toEqual(frame);
      // the third from circuit 666 is closed without a byte; circuit 7 is unaffected
      expect((await talk(p, Buffer.concat([hdr(666), frame]))).bytes.length).toBe(0);
      expect((await talk(p, Buffer.concat([hdr(7), frame]))).bytes).toEqual(frame);
      nowMs += 61_000;
      expect((await talk(p, Buffer.concat([hdr(666), frame]))).bytes).toEqual(frame);
      expect(attempts.map((a) => a.result)).toEqual(['accepted', 'accepted', 'circuit-limit', 'accepted', 'accepted']);
    } finally {
      await l.stop();
    }
  });

  it('closes an oversize frame, a slow one and a bad header without a byte and without calling the handler', async () => {
    const d = await tmp();
    const attempts: JoinAttempt[] = [];
    let handled = 0;
    const l = new JoinListener({
      path: join(d, 'j.sock'),
      deadlineMs: 300,
      perCircuitPerMinute: 100,
      handle: () => {
        handled += 1;
        return ok();
      },
      onAttempt: (a) => attempts.push(a),
    });
    await l.start();
    try {
      const p = join(d, 'j.sock');
      expect((await talk(p, Buffer.concat([hdr(1), Buffer.from([0, 1, 0, 1, 0x7b])]))).bytes.length).toBe(0);
      expect((await talk(p, Buffer.concat([hdr(2), Buffer.from([0, 0, 0, 10, 0x7b])]))).bytes.length).toBe(0);
      expect((await talk(p, frame)).bytes.length).toBe(0); // no PROXY header
      expect((await talk(p, Buffer.from('PROXY BOGUS\r\n'))).bytes.length).toBe(0);
      expect((await talk(p, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).bytes.length).toBe(0);
      expect(handled).toBe(0);
      expect(attempts.map((a) => a.result)).toEqual(['malformed', 'timeout', 'malformed', 'malformed', 'malformed']);
    } finally {
      await l.stop();
    }
  });

  it('strips the header even when split across writes', async () => {
    const d = await tmp();
    const bodies: string[] = [];
    const l = new JoinListener({
      path: join(d, 'j.sock'),
      handle: (body) => {
        bodies.push(Buffer.from(body).toString());
        return ok();
      },
    });
    await l.start();
    try {
      const split = await new Promise<Buffer>((resolveP, reject) => {
        const s = net.connect({ path: join(d, 'j.sock') });
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('error', reject);
        s.on('close', () => { resolveP(Buffer.concat(chunks)); });
        s.on('connect', () => {
          const h = hdr(1);
          s.write(h.subarray(0, 9));
          setTimeout(() => s.write(Buffer.concat([h.subarray(9), frame])), 50);
        });
      });
      expect(split).toEqual(frame);
      expect(bodies).toEqual(['{}']);
    } finally {
      await l.stop();
    }
  });

  it('attack: held-open connections (one circuit, then 40 circuits) do not keep a joiner out', async () => {
    const d = await tmp();
    const p = join(d, 'j.sock');
    const attempts: JoinAttempt[] = [];
    const l = new JoinListener({ path: p, handle: ok, onAttempt: (a) => attempts.push(a) });
    await l.start();
    const held: net.Socket[] = [];
    /** Open a connection that sends its header and half a frame, then waits. */
    const hold = (circ: number): Promise<net.Socket> =>
      new Promise((resolveP, reject) => {
        const s = net.connect({ path: p });
        s.on('error', () => undefined);
        s.on('connect', () => {
          s.write(Buffer.concat([hdr(circ), Buffer.from([0, 0, 0, 10, 0x7b])]), (e) => {
            if (e) reject(e);
            else resolveP(s);
          });
        });
      });
    const closedCount = (): number => attempts.filter((a) => a.result === 'circuit-limit' || a.result === 'evicted').length;
    try {
      // 10 streams on one circuit: one stays open, the other 9 are closed
      for (let i = 0; i < 10; i++) held.push(await hold(666));
      await vi.waitFor(() => { expect(closedCount()).toBe(9); });
      expect((await talk(p, Buffer.concat([hdr(7), frame]))).bytes).toEqual(frame);
      // 40 circuits each holding one open: the oldest are evicted, the joiner still gets in
      for (let c = 1000; c < 1040; c++) held.push(await hold(c));
      expect((await talk(p, Buffer.concat([hdr(8), frame]))).bytes).toEqual(frame);
      expect(attempts.filter((a) => a.result === 'evicted').length).toBeGreaterThan(0);
    } finally {
      for (const s of held) s.destroy();
      await l.stop();
    }
  });
});

interface Harness {
  svc: JoinService;
  config: Config;
  gossip: { sent: LedgerEntry[][]; push: (e: LedgerEntry[]) => void };
  setNow: (s: number) => void;
  /** Fire the pending join-port timer (the earliest token expiry), as setTimeout would. */
  fireTimer: () => void;
  dir: string;
}

async function service(over: Record<string, unknown> = {}, nodeId = SELF, extra: Partial<JoinServiceOptions> = {}): Promise<Harness> {
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
  let pending: (() => void) | undefined;
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
    nodeId,
    peers: () => ['tcp:127.0.0.1:7700', 'tcp:127.0.0.1:7701'],
    randomBytes: systemRandomBytes,
    logger: log,
    now: () => nowS * 1000,
    setTimer: (fn) => {
      pending = fn;
      return () => {
        if (pending === fn) pending = undefined;
      };
    },
    ...extra,
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
    fireTimer: () => {
      const f = pending;
      pending = undefined;
      f?.();
    },
  };
}

/** Connect to the join socket; resolves false if nothing listens there. */
function portOpen(h: Harness): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path: joinSocketPath(h.config.node.data_dir) });
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => {
      resolve(false);
    });
  });
}

let circuitIds = 100;
async function attempt(h: Harness, token: JoinToken): Promise<{ bundle?: JoinBundle; reason?: string; silent?: true }> {
  const req = createJoinRequest(token, JOINER, systemRandomBytes);
  const r = await talk(joinSocketPath(h.config.node.data_dir), Buffer.concat([Buffer.from(formatTorProxyHeader(circuitIds++, 7101)), req.frame]));
  if (r.bytes.length === 0) return { silent: true };
  try {
    return { bundle: openJoinResponse(req.state, bodyOf(r.bytes)) };
  } catch (e) {
    const x = e as { code?: string; reason?: string };
    if (x.code === 'TB_ERR_JOIN_REFUSED') return { reason: x.reason! };
    throw e;
  }
}

describe('JoinService', () => {
  it('puts the joiner on the node allowlist before the bundle is sent, and the bundle carries the allowlist', async () => {
    const admitted: string[] = [];
    let list: MembersLedger = { enforced: true, entries: [{ id: SELF, state: 'member', at: 1, by: SELF }] };
    const h = await service({}, SELF, {
      admit: (id) => {
        admitted.push(id);
        list = { enforced: true, entries: [...list.entries, { id, state: 'member', at: 2, by: SELF }] };
        return Promise.resolve();
      },
      members: () => list,
    });
    try {
      const ok = await attempt(h, decodeJoinToken((await h.svc.issue(600)).token));
      expect(admitted).toEqual([JOINER]);
      expect(ok.bundle!.members).toEqual(list);
      // If the allowlist cannot be written the join is refused.
      const h2 = await service({}, SELF, { admit: () => Promise.reject(new Error('disk full')) });
      try {
        expect(await attempt(h2, decodeJoinToken((await h2.svc.issue(600)).token))).toEqual({ reason: 'not-ready' });
      } finally {
        await h2.svc.stop();
      }
    } finally {
      await h.svc.stop();
    }
  });

  it('accepts an issued token once (bundle: master key, secret, peers, settings), then refuses it as used', async () => {
    const h = await service();
    try {
      const { token, id, expiresAt } = await h.svc.issue(600);
      expect(expiresAt).toBe(1_800_000_600);
      expect(h.gossip.sent.at(-1)).toEqual([{ id, state: 'issued', expiresAt, at: 1_800_000_000, by: SELF }]);
      await h.svc.issue(600); // a second outstanding token keeps the join port open after the first is used
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
      expect(stored.entries.find((e) => e.id === id)).toEqual({ id, state: 'used', expiresAt, at: 1_800_000_000, by: SELF, joiner: JOINER });
      expect(h.gossip.sent.at(-1)?.find((e) => e.id === id)?.state).toBe('used');
      expect((await attempt(h, t)).reason).toBe('used');
      expect(h.svc.status()).toMatchObject({ accepted: 1, refused: { used: 1 }, tokens: { used: 1, issued: 1 } });
    } finally {
      await h.svc.stop();
    }
  });

  it('refuses unknown, revoked, expired (injected clock) and wrong-secret tokens with their reasons', async () => {
    const h = await service();
    try {
      const open = await h.svc.issue(600); // keeps the join port open throughout
      // valid for this cluster but never recorded in this node's ledger: not issued here
      const unknown = issueJoinToken(SECRET, MASTER.address, 7101, 1_800_000_600, systemRandomBytes);
      expect((await attempt(h, unknown)).reason).toBe('not-here');
      // revoked
      const r = await h.svc.issue(600);
      expect((await h.svc.revoke(r.id))?.state).toBe('revoked');
      expect((await attempt(h, decodeJoinToken(r.token))).reason).toBe('revoked');
      // expired: the clock passes the expiry
      const e = await h.svc.issue(60);
      h.setNow(1_800_000_061);
      expect((await attempt(h, decodeJoinToken(e.token))).reason).toBe('expired');
      // another cluster's secret, another master: closed without a byte (nothing tells a
      // stranger this is torbalance)
      const foreign = issueJoinToken(new Uint8Array(32).fill(1), MASTER.address, 7101, 1_800_000_600, systemRandomBytes);
      expect(await attempt(h, foreign)).toEqual({ silent: true });
      const other = issueJoinToken(SECRET, TARGET, 7101, 1_800_000_600, systemRandomBytes);
      expect(await attempt(h, other)).toEqual({ silent: true });
      expect(h.svc.status().refused).toEqual({ 'bad-proof': 1, expired: 1, revoked: 1, 'not-here': 1, 'wrong-master': 1 });
      expect(h.svc.status().accepted).toBe(0);
      expect(open.id).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await h.svc.stop();
    }
  });

  it('merges gossip (a peer\'s revocation wins, is persisted) and reloads the ledger after a restart', async () => {
    const h = await service();
    const keep = await h.svc.issue(3600);
    const r = await h.svc.issue(3600);
    h.gossip.push([{ id: r.id, state: 'revoked', expiresAt: r.expiresAt, at: 1_800_000_001, by: 'c'.repeat(32) }]);
    await vi.waitFor(() => { expect(h.svc.ledger().find((e) => e.id === r.id)?.state).toBe('revoked'); });
    expect(h.svc.ledger().find((e) => e.id === r.id)).toEqual({ id: r.id, state: 'revoked', expiresAt: r.expiresAt, at: 1_800_000_001, by: 'c'.repeat(32) });
    expect((await attempt(h, decodeJoinToken(r.token))).reason).toBe('revoked');
    // revoking the last outstanding token (gossiped from a peer) closes the join port
    h.gossip.push([{ id: keep.id, state: 'revoked', expiresAt: keep.expiresAt, at: 1_800_000_002, by: 'c'.repeat(32) }]);
    await vi.waitFor(async () => { expect(await portOpen(h)).toBe(false); });
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
      expect(again.ledger().map((e) => e.state)).toEqual(['revoked', 'revoked']);
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
      for (const ttl of [59, 86400 + 1, 1.5, '60']) expect((await post({ method: 'POST', path: '/tokens', query: q, body: { ttl_s: ttl } })).status, String(ttl)).toBe(400);
      const made = await post({ method: 'POST', path: '/tokens', query: q, body: undefined });
      expect(made.status).toBe(200);
      const { token, id, expiresAt } = made.json as { token: string; id: string; expiresAt: number };
      expect(expiresAt).toBe(1_800_000_000 + 15 * 60); // the default TTL: 15 min
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

describe('JoinService: the join port is open only while a token of this node is outstanding', () => {
  it('attack: a visitor probing the port before any token finds nothing listening; issue opens it, use or expiry closes it', async () => {
    const h = await service();
    try {
      expect(await portOpen(h)).toBe(false);
      expect(h.svc.status().listening).toBe(false);
      const a = await h.svc.issue(600);
      expect(await portOpen(h)).toBe(true);
      // a stranger's probe (garbage after tor's header) gets no byte back
      const probe = await talk(joinSocketPath(h.config.node.data_dir), Buffer.concat([Buffer.from(formatTorProxyHeader(5, 7101)), Buffer.from([0, 0, 0, 2, 0x7b, 0x7d])]));
      expect(probe.bytes.length).toBe(0);
      // used: the joiner still gets its bundle although the port closes with it
      expect((await attempt(h, decodeJoinToken(a.token))).bundle).toBeDefined();
      expect(await portOpen(h)).toBe(false);
      // expiry: the timer at the earliest expiry closes the port
      await h.svc.issue(120);
      expect(await portOpen(h)).toBe(true);
      h.setNow(1_800_000_000 + 120);
      h.fireTimer();
      await vi.waitFor(async () => { expect(await portOpen(h)).toBe(false); });
      expect(h.svc.status().listening).toBe(false);
    } finally {
      await h.svc.stop();
    }
  });

  it('attack: a stranger flooding the port cannot spend the global attempt budget (max_attempts_per_minute) of a joiner', async () => {
    const h = await service({ max_attempts_per_minute: 6 });
    try {
      const a = await h.svc.issue(600);
      const p = joinSocketPath(h.config.node.data_dir);
      for (let i = 0; i < 20; i++) {
        const junk = issueJoinToken(new Uint8Array(32).fill(9), MASTER.address, 7101, 1_800_000_600, systemRandomBytes);
        const req = createJoinRequest(junk, JOINER, systemRandomBytes);
        expect((await talk(p, Buffer.concat([Buffer.from(formatTorProxyHeader(5000 + i, 7101)), req.frame]))).bytes.length).toBe(0);
      }
      expect((await attempt(h, decodeJoinToken(a.token))).bundle).toBeDefined();
    } finally {
      await h.svc.stop();
    }
  });
});

describe('JoinService: a token is redeemed once across the cluster', () => {
  it('attack: the same token presented at two nodes at once yields one bundle; the other node answers not-here or has no port', async () => {
    const A = await service({}, SELF);
    const B = await service({}, 'c'.repeat(32));
    try {
      const t = await A.svc.issue(600);
      // B learns the token from gossip (as over the mesh)
      B.gossip.push([...A.svc.ledger()]);
      await vi.waitFor(() => { expect(B.svc.ledger().map((e) => e.id)).toContain(t.id); });
      // B has no token of its own outstanding: nothing listens there
      expect(await portOpen(B)).toBe(false);
      // with one of its own, B's port is open, and it still refuses A's token
      await B.svc.issue(600);
      const token = decodeJoinToken(t.token);
      const [atA, atB] = await Promise.all([attempt(A, token), attempt(B, token)]);
      expect(atA.bundle).toBeDefined();
      expect(atB).toEqual({ reason: 'not-here' });
      // the used entry was on A's disk before the bundle was sent, and gossiped
      const stored = JSON.parse(await readFile(joinLedgerPath(A.config.node.data_dir), 'utf8')) as { entries: LedgerEntry[] };
      expect(stored.entries.find((e) => e.id === t.id)?.state).toBe('used');
      B.gossip.push([...A.svc.ledger()]);
      await vi.waitFor(() => { expect(B.svc.ledger().find((e) => e.id === t.id)?.state).toBe('used'); });
      const again = await Promise.all([attempt(B, token), attempt(B, token)]);
      expect(again.map((x) => x.reason)).toEqual(['used', 'used']);
      // ten concurrent redemptions of a fresh token at its issuing node: exactly one bundle
      const u = decodeJoinToken((await A.svc.issue(600)).token);
      const many = await Promise.all(Array.from({ length: 10 }, () => attempt(A, u)));
      expect(many.filter((x) => x.bundle !== undefined)).toHaveLength(1);
      expect(many.filter((x) => x.reason === 'used')).toHaveLength(9);
    } finally {
      await A.svc.stop();
      await B.svc.stop();
    }
  });
});
