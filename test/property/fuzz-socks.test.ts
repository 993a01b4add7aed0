/**
 * The SOCKS5 client codec under arbitrary read boundaries and hostile proxies: a valid
 * transcript gives the same outcome however it is split or coalesced, and random or mutated
 * bytes only ever end in a typed SOCKS error (never a throw), within a bounded number of bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex } from '../../src/core/bytes.js';
import { SOCKS5_REPLIES, Socks5ClientHandshake, type Socks5ConnectRequest, type Socks5Step } from '../../src/core/socks/socks5.js';

const NO_AUTH: Socks5ConnectRequest = { address: { type: 'domain', name: 'x.onion' }, port: 80 };
const USER_PASS: Socks5ConnectRequest = { ...NO_AUTH, auth: { username: 'iso', password: 'x' } };
/** The longest proxy transcript before the stream: method (2) + auth (2) + reply with a 255-byte name (262). */
const MAX_HANDSHAKE = 2 + 2 + 4 + 1 + 255 + 2;

/** Split `b` at the given cut points. */
function split(b: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, b.length]) {
    out.push(b.subarray(prev, p));
    prev = p;
  }
  return out;
}

/** Feed chunks until a final step; returns it (or the last pending one), what was sent and how many bytes were consumed. */
function feed(req: Socks5ConnectRequest, chunks: readonly Uint8Array[]): { step: Socks5Step; sent: Uint8Array; fed: number } {
  const hs = new Socks5ClientHandshake(req);
  const sent = [hs.start()];
  let step: Socks5Step = { state: 'pending', send: new Uint8Array(0) };
  let fed = 0;
  for (const c of chunks) {
    step = hs.receive(c);
    fed += c.length;
    if (step.state !== 'failed') sent.push(step.send);
    if (step.state !== 'pending') break;
  }
  return { step, sent: concatBytes(...sent), fed };
}

const atypAddr = fc.oneof(
  fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => ({ wire: concatBytes(new Uint8Array([1]), b), bound: { type: 'ipv4', bytes: b } })),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => ({ wire: concatBytes(new Uint8Array([4]), b), bound: { type: 'ipv6', bytes: b } })),
  fc.stringMatching(/^[a-z0-9.]{1,255}$/).map((n) => ({ wire: concatBytes(new Uint8Array([3, n.length]), new TextEncoder().encode(n)), bound: { type: 'domain', name: n } })),
);

describe('SOCKS5 client codec: read boundaries', () => {
  it('success: same bound address, rest and sent bytes for any split of the transcript', () => {
    fc.assert(
      fc.property(fc.boolean(), atypAddr, fc.integer({ min: 0, max: 65535 }), fc.uint8Array({ maxLength: 64 }), fc.array(fc.nat(), { maxLength: 12 }), (auth, addr, port, stream, cuts) => {
        const req = auth ? USER_PASS : NO_AUTH;
        const transcript = concatBytes(fromHex(auth ? '05020100' : '0500'), fromHex('050000'), addr.wire, new Uint8Array([port >> 8, port & 0xff]), stream);
        const whole = feed(req, [transcript]);
        const parts = split(transcript, cuts);
        const pieces = feed(req, parts);
        expect(pieces.step).toMatchObject({ state: 'connected', bound: addr.bound, boundPort: port });
        expect(whole.step).toMatchObject({ state: 'connected', bound: addr.bound, boundPort: port, rest: stream });
        expect(toHex(pieces.sent)).toBe(toHex(whole.sent));
        // Stream bytes are never eaten: what the codec did not consume is `rest` plus later chunks.
        if (pieces.step.state === 'connected') {
          const later = concatBytes(...parts).subarray(pieces.fed);
          expect(toHex(concatBytes(pieces.step.rest, later))).toBe(toHex(stream));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refusal: every reply code, with and without isolation, for any split', () => {
    const codes = Object.keys(SOCKS5_REPLIES).map(Number);
    fc.assert(
      fc.property(fc.boolean(), fc.constantFrom(...codes), fc.array(fc.nat(), { maxLength: 8 }), (auth, code, cuts) => {
        const transcript = concatBytes(fromHex(auth ? '05020100' : '0500'), new Uint8Array([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
        const { step } = feed(auth ? USER_PASS : NO_AUTH, split(transcript, cuts));
        expect(step).toMatchObject({ state: 'failed', error: { code: 'TB_ERR_SOCKS_REPLY', socksReply: code } });
      }),
      { numRuns: 1000 },
    );
  });
});

describe('SOCKS5 client codec: garbage', () => {
  const valid = [fromHex('0500' + '05000001000000000050'), fromHex('05020100' + '050000030161' + '0050')];

  function check(req: Socks5ConnectRequest, bytes: Uint8Array, cuts: readonly number[]): void {
    const chunks = split(bytes, cuts);
    let r: ReturnType<typeof feed>;
    try {
      r = feed(req, chunks);
    } catch (e) {
      throw new Error(`codec threw on proxy bytes ${toHex(bytes)}: ${String(e)}`);
    }
    if (r.step.state === 'failed') expect(r.step.error.code).toMatch(/^TB_ERR_SOCKS_(REPLY|PROTOCOL|AUTH)$/);
    // Bounded: the codec never waits for more than the longest possible handshake.
    if (r.step.state === 'pending') expect(r.fed).toBeLessThan(MAX_HANDSHAKE);
  }

  it('random bytes end in a typed error, success, or a wait shorter than the longest handshake', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 10 }), (auth, bytes, cuts) => {
        check(auth ? USER_PASS : NO_AUTH, bytes, cuts);
      }),
      { numRuns: 20000 },
    );
  });

  it('mutated valid transcripts (byte flips, truncation, insertion) likewise', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'cut')), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (which, edits, cuts) => {
          let b = Array.from(valid[which]!);
          for (const [pos, val, op] of edits) {
            const i = pos % (b.length + 1);
            if (op === 'set' && i < b.length) b[i] = val;
            else if (op === 'insert') b.splice(i, 0, val);
            else b = b.slice(0, i);
          }
          check(which === 1 ? USER_PASS : NO_AUTH, new Uint8Array(b), cuts);
        },
      ),
      { numRuns: 20000 },
    );
  });

  it('a flood after the method reply fails or connects within one reply, never buffers it', () => {
    const flood = concatBytes(fromHex('0500'), fromHex('050000'), new Uint8Array(100_000).fill(3));
    const r = feed(NO_AUTH, [flood]);
    expect(r.step).toMatchObject({ state: 'connected', bound: { type: 'domain' } });
    if (r.step.state === 'connected') expect(r.step.rest.length).toBe(100_000 - 7); // ATYP 3, length 3, three name bytes, two port bytes
  });
});
