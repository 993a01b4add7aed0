/**
 * A scriptable fake tor control port for adapter tests (TCP on 127.0.0.1:0 or a unix socket
 * in a temp dir). It splits what the client sends into commands the way tor's
 * `connection_control_process_inbuf` does (one CRLF line, or a "+" line plus data up to a
 * lone ".") and implements PROTOCOLINFO / AUTHCHALLENGE / AUTHENTICATE itself, with the
 * SAFECOOKIE HMACs computed here with node:crypto (independently of src/core). Everything
 * after authentication goes to the test's `onCommand`, which returns the raw reply text
 * (or undefined for "never answer").
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ControlEndpoint } from '../../src/adapters/tor/control.js';

export interface FakeCommand {
  /** The command line without CRLF (with the leading "+" for multi-line commands). */
  readonly line: string;
  /** For multi-line commands: the raw (still dot-stuffed) data lines joined with CRLF, terminator excluded. */
  readonly body: string | undefined;
}

export interface FakeConnection {
  readonly socket: Socket;
  /** Every byte received on this connection, as latin1 text. */
  received: string;
  readonly commands: FakeCommand[];
  authenticated: boolean;
  write(text: string): void;
}

export interface FakeServerOptions {
  readonly transport?: 'tcp' | 'unix';
  /** Methods advertised in PROTOCOLINFO (default "COOKIE,SAFECOOKIE"). */
  readonly methods?: string;
  /** Cookie contents written to the cookie file (default 32 random bytes). */
  readonly cookie?: Uint8Array;
  /** Password accepted by HASHEDPASSWORD. */
  readonly password?: string;
  /** Make AUTHCHALLENGE answer with a wrong server hash. */
  readonly lyingServerHash?: boolean;
  /** Never answer PROTOCOLINFO (to test connect timeouts). */
  readonly silent?: boolean;
  /** Handles commands after authentication; return the reply text, or undefined to stay silent. */
  readonly onCommand?: (cmd: FakeCommand, conn: FakeConnection) => string | undefined;
}

export interface FakeControlServer {
  readonly endpoint: ControlEndpoint;
  readonly cookieFile: string;
  readonly cookie: Uint8Array;
  readonly dir: string;
  readonly connections: FakeConnection[];
  /** Resolves when the n-th connection (1-based) has authenticated. */
  authenticated(n: number): Promise<FakeConnection>;
  close(): Promise<void>;
}

const SERVER_KEY = 'Tor safe cookie authentication server-to-controller hash';
const CLIENT_KEY = 'Tor safe cookie authentication controller-to-server hash';

function hmac(key: string, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

export async function startFakeControlServer(options: FakeServerOptions = {}): Promise<FakeControlServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tb-fakectl-'));
  const cookie = options.cookie ?? new Uint8Array(randomBytes(32));
  const cookieFile = join(dir, 'control_auth_cookie');
  writeFileSync(cookieFile, cookie, { mode: 0o600 });
  const methods = options.methods ?? 'COOKIE,SAFECOOKIE';
  const connections: FakeConnection[] = [];
  const authWaiters: { n: number; resolve: (c: FakeConnection) => void }[] = [];
  let authCount = 0;

  const onAuthenticated = (conn: FakeConnection): void => {
    authCount++;
    conn.authenticated = true;
    for (const w of authWaiters.filter((x) => x.n === authCount)) w.resolve(conn);
  };

  const server: Server = createServer((socket) => {
    const conn: FakeConnection = {
      socket,
      received: '',
      commands: [],
      authenticated: false,
      write: (t) => {
        if (!socket.destroyed) socket.write(t);
      },
    };
    connections.push(conn);
    let buf = '';
    let clientNonce: Buffer | undefined;
    let serverNonce: Buffer | undefined;
    let multi: { line: string; lines: string[] } | undefined;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      const s = chunk.toString('latin1');
      conn.received += s;
      buf += s;
      for (;;) {
        const i = buf.indexOf('\r\n');
        if (i < 0) break;
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let cmd: FakeCommand;
        if (multi !== undefined) {
          if (line !== '.') {
            multi.lines.push(line);
            continue;
          }
          cmd = { line: multi.line, body: multi.lines.join('\r\n') };
          multi = undefined;
        } else if (line.startsWith('+')) {
          multi = { line, lines: [] };
          continue;
        } else {
          cmd = { line, body: undefined };
        }
        conn.commands.push(cmd);
        handle(cmd);
      }
    });

    function handle(cmd: FakeCommand): void {
      const [kw = '', ...args] = cmd.line.split(' ');
      if (!conn.authenticated) {
        if (kw === 'PROTOCOLINFO') {
          if (options.silent === true) return;
          conn.write(`250-PROTOCOLINFO 1\r\n250-AUTH METHODS=${methods} COOKIEFILE="${cookieFile.replace(/["\\]/g, (c) => '\\' + c)}"\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n`);
        } else if (kw === 'AUTHCHALLENGE' && args[0] === 'SAFECOOKIE' && /^[0-9A-Fa-f]{64}$/.test(args[1] ?? '')) {
          clientNonce = Buffer.from(args[1]!, 'hex');
          serverNonce = randomBytes(32);
          const sh = options.lyingServerHash === true ? randomBytes(32) : hmac(SERVER_KEY, cookie, clientNonce, serverNonce);
          conn.write(`250 AUTHCHALLENGE SERVERHASH=${sh.toString('hex').toUpperCase()} SERVERNONCE=${serverNonce.toString('hex').toUpperCase()}\r\n`);
        } else if (kw === 'AUTHENTICATE') {
          const arg = args.join(' ');
          let ok = false;
          if (arg === '' && methods.split(',').includes('NULL')) ok = true;
          if (options.password !== undefined && arg === `"${options.password.replace(/["\\]/g, (c) => '\\' + c)}"`) ok = true;
          if (methods.split(',').includes('COOKIE') && arg.toLowerCase() === Buffer.from(cookie).toString('hex')) ok = true;
          if (clientNonce !== undefined && serverNonce !== undefined && arg.toLowerCase() === hmac(CLIENT_KEY, cookie, clientNonce, serverNonce).toString('hex')) ok = true;
          if (ok) {
            conn.write('250 OK\r\n');
            onAuthenticated(conn);
          } else {
            conn.write('515 Authentication failed: Wrong length on authentication cookie.\r\n');
            socket.end();
          }
        } else {
          conn.write('514 Authentication required.\r\n');
          socket.end();
        }
        return;
      }
      const out = options.onCommand?.(cmd, conn);
      if (out !== undefined) conn.write(out);
    }
  });

  let endpoint: ControlEndpoint;
  if ((options.transport ?? 'tcp') === 'unix') {
    const path = join(dir, 'control');
    await new Promise<void>((resolve) => server.listen(path, resolve));
    endpoint = { kind: 'unix', path };
  } else {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no TCP address');
    endpoint = { kind: 'tcp', host: '127.0.0.1', port: addr.port };
  }

  return {
    endpoint,
    cookieFile,
    cookie,
    dir,
    connections,
    authenticated: (n) => {
      const done = connections.filter((c) => c.authenticated);
      if (done.length >= n) return Promise.resolve(done[n - 1]!);
      return new Promise((resolve) => authWaiters.push({ n, resolve }));
    },
    close: async () => {
      for (const c of connections) c.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => { resolve(); }));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
