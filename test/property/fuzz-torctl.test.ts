/**
 * Fuzzing the control-port parsers: 110 000 random and mutated inputs to the reply parser
 * (fed in random splits) and to the event / PROTOCOLINFO / AUTHCHALLENGE / GETINFO parsers.
 * The only acceptable failures are typed TorbalanceErrors (DecodeError); a TypeError,
 * RangeError or anything else fails the test.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TorbalanceError } from '../../src/core/errors.js';
import { parseAuthChallenge, parseProtocolInfo } from '../../src/core/torctl/auth.js';
import { parseBootstrap, parseCirc, parseHsDesc, parseHsDescContent, parseStatusEvent } from '../../src/core/torctl/events.js';
import { ReplyParser, getInfoValues, parseReplyArgs, type ControlEvent, type ParsedItem } from '../../src/core/torctl/reply.js';

const ADDR = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd';
const FP = '9F1A8B2C3D4E5F60718293A4B5C6D7E8F9012345';
const BL = 'mW7dCKMFD6Q8lR+zJx/3A2kC9LrHdS0cZpgpQh6fTq4';

const CORPUS = [
  '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tmp/a\\"b\\303\\251"\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n',
  `250 AUTHCHALLENGE SERVERHASH=${'AB'.repeat(32)} SERVERNONCE=${'CD'.repeat(32)}\r\n`,
  '250-version=0.4.9.11\r\n250+config-text=\r\nSocksPort 0\r\n..x\r\n.\r\n250 OK\r\n',
  `650 HS_DESC UPLOAD ${ADDR} UNKNOWN $${FP}~relay ${BL} HSDIR_INDEX=${'A1'.repeat(32)}\r\n`,
  `650 HS_DESC FAILED ${ADDR} NO_AUTH $${FP}~relay ${BL} REASON=UPLOAD_REJECTED\r\n`,
  `650+HS_DESC_CONTENT ${ADDR} ${BL} $${FP}~hsdir\r\nhs-descriptor 3\r\n..d\r\n.\r\n650 OK\r\n`,
  '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=75 TAG=enough_dirinfo SUMMARY="Loaded \\"enough\\""\r\n',
  `650 CIRC 12 BUILT $${FP}~a,$${FP}=b BUILD_FLAGS=IS_INTERNAL PURPOSE=HS_SERVICE_INTRO HS_STATE=HSSI_ESTABLISHED REND_QUERY=${ADDR}\r\n`,
  '552 Unrecognized key "x"\r\n650-CONF_CHANGED\r\n650-A=b\r\n650 OK\r\n',
];

function isTyped(e: unknown): boolean {
  return e instanceof TorbalanceError && /^TB_ERR_[A-Z0-9_]+$/.test(e.code);
}

/** Run every parser that applies to one parsed item; only typed errors may escape. */
function exercise(item: ParsedItem): void {
  const tryIt = (f: () => unknown): void => {
    try {
      f();
    } catch (e) {
      if (!isTyped(e)) throw e;
    }
  };
  if (item.kind === 'reply') {
    tryIt(() => parseProtocolInfo(item.reply));
    tryIt(() => parseAuthChallenge(item.reply));
    tryIt(() => getInfoValues(item.reply));
    for (const l of item.reply.lines) tryIt(() => parseReplyArgs(l.text));
  } else {
    const e: ControlEvent = item.event;
    tryIt(() => parseHsDesc(e));
    tryIt(() => parseHsDescContent(e));
    tryIt(() => parseStatusEvent(e));
    tryIt(() => parseBootstrap(e));
    tryIt(() => parseCirc(e));
  }
}

function feedSplit(bytes: Uint8Array, cuts: number[]): void {
  const p = new ReplyParser({ maxLineBytes: 512, maxReplyBytes: 2048, maxEventBytes: 2048 });
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let prev = 0;
  try {
    for (const c of [...points, bytes.length]) {
      for (const item of p.feed(bytes.subarray(prev, c))) exercise(item);
      prev = c;
    }
  } catch (e) {
    if (!isTyped(e)) throw e;
  }
}

const enc = new TextEncoder();

describe('control-port parser fuzzing (only typed errors)', () => {
  it('the valid corpus parses into at least one item each (sanity)', () => {
    for (const c of CORPUS) {
      const items = new ReplyParser().feed(enc.encode(c));
      expect(items.length).toBeGreaterThan(0);
    }
  });

  it('40 000 random byte strings', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(400), { maxLength: 4 }), (b, cuts) => {
        feedSplit(b, cuts);
      }),
      { numRuns: 40_000, seed: 0x70c7 },
    );
  });

  it('40 000 random strings over the protocol alphabet', () => {
    const alphabet = fc.constantFrom(...'0123456789 -+=.\r\n"\\$~,ABCDEFHILNOPRSTUVWXYZabcdef_/'.split(''));
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 200 }), fc.array(fc.nat(250), { maxLength: 3 }), (chars, cuts) => {
        const s = chars.join('');
        feedSplit(enc.encode(s), cuts);
        feedSplit(enc.encode('650 ' + s + '\r\n'), cuts);
        feedSplit(enc.encode('250-' + s + '\r\n250 OK\r\n'), cuts);
      }),
      { numRuns: 40_000, seed: 0x70c8 },
    );
  });

  it('30 000 mutations of real replies and events', () => {
    const mutation = fc.record({ pos: fc.nat(), op: fc.constantFrom('flip', 'insert', 'delete', 'dup'), byte: fc.integer({ min: 0, max: 255 }) });
    fc.assert(
      fc.property(fc.nat(CORPUS.length - 1), fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(400), { maxLength: 3 }), (idx, muts, cuts) => {
        let b = Array.from(enc.encode(CORPUS[idx]));
        for (const m of muts) {
          const p = m.pos % (b.length + 1);
          if (m.op === 'flip' && p < b.length) b[p] = m.byte;
          else if (m.op === 'insert') b.splice(p, 0, m.byte);
          else if (m.op === 'delete') b.splice(p, 1);
          else b = b.concat(b.slice(p));
        }
        feedSplit(Uint8Array.from(b), cuts);
      }),
      { numRuns: 30_000, seed: 0x70c9 },
    );
  });
});
