/**
 * The SOCKS5 client codec (src/core/socks/socks5.ts): the bytes it sends (known answers from
 * RFC 1928 §4/§5 and RFC 1929 §2), every reply code with and without username/password
 * authentication, BND.ADDR of every address type, and refusals of malformed answers.
 */
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../src/core/bytes.js';
import { TorbalanceError } from '../../../src/core/errors.js';
import {
  SOCKS5_REPLIES,
  Socks5ClientHandshake,
  SocksProtocolError,
  SocksReplyError,
  describeSocksReply,
  type Socks5ConnectRequest,
  type Socks5Step,
} from '../../../src/core/socks/socks5.js';

const ONION = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion';
const NO_AUTH: Socks5ConnectRequest = { address: { type: 'domain', name: 'a.onion' }, port: 80 };
const USER_PASS: Socks5ConnectRequest = { ...NO_AUTH, auth: { username: 'visit-1', password: 'x' } };

/** Feed the proxy's side as given chunks; return every step. */
function run(req: Socks5ConnectRequest, ...chunks: string[]): { hs: Socks5ClientHandshake; sent: string[]; last: Socks5Step } {
  const hs = new Socks5ClientHandshake(req);
  const sent = [toHex(hs.start())];
  let last: Socks5Step = { state: 'pending', send: new Uint8Array(0) };
  for (const c of chunks) {
    last = hs.receive(fromHex(c));
    if (last.state !== 'failed' && last.send.length > 0) sent.push(toHex(last.send));
  }
  return { hs, sent, last };
}

const OK_V4 = '05000001' + '7f000001' + '1f90'; // BND 127.0.0.1:8080

describe('Socks5ClientHandshake: what it sends', () => {
  it('no authentication: greeting 05 01 00, then CONNECT with the name as ATYP 03', () => {
    const { sent, last } = run({ address: { type: 'domain', name: ONION }, port: 443 }, '0500', OK_V4);
    const name = toHex(new TextEncoder().encode(ONION));
    expect(sent).toEqual(['050100', `05010003${ONION.length.toString(16)}${name}01bb`]);
    expect(last.state).toBe('connected');
  });

  it('username/password: only method 02 is offered, then VER=1 ULEN UNAME PLEN PASSWD, then CONNECT', () => {
    const { sent, last } = run(USER_PASS, '0502', '0100', OK_V4);
    expect(sent).toEqual(['050102', '0107' + toHex(new TextEncoder().encode('visit-1')) + '0178', '0501000307612e6f6e696f6e0050']);
    expect(last).toMatchObject({ state: 'connected', bound: { type: 'ipv4', bytes: fromHex('7f000001') }, boundPort: 8080 });
  });

  it('IPv4 and IPv6 destinations', () => {
    expect(run({ address: { type: 'ipv4', bytes: fromHex('0a000001') }, port: 1 }, '0500').sent[1]).toBe('050100010a0000010001');
    const v6 = '20010db8000000000000000000000001';
    expect(run({ address: { type: 'ipv6', bytes: fromHex(v6) }, port: 65535 }, '0500').sent[1]).toBe(`05010004${v6}ffff`);
  });

  it('a 255-byte name is accepted; invalid destinations and credentials are TB_ERR_SOCKS_DEST', () => {
    expect(run({ address: { type: 'domain', name: 'a'.repeat(255) }, port: 80 }, '0500').sent[1]!.slice(8, 10)).toBe('ff');
    const bad: Socks5ConnectRequest[] = [
      { address: { type: 'domain', name: 'a'.repeat(256) }, port: 80 },
      { address: { type: 'domain', name: '' }, port: 80 },
      { address: { type: 'domain', name: 'a b' }, port: 80 },
      { address: { type: 'domain', name: 'é.onion' }, port: 80 },
      { address: { type: 'ipv4', bytes: new Uint8Array(16) }, port: 80 },
      { address: { type: 'ipv6', bytes: new Uint8Array(4) }, port: 80 },
      { ...NO_AUTH, port: 0 },
      { ...NO_AUTH, port: 65536 },
      { ...NO_AUTH, port: 1.5 },
      { ...NO_AUTH, auth: { username: '', password: 'x' } },
      { ...NO_AUTH, auth: { username: 'u'.repeat(256), password: 'x' } },
      { ...NO_AUTH, auth: { username: 'u', password: '' } },
    ];
    for (const req of bad) {
      expect(() => new Socks5ClientHandshake(req)).toThrow(expect.objectContaining({ code: 'TB_ERR_SOCKS_DEST' }) as Error);
    }
  });
});

describe('Socks5ClientHandshake: reply codes', () => {
  const codes = Object.keys(SOCKS5_REPLIES).map(Number);

  it('lists RFC 1928 0x01–0x08 and tor 0xF0–0xF7', () => {
    expect(codes).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7]);
  });

  for (const [label, req, prefix] of [
    ['without authentication', NO_AUTH, ['0500']],
    ['with username/password (stream isolation)', USER_PASS, ['0502', '0100']],
  ] as const) {
    it.each(codes)(`reply %i ${label} is a SocksReplyError with its name and kind`, (code) => {
      const hexCode = code.toString(16).padStart(2, '0');
      const { last } = run(req, ...prefix, `05${hexCode}0001000000000000`);
      expect(last.state).toBe('failed');
      if (last.state !== 'failed') return;
      expect(last.error).toBeInstanceOf(SocksReplyError);
      const e = last.error as SocksReplyError;
      const info = SOCKS5_REPLIES[code as keyof typeof SOCKS5_REPLIES];
      expect(e).toMatchObject({ code: 'TB_ERR_SOCKS_REPLY', socksReply: code, replyName: info.name, kind: info.kind });
      expect(e.message).toBe(`tor could not reach a.onion:80: ${info.message} (SOCKS5 reply 0x${hexCode})`);
    });
  }

  it('onion-service failures are the target\'s fault, client authorization and bad addresses the configuration\'s', () => {
    const kinds = Object.fromEntries(Object.values(SOCKS5_REPLIES).map((r) => [r.name, r.kind]));
    expect(kinds).toMatchObject({ HS_NOT_FOUND: 'target', HS_INTRO_FAILED: 'target', HS_REND_FAILED: 'target', HS_INTRO_TIMEDOUT: 'target', HS_MISSING_CLIENT_AUTH: 'config', HS_BAD_ADDRESS: 'config', GENERAL_FAILURE: 'tor' });
  });

  it('a refusal is reported from VER and REP alone (the proxy may close right after)', () => {
    expect(run(USER_PASS, '0502', '0100', '05f0').last).toMatchObject({ state: 'failed', error: { socksReply: 0xf0, kind: 'target' } });
  });

  it('an unknown code is TB_ERR_SOCKS_REPLY UNKNOWN, the proxy\'s (tor\'s) fault', () => {
    expect(run(NO_AUTH, '0500', '05990001000000000000').last).toMatchObject({ state: 'failed', error: { socksReply: 0x99, replyName: 'UNKNOWN', kind: 'tor' } });
    expect(describeSocksReply(0x99)).toBe('unknown SOCKS5 reply 0x99');
  });
});

describe('Socks5ClientHandshake: the CONNECT reply', () => {
  it.each([
    ['IPv4', '01' + '0a000001', { type: 'ipv4', bytes: fromHex('0a000001') }],
    ['IPv6', '04' + '20010db8000000000000000000000001', { type: 'ipv6', bytes: fromHex('20010db8000000000000000000000001') }],
    ['domain', '03' + '09' + toHex(new TextEncoder().encode('bnd.onion')), { type: 'domain', name: 'bnd.onion' }],
  ])('BND.ADDR %s, with the stream bytes after it handed back as rest', (_l, addr, bound) => {
    const { last } = run(USER_PASS, '0502', '0100', `050000${addr}0050` + '68656c6c6f');
    expect(last).toMatchObject({ state: 'connected', bound, boundPort: 80, rest: fromHex('68656c6c6f') });
  });

  it('a proxy that answers ahead (all replies in one read) is read in order and the requests still go out', () => {
    const hs = new Socks5ClientHandshake(USER_PASS);
    hs.start();
    const step = hs.receive(fromHex('0502' + '0100' + OK_V4 + 'aa'));
    expect(step.state).toBe('connected');
    if (step.state !== 'connected') return;
    expect(toHex(step.send)).toBe('0107' + toHex(new TextEncoder().encode('visit-1')) + '0178' + '0501000307612e6f6e696f6e0050');
    expect(toHex(step.rest)).toBe('aa');
  });

  it.each([
    ['not SOCKS5 at all', NO_AUTH, ['48545450'], 'TB_ERR_SOCKS_PROTOCOL'],
    ['a method that was not offered (no-auth when isolating)', USER_PASS, ['0500'], 'TB_ERR_SOCKS_PROTOCOL'],
    ['user/pass chosen when not offered', NO_AUTH, ['0502'], 'TB_ERR_SOCKS_PROTOCOL'],
    ['no acceptable method', USER_PASS, ['05ff'], 'TB_ERR_SOCKS_AUTH'],
    ['credentials rejected', USER_PASS, ['0502', '0101'], 'TB_ERR_SOCKS_AUTH'],
    ['bad auth version', USER_PASS, ['0502', '0500'], 'TB_ERR_SOCKS_PROTOCOL'],
    ['bad reply version', NO_AUTH, ['0500', '04000001'], 'TB_ERR_SOCKS_PROTOCOL'],
    ['non-zero RSV', NO_AUTH, ['0500', '05000101'], 'TB_ERR_SOCKS_PROTOCOL'],
    ['unknown ATYP', NO_AUTH, ['0500', '05000002'], 'TB_ERR_SOCKS_PROTOCOL'],
    ['empty domain BND.ADDR', NO_AUTH, ['0500', '0500000300'], 'TB_ERR_SOCKS_PROTOCOL'],
  ])('%s → %s (kind tor), and the handshake stays failed', (_l, req, chunks, code) => {
    const { hs, last } = run(req, ...chunks);
    expect(last).toMatchObject({ state: 'failed', error: { code, kind: 'tor' } });
    if (last.state === 'failed') expect(last.error).toBeInstanceOf(SocksProtocolError);
    expect(hs.receive(fromHex(OK_V4))).toEqual(last);
    expect(hs.stage).toBe('failed');
  });

  it('a close before the end is TB_ERR_SOCKS_PROTOCOL naming the step', () => {
    const { hs } = run(USER_PASS, '0502', '01');
    const step = hs.end();
    expect(step).toMatchObject({ state: 'failed', error: { code: 'TB_ERR_SOCKS_PROTOCOL' } });
    if (step.state === 'failed') expect(step.error.message).toContain('during the auth step');
  });

  it('feeding bytes after connected is a caller bug (TB_ERR_BUG), not a parse', () => {
    const { hs } = run(NO_AUTH, '0500', OK_V4);
    expect(() => hs.receive(new Uint8Array(1))).toThrow(TorbalanceError);
  });
});
