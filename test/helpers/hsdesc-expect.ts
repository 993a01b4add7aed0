/**
 * Shared assertions for the descriptor vector tests: compare decoded certificates, link
 * specifiers and intro points with the JSON shapes of certificates/intro-point/descriptor-full
 * vectors. Every expected key must be handled; an unknown key fails the test.
 */
import { expect } from 'vitest';
import { toBase64, toHex } from '../../src/core/bytes.js';
import { encodeCertPem, verifyCert, type Ed25519Cert } from '../../src/core/cert/ed25519-cert.js';
import type { IntroPoint } from '../../src/core/hsdesc/inner.js';
import { describeLinkSpecifier, type LinkSpecifier } from '../../src/core/hsdesc/link-specifiers.js';

function isoHours(h: number): string {
  return new Date(h * 3600 * 1000).toISOString().replace('.000Z', 'Z');
}

function assertAllHandled(e: Record<string, unknown>, handled: readonly string[]): void {
  for (const k of Object.keys(e)) expect(handled.includes(k), `unchecked expected field ${k}`).toBe(true);
}

/** A certificate object as in descriptor-full / intro-point vectors. */
export function expectCert(cert: Ed25519Cert, e: Record<string, any>): void {
  expect(encodeCertPem(cert.encoded)).toBe(e['pem']);
  expect(toHex(cert.encoded)).toBe(e['cert_hex']);
  expect(cert.version).toBe(e['version']);
  expect(cert.certType).toBe(e['cert_type']);
  expect(cert.expirationHours).toBe(e['expiration_hours_since_epoch']);
  expect(isoHours(cert.expirationHours)).toBe(e['expiration_utc']);
  expect(cert.certKeyType).toBe(e['cert_key_type']);
  expect(toHex(cert.certifiedKey)).toBe(e['certified_key']);
  expect(cert.extensions.map((x) => ({ type: x.type, flags: x.flags, data: toHex(x.data) }))).toEqual(e['extensions']);
  expect(toHex(cert.signature)).toBe(e['signature']);
  expect(toHex(cert.signingKey!)).toBe(e['signing_key_from_extension']);
  expect(e['signature_valid']).toBe(true);
  verifyCert(cert); // signature by the embedded key
  const handled = ['pem', 'cert_hex', 'version', 'cert_type', 'expiration_hours_since_epoch', 'expiration_utc', 'cert_key_type', 'certified_key', 'n_extensions', 'extensions', 'signature', 'signing_key_from_extension', 'signature_valid'];
  if ('n_extensions' in e) expect(cert.extensions.length).toBe(e['n_extensions']);
  assertAllHandled(e, handled);
}

/** A link-specifier list object `{count, raw_hex, specifiers}`. */
export function expectLinkSpecifiers(list: readonly LinkSpecifier[], raw: Uint8Array, e: Record<string, any>): void {
  expect(list.length).toBe(e['count']);
  expect(toHex(raw)).toBe(e['raw_hex']);
  const specs = e['specifiers'] as Record<string, any>[];
  expect(list.length).toBe(specs.length);
  list.forEach((ls, i) => {
    const x = specs[i]!;
    expect(ls.type).toBe(x['type']);
    expect(ls.data.length).toBe(x['length']);
    expect(toHex(ls.data)).toBe(x['data']);
    const d = describeLinkSpecifier(ls);
    const handled = ['type', 'type_name', 'length', 'data'];
    switch (d.kind) {
      case 'ipv4':
      case 'ipv6':
        expect(x['type_name']).toBe(d.kind);
        expect(d.address).toBe(x['address']);
        expect(d.port).toBe(x['port']);
        handled.push('address', 'port');
        break;
      case 'legacy-id':
        expect(x['type_name']).toBe('legacy_rsa_id');
        expect(d.fingerprint).toBe(x['fingerprint']);
        handled.push('fingerprint');
        break;
      case 'ed25519-id':
        expect(x['type_name']).toBe('ed25519_id');
        expect(toBase64(d.key)).toBe(x['ed25519_identity_base64']);
        handled.push('ed25519_identity_base64');
        break;
      case 'unknown':
        throw new Error('vector has an unknown link specifier type');
    }
    assertAllHandled(x, handled);
  });
  assertAllHandled(e, ['count', 'raw_hex', 'specifiers']);
}

/** An intro point object as in descriptor-full / intro-point vectors (extra keys listed in `alsoHandled`). */
export function expectIntroPoint(ip: IntroPoint, e: Record<string, any>, alsoHandled: readonly string[] = []): void {
  expect(toBase64(ip.linkSpecifiersRaw)).toBe(e['link_specifiers_base64']);
  expectLinkSpecifiers(ip.linkSpecifiers, ip.linkSpecifiersRaw, e['link_specifiers']);
  expect(toBase64(ip.onionKey)).toBe(e['onion_key_ntor_base64']);
  expect(toHex(ip.onionKey)).toBe(e['onion_key_ntor']);
  expectCert(ip.authKeyCert, e['auth_key_cert']);
  expect(toHex(ip.authKey)).toBe(e['auth_key']);
  expect(toBase64(ip.encKey)).toBe(e['enc_key_ntor_base64']);
  expect(toHex(ip.encKey)).toBe(e['enc_key_ntor']);
  expectCert(ip.encKeyCert, e['enc_key_cert']);
  const handled = ['link_specifiers_base64', 'link_specifiers', 'onion_key_ntor_base64', 'onion_key_ntor', 'auth_key_cert', 'auth_key', 'enc_key_ntor_base64', 'enc_key_ntor', 'enc_key_cert', ...alsoHandled];
  if ('legacy_key_pem' in e) {
    const pem = (tag: string, d: Uint8Array): string => `-----BEGIN ${tag}-----\n${(toBase64(d).match(/.{1,64}/g) ?? []).join('\n')}\n-----END ${tag}-----`;
    expect(pem('RSA PUBLIC KEY', ip.legacy!.keyDer)).toBe(e['legacy_key_pem']);
    expect(pem('CROSSCERT', ip.legacy!.crossCert)).toBe(e['legacy_key_cert_pem']);
    handled.push('legacy_key_pem', 'legacy_key_cert_pem');
  } else {
    expect(ip.legacy).toBeUndefined();
  }
  assertAllHandled(e, handled);
}
