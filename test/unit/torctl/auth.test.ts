import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../src/core/bytes.js';
import {
  authChallengeCommand,
  authenticateCommand,
  chooseAuthMethod,
  parseAuthChallenge,
  parseProtocolInfo,
  safeCookieClientHash,
  safeCookieResponse,
  safeCookieServerHash,
} from '../../../src/core/torctl/auth.js';
import { ReplyParser, type ControlReply } from '../../../src/core/torctl/reply.js';

function reply(wire: string): ControlReply {
  const items = new ReplyParser().feed(new TextEncoder().encode(wire));
  const i = items[0];
  if (i?.kind !== 'reply') throw new Error('expected a reply');
  return i.reply;
}

// Known answer computed independently with CPython's hmac module (/usr/bin/python3):
//   cookie = bytes(range(32)); cn = bytes([0xaa]*32); sn = bytes(range(100,132)); m = cookie+cn+sn
//   hmac.new(b'Tor safe cookie authentication server-to-controller hash', m, hashlib.sha256).hexdigest()
//   hmac.new(b'Tor safe cookie authentication controller-to-server hash', m, hashlib.sha256).hexdigest()
const COOKIE = Uint8Array.from({ length: 32 }, (_, i) => i);
const CLIENT_NONCE = new Uint8Array(32).fill(0xaa);
const SERVER_NONCE = Uint8Array.from({ length: 32 }, (_, i) => 100 + i);
const SERVER_HASH = '184c09b8d2eb4b7e0242331e61c03c763446a26e4cf4fcdc3681cc7cc2d0b498';
const CLIENT_HASH = 'c2ee93ccd05c05f319779a4e545ab33d3f4aa1b265178597249c6ff18501b5ea';

describe('SAFECOOKIE', () => {
  it('matches the Python hmac known answer', () => {
    expect(toHex(safeCookieServerHash(COOKIE, CLIENT_NONCE, SERVER_NONCE))).toBe(SERVER_HASH);
    expect(toHex(safeCookieClientHash(COOKIE, CLIENT_NONCE, SERVER_NONCE))).toBe(CLIENT_HASH);
  });

  it('verifies the server hash from an AUTHCHALLENGE reply and answers', () => {
    const ch = parseAuthChallenge(reply(`250 AUTHCHALLENGE SERVERHASH=${SERVER_HASH.toUpperCase()} SERVERNONCE=${toHex(SERVER_NONCE).toUpperCase()}\r\n`));
    expect(toHex(safeCookieResponse(COOKIE, CLIENT_NONCE, ch))).toBe(CLIENT_HASH);
    expect(authenticateCommand({ hex: fromHex(CLIENT_HASH) })).toBe(`AUTHENTICATE ${CLIENT_HASH.toUpperCase()}\r\n`);
  });

  it('refuses a wrong server hash (the peer does not know the cookie) and a wrong-size cookie', () => {
    const wrong = { serverHash: fromHex(CLIENT_HASH), serverNonce: SERVER_NONCE };
    expect(() => safeCookieResponse(COOKIE, CLIENT_NONCE, wrong)).toThrow(expect.objectContaining({ code: 'TB_ERR_TOR_CONTROL_AUTH' }));
    expect(() => safeCookieResponse(COOKIE.subarray(1), CLIENT_NONCE, wrong)).toThrow(expect.objectContaining({ code: 'TB_ERR_TOR_CONTROL_COOKIE' }));
  });

  it('rejects malformed AUTHCHALLENGE replies', () => {
    expect(() => parseAuthChallenge(reply('250 AUTHCHALLENGE SERVERHASH=12 SERVERNONCE=34\r\n'))).toThrow(
      expect.objectContaining({ code: 'TB_ERR_TOR_CONTROL_PROTOCOL' }),
    );
    expect(() => parseAuthChallenge(reply('513 Invalid base16 client nonce\r\n'))).toThrow(expect.objectContaining({ code: 'TB_ERR_TOR_CONTROL_AUTH' }));
    expect(authChallengeCommand(CLIENT_NONCE)).toBe(`AUTHCHALLENGE SAFECOOKIE ${'AA'.repeat(32)}\r\n`);
  });
});

describe('PROTOCOLINFO', () => {
  // The exact reply tor 0.4.9.11 sent in this project's smoke test, except the path.
  const WIRE =
    '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tmp/d t/control_auth_cookie"\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n';

  it('parses methods, cookie file and version', () => {
    expect(parseProtocolInfo(reply(WIRE))).toEqual({
      protocolVersion: 1,
      methods: ['COOKIE', 'SAFECOOKIE'],
      otherMethods: [],
      cookieFile: '/tmp/d t/control_auth_cookie',
      torVersion: '0.4.9.11',
    });
  });

  it('chooses SAFECOOKIE over COOKIE, a password when given, NULL last', () => {
    const info = parseProtocolInfo(reply(WIRE));
    expect(chooseAuthMethod(info, false)).toBe('SAFECOOKIE');
    const all = parseProtocolInfo(reply('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL,HASHEDPASSWORD,FUTURE\r\n250 OK\r\n'));
    expect(all.otherMethods).toEqual(['FUTURE']);
    expect(chooseAuthMethod(all, true)).toBe('HASHEDPASSWORD');
    expect(chooseAuthMethod(all, false)).toBe('NULL');
    const pw = parseProtocolInfo(reply('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=HASHEDPASSWORD\r\n250 OK\r\n'));
    expect(() => chooseAuthMethod(pw, false)).toThrow(expect.objectContaining({ code: 'TB_ERR_TOR_CONTROL_AUTH', kind: 'config' }));
    expect(authenticateCommand({ password: 'p "w"' })).toBe('AUTHENTICATE "p \\"w\\""\r\n');
    expect(authenticateCommand(null)).toBe('AUTHENTICATE\r\n');
  });

  it('rejects replies without PROTOCOLINFO or AUTH lines', () => {
    for (const w of ['250-AUTH METHODS=NULL\r\n250 OK\r\n', '250-PROTOCOLINFO 1\r\n250 OK\r\n', '250-PROTOCOLINFO x\r\n250 OK\r\n', '515 nope\r\n']) {
      expect(() => parseProtocolInfo(reply(w)), w).toThrow(expect.objectContaining({ code: 'TB_ERR_TOR_CONTROL_PROTOCOL' }));
    }
  });
});
