/**
 * Loopback tests of the admin API server and client (src/adapters/admin): socket mode,
 * stale-socket handling, Host check, 404/405, body limits, header timeout, connection cap,
 * error mapping, the client's unreachable error, and who may use which route over TCP and
 * the socket (docs/SECURITY.md, "Admin API"): the bearer secret, the read opt-in, Origin,
 * the JSON content type on every POST.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { adminAuthFor, adminRequest } from '../../src/adapters/admin/client.js';
import { readAdminSecret } from '../../src/adapters/admin/secret.js';
import { ADMIN_CSP, AdminServer, type AdminRoute } from '../../src/adapters/admin/server.js';
import { parseConfigText } from '../../src/adapters/config/load.js';
import { createToken } from '../../src/cli/commands/token.js';
import { utf8 } from '../../src/core/bytes.js';
import { MASTER } from '../unit/join/helpers.js';
import { TorbalanceError } from '../../src/core/errors.js';

const servers: AdminServer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tbadm-'));
  dirs.push(d);
  return d;
}

const echo: AdminRoute = { method: 'POST', path: '/echo', handler: (r) => ({ status: 200, json: { got: r.body, q: r.query.get('x') } }) };
const hello: AdminRoute = { method: 'GET', path: '/hello', handler: () => ({ status: 200, json: { hello: 'world' } }) };

/** The bearer secret of the TCP servers below (they also serve reads without it). */
const SECRET = 'c0ffee'.repeat(8);
const AUTH = { bearer: utf8(SECRET) };

async function tcpServer(extra: Partial<ConstructorParameters<typeof AdminServer>[0]> = {}): Promise<AdminServer> {
  const s = new AdminServer({ listen: { kind: 'tcp', host: '127.0.0.1', port: 0 }, routes: [hello, echo], tcpAccess: { bearerSecret: utf8(SECRET), openReads: true }, ...extra });
  servers.push(s);
  await s.start();
  return s;
}

/** Raw HTTP exchange: resolves with everything the server sent before closing (or after `waitMs` idle). */
function raw(port: number, text: string, waitMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      out += d;
      if (/\r\n\r\n/.test(out)) {
        const m = /content-length: (\d+)/i.exec(out);
        const bodyAt = out.indexOf('\r\n\r\n') + 4;
        if (m !== null && out.length - bodyAt >= Number(m[1])) {
          sock.destroy();
          resolve(out);
        }
      }
    });
    sock.on('close', () => {
      resolve(out);
    });
    sock.on('error', reject);
    sock.setTimeout(waitMs, () => {
      sock.destroy();
      resolve(out);
    });
    sock.write(text);
  });
}

describe('AdminServer on a unix socket', () => {
  it('creates the socket 0600, serves routes with no-store and CSP headers, removes the socket on stop', async () => {
    const path = join(tmp(), 'admin.sock');
    const s = new AdminServer({ listen: { kind: 'unix', path }, routes: [hello] });
    servers.push(s);
    await s.start();
    expect(statSync(path).isSocket()).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const r = await adminRequest({ kind: 'unix', path }, 'GET', '/hello');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ hello: 'world' });
    await s.stop();
    expect(() => statSync(path)).toThrow();
  });

  it('removes a stale socket nobody answers on', async () => {
    const path = join(tmp(), 'admin.sock');
    // bind without listen: leaves a socket file that refuses connections
    execFileSync('/usr/bin/python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(path)})`]);
    expect(statSync(path).isSocket()).toBe(true);
    const s = new AdminServer({ listen: { kind: 'unix', path }, routes: [hello] });
    servers.push(s);
    await s.start();
    expect((await adminRequest({ kind: 'unix', path }, 'GET', '/hello')).status).toBe(200);
  });

  it('refuses a live socket (TB_ERR_ADMIN_IN_USE) and a non-socket file (TB_ERR_ADMIN_LISTEN, file kept)', async () => {
    const d = tmp();
    const path = join(d, 'admin.sock');
    const a = new AdminServer({ listen: { kind: 'unix', path }, routes: [hello] });
    servers.push(a);
    await a.start();
    const b = new AdminServer({ listen: { kind: 'unix', path } });
    await expect(b.start()).rejects.toMatchObject({ code: 'TB_ERR_ADMIN_IN_USE' });
    expect((await adminRequest({ kind: 'unix', path }, 'GET', '/hello')).status).toBe(200);
    const file = join(d, 'plain');
    writeFileSync(file, 'keep me');
    const c = new AdminServer({ listen: { kind: 'unix', path: file } });
    await expect(c.start()).rejects.toMatchObject({ code: 'TB_ERR_ADMIN_LISTEN' });
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });
});

describe('AdminServer on 127.0.0.1', () => {
  it('rejects a non-loopback host at construction', () => {
    expect(() => new AdminServer({ listen: { kind: 'tcp', host: '0.0.0.0', port: 1 } })).toThrow(TorbalanceError);
  });

  it('checks the Host header (DNS rebinding) and sends no CORS headers', async () => {
    const s = await tcpServer();
    const ok = await raw(s.port, `GET /hello HTTP/1.1\r\nHost: localhost:${s.port}\r\nOrigin: http://localhost:${s.port}\r\nConnection: close\r\n\r\n`);
    expect(ok).toMatch(/^HTTP\/1\.1 200 /);
    expect(ok).toMatch(/\r\ncache-control: no-store\r\n/i);
    expect(ok.toLowerCase()).toContain(`content-security-policy: ${ADMIN_CSP}`.toLowerCase());
    expect(ok.toLowerCase()).not.toContain('access-control-');
    const ok2 = await raw(s.port, `GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nConnection: close\r\n\r\n`);
    expect(ok2).toMatch(/^HTTP\/1\.1 200 /);
    for (const host of ['evil.example', `evil.example:${s.port}`, `127.0.0.1:${s.port + 1}`, '127.0.0.1']) {
      const bad = await raw(s.port, `GET /hello HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(bad, host).toMatch(/^HTTP\/1\.1 403 /);
      expect(bad).toContain('TB_ERR_ADMIN_HOST');
    }
  });

  it('answers 404 and 405 as JSON (405 with Allow)', async () => {
    const s = await tcpServer();
    const l = { kind: 'tcp' as const, host: '127.0.0.1', port: s.port };
    const nf = await adminRequest(l, 'GET', '/nope');
    expect(nf.status).toBe(404);
    expect(nf.json).toMatchObject({ error: { code: 'TB_ERR_ADMIN_NOT_FOUND' } });
    const na = await adminRequest(l, 'POST', '/hello', {}, undefined, AUTH);
    expect(na.status).toBe(405);
    expect(na.json).toMatchObject({ error: { code: 'TB_ERR_ADMIN_METHOD' } });
    const r = await raw(s.port, `DELETE /hello HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nConnection: close\r\n\r\n`);
    expect(r).toMatch(/^HTTP\/1\.1 405 /);
    expect(r).toMatch(/\r\nallow: GET\r\n/i);
  });

  it('parses JSON bodies and the query; rejects large, non-JSON and invalid bodies with typed errors', async () => {
    const s = await tcpServer({ limits: { maxBodyBytes: 1024 } });
    const l = { kind: 'tcp' as const, host: '127.0.0.1', port: s.port };
    const r = await adminRequest(l, 'POST', '/echo?x=1', { a: [1, 2] }, undefined, AUTH);
    expect(r.json).toEqual({ got: { a: [1, 2] }, q: '1' });
    const big = await adminRequest(l, 'POST', '/echo', { a: 'x'.repeat(2000) }, undefined, AUTH);
    expect(big.status).toBe(413);
    expect(big.json).toMatchObject({ error: { code: 'TB_ERR_ADMIN_BODY_TOO_LARGE' } });
    // chunked, no Content-Length: counted while streaming
    const chunk = 'y'.repeat(600);
    const chunked = await raw(s.port, `POST /echo HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nAuthorization: Bearer ${SECRET}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${(600).toString(16)}\r\n${chunk}\r\n${(600).toString(16)}\r\n${chunk}\r\n0\r\n\r\n`);
    expect(chunked).toMatch(/^HTTP\/1\.1 413 /);
    const bad = await raw(s.port, `POST /echo HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nAuthorization: Bearer ${SECRET}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{nope`);
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
    expect(bad).toContain('TB_ERR_ADMIN_BAD_REQUEST');
    const text = await raw(s.port, `POST /echo HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nAuthorization: Bearer ${SECRET}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    expect(text).toMatch(/^HTTP\/1\.1 415 /);
  });

  it('maps handler errors: input TorbalanceError → 400 with its code, other errors → 500 without their message', async () => {
    const s = await tcpServer({
      routes: [
        { method: 'GET', path: '/in', handler: () => { throw new TorbalanceError('TB_ERR_X_INPUT', 'input', 'bad thing'); } },
        { method: 'GET', path: '/bug', handler: () => Promise.reject(new Error('secret internals')) },
      ],
    });
    const l = { kind: 'tcp' as const, host: '127.0.0.1', port: s.port };
    const a = await adminRequest(l, 'GET', '/in');
    expect(a.status).toBe(400);
    expect(a.json).toEqual({ error: { code: 'TB_ERR_X_INPUT', message: 'bad thing' } });
    const b = await adminRequest(l, 'GET', '/bug');
    expect(b.status).toBe(500);
    expect(b.text).not.toContain('secret internals');
  });

  it('routes added after start are served', async () => {
    const s = await tcpServer();
    s.addRoute({ method: 'GET', path: '/late', handler: () => ({ status: 200, body: 'late\n', contentType: 'text/plain' }) });
    const r = await adminRequest({ kind: 'tcp', host: '127.0.0.1', port: s.port }, 'GET', '/late');
    expect(r.text).toBe('late\n');
    expect(r.json).toBeUndefined();
  });

  it('closes a connection whose headers never complete (header timeout)', async () => {
    const s = await tcpServer({ limits: { headersTimeoutMs: 300, requestTimeoutMs: 600 } });
    const out = await raw(s.port, `GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\n`, 30_000);
    // node answers 408 and closes (or just closes); never a 200
    expect(out === '' || /^HTTP\/1\.1 408 /.test(out)).toBe(true);
  });

  it('caps concurrent connections', async () => {
    const s = await tcpServer({ limits: { maxConnections: 2, headersTimeoutMs: 20_000, requestTimeoutMs: 30_000 } });
    const held: net.Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const sock = net.connect({ host: '127.0.0.1', port: s.port });
      await new Promise<void>((r) => sock.once('connect', () => { r(); }));
      sock.write('GET /hello HTTP/1.1\r\n'); // incomplete: holds the slot
      held.push(sock);
    }
    // give the server a moment to accept both (poll: a third request is refused while they are open)
    let refused = false;
    for (let k = 0; k < 50 && !refused; k++) {
      const out = await raw(s.port, `GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nConnection: close\r\n\r\n`, 5000);
      refused = out === '';
      if (!refused) await new Promise((r) => setTimeout(r, 50));
    }
    expect(refused).toBe(true);
    for (const h of held) h.destroy();
    let ok = false;
    for (let k = 0; k < 100 && !ok; k++) {
      ok = /^HTTP\/1\.1 200 /.test(await raw(s.port, `GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nConnection: close\r\n\r\n`, 5000));
      if (!ok) await new Promise((r) => setTimeout(r, 50));
    }
    expect(ok).toBe(true);
  });
});

describe('adminRequest', () => {
  it('reports an absent socket as TB_ERR_ADMIN_UNREACHABLE with a hint', async () => {
    const path = join(tmp(), 'none.sock');
    const e = await adminRequest({ kind: 'unix', path }, 'GET', '/status').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TorbalanceError);
    expect((e as TorbalanceError).code).toBe('TB_ERR_ADMIN_UNREACHABLE');
    expect((e as TorbalanceError).message).toContain('is the node running?');
  });

  it('reports a refused TCP port as TB_ERR_ADMIN_UNREACHABLE', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => { r(); }));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => { r(); }));
    await expect(adminRequest({ kind: 'tcp', host: '127.0.0.1', port }, 'GET', '/status')).rejects.toMatchObject({ code: 'TB_ERR_ADMIN_UNREACHABLE' });
  });

  it('times out on a server that never answers (TB_ERR_ADMIN_TIMEOUT)', async () => {
    const socks: net.Socket[] = [];
    const srv = net.createServer((c) => socks.push(c));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => { r(); }));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      await expect(adminRequest({ kind: 'tcp', host: '127.0.0.1', port }, 'GET', '/status', undefined, 200)).rejects.toMatchObject({ code: 'TB_ERR_ADMIN_TIMEOUT' });
    } finally {
      for (const c of socks) c.destroy();
      await new Promise<void>((r) => srv.close(() => { r(); }));
    }
  });
});

describe('who may use the admin API (docs/SECURITY.md, "Admin API")', () => {
  /** A stand-in for the join service's token route: counts the tokens it would have issued. */
  function tokenRoute(): { route: AdminRoute; issued: () => number } {
    let n = 0;
    return { route: { method: 'POST', path: '/tokens', handler: () => ({ status: 200, json: { token: `tbjoin1-${++n}` } }) }, issued: () => n };
  }
  const post = (port: number, headers: string, body = ''): Promise<string> =>
    raw(port, `POST /tokens HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${headers}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);

  it('over TCP with the defaults, no local process mints a token: empty POST, cross-site blind POST, JSON POST', async () => {
    const t = tokenRoute();
    const s = new AdminServer({ listen: { kind: 'tcp', host: '127.0.0.1', port: 0 }, routes: [hello, t.route] });
    servers.push(s);
    await s.start();
    const empty = await post(s.port, '');
    const blind = await post(s.port, 'Origin: http://evil.example\r\nContent-Type: text/plain\r\n', '{}');
    const json = await post(s.port, 'Content-Type: application/json\r\n', '{"ttl_s":3600}');
    for (const r of [empty, blind, json]) {
      expect(r).toMatch(/^HTTP\/1\.1 (401|403|415) /);
      expect(r).not.toContain('tbjoin1');
    }
    expect(json).toContain('TB_ERR_ADMIN_FORBIDDEN');
    expect(t.issued()).toBe(0);
    // the client gets the same answer; reads are closed too unless opted in
    const l = { kind: 'tcp' as const, host: '127.0.0.1', port: s.port };
    expect((await adminRequest(l, 'POST', '/tokens', { ttl_s: 3600 })).status).toBe(403);
    expect((await adminRequest(l, 'GET', '/hello')).json).toMatchObject({ error: { code: 'TB_ERR_ADMIN_FORBIDDEN' } });
    expect(t.issued()).toBe(0);
  });

  it('tcp_open_reads serves GET routes to anyone local, never POST or privileged GET routes', async () => {
    const t = tokenRoute();
    const ledger: AdminRoute = { method: 'GET', path: '/ledger', privileged: true, handler: () => ({ status: 200, json: { ok: 1 } }) };
    const s = await tcpServer({ routes: [hello, ledger, t.route], tcpAccess: { openReads: true } });
    const l = { kind: 'tcp' as const, host: '127.0.0.1', port: s.port };
    expect((await adminRequest(l, 'GET', '/hello')).status).toBe(200);
    expect((await adminRequest(l, 'GET', '/ledger')).status).toBe(403);
    expect((await adminRequest(l, 'POST', '/tokens', {})).status).toBe(403);
    expect(t.issued()).toBe(0);
  });

  it('with the bearer secret: right secret → served; missing or wrong → 401 with WWW-Authenticate; the secret is never echoed', async () => {
    const t = tokenRoute();
    const s = await tcpServer({ routes: [hello, t.route], tcpAccess: { bearerSecret: utf8(SECRET) } });
    const l = { kind: 'tcp' as const, host: '127.0.0.1', port: s.port };
    const ok = await adminRequest(l, 'POST', '/tokens', { ttl_s: 3600 }, undefined, AUTH);
    expect(ok.status).toBe(200);
    expect(t.issued()).toBe(1);
    expect((await adminRequest(l, 'GET', '/hello', undefined, undefined, AUTH)).status).toBe(200);
    const wrongSecret = `${SECRET.slice(0, -1)}0`;
    for (const auth of ['', `Authorization: Bearer ${wrongSecret}\r\n`, `Authorization: Bearer ${SECRET}x\r\n`, `Authorization: Basic ${Buffer.from(`a:${SECRET}`).toString('base64')}\r\n`]) {
      const r = await post(s.port, `${auth}Content-Type: application/json\r\n`, '{}');
      expect(r, auth).toMatch(/^HTTP\/1\.1 401 /);
      expect(r).toMatch(/\r\nwww-authenticate: Bearer /i);
      expect(r).toContain('TB_ERR_ADMIN_AUTH');
      expect(r).not.toContain(SECRET);
      expect(r).not.toContain(wrongSecret);
    }
    // reads need it too unless tcp_open_reads
    expect((await adminRequest(l, 'GET', '/hello')).status).toBe(401);
    expect(t.issued()).toBe(1);
  });

  it('POST needs application/json even with no body, and a privileged request with an Origin is refused even with the secret', async () => {
    const t = tokenRoute();
    const s = await tcpServer({ routes: [hello, t.route] });
    const bearer = `Authorization: Bearer ${SECRET}\r\n`;
    expect(await post(s.port, bearer)).toMatch(/^HTTP\/1\.1 415 /);
    expect(await post(s.port, `${bearer}Content-Type: text/plain\r\n`, '{}')).toMatch(/^HTTP\/1\.1 415 /);
    for (const origin of ['http://evil.example', `http://127.0.0.1:${s.port}`, 'null']) {
      const r = await post(s.port, `${bearer}Origin: ${origin}\r\nContent-Type: application/json\r\n`, '{}');
      expect(r, origin).toMatch(/^HTTP\/1\.1 403 /);
      expect(r).toContain('TB_ERR_ADMIN_ORIGIN');
    }
    expect(await post(s.port, `${bearer}Content-Type: application/json; charset=utf-8\r\n`)).toMatch(/^HTTP\/1\.1 200 /);
    expect(t.issued()).toBe(1);
    // reads: the server's own origin only
    const foreign = await raw(s.port, `GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n`);
    expect(foreign).toMatch(/^HTTP\/1\.1 403 /);
  });

  it('on the unix socket: every route without a secret, but Host must be localhost, POST must be JSON, no Origin on POST', async () => {
    const t = tokenRoute();
    const path = join(tmp(), 'admin.sock');
    const s = new AdminServer({ listen: { kind: 'unix', path }, routes: [hello, t.route] });
    servers.push(s);
    await s.start();
    const over = (text: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const sock = net.connect(path);
        let out = '';
        sock.setEncoding('utf8');
        sock.on('data', (d: string) => (out += d));
        sock.on('close', () => { resolve(out); });
        sock.on('error', reject);
        sock.write(text);
      });
    const req = (host: string, extra: string, body = ''): Promise<string> =>
      over(`POST /tokens HTTP/1.1\r\nHost: ${host}\r\n${extra}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(await req('localhost', 'Content-Type: application/json\r\n', '{}')).toMatch(/^HTTP\/1\.1 200 /);
    expect(await req('localhost', '')).toMatch(/^HTTP\/1\.1 415 /);
    expect(await req('localhost:7780', 'Origin: http://localhost:7780\r\nContent-Type: application/json\r\n', '{}')).toMatch(/^HTTP\/1\.1 403 /);
    // a forwarded socket reached under a rebound name
    expect(await req('evil.example:7780', 'Content-Type: application/json\r\n', '{}')).toMatch(/^HTTP\/1\.1 403 /);
    expect(await over(`GET /hello HTTP/1.1\r\nHost: evil.example:7780\r\nConnection: close\r\n\r\n`)).toContain('TB_ERR_ADMIN_HOST');
    expect(await over(`GET /hello HTTP/1.1\r\nHost: localhost:7780\r\nOrigin: http://localhost:7780\r\nConnection: close\r\n\r\n`)).toMatch(/^HTTP\/1\.1 200 /);
    expect(t.issued()).toBe(1);
  });

  it('reads the secret from a 0600 file only, checks its form without echoing it, and the CLI helper sends it over TCP only', async () => {
    const d = tmp();
    const file = join(d, 'admin.secret');
    writeFileSync(file, `${SECRET}\n`, { mode: 0o600 });
    expect(Buffer.from(await readAdminSecret(file)).toString()).toBe(SECRET);
    writeFileSync(file, `${SECRET}\n`, { mode: 0o644 });
    execFileSync('chmod', ['644', file]);
    await expect(readAdminSecret(file)).rejects.toMatchObject({ code: 'TB_ERR_KEYSTORE_FILE_PERMISSIONS' });
    execFileSync('chmod', ['600', file]);
    for (const bad of ['short-secret-0123456789', `${SECRET} with spaces`, `${SECRET}\n\n`]) {
      writeFileSync(file, bad, { mode: 0o600 });
      const e = await readAdminSecret(file).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'TB_ERR_ADMIN_SECRET' });
      expect((e as Error).message).not.toContain(bad.trim());
    }
    writeFileSync(file, SECRET, { mode: 0o600 });
    const base = `[target]\naddress = "${MASTER}"\n`;
    const tcp = parseConfigText(`${base}[admin]\nlisten = "127.0.0.1:9180"\nsecret_file = "${file}"\n`, { baseDir: d });
    expect(Buffer.from((await adminAuthFor(tcp.admin))!.bearer).toString()).toBe(SECRET);
    const unix = parseConfigText(`${base}[admin]\nsecret_file = "${file}"\n`, { baseDir: d });
    expect(await adminAuthFor(unix.admin)).toBeUndefined();
  });

  it('`torbalance token create` sends the secret of admin.secret_file over TCP; without it the node refuses', async () => {
    const d = tmp();
    const file = join(d, 'admin.secret');
    writeFileSync(file, `${SECRET}\n`, { mode: 0o600 });
    const t = { issued: 0 };
    const route: AdminRoute = { method: 'POST', path: '/tokens', handler: (r) => ({ status: 200, json: { token: `tbjoin1-x${++t.issued}`, id: 'a'.repeat(32), expiresAt: (r.body as { ttl_s: number }).ttl_s } }) };
    const s = await tcpServer({ routes: [route], tcpAccess: { bearerSecret: utf8(SECRET) } });
    const base = `[target]\naddress = "${MASTER}"\n[admin]\nlisten = "127.0.0.1:${s.port}"\n`;
    writeFileSync(join(d, 'with.toml'), `${base}secret_file = "${file}"\n`, { mode: 0o600 });
    writeFileSync(join(d, 'without.toml'), base, { mode: 0o600 });
    expect(await createToken(join(d, 'with.toml'), 3600)).toEqual({ token: 'tbjoin1-x1', id: 'a'.repeat(32), expiresAt: 3600 });
    const e = await createToken(join(d, 'without.toml'), 3600).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'TB_ERR_JOIN_ADMIN' });
    expect((e as Error).message).toContain('TB_ERR_ADMIN_AUTH');
    expect((e as Error).message).not.toContain(SECRET);
    expect(t.issued).toBe(1);
  });
});
