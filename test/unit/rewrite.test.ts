import { describe, expect, it } from 'vitest';
import { fromAscii, utf8 } from '../../src/core/bytes.js';
import { encodeOnionAddress } from '../../src/core/hs/address.js';
import {
  compileRules,
  createRewriteContext,
  headerLeaksTarget,
  isRewritableContentType,
  replaceAllBytes,
  replaceAllString,
  rewriteRequestHeader,
  rewriteResponseHeader,
  StreamReplacer,
} from '../../src/core/rewrite/index.js';

const T = encodeOnionAddress(new Uint8Array(32).fill(7));
const M = encodeOnionAddress(new Uint8Array(32).fill(9));
const ctx = createRewriteContext({ target: T, master: M, targetPort: 80, targetTls: false });
const tlsCtx = createRewriteContext({ target: T, master: M, targetPort: 443, targetTls: true });
const portCtx = createRewriteContext({ target: T, master: M, targetPort: 8080, targetTls: false });

describe('rules engine', () => {
  it('replaces case-insensitively, keeps other text', () => {
    const set = compileRules([{ from: 'abc.onion', to: 'xyz.onion' }]);
    expect(replaceAllString('a ABC.Onion b abc.onion', set)).toBe('a xyz.onion b xyz.onion');
    expect(fromAscii(replaceAllBytes(utf8('a ABC.Onion b'), set))).toBe('a xyz.onion b');
  });
  it('prefers the longest needle and respects notFollowedByDigit', () => {
    const set = compileRules([
      { from: 'h.onion', to: 'm.onion' },
      { from: 'h.onion:80', to: 'm.onion', notFollowedByDigit: true },
    ]);
    expect(replaceAllString('h.onion:80/ h.onion:8080/ h.onion:80', set)).toBe('m.onion/ m.onion:8080/ m.onion');
  });
  it('does not Unicode-fold (U+017F long s is not "s")', () => {
    const set = compileRules([{ from: 'ss', to: 'X' }]);
    expect(replaceAllString('\u017Fs ss', set)).toBe('\u017Fs X');
  });
  it('matches across chunk boundaries with a bounded tail', () => {
    const set = compileRules([{ from: T, to: M }]);
    const r = new StreamReplacer(set);
    const text = `aa http://${T}/ bb`;
    const parts: string[] = [];
    for (const ch of text) parts.push(fromAscii(r.push(utf8(ch))));
    parts.push(fromAscii(r.end()));
    expect(parts.join('')).toBe(`aa http://${M}/ bb`);
    expect(r.replacements).toBe(1);
  });
  it('rejects push after end and non-ASCII rules', () => {
    const r = new StreamReplacer(compileRules([{ from: 'a', to: 'b' }]));
    r.end();
    expect(() => r.push(new Uint8Array(1))).toThrow(RangeError);
    expect(() => compileRules([{ from: 'é', to: 'e' }])).toThrow(RangeError);
    expect(() => compileRules([{ from: '', to: 'e' }])).toThrow(RangeError);
  });
});

describe('response headers (target → master)', () => {
  it('Location: absolute, upper case, subdomain, relative, scheme-relative, other host', () => {
    expect(rewriteResponseHeader('Location', `http://${T}/x?y=1`, ctx)).toBe(`http://${M}/x?y=1`);
    expect(rewriteResponseHeader('location', `HTTP://${T.toUpperCase()}/x`, ctx)).toBe(`HTTP://${M}/x`);
    expect(rewriteResponseHeader('Location', `http://www.${T}/x`, ctx)).toBe(`http://www.${M}/x`);
    expect(rewriteResponseHeader('Location', '/relative/path', ctx)).toBe('/relative/path');
    expect(rewriteResponseHeader('Location', `//${T}/p`, ctx)).toBe(`//${M}/p`);
    expect(rewriteResponseHeader('Location', 'https://example.com/', ctx)).toBe('https://example.com/');
    expect(rewriteResponseHeader('Location', `http://${T}:80/x`, ctx)).toBe(`http://${M}/x`);
    expect(rewriteResponseHeader('Content-Location', `http://${T}/i.html`, ctx)).toBe(`http://${M}/i.html`);
  });
  it('Location with a target port and TLS downgrade', () => {
    expect(rewriteResponseHeader('Location', `http://${T}:8080/x`, portCtx)).toBe(`http://${M}/x`);
    expect(rewriteResponseHeader('Location', `http://${T}:9999/x`, portCtx)).toBe(`http://${M}:9999/x`);
    expect(rewriteResponseHeader('Location', `https://${T}/x`, tlsCtx)).toBe(`http://${M}/x`);
    expect(rewriteResponseHeader('Location', `https://${T}:443/x`, tlsCtx)).toBe(`http://${M}/x`);
    expect(rewriteResponseHeader('Location', `https://www.${T}/x`, tlsCtx)).toBe(`http://www.${M}/x`);
  });
  it('Refresh', () => {
    expect(rewriteResponseHeader('Refresh', `5; url=http://${T}/r`, ctx)).toBe(`5; url=http://${M}/r`);
    expect(rewriteResponseHeader('Refresh', `0;URL='https://${T}/r'`, tlsCtx)).toBe(`0;URL='http://${M}/r'`);
    expect(rewriteResponseHeader('Refresh', '3', ctx)).toBe('3');
  });
  it('Set-Cookie Domain: leading dot, subdomain, case, other domains untouched', () => {
    expect(rewriteResponseHeader('Set-Cookie', `a=1; Domain=.${T}; Path=/`, ctx)).toBe(`a=1; Domain=.${M}; Path=/`);
    expect(rewriteResponseHeader('Set-Cookie', `a=1; domain=www.${T.toUpperCase()}`, ctx)).toBe(`a=1; domain=www.${M}`);
    expect(rewriteResponseHeader('Set-Cookie', 'a=1; Domain=example.com', ctx)).toBe('a=1; Domain=example.com');
    expect(rewriteResponseHeader('Set-Cookie', `next=http%3A%2F%2F${T}%2F; Path=/`, ctx)).toBe(`next=http%3A%2F%2F${M}%2F; Path=/`);
  });
  it('CSP source lists', () => {
    const v = `default-src 'self' https://${T} *.${T}; img-src ${T}:* data:; connect-src wss://${T}`;
    expect(rewriteResponseHeader('Content-Security-Policy', v, tlsCtx)).toBe(`default-src 'self' http://${M} *.${M}; img-src ${M}:* data:; connect-src ws://${M}`);
    expect(rewriteResponseHeader('content-security-policy-report-only', `script-src http://${T}`, ctx)).toBe(`script-src http://${M}`);
  });
  it('Link', () => {
    expect(rewriteResponseHeader('Link', `<http://${T}/s.css>; rel=preload, </r.js>; rel=preload`, ctx)).toBe(`<http://${M}/s.css>; rel=preload, </r.js>; rel=preload`);
  });
  it('Access-Control-Allow-Origin', () => {
    expect(rewriteResponseHeader('Access-Control-Allow-Origin', `http://${T}`, ctx)).toBe(`http://${M}`);
    expect(rewriteResponseHeader('Access-Control-Allow-Origin', `https://${T}`, tlsCtx)).toBe(`http://${M}`);
    expect(rewriteResponseHeader('Access-Control-Allow-Origin', '*', ctx)).toBe('*');
    expect(rewriteResponseHeader('Access-Control-Allow-Origin', 'null', ctx)).toBe('null');
  });
  it('any other header gets the generic rules; the guard sees leftovers', () => {
    expect(rewriteResponseHeader('X-Anything', `see ${T}`, ctx)).toBe(`see ${M}`);
    const label = T.slice(0, 56);
    expect(headerLeaksTarget('X-A', `bare label ${label.toUpperCase()}`, ctx)).toBe(true);
    expect(headerLeaksTarget('X-A', `fine ${M}`, ctx)).toBe(false);
  });
});

describe('request headers (master → target)', () => {
  it('Host becomes the target authority', () => {
    expect(rewriteRequestHeader('Host', M, ctx)).toBe(T);
    expect(rewriteRequestHeader('host', `${M}:80`, portCtx)).toBe(`${T}:8080`);
    expect(rewriteRequestHeader('Host', 'anything', tlsCtx)).toBe(T);
  });
  it('Origin and Referer map scheme, host and port', () => {
    expect(rewriteRequestHeader('Origin', `http://${M}`, ctx)).toBe(`http://${T}`);
    expect(rewriteRequestHeader('Origin', `http://${M}`, tlsCtx)).toBe(`https://${T}`);
    expect(rewriteRequestHeader('Origin', `http://${M}`, portCtx)).toBe(`http://${T}:8080`);
    expect(rewriteRequestHeader('Referer', `http://${M.toUpperCase()}/p?q=${M}`, ctx)).toBe(`http://${T}/p?q=${M}`);
    expect(rewriteRequestHeader('Referer', `http://www.${M}/p`, tlsCtx)).toBe(`https://www.${T}/p`);
    expect(rewriteRequestHeader('Origin', 'null', ctx)).toBe('null');
    expect(rewriteRequestHeader('Origin', 'http://example.com', ctx)).toBe('http://example.com');
    expect(rewriteRequestHeader('Cookie', `a=${M}`, ctx)).toBe(`a=${M}`);
  });
});

describe('content types', () => {
  it.each([
    ['text/html; charset=utf-8', true], ['TEXT/CSS', true], ['application/javascript', true], ['application/x-javascript', true],
    ['application/json', true], ['application/ld+json', true], ['application/vnd.api+json', true], ['application/xml', true],
    ['image/svg+xml', true], ['application/manifest+json', true], ['text/javascript;charset=x', true],
    ['image/png', false], ['application/octet-stream', false], [undefined, false], ['garbage', false], ['font/woff2', false],
  ])('%s → %s', (ct, expected) => {
    expect(isRewritableContentType(ct)).toBe(expected);
  });
});
