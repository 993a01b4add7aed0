import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../src/core/bytes.js';
import { TorbalanceError } from '../../src/core/errors.js';
import { formatTorProxyHeader, parseProxyV1, PROXY_V1_MAX_LENGTH } from '../../src/core/proxy-protocol.js';

const enc = (s: string): Uint8Array => utf8(s);

describe('PROXY v1 as tor writes it (export_hs_client_circuit_id)', () => {
  it("tor's unit-test examples", () => {
    // From tor's test_hs_service.c: gid 666 → "::0:29a", src port 666, virtual port 42.
    const h = parseProxyV1(enc('PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 42\r\n'))!;
    expect(h).toMatchObject({ protocol: 'TCP6', circuitId: 666, sourcePort: 666, destinationPort: 42, destinationAddress: '::1' });
    expect(h.length).toBe(50);
    expect(parseProxyV1(enc('PROXY TCP6 fc00:dead:beef:4dad::ffff:ffff ::1 65535 42\r\n'))!.circuitId).toBe(4294967295);
  });
  it('formatTorProxyHeader round-trips', () => {
    for (const gid of [0, 1, 0xffff, 0x10000, 0x12345678, 0xffffffff]) {
      const s = formatTorProxyHeader(gid, 80);
      const h = parseProxyV1(enc(`${s}GET / HTTP/1.1\r\n`))!;
      expect(h.circuitId).toBe(gid);
      expect(h.length).toBe(s.length);
    }
    expect(formatTorProxyHeader(666, 42)).toBe('PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 42\r\n');
  });
  it('is incremental: every proper prefix asks for more', () => {
    const s = enc(formatTorProxyHeader(0x12345678, 443));
    for (let i = 0; i < s.length; i++) expect(parseProxyV1(s.subarray(0, i))).toBeUndefined();
    expect(parseProxyV1(s)).toBeDefined();
  });
  it('other well-formed v1 headers parse without a circuit id', () => {
    expect(parseProxyV1(enc('PROXY TCP4 192.0.2.1 127.0.0.1 5000 80\r\n'))).toMatchObject({ protocol: 'TCP4', sourcePort: 5000 });
    expect(parseProxyV1(enc('PROXY TCP4 192.0.2.1 127.0.0.1 5000 80\r\n'))!.circuitId).toBeUndefined();
    expect(parseProxyV1(enc('PROXY UNKNOWN\r\n'))).toEqual({ protocol: 'UNKNOWN', length: 15 });
    expect(parseProxyV1(enc('PROXY TCP6 2001:db8::1 ::1 1 2\r\n'))!.circuitId).toBeUndefined();
  });
  it.each([
    ['GET / HTTP/1.1\r\n', 'TB_ERR_PROXY_HEADER_MISSING'],
    ['G', 'TB_ERR_PROXY_HEADER_MISSING'],
    ['PROXY TCP6 fc00:dead:beef:4dad::0:1 ::1 1 2\n', 'TB_ERR_PROXY_HEADER_MALFORMED'],
    ['PROXY TCP6 fc00:dead:beef:4dad::0:1 ::1 1 2\rX', 'TB_ERR_PROXY_HEADER_MALFORMED'],
    ['PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n', 'TB_ERR_PROXY_HEADER_MALFORMED'],
    ['PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n', 'TB_ERR_PROXY_HEADER_MALFORMED'],
    ['PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n', 'TB_ERR_PROXY_HEADER_MALFORMED'],
    ['PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n', 'TB_ERR_PROXY_HEADER_MALFORMED'],
    ['PROXY TCP6 fc00:dead:beef:4dad::0:1 ::1 1 2 extra\r\n', 'TB_ERR_PROXY_HEADER_MALFORMED'],
    ['PROXY TCP6 fc00:dead:beef:4dad::00000:1 ::1 1 2\r\n', 'TB_ERR_PROXY_HEADER_MALFORMED'],
    ['PROXY TCP6 not-an-ip ::1 1 2\r\n', 'TB_ERR_PROXY_HEADER_MALFORMED'],
    ['PROXY TCP6 fc00:dead:beef:4dad::0:1\t::1 1 2\r\n', 'TB_ERR_PROXY_HEADER_MALFORMED'],
    [`PROXY ${'A'.repeat(120)}`, 'TB_ERR_PROXY_HEADER_TOO_LONG'],
  ])('%j → %s', (input, code) => {
    try {
      parseProxyV1(enc(input));
      expect.unreachable('should throw');
    } catch (e) {
      expect(e).toBeInstanceOf(TorbalanceError);
      expect((e as TorbalanceError).code).toBe(code);
    }
  });
  it('a CRLF at bytes 106–107 is too long (107 bytes max including CRLF)', () => {
    const line = `PROXY TCP4 1.2.3.4 1.2.3.4 1 2${' '.repeat(0)}`;
    expect(line.length).toBeLessThan(PROXY_V1_MAX_LENGTH);
    const long = enc(`PROXY ${'x'.repeat(100)}\r\n`); // 108 bytes
    expect(() => parseProxyV1(long)).toThrow(TorbalanceError);
  });
});

describe('PROXY v1 fuzz', () => {
  it('100 000+ random and mutated inputs raise only TorbalanceError', () => {
    const seeds = [formatTorProxyHeader(666, 42), formatTorProxyHeader(0xffffffff, 80), 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n', 'PROXY UNKNOWN\r\n'].map(enc);
    let runs = 0;
    const check = (b: Uint8Array): void => {
      runs++;
      try {
        const h = parseProxyV1(b);
        if (h !== undefined) {
          expect(h.length).toBeLessThanOrEqual(PROXY_V1_MAX_LENGTH);
          if (h.circuitId !== undefined) expect(h.circuitId >>> 0).toBe(h.circuitId);
        }
      } catch (e) {
        if (!(e instanceof TorbalanceError)) throw e;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => { check(b); }), { numRuns: 40_000 });
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(120), (seed, muts, cut) => {
        const b = seed.slice(0, Math.max(1, Math.min(seed.length, cut + 1)));
        for (const [pos, v] of muts) b[pos % b.length] = v;
        check(b);
      }),
      { numRuns: 40_000 },
    );
    fc.assert(fc.property(fc.string({ maxLength: 110 }), (s) => { check(enc(`PROXY ${s}\r\n`)); }), { numRuns: 25_000 });
    expect(runs).toBeGreaterThanOrEqual(100_000);
  });
});
