/**
 * A fake tor SocksPort for loopback tests (SOCKS5, RFC 1928, no authentication or RFC 1929
 * username/password as tor accepts it for stream isolation, CONNECT only) on 127.0.0.1:0. It
 * records every CONNECT request — address type, hostname, port and SOCKS username — so tests can assert the name was sent as ATYP 0x03 (domain; tor resolves it, nothing
 * resolves locally), and connects to a loopback app chosen by `route`. The reply can be
 * forced (e.g. tor's onion-service codes 0xF0–0xF7) or withheld ("hang") to test timeouts.
 * Both spliced sockets are allowHalfOpen so a half-close passes through like tor's streams,
 * and TCP_NODELAY (a relay must not hold small writes back for the peer's delayed ACK).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface SocksConnectRecord {
  /** 0x01 IPv4, 0x03 domain name, 0x04 IPv6. */
  readonly atyp: number;
  readonly host: string;
  readonly port: number;
  /** The RFC 1929 username (tor: the stream-isolation key), if the client authenticated. */
  readonly username?: string;
}

export interface FakeSocksOptions {
  /** Where a CONNECT to host:port really goes; undefined → reply 0x04 (host unreachable). */
  readonly route: (host: string, port: number) => { host: string; port: number } | undefined;
}

export class FakeSocksServer {
  readonly requests: SocksConnectRecord[] = [];
  /** Force this SOCKS5 reply code for every CONNECT (undefined: behave normally). */
  replyOverride: number | undefined;
  /** Never answer CONNECT requests. */
  hang = false;
  /** Reply success only after this many ms (simulates tor building circuits). */
  delayMs = 0;
  readonly #opts: FakeSocksOptions;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(opts: FakeSocksOptions) {
    this.#opts = opts;
  }

  get endpoint(): { host: string; port: number } {
    return { host: '127.0.0.1', port: this.port };
  }

  async start(): Promise<void> {
    const server = createServer({ allowHalfOpen: true }, (s) => {
      this.#handle(s);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('no port');
    this.port = a.port;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => {
      if (this.#server === undefined) resolve();
      else this.#server.close(() => { resolve(); });
    });
  }

  #track(s: Socket): void {
    this.#sockets.add(s);
    s.on('close', () => this.#sockets.delete(s));
    s.on('error', () => undefined);
  }

  #handle(client: Socket): void {
    this.#track(client);
    client.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let stage: 'greeting' | 'auth' | 'request' | 'done' = 'greeting';
    let username: string | undefined;
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (stage === 'greeting') {
        if (buf.length < 2) return;
        const n = buf[1]!;
        if (buf.length < 2 + n) return;
        const methods = buf.subarray(2, 2 + n);
        // Like tor: username/password (0x02) when offered, else no authentication (0x00).
        const method = methods.includes(2) ? 2 : methods.includes(0) ? 0 : undefined;
        if (buf[0] !== 5 || method === undefined) {
          client.end(Buffer.from([5, 0xff]));
          stage = 'done';
          return;
        }
        client.write(Buffer.from([5, method]));
        buf = buf.subarray(2 + n);
        stage = method === 2 ? 'auth' : 'request';
      }
      if (stage === 'auth') {
        // RFC 1929: VER=1 ULEN UNAME PLEN PASSWD
        if (buf.length < 2) return;
        const ulen = buf[1]!;
        if (buf.length < 3 + ulen) return;
        const plen = buf[2 + ulen]!;
        if (buf.length < 3 + ulen + plen) return;
        username = buf.subarray(2, 2 + ulen).toString('utf8');
        client.write(Buffer.from([1, 0]));
        buf = buf.subarray(3 + ulen + plen);
        stage = 'request';
      }
      if (stage === 'request') {
        if (buf.length < 5) return;
        const atyp = buf[3]!;
        let host: string;
        let off: number;
        if (atyp === 1) {
          if (buf.length < 10) return;
          host = [...buf.subarray(4, 8)].join('.');
          off = 8;
        } else if (atyp === 3) {
          const len = buf[4]!;
          if (buf.length < 5 + len + 2) return;
          host = buf.subarray(5, 5 + len).toString('latin1');
          off = 5 + len;
        } else if (atyp === 4) {
          if (buf.length < 22) return;
          host = buf.subarray(4, 20).toString('hex');
          off = 20;
        } else {
          client.end(Buffer.from([5, 8, 0, 1, 0, 0, 0, 0, 0, 0]));
          stage = 'done';
          return;
        }
        const port = buf.readUInt16BE(off);
        const rest = buf.subarray(off + 2);
        stage = 'done';
        client.removeListener('data', onData);
        client.pause();
        this.requests.push({ atyp, host, port, ...(username === undefined ? {} : { username }) });
        this.#connect(client, host, port, rest);
      }
    };
    client.on('data', onData);
  }

  #reply(client: Socket, code: number): void {
    client.write(Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
  }

  #connect(client: Socket, host: string, port: number, early: Buffer): void {
    if (this.hang) return;
    const forced = this.replyOverride;
    if (forced !== undefined) {
      this.#reply(client, forced);
      client.end();
      return;
    }
    const dest = this.#opts.route(host, port);
    if (dest === undefined) {
      this.#reply(client, 4);
      client.end();
      return;
    }
    const up = connect({ host: dest.host, port: dest.port, allowHalfOpen: true });
    up.setNoDelay(true);
    this.#track(up);
    up.once('error', () => {
      if (!client.destroyed) {
        this.#reply(client, 5);
        client.end();
      }
    });
    up.once('connect', () => {
      const go = (): void => {
        if (client.destroyed) {
          up.destroy();
          return;
        }
        this.#reply(client, 0);
        if (early.length > 0) up.write(early);
        client.on('error', () => up.destroy());
        up.on('error', () => client.destroy());
        client.on('close', () => up.destroy());
        up.on('close', () => client.destroy());
        client.pipe(up);
        up.pipe(client);
        client.resume();
      };
      if (this.delayMs > 0) setTimeout(go, this.delayMs);
      else go();
    });
  }
}
