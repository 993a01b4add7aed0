/**
 * intro-point.json: link-specifier encoding (IPv4, IPv6, RSA id, ed25519 id) and
 * introduction-point blocks with their certificates, decoded, verified and re-encoded byte
 * for byte (tor ends every block with "\n"; the vectors store the block without it).
 */
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toBase64, toHex } from '../../../src/core/bytes.js';
import { buildCert } from '../../../src/core/cert/ed25519-cert.js';
import { ed25519ExpandSeed, ed25519PublicFromExpanded } from '../../../src/core/crypto/index.js';
import { DecodeError } from '../../../src/core/errors.js';
import { encodeInnerLayer, encodeIntroPoint, parseIntroPoint } from '../../../src/core/hsdesc/inner.js';
import {
  decodeLinkSpecifiers,
  describeLinkSpecifier,
  encodeLinkSpecifiers,
  formatIpv6,
  formatIpv6Expanded,
  ipv4LinkSpecifier,
  ipv6LinkSpecifier,
  parseIpv6,
} from '../../../src/core/hsdesc/link-specifiers.js';
import { forEachVector, type Vector } from '../../helpers/vectors.js';
import { expectIntroPoint, expectLinkSpecifiers } from '../../helpers/hsdesc-expect.js';

function check(v: Vector): void {
  const i = v.inputs;
  const e = v.expected;
  if ('link_specifiers_base64' in i) {
    const raw = fromBase64(i['link_specifiers_base64']);
    const list = decodeLinkSpecifiers(raw);
    expectLinkSpecifiers(list, raw, { count: e['count'], raw_hex: e['raw_hex'], specifiers: e['specifiers'] });
    expect(toBase64(encodeLinkSpecifiers(list))).toBe(e['re_encoded_base64']);
    return;
  }
  if ('ipv6_hex' in i) {
    const b = fromHex(i['ipv6_hex']);
    expect(toHex(fromBase64(i['ipv6_base64']))).toBe(i['ipv6_hex']);
    expect(formatIpv6Expanded(b)).toBe(e['expanded_text']);
    expect(formatIpv6(b)).toBe(e['canonical_text']);
    expect(toHex(parseIpv6(e['canonical_text']))).toBe(i['ipv6_hex']);
    expect(toHex(parseIpv6(e['expanded_text']))).toBe(i['ipv6_hex']);
    expect(describeLinkSpecifier(ipv6LinkSpecifier(e['expanded_text'], 443))).toEqual({ kind: 'ipv6', address: e['canonical_text'], port: 443 });
    return;
  }
  if ('ipv4_hex' in i) {
    const ls = { type: 0, data: fromHex(`${i['ipv4_hex']}0050`) };
    expect(describeLinkSpecifier(ls)).toEqual({ kind: 'ipv4', address: e['text'], port: 80 });
    expect(toHex(ipv4LinkSpecifier(e['text'], 80).data)).toBe(`${i['ipv4_hex']}0050`);
    return;
  }
  if ('address' in i) {
    const ls = ipv4LinkSpecifier(i['address'], i['port']);
    const enc = encodeLinkSpecifiers([ls]);
    expect(toBase64(enc)).toBe(e['link_specifiers_base64']);
    expect(toHex(enc)).toBe(e['link_specifiers_hex']);
    // The inner layer tor writes for an intro point with only this specifier starts with the prefix.
    const kx = ed25519ExpandSeed(new Uint8Array(32).fill(1));
    const signingKey = { expandedSecretKey: kx, publicKey: ed25519PublicFromExpanded(kx) };
    const cert = buildCert({ certType: 9, certifiedKey: new Uint8Array(32).fill(2), expirationHours: 1, signingKey });
    const inner = encodeInnerLayer({ introPoints: [{ linkSpecifiers: [ls], onionKey: new Uint8Array(32), authKeyCert: cert, encKey: new Uint8Array(32), encKeyCert: cert }] });
    expect(inner.startsWith(`${e['inner_layer_prefix']}\n`)).toBe(true);
    return;
  }
  if ('intro_point_text' in i) {
    const text: string = i['intro_point_text'];
    const auth = e['auth_key_cert'] as Record<string, any>;
    const signingKey = fromHex(auth['signing_key_from_extension']);
    const nowSeconds = (auth['expiration_hours_since_epoch'] - 54) * 3600;
    const ip = parseIntroPoint(text, { descriptorSigningKey: signingKey, nowSeconds });
    const reKey = 're_encoded_text' in e ? 're_encoded_text' : 're_encoded_text_without_trailing_newline';
    expectIntroPoint(ip, e, [reKey]);
    const encoded = encodeIntroPoint({
      linkSpecifiers: ip.linkSpecifiers,
      onionKey: ip.onionKey,
      authKeyCert: ip.authKeyCert.encoded,
      encKey: ip.encKey,
      encKeyCert: ip.encKeyCert.encoded,
      legacy: ip.legacy,
    });
    // tor's encode_legacy_key writes "legacy-key \n" ("%s \n%s"); stem's file and re-encoding
    // have "legacy-key\n". Both parse the same; we emit tor's form.
    const torForm = (s: string): string => s.replace('\nlegacy-key\n', '\nlegacy-key \n');
    expect(encoded).toBe(torForm(`${e[reKey]}\n`));
    expect(encoded).toBe(torForm(text.endsWith('\n') ? text : `${text}\n`));
    // tor's checks: another signing key or an expired certificate makes the block unusable.
    expect(() => parseIntroPoint(text, { descriptorSigningKey: new Uint8Array(32).fill(1), nowSeconds })).toThrow(DecodeError);
    expect(() => parseIntroPoint(text, { descriptorSigningKey: signingKey, nowSeconds: auth['expiration_hours_since_epoch'] * 3600 + 1 })).toThrow(DecodeError);
    return;
  }
  throw new Error(`unrecognised vector ${v.name}`);
}

describe('intro-point vectors', () => {
  forEachVector('intro-point', check);
});

describe('link specifiers', () => {
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (err) {
      return err instanceof DecodeError ? err.code : 'not a DecodeError';
    }
    return undefined;
  };
  it('keeps unknown types verbatim and enforces known lengths like trunnel', () => {
    const raw = fromHex('02' + '0703aabbcc' + '000401020304');
    expect(code(() => decodeLinkSpecifiers(raw))).toBe('TB_ERR_LINKSPEC_LENGTH');
    const ok = fromHex('02' + '0703aabbcc' + '0006010203040050');
    const list = decodeLinkSpecifiers(ok);
    expect(toHex(encodeLinkSpecifiers(list))).toBe(toHex(ok));
    expect(describeLinkSpecifier(list[0]!)).toEqual({ kind: 'unknown', type: 7, data: fromHex('aabbcc') });
    expect(code(() => decodeLinkSpecifiers(fromHex('01000601020304')))).toBe('TB_ERR_LINKSPEC_TRUNCATED');
    expect(code(() => decodeLinkSpecifiers(fromHex('00ff')))).toBe('TB_ERR_LINKSPEC_TRAILING');
    expect(decodeLinkSpecifiers(fromHex('00'))).toEqual([]);
    expect(code(() => encodeLinkSpecifiers([]))).toBe('TB_ERR_LINKSPEC_INVALID');
    expect(code(() => ipv4LinkSpecifier('1.2.3.256', 1))).toBe('TB_ERR_LINKSPEC_INVALID');
    expect(code(() => parseIpv6('1::2::3'))).toBe('TB_ERR_LINKSPEC_INVALID');
    expect(formatIpv6(parseIpv6('::'))).toBe('::');
    expect(formatIpv6(parseIpv6('1:0:0:2:0:0:0:3'))).toBe('1:0:0:2::3');
    expect(formatIpv6(parseIpv6('1:0:2:3:4:5:6:7'))).toBe('1:0:2:3:4:5:6:7');
  });
});
