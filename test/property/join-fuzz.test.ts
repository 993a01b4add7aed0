/**
 * Fuzzing the join core with untrusted input (≥ 20 000 inputs per entry point):
 * decodeJoinToken, verifyJoinRequest, openJoinResponse and JoinFrameDecoder only ever return
 * or throw their typed errors — and every single-bit flip of a valid token, request or
 * response is caught (typed error, refusal, or a token secret that no longer verifies).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromUtf8, utf8 } from '../../src/core/bytes.js';
import { DecodeError } from '../../src/core/errors.js';
import {
  JOIN_REFUSALS,
  JOIN_TOKEN_PREFIX,
  JoinFrameDecoder,
  JoinRefusedError,
  acceptJoin,
  createJoinRequest,
  decodeJoinToken,
  encodeJoinFrame,
  encodeJoinToken,
  issueJoinToken,
  openJoinResponse,
  verifyJoinRequest,
  verifyTokenSecret,
  type JoinToken,
} from '../../src/core/join/index.js';
import { CLUSTER_SECRET, JOINER, MASTER, NOW, sampleBundle, seededRandom } from '../unit/join/helpers.js';

const RUNS = 20_000;
/** Generous: the machine is shared with tor networks. */
const SLOW = { timeout: 300_000 };
const rnd = seededRandom('fuzz');
const TOKEN = issueJoinToken(CLUSTER_SECRET, MASTER, 7101, NOW + 3600, rnd);
const TOKEN_TEXT = encodeJoinToken(TOKEN);
const REQ = createJoinRequest(TOKEN, JOINER, rnd);
const REQ_BODY = REQ.frame.subarray(4);
const VERIFIED = verifyJoinRequest(REQ_BODY, CLUSTER_SECRET, MASTER, NOW);
if (!VERIFIED.ok) throw new Error('fixture request does not verify');
const RESP_BODY = acceptJoin(VERIFIED, sampleBundle(), rnd).subarray(4);
const REFUSAL_REASONS: readonly string[] = ['malformed', 'bad-proof', 'expired', 'wrong-master'];

function tokenOutcome(s: string): JoinToken | 'error' {
  try {
    return decodeJoinToken(s);
  } catch (e) {
    if (e instanceof DecodeError && e.code === 'TB_ERR_JOIN_TOKEN') return 'error';
    throw e;
  }
}

/** 'bundle' if it opened, otherwise the typed error's code (anything else propagates). */
function responseOutcome(body: Uint8Array): string {
  try {
    openJoinResponse(REQ.state, body);
    return 'bundle';
  } catch (e) {
    if (e instanceof JoinRefusedError && JOIN_REFUSALS.includes(e.reason)) return 'refused';
    if (e instanceof DecodeError && e.code === 'TB_ERR_JOIN_RESPONSE') return 'response-error';
    throw e;
  }
}

function flipBit(b: Uint8Array, bit: number): Uint8Array {
  const out = b.slice();
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

/** Byte-level mutations of a valid input: flips, replacements, truncation, insertion. */
function mutated(base: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }).map((ms) => {
      const out = base.slice();
      for (const [i, x] of ms) out[i]! ^= x;
      return out;
    }),
    fc.nat(base.length - 1).map((n) => base.slice(0, n)),
    fc.tuple(fc.nat(base.length), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([i, ins]) => new Uint8Array([...base.subarray(0, i), ...ins, ...base.subarray(i)])),
  );
}

/** JSON-level mutations: one field replaced by an arbitrary JSON value, deleted, or added. */
function jsonMutated(base: Uint8Array): fc.Arbitrary<Uint8Array> {
  const obj = JSON.parse(fromUtf8(base)) as Record<string, unknown>;
  const keys = Object.keys(obj);
  return fc.oneof(
    fc.tuple(fc.constantFrom(...keys), fc.jsonValue()).map(([k, v]) => utf8(JSON.stringify({ ...obj, [k]: v }))),
    fc.constantFrom(...keys).map((k) => {
      const { [k]: _gone, ...rest } = obj;
      return utf8(JSON.stringify(rest));
    }),
    fc.tuple(fc.string({ maxLength: 8 }), fc.jsonValue()).map(([k, v]) => utf8(JSON.stringify({ ...obj, [k]: v }))),
  );
}

const sameJson = (a: Uint8Array, b: Uint8Array): boolean => {
  try {
    return JSON.stringify(JSON.parse(fromUtf8(a))) === JSON.stringify(JSON.parse(fromUtf8(b)));
  } catch {
    return false;
  }
};

describe('fuzz: decodeJoinToken', () => {
  it(`${RUNS} inputs: returns a token or throws TB_ERR_JOIN_TOKEN`, SLOW, () => {
    const b64url = fc.stringMatching(/^[A-Za-z0-9_-]{120,124}$/);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.string({ unit: 'binary', maxLength: 200 }),
          b64url.map((s) => JOIN_TOKEN_PREFIX + s),
          fc.tuple(fc.nat(TOKEN_TEXT.length - 1), fc.string({ minLength: 1, maxLength: 3 })).map(([i, s]) => TOKEN_TEXT.slice(0, i) + s + TOKEN_TEXT.slice(i + 1)),
        ),
        (s) => {
          const r = tokenOutcome(s);
          if (r !== 'error') expect(encodeJoinToken(r)).toBe(s.trim());
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('every single-bit flip of the binary token fails to decode or to verify', SLOW, () => {
    const bin = Uint8Array.from(atob(TOKEN_TEXT.slice(8).replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    expect(bin).toHaveLength(91);
    let decodedButUnverified = 0;
    for (let bit = 0; bit < bin.length * 8; bit++) {
      const f = flipBit(bin, bit);
      const s = JOIN_TOKEN_PREFIX + btoa(String.fromCharCode(...f)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
      const r = tokenOutcome(s);
      if (r === 'error') continue;
      expect(verifyTokenSecret(CLUSTER_SECRET, r)).toBe(false);
      decodedButUnverified++;
    }
    // Flips in the id, port, expiry and secret decode; flips in the key and version do not.
    expect(decodedButUnverified).toBeGreaterThan(0);
  });
});

describe('fuzz: verifyJoinRequest', () => {
  it(`${RUNS} inputs: never throws; anything but the original body is refused`, SLOW, () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 600 }), mutated(REQ_BODY), jsonMutated(REQ_BODY), fc.jsonValue().map((v) => utf8(JSON.stringify(v)))),
        (body) => {
          const r = verifyJoinRequest(body, CLUSTER_SECRET, MASTER, NOW);
          if (r.ok) expect(sameJson(body, REQ_BODY)).toBe(true);
          else expect(REFUSAL_REASONS).toContain(r.reason);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('every single-bit flip of a valid request is refused', SLOW, () => {
    for (let bit = 0; bit < REQ_BODY.length * 8; bit++) {
      const r = verifyJoinRequest(flipBit(REQ_BODY, bit), CLUSTER_SECRET, MASTER, NOW);
      expect(r.ok, `bit ${bit}`).toBe(false);
    }
  });
});

describe('fuzz: openJoinResponse', () => {
  it(`${RUNS} inputs: a bundle only for the genuine response, else a typed error`, SLOW, () => {
    const refusal = fc.record({ v: fc.oneof(fc.constant(1), fc.jsonValue()), type: fc.constant('join-refused'), reason: fc.oneof(fc.constantFrom(...JOIN_REFUSALS), fc.string()) });
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 600 }), mutated(RESP_BODY), jsonMutated(RESP_BODY), refusal.map((v) => utf8(JSON.stringify(v))), fc.jsonValue().map((v) => utf8(JSON.stringify(v)))),
        (body) => {
          const r = responseOutcome(body);
          if (r === 'bundle') expect(sameJson(body, RESP_BODY)).toBe(true);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('every single-bit flip of a valid response is rejected', SLOW, () => {
    expect(responseOutcome(RESP_BODY)).toBe('bundle');
    for (let bit = 0; bit < RESP_BODY.length * 8; bit++) {
      expect(responseOutcome(flipBit(RESP_BODY, bit)), `bit ${bit}`).not.toBe('bundle');
    }
  });
});

describe('fuzz: JoinFrameDecoder', () => {
  it(`${RUNS} chunk sequences: bodies or TB_ERR_JOIN_FRAME, and the decoder stays failed`, SLOW, () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const d = new JoinFrameDecoder();
        let failed = false;
        for (const c of chunks) {
          try {
            for (const b of d.push(c)) expect(b.length).toBeGreaterThanOrEqual(2);
          } catch (e) {
            expect(e).toBeInstanceOf(DecodeError);
            expect((e as DecodeError).code).toBe('TB_ERR_JOIN_FRAME');
            failed = true;
            break;
          }
        }
        if (failed) expect(() => d.push(new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_FRAME' }));
      }),
      { numRuns: RUNS },
    );
  });

  it('frames split anywhere come back whole and in order', SLOW, () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 2, maxLength: 300 }), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(2000), { maxLength: 10 }), (bodies, cuts) => {
        const wire = new Uint8Array(bodies.reduce((n, b) => n + 4 + b.length, 0));
        let o = 0;
        for (const b of bodies) {
          wire.set(encodeJoinFrame(b), o);
          o += 4 + b.length;
        }
        const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
        const d = new JoinFrameDecoder();
        const out: Uint8Array[] = [];
        let prev = 0;
        for (const p of [...points, wire.length]) {
          out.push(...d.push(wire.subarray(prev, p)));
          prev = p;
        }
        expect(out).toEqual(bodies);
        expect(d.bufferedBytes).toBe(0);
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects a length prefix above 64 KiB or below 2 at once, and encodeJoinFrame refuses them', SLOW, () => {
    expect(() => new JoinFrameDecoder().push(new Uint8Array([0, 1, 0, 1]))).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_FRAME' }));
    expect(() => new JoinFrameDecoder().push(new Uint8Array([0, 0, 0, 1]))).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_FRAME' }));
    expect(new JoinFrameDecoder().push(new Uint8Array([0, 1, 0, 0]))).toEqual([]);
    expect(() => encodeJoinFrame(new Uint8Array(65537))).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_FRAME' }));
    expect(() => encodeJoinFrame(new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_FRAME' }));
  });
});
