import { describe, expect, it } from 'vitest';
import {
  dotStuff,
  encodeArg,
  encodeCommand,
  encodeGetInfo,
  encodeHsFetch,
  encodeHsPost,
  encodeRawCommand,
  encodeResetConf,
  encodeSetConf,
  encodeSetEvents,
  normalizeFingerprint,
  quoteString,
} from '../../../src/core/torctl/command.js';
import { ReplyParser } from '../../../src/core/torctl/reply.js';

const LABEL = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd';
const FP1 = '0123456789abcdef0123456789ABCDEF01234567';
const FP2 = '$89ABCDEF0123456789ABCDEF0123456789ABCDEF';
const argErr = expect.objectContaining({ code: 'TB_ERR_TOR_CONTROL_ARG' });

describe('quoting', () => {
  it('quotes QuotedStrings escaping backslash and quote only', () => {
    expect(quoteString('a "b" \\c #d é')).toBe('"a \\"b\\" \\\\c #d é"');
    expect(quoteString('')).toBe('""');
  });

  it('refuses CR, LF and NUL everywhere (command injection)', () => {
    const attacks = ['x\r\nSIGNAL HALT', 'x\nSIGNAL HALT', 'x\rY', 'x\0y'];
    for (const a of attacks) {
      expect(() => quoteString(a)).toThrow(argErr);
      expect(() => encodeArg(a)).toThrow(argErr);
      expect(() => encodeArg({ key: 'K', value: a })).toThrow(argErr);
      expect(() => encodeSetConf([['ContactInfo', a]])).toThrow(argErr);
      expect(() => encodeGetInfo([a])).toThrow(argErr);
      expect(() => encodeRawCommand(`GETINFO ${a}`)).toThrow(argErr);
      expect(() => encodeSetEvents([a])).toThrow(argErr);
    }
    expect(() => encodeSetConf([['Contact\r\nInfo', 'x']])).toThrow(argErr);
  });

  it('refuses bare words with spaces or quotes and bad keys/keywords', () => {
    expect(() => encodeArg('a b')).toThrow(argErr);
    expect(() => encodeArg('a"b')).toThrow(argErr);
    expect(() => encodeArg({ key: 'a b', value: 'x' })).toThrow(argErr);
    expect(() => encodeArg({ key: 'K', value: 'a b', quote: 'never' })).toThrow(argErr);
    expect(() => encodeCommand('GET INFO')).toThrow(argErr);
    expect(() => encodeCommand('+HSPOST')).toThrow(argErr);
    expect(() => encodeRawCommand('+HSPOST HSADDRESS=x')).toThrow(argErr);
  });
});

describe('encoders', () => {
  it('SETCONF quotes every value and resets null ones; RESETCONF, GETINFO, SETEVENTS', () => {
    expect(encodeSetConf([['ContactInfo', 'a b'], ['Nickname', null], ['SocksPort', '0']])).toBe(
      'SETCONF ContactInfo="a b" Nickname SocksPort="0"\r\n',
    );
    expect(encodeResetConf(['SocksPort', 'ContactInfo'])).toBe('RESETCONF SocksPort ContactInfo\r\n');
    expect(encodeGetInfo(['version', 'md/id/' + FP1])).toBe(`GETINFO version md/id/${FP1}\r\n`);
    expect(encodeSetEvents(['HS_DESC', 'STATUS_CLIENT'])).toBe('SETEVENTS HS_DESC STATUS_CLIENT\r\n');
    expect(encodeSetEvents([])).toBe('SETEVENTS\r\n');
    expect(() => encodeSetConf([])).toThrow(argErr);
  });

  it('dot-stuffs multi-line bodies', () => {
    expect(dotStuff('a\n.b\n..c\nd\n')).toBe('a\r\n..b\r\n...c\r\nd\r\n.\r\n');
    expect(dotStuff('a\r\nb')).toBe('a\r\nb\r\n.\r\n');
    expect(dotStuff('')).toBe('.\r\n');
    expect(dotStuff('.\n')).toBe('..\r\n.\r\n');
    expect(() => dotStuff('a\rb')).toThrow(argErr);
    expect(() => dotStuff('a\0b')).toThrow(argErr);
  });

  it('encodes HSPOST with SERVER= fingerprints and HSADDRESS last; the body survives a round trip', () => {
    const desc = 'hs-descriptor 3\n.weird\nsignature x\n';
    const wire = encodeHsPost(desc, LABEL, [FP1, FP2]);
    expect(wire).toBe(
      `+HSPOST SERVER=${FP1.toUpperCase()} SERVER=${FP2.slice(1)} HSADDRESS=${LABEL}\r\n` +
        'hs-descriptor 3\r\n..weird\r\nsignature x\r\n.\r\n',
    );
    // Decoding the body with the reply data-block rules gives the descriptor back.
    const r = new ReplyParser().feed(new TextEncoder().encode('250+x=\r\n' + wire.slice(wire.indexOf('\r\n') + 2) + '250 OK\r\n'));
    const first = r[0];
    if (first?.kind !== 'reply') throw new Error('expected reply');
    expect(`${first.reply.lines[0]!.data ?? 'MISSING'}\n`).toBe(desc);
  });

  it('HSPOST and HSFETCH validate address labels and fingerprints', () => {
    expect(() => encodeHsPost('x', LABEL + '.onion', [])).toThrow(argErr);
    expect(() => encodeHsPost('x', LABEL.toUpperCase(), [])).toThrow(argErr);
    expect(() => encodeHsPost('x', LABEL, ['1234'])).toThrow(argErr);
    expect(() => encodeHsPost('x', LABEL, [FP1 + ' HSADDRESS=x'])).toThrow(argErr);
    expect(encodeHsFetch(LABEL, [FP1])).toBe(`HSFETCH ${LABEL} SERVER=${FP1.toUpperCase()}\r\n`);
    expect(() => encodeHsFetch('abc')).toThrow(argErr);
    expect(normalizeFingerprint('$' + FP1)).toBe(FP1.toUpperCase());
  });

  it("refuses commands over tor's 1 MiB limit", () => {
    expect(() => encodeHsPost('a'.repeat(1024 * 1024), LABEL, [])).toThrow(argErr);
  });
});
