import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/core/errors.js';
import {
  ReplyParser,
  decodeQuoted,
  getInfoValues,
  parseReplyArgs,
  splitReplyArgs,
  type ParsedItem,
} from '../../../src/core/torctl/reply.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function feedAll(input: string, split: 'whole' | 'bytes' | number[] = 'whole', p = new ReplyParser()): ParsedItem[] {
  const b = enc(input);
  const out: ParsedItem[] = [];
  if (split === 'whole') return p.feed(b);
  if (split === 'bytes') {
    for (let i = 0; i < b.length; i++) out.push(...p.feed(b.subarray(i, i + 1)));
    return out;
  }
  let prev = 0;
  for (const cut of [...split, b.length]) {
    out.push(...p.feed(b.subarray(prev, cut)));
    prev = cut;
  }
  return out;
}

const DESC_BODY = ['hs-descriptor 3', 'descriptor-lifetime 180', '.leading dot', '..two dots', '', 'signature abc'];
// What tor sends for a GETINFO data reply: lines CRLF, leading dots doubled, "." terminator.
const DATA_REPLY =
  '250+hs/service/desc/id/x=\r\n' +
  DESC_BODY.map((l) => (l.startsWith('.') ? '.' + l : l) + '\r\n').join('') +
  '.\r\n250 OK\r\n';

const MIXED =
  '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay"\r\n' +
  '250-version=0.4.9.11\r\n250 OK\r\n' +
  '650+HS_DESC_CONTENT aaaa BBBB $0123456789ABCDEF0123456789ABCDEF01234567~relay\r\nline1\r\n..x\r\n.\r\n650 OK\r\n' +
  DATA_REPLY +
  '552 Unrecognized key "foo"\r\n' +
  '650-CONF_CHANGED\r\n650-ContactInfo=x\r\n650 OK\r\n';

function summarize(items: ParsedItem[]): unknown[] {
  return items.map((i) => (i.kind === 'reply' ? ['reply', i.reply] : ['event', i.event]));
}

describe('ReplyParser', () => {
  it('parses a single-line reply', () => {
    const items = feedAll('250 OK\r\n');
    expect(items).toEqual([{ kind: 'reply', reply: { status: 250, lines: [{ status: 250, separator: ' ', text: 'OK' }] } }]);
  });

  it('parses mid lines, data lines with dot-unstuffing, and separates events in order', () => {
    const items = feedAll(MIXED);
    expect(items.map((i) => i.kind)).toEqual(['event', 'reply', 'event', 'reply', 'reply', 'event']);
    const ev0 = items[0]!;
    if (ev0.kind !== 'event') throw new Error('expected event');
    expect(ev0.event.type).toBe('STATUS_CLIENT');
    expect(ev0.event.lines).toEqual(['STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay"']);
    const content = items[2]!;
    if (content.kind !== 'event') throw new Error('expected event');
    expect(content.event.type).toBe('HS_DESC_CONTENT');
    expect(content.event.reply.lines[0]!.data).toBe('line1\n.x');
    expect(content.event.raw).toBe('650+HS_DESC_CONTENT aaaa BBBB $0123456789ABCDEF0123456789ABCDEF01234567~relay\r\nline1\r\n..x\r\n.\r\n650 OK');
    const data = items[3]!;
    if (data.kind !== 'reply') throw new Error('expected reply');
    expect(data.reply.lines[0]).toEqual({ status: 250, separator: '+', text: 'hs/service/desc/id/x=', data: DESC_BODY.join('\n') });
    expect(getInfoValues(data.reply).get('hs/service/desc/id/x')).toBe(DESC_BODY.join('\n'));
    const err = items[4]!;
    if (err.kind !== 'reply') throw new Error('expected reply');
    expect(err.reply.status).toBe(552);
    const conf = items[5]!;
    if (conf.kind !== 'event') throw new Error('expected event');
    expect(conf.event.lines).toEqual(['CONF_CHANGED', 'ContactInfo=x', 'OK']);
  });

  it('gives identical results when fed one byte at a time', () => {
    expect(summarize(feedAll(MIXED, 'bytes'))).toEqual(summarize(feedAll(MIXED)));
  });

  it('gives identical results for every two-way split', () => {
    const whole = summarize(feedAll(MIXED));
    const n = enc(MIXED).length;
    for (let cut = 0; cut <= n; cut++) expect(summarize(feedAll(MIXED, [cut]))).toEqual(whole);
  });

  it('accepts bare LF line endings', () => {
    const items = feedAll(MIXED.replace(/\r\n/g, '\n'));
    expect(summarize(items)).toEqual(summarize(feedAll(MIXED)));
  });

  it('handles an empty data block', () => {
    const items = feedAll('250+config-text=\r\n.\r\n250 OK\r\n');
    const r = items[0]!;
    if (r.kind !== 'reply') throw new Error('expected reply');
    expect(getInfoValues(r.reply).get('config-text')).toBe('');
  });

  it('counts completed synchronous replies and passes the index to the limit function', () => {
    const seen: number[] = [];
    const p = new ReplyParser({ maxReplyBytes: (i) => (seen.push(i), 1000) });
    feedAll('250 OK\r\n650 BW 1 2\r\n250 OK\r\n', 'whole', p);
    expect(seen).toEqual([0, 1]);
    expect(p.completedReplies).toBe(2);
  });

  it('rejects a line over the line limit, also before the newline arrives, then stays poisoned', () => {
    const p = new ReplyParser({ maxLineBytes: 16 });
    expect(() => p.feed(enc('250 ' + 'x'.repeat(20)))).toThrow(DecodeError);
    try {
      p.feed(enc('250 OK\r\n'));
      expect.unreachable();
    } catch (e) {
      expect((e as DecodeError).code).toBe('TB_ERR_TOR_CONTROL_LIMIT');
    }
  });

  it('rejects a reply over the reply limit and an event over the event limit', () => {
    const p = new ReplyParser({ maxReplyBytes: 64 });
    const big = '250+x=\r\n' + 'abcdefgh\r\n'.repeat(10) + '.\r\n250 OK\r\n';
    expect(() => p.feed(enc(big))).toThrow(expect.objectContaining({ code: 'TB_ERR_TOR_CONTROL_LIMIT' }));
    const q = new ReplyParser({ maxEventBytes: 64 });
    expect(() => q.feed(enc('650+HS_DESC_CONTENT a b c\r\n' + 'abcdefgh\r\n'.repeat(10)))).toThrow(
      expect.objectContaining({ code: 'TB_ERR_TOR_CONTROL_LIMIT' }),
    );
    // The same reply fits a larger limit.
    expect(new ReplyParser({ maxReplyBytes: 1000 }).feed(enc(big))).toHaveLength(1);
  });

  it('rejects malformed lines and status changes inside a reply', () => {
    for (const bad of ['25 OK\r\n', 'abc OK\r\n', '250_OK\r\n', '\r\n', '250-a\r\n251 OK\r\n']) {
      expect(() => new ReplyParser().feed(enc(bad)), bad).toThrow(expect.objectContaining({ code: 'TB_ERR_TOR_CONTROL_PROTOCOL' }));
    }
  });

  it('does not emit an unfinished reply', () => {
    const p = new ReplyParser();
    expect(p.feed(enc('250-version=1\r\n250+x=\r\nabc\r\n'))).toEqual([]);
    expect(p.inReply).toBe(true);
    expect(p.feed(enc('.\r\n250 OK\r\n'))).toHaveLength(1);
    expect(p.inReply).toBe(false);
  });
});

describe('reply arguments', () => {
  it('parses PROTOCOLINFO-style quoted values with escapes', () => {
    const args = parseReplyArgs('METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tmp/a b/\\"c\\"\\\\d\\303\\251"');
    expect(args).toEqual([
      { key: 'METHODS', value: 'COOKIE,SAFECOOKIE', quoted: false },
      { key: 'COOKIEFILE', value: '/tmp/a b/"c"\\dé', quoted: true },
    ]);
  });

  it('keeps relay names with = or ~ positional', () => {
    const { positional, keyed } = splitReplyArgs('UPLOADED abc UNKNOWN $AAAA=nick $BBBB~nick REASON=UPLOAD_REJECTED');
    expect(positional).toEqual(['UPLOADED', 'abc', 'UNKNOWN', '$AAAA=nick', '$BBBB~nick']);
    expect([...keyed]).toEqual([['REASON', 'UPLOAD_REJECTED']]);
  });

  it('decodes \\n \\t \\r \\x escapes and rejects bad ones', () => {
    expect(decodeQuoted('"a\\n\\t\\r\\x41\\\'"', 0)).toEqual({ value: "a\n\t\rA'", end: 15 });
    for (const bad of ['"abc', '"\\q"', '"\\x4"', '"\\9"', '"\\', 'x']) {
      expect(() => decodeQuoted(bad, 0), bad).toThrow(expect.objectContaining({ code: 'TB_ERR_TOR_CONTROL_PROTOCOL' }));
    }
    expect(() => parseReplyArgs('K="v"x')).toThrow(DecodeError);
  });

  it('getInfoValues rejects lines without key=', () => {
    expect(() => getInfoValues({ status: 250, lines: [{ status: 250, separator: '-', text: 'novalue' }] })).toThrow(DecodeError);
  });
});
