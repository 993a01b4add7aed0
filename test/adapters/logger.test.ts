import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, formatPrettyLine, isSecretKeyName, sanitizeForLog } from '../../src/adapters/log/logger.js';

function capture(pretty = false): { log: ReturnType<typeof createLogger>; text: () => string } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  const log = createLogger({ level: 'debug', pretty, destination: out });
  return { log, text: () => chunks.join('') };
}

const SECRET = 'c2VjcmV0LXNlY3JldC1zZWNyZXQ';

describe('logger redaction', () => {
  it('redacts secret-named fields at any depth', () => {
    const { log, text } = capture();
    log.info({ password: SECRET, nested: { deeper: { authCookie: SECRET, token: SECRET } }, list: [{ secretKey: SECRET }] }, 'hello');
    log.info({ req: { headers: { cookie: SECRET, authorization: SECRET } } }, 'req');
    const t = text();
    expect(t).not.toContain(SECRET);
    expect(t).toContain('[redacted]');
    expect(t).toContain('hello');
  });

  it('never serialises byte arrays', () => {
    const { log, text } = capture();
    const bytes = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
    log.info({ material: bytes, buf: Buffer.from(bytes), inner: { x: bytes } }, 'bytes');
    const t = text();
    expect(t).toContain('[8 bytes]');
    expect(t).not.toMatch(/deadbeef|222|"0":/i);
  });

  it('redacts child bindings', () => {
    const { log, text } = capture();
    log.child({ seed: SECRET, node: 'n1' }).info('child');
    const t = text();
    expect(t).not.toContain(SECRET);
    expect(t).toContain('n1');
  });

  it('keeps non-secret fields and error codes', () => {
    const { log, text } = capture();
    const err = Object.assign(new Error('boom'), { code: 'TB_ERR_X' });
    log.error({ err, keyDir: '/var/lib/x/master', port: 9050 }, 'failed');
    const rec = JSON.parse(text().trim()) as Record<string, unknown>;
    expect(rec['keyDir']).toBe('/var/lib/x/master');
    expect(rec['port']).toBe(9050);
    expect((rec['err'] as Record<string, unknown>)['code']).toBe('TB_ERR_X');
  });

  it('pretty format is one human line per record and still redacted', () => {
    const { log, text } = capture(true);
    log.warn({ password: SECRET, port: 1 }, 'pretty msg');
    const t = text();
    expect(t).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}pretty msg password=\[redacted\] port=1\n$/);
    expect(formatPrettyLine('not json')).toBe('not json');
  });

  it('classifies names', () => {
    for (const n of ['password', 'cookie', 'authCookie', 'secret_key', 'seed', 'key', 'privateKey', 'token', 'clusterSecret']) {
      expect(isSecretKeyName(n), n).toBe(true);
    }
    for (const n of ['keyDir', 'key_dir', 'address', 'port', 'task', 'masterAddress', 'master_key_dir']) {
      expect(isSecretKeyName(n), n).toBe(false);
    }
  });

  it('sanitize handles cycles and depth', () => {
    const a: Record<string, unknown> = { n: 1 };
    a['self'] = a;
    expect(sanitizeForLog(a)).toEqual({ n: 1, self: '[circular]' });
  });
});
