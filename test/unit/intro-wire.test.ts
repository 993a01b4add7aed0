/**
 * The intro-point wire form and the intro digest (src/core/intro/wire.ts), with fixed-hex
 * known answers: the digest goes into every hello/heartbeat/intro-points message, so any
 * change to its construction is a mesh wire change and must fail here. The expected digests
 * were computed independently (Python hashlib.sha3_256 over the documented string).
 */
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64, toHex } from '../../src/core/bytes.js';
import { introDigest, introPointFromWire, introPointLine, introPointToWire, MAX_LINK_SPECIFIER_BYTES, type IntroPointWire } from '../../src/core/intro/wire.js';
import * as mesh from '../../src/core/mesh/index.js';

const fill = (n: number, b: number): Uint8Array => new Uint8Array(n).fill(b);

// A tor-like list: legacy id (type 2), ed25519 id (type 3), IPv4 127.0.0.1:9001 (type 0).
const A: IntroPointWire = {
  ls: 'AwIUEREREREREREREREREREREREREREDICIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiAAZ/AAABIyk=',
  onionKey: 'MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM=',
  authKey: 'REREREREREREREREREREREREREREREREREREREREREQ=',
  encKey: 'VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVU=',
};
// IPv4 10.0.0.2:8080 only.
const B: IntroPointWire = {
  ls: 'AQAGCgAAAh+Q',
  onionKey: 'ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=',
  authKey: 'AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=',
  encKey: 'd3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3c=',
};

describe('intro-point wire form', () => {
  it('encodes link specifiers as the trunnel list and keys as padded base64 (known answer)', () => {
    const w = introPointToWire({
      linkSpecifiers: [{ type: 2, data: fill(20, 0x11) }, { type: 3, data: fill(32, 0x22) }, { type: 0, data: new Uint8Array([127, 0, 0, 1, 0x23, 0x29]) }],
      onionKey: fill(32, 0x33),
      authKey: fill(32, 0x44),
      encKey: fill(32, 0x55),
    });
    expect(w).toEqual(A);
    expect(toHex(fromBase64(w.ls))).toBe('030214' + '11'.repeat(20) + '0320' + '22'.repeat(32) + '00067f0000012329');
  });

  it('a decoded descriptor intro point keeps its raw link-specifier bytes verbatim', () => {
    // linkSpecifiers is left empty: the wire form can only have come from the raw bytes.
    const raw = fromBase64(B.ls);
    const w = introPointToWire({ linkSpecifiersRaw: raw, linkSpecifiers: [], onionKey: fill(32, 0x66), authKey: fill(32, 0x01), encKey: fill(32, 0x77) });
    expect(w).toEqual(B);
  });

  it('round-trips through introPointFromWire byte for byte', () => {
    expect(introPointToWire(introPointFromWire(A))).toEqual(A);
    expect(introPointFromWire(B).linkSpecifiers).toEqual([{ type: 0, data: new Uint8Array([10, 0, 0, 2, 0x1f, 0x90]) }]);
  });

  it('accepts a link-specifier list of exactly MAX_LINK_SPECIFIER_BYTES and refuses one byte more', () => {
    const list = (n: number): string => {
      // one unknown-type specifier of n - 3 bytes: n_spec(1) type(1) len(1) body
      const b = new Uint8Array(n);
      b[0] = 1; b[1] = 0x7f; b[2] = n - 3;
      return toBase64(b);
    };
    // 255-byte bodies at most per specifier: use two specifiers to reach 512.
    const two = (n: number): string => {
      const b = new Uint8Array(n);
      const first = 255;
      b[0] = 2; b[1] = 0x7e; b[2] = first; b[3 + first] = 0x7f; b[4 + first] = n - 5 - first;
      return toBase64(b);
    };
    expect(() => introPointFromWire({ ...A, ls: list(200) })).not.toThrow();
    expect(() => introPointFromWire({ ...A, ls: two(MAX_LINK_SPECIFIER_BYTES) })).not.toThrow();
    expect(() => introPointFromWire({ ...A, ls: two(MAX_LINK_SPECIFIER_BYTES + 1) })).toThrow(expect.objectContaining({ code: 'TB_ERR_PUBLISHER_WIRE' }) as Error);
  });
});

describe('intro digest', () => {
  it('canonical line: authKey encKey onionKey ls', () => {
    expect(introPointLine(A)).toBe(`${A.authKey} ${A.encKey} ${A.onionKey} ${A.ls}`);
  });

  it.each([
    ['empty set', [], '52e067ab42fcf9e1eccea5601c346cb542e047615775f4ac16fabcc7468a4976'],
    ['{A}', [A], '2c37230f530468f5b4c53d94b823d1e9a1ecd8575c606ea9c78f93f0b3c6b117'],
    ['{A, B}', [A, B], '95b85cbed3e4804f17af1e96954885ebd0c53646abcab1f08a6c16282355e58a'],
    ['{B, A, A} (order and duplicates do not matter)', [B, A, A], '95b85cbed3e4804f17af1e96954885ebd0c53646abcab1f08a6c16282355e58a'],
  ])('%s → fixed hex', (_name, points, hex) => {
    expect(introDigest(points)).toBe(hex);
  });

  it('the mesh codec uses this one definition', () => {
    expect(mesh.introDigest).toBe(introDigest);
    expect(mesh.introPointToWire).toBe(introPointToWire);
    expect(mesh.introPointFromWire).toBe(introPointFromWire);
    expect(mesh.MAX_LINK_SPECIFIER_BYTES).toBe(MAX_LINK_SPECIFIER_BYTES);
  });
});
