/**
 * certificates.json: tor ed25519 certificate layout, signature checks, rejections,
 * re-certification, blinded signing and the descriptor signature.
 *
 * Rejection vectors are tested against TOR's behaviour (torcert.c / ed25519_cert.trunnel),
 * which differs from stem's in places (stated per vector):
 * - stem-reject-type-0/1/7: stem policy. tor's trunnel parser accepts any cert_type, so the
 *   certificate parses; it is then unusable (no signing-key extension, wrong type for any HS
 *   use), which is what we assert.
 * - stem-reject-extra-extension-data: stem complains about "unused extension data"; tor
 *   reads an unknown 1-byte extension, a signature, and then finds one byte left over, which
 *   `tor_cert_parse` rejects (`got_len != len`): TB_ERR_CERT_TRAILING_BYTES.
 * - arti-reject-unknown-extension-affects-validation: stem accepts it, tor and Arti reject.
 */
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toBase64, toBase64NoPad, toHex, utf8 } from '../../../src/core/bytes.js';
import {
  buildCert,
  certIsExpired,
  decodeCertExtension,
  decodeCertPem,
  encodeCertExtension,
  encodeCertPem,
  parseCert,
  verifyCert,
  type Ed25519Cert,
} from '../../../src/core/cert/ed25519-cert.js';
import { ed25519ExpandSeed, ed25519PublicFromExpanded, ed25519SignExpanded, ed25519Verify } from '../../../src/core/crypto/index.js';
import { DecodeError } from '../../../src/core/errors.js';
import { blindExpandedSecretKeyWithParam, blindPublicKeyWithParam } from '../../../src/core/hs/blinding.js';
import { forEachVector, type Vector } from '../../helpers/vectors.js';

function isoHours(h: number): string {
  return new Date(h * 3600 * 1000).toISOString().replace('.000Z', 'Z');
}

function certFrom(inputs: Record<string, any>): Ed25519Cert {
  if (typeof inputs['cert_hex'] === 'string') return parseCert(fromHex(inputs['cert_hex']));
  if (typeof inputs['cert_base64'] === 'string') return parseCert(fromBase64(inputs['cert_base64'].replace(/\n/g, '')));
  if (typeof inputs['cert_pem'] === 'string') return decodeCertPem(inputs['cert_pem']);
  throw new Error('vector has no certificate input');
}

/** Check every field of a parsed certificate against an expected object; unknown keys fail. */
function checkFields(cert: Ed25519Cert, e: Record<string, any>, handled: Set<string>): void {
  const h = (k: string): boolean => {
    handled.add(k);
    return k in e;
  };
  if (h('version')) expect(cert.version).toBe(e['version']);
  if (h('cert_type')) expect(cert.certType).toBe(e['cert_type']);
  if (h('expiration_hours_since_epoch')) expect(cert.expirationHours).toBe(e['expiration_hours_since_epoch']);
  if (h('expiration_utc')) expect(isoHours(cert.expirationHours)).toBe(e['expiration_utc']);
  if (h('cert_key_type')) expect(cert.certKeyType).toBe(e['cert_key_type']);
  if (h('certified_key')) expect(toHex(cert.certifiedKey)).toBe(e['certified_key']);
  if (h('n_extensions')) expect(cert.extensions.length).toBe(e['n_extensions']);
  if (h('extensions')) expect(cert.extensions.map((x) => ({ type: x.type, flags: x.flags, data: toHex(x.data) }))).toEqual(e['extensions']);
  if (h('signed_part_hex')) expect(toHex(cert.signedPart)).toBe(e['signed_part_hex']);
  if (h('signature')) expect(toHex(cert.signature)).toBe(e['signature']);
  if (h('signing_key_from_extension')) expect(toHex(cert.signingKey!)).toBe(e['signing_key_from_extension']);
  if (h('cert_hex')) expect(toHex(cert.encoded)).toBe(e['cert_hex']);
  if (h('pem')) expect(encodeCertPem(cert.encoded)).toBe(e['pem']);
  if (h('re_encoded_base64')) expect(toBase64(cert.encoded)).toBe(e['re_encoded_base64'].replace(/\n/g, ''));
  if (h('re_encoded_hex')) expect(toHex(cert.encoded)).toBe(e['re_encoded_hex']);
  if (h('re_encoded_pem')) expect(encodeCertPem(cert.encoded)).toBe(e['re_encoded_pem']);
}

function expectDecodeError(f: () => unknown, code: string): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(DecodeError);
  expect((err as DecodeError).code).toBe(code);
}

/** Rejections and the tor error code each must produce. */
const REJECT: Record<string, { code: string; stage: 'parse' | 'verify' }> = {
  'stem-reject-version-2': { code: 'TB_ERR_CERT_VERSION', stage: 'parse' },
  'stem-reject-missing-extension-header': { code: 'TB_ERR_CERT_TRUNCATED', stage: 'parse' },
  'stem-reject-truncated-extension': { code: 'TB_ERR_CERT_TRUNCATED', stage: 'parse' },
  'stem-reject-short-signing-key-extension': { code: 'TB_ERR_CERT_EXTENSION', stage: 'parse' },
  'stem-reject-too-short': { code: 'TB_ERR_CERT_TRUNCATED', stage: 'parse' },
  'stem-reject-extra-extension-data': { code: 'TB_ERR_CERT_TRAILING_BYTES', stage: 'parse' },
  'arti-reject-version-3': { code: 'TB_ERR_CERT_VERSION', stage: 'parse' },
  'arti-reject-signing-key-extension-33-bytes': { code: 'TB_ERR_CERT_EXTENSION', stage: 'parse' },
  'arti-reject-unknown-extension-affects-validation': { code: 'TB_ERR_CERT_CRITICAL_EXTENSION', stage: 'parse' },
  'arti-reject-wrong-external-signing-key': { code: 'TB_ERR_CERT_KEY_MISMATCH', stage: 'verify' },
};
/** stem-policy rejections: tor parses these (any cert_type); they are unusable, not malformed. */
const STEM_POLICY = new Set(['stem-reject-type-0', 'stem-reject-type-1', 'stem-reject-type-7']);

function check(v: Vector): void {
  const e = v.expected;
  const i = v.inputs;
  const reject = REJECT[v.name];
  if (reject !== undefined) {
    expect(e['valid']).toBe(false);
    if (reject.stage === 'parse') {
      expectDecodeError(() => parseCert(fromHex(i['cert_hex'])), reject.code);
    } else {
      const cert = parseCert(fromHex(i['cert_hex']));
      expectDecodeError(() => verifyCert(cert, { signingKey: fromHex(i['expected_signing_key']) }), reject.code);
    }
    return;
  }
  if (STEM_POLICY.has(v.name)) {
    expect(e['valid']).toBe(false);
    const cert = parseCert(fromHex(i['cert_hex'])); // tor: parses
    expect(cert.signingKey).toBeUndefined();
    expectDecodeError(() => verifyCert(cert), 'TB_ERR_CERT_NO_SIGNING_KEY');
    for (const t of [0x04, 0x08, 0x09, 0x0b]) {
      if (t !== cert.certType) expectDecodeError(() => verifyCert(cert, { expectedType: t, signingKey: new Uint8Array(32).fill(3) }), 'TB_ERR_CERT_TYPE');
    }
    return;
  }
  if ('extension_hex' in i) {
    const bytes = fromHex(i['extension_hex']);
    if (e['parses'] === false) {
      expectDecodeError(() => decodeCertExtension(bytes), 'TB_ERR_CERT_CRITICAL_EXTENSION');
      expect(bytes.length - 4).toBe(e['length']);
      expect(bytes[2]).toBe(e['type']);
      expect(bytes[3]).toBe(e['flags']);
      return;
    }
    const ext = decodeCertExtension(bytes);
    expect(ext.data.length).toBe(e['length']);
    expect(ext.type).toBe(e['type']);
    expect(ext.flags).toBe(e['flags']);
    if ('data_text' in e) expect(new TextDecoder().decode(ext.data)).toBe(e['data_text']);
    if ('data' in e) expect(toHex(ext.data)).toBe(e['data']);
    if ('re_encoded_base64' in e) expect(toBase64(encodeCertExtension(ext))).toBe(e['re_encoded_base64']);
    if ('extension_base64' in i) expect(toHex(fromBase64(i['extension_base64']))).toBe(i['extension_hex']);
    if ('parses' in e) expect(e['parses']).toBe(true);
    return;
  }
  if (v.name === 'gobalance-recertify-intro-auth-cert') {
    const orig = decodeCertPem(i['original_cert_pem']);
    checkFields(orig, e['original'], new Set());
    const expanded = ed25519ExpandSeed(fromHex(i['new_descriptor_signing_key_seed']));
    const pub = ed25519PublicFromExpanded(expanded);
    expect(toHex(pub)).toBe(e['new_descriptor_signing_public_key']);
    const re = buildCert({
      certType: orig.certType,
      certifiedKey: orig.certifiedKey,
      certKeyType: orig.certKeyType,
      expirationHours: orig.expirationHours,
      signingKey: { expandedSecretKey: expanded, publicKey: pub },
    });
    expect(toHex(re)).toBe(e['recertified_cert_hex']);
    expect(encodeCertPem(re)).toBe(e['recertified_cert_pem']);
    const parsed = parseCert(re);
    checkFields(parsed, e['recertified'], new Set());
    expect(toHex(verifyCert(parsed, { expectedType: 9, nowSeconds: orig.expirationHours * 3600 }))).toBe(toHex(pub));
    return;
  }
  if (v.name === 'gobalance-blinded-sign-desc-signing-cert') {
    const expanded = ed25519ExpandSeed(fromHex(i['identity_secret_key_seed']));
    expect(toHex(ed25519PublicFromExpanded(expanded))).toBe(i['identity_public_key']);
    const h = fromHex(i['blinding_param']);
    const blindedSecret = blindExpandedSecretKeyWithParam(expanded, h);
    expect(toHex(blindedSecret)).toBe(e['blinded_expanded_secret_key']);
    const blindedPub = blindPublicKeyWithParam(fromHex(i['identity_public_key']), h);
    expect(toHex(blindedPub)).toBe(i['blinded_public_key']);
    const msg = fromHex(i['message_hex']);
    expect(toBase64(msg)).toBe(i['message_base64']);
    const sig = ed25519SignExpanded(blindedSecret, msg, blindedPub);
    expect(toHex(sig)).toBe(e['signature']);
    expect(toBase64(sig)).toBe(e['signature_base64']);
    const full = parseCert(fromHex(e['full_cert_hex']));
    expect(toHex(full.encoded)).toBe(toHex(msg) + toHex(sig));
    checkFields(full, e['full_cert'], new Set());
    verifyCert(full, { expectedType: 8, requireSigningKeyExtension: true, signingKey: blindedPub });
    return;
  }
  if (v.name === 'gobalance-descriptor-signature') {
    const expanded = ed25519ExpandSeed(fromHex(i['descriptor_signing_key_seed']));
    const pub = ed25519PublicFromExpanded(expanded);
    expect(toHex(pub)).toBe(i['descriptor_signing_public_key']);
    const msg = utf8(i['signed_message_text']);
    const sig = ed25519SignExpanded(expanded, msg, pub);
    expect(toHex(sig)).toBe(e['signature']);
    expect(toBase64NoPad(sig)).toBe(e['signature_base64_unpadded']);
    expect(ed25519Verify(sig, msg, pub)).toBe(true);
    return;
  }
  // A certificate to parse and check field by field.
  const cert = certFrom(i);
  const handled = new Set<string>(['signing_key_used_for_check', 'signature_valid', 'parses', 'expired', 'valid_at_check_time', 'expired_at_utc', 'note']);
  checkFields(cert, e, handled);
  const key = fromHex(e['signing_key_used_for_check']);
  if ('external_signing_key' in i) {
    expect(cert.signingKey).toBeUndefined();
    expect(i['external_signing_key']).toBe(e['signing_key_used_for_check']);
    expectDecodeError(() => verifyCert(cert, { requireSigningKeyExtension: true, signingKey: key }), 'TB_ERR_CERT_NO_SIGNING_KEY');
  } else {
    expect(toHex(cert.signingKey!)).toBe(e['signing_key_used_for_check']);
  }
  if (e['signature_valid'] === true) {
    expect(toHex(verifyCert(cert, { signingKey: key }))).toBe(toHex(key));
  } else {
    expect(e['signature_valid']).toBe(false);
    expectDecodeError(() => verifyCert(cert, { signingKey: key }), 'TB_ERR_CERT_SIGNATURE');
  }
  if ('parses' in e) expect(e['parses']).toBe(true);
  if ('expired' in e) {
    expect(certIsExpired(cert, 1)).toBe(e['expired']);
    expectDecodeError(() => verifyCert(cert, { nowSeconds: 1 }), 'TB_ERR_CERT_EXPIRED');
  }
  if ('valid_at_check_time' in e) {
    const t = Date.parse(i['check_time_utc']) / 1000;
    expect(!certIsExpired(cert, t)).toBe(e['valid_at_check_time']);
    verifyCert(cert, { nowSeconds: t });
    const expiredAt = Date.parse(e['expired_at_utc']) / 1000;
    expectDecodeError(() => verifyCert(cert, { nowSeconds: expiredAt }), 'TB_ERR_CERT_EXPIRED');
    verifyCert(cert, { nowSeconds: cert.expirationHours * 3600 }); // expiry is "now > valid_until"
  }
  for (const k of Object.keys(e)) expect(handled.has(k), `unchecked expected field ${k}`).toBe(true);
}

describe('certificates vectors', () => {
  forEachVector('certificates', check);
});

describe('certificate encoding', () => {
  it('builds exactly what it parses, and rejects duplicate signing-key extensions', () => {
    const expanded = ed25519ExpandSeed(new Uint8Array(32).fill(7));
    const pub = ed25519PublicFromExpanded(expanded);
    const bytes = buildCert({ certType: 0x0b, certifiedKey: new Uint8Array(32).fill(9), expirationHours: 500000, signingKey: { expandedSecretKey: expanded, publicKey: pub } });
    const c = parseCert(bytes);
    expect(c.certType).toBe(0x0b);
    expect(toHex(verifyCert(c, { expectedType: 0x0b, requireSigningKeyExtension: true, signingKey: pub, nowSeconds: 500000 * 3600 }))).toBe(toHex(pub));
    expect(toHex(decodeCertPem(encodeCertPem(bytes) + '\n').encoded)).toBe(toHex(bytes));
    const dup = buildCert({
      certType: 8,
      certifiedKey: new Uint8Array(32),
      expirationHours: 1,
      signingKey: { expandedSecretKey: expanded, publicKey: pub },
      extraExtensions: [{ type: 4, flags: 0, data: pub }],
    });
    expectDecodeError(() => parseCert(dup), 'TB_ERR_CERT_EXTENSION');
    expectDecodeError(() => parseCert(new Uint8Array([...bytes, 0])), 'TB_ERR_CERT_TRAILING_BYTES');
    expectDecodeError(() => decodeCertPem('-----BEGIN ED25519 CERT-----\n!!\n-----END ED25519 CERT-----'), 'TB_ERR_CERT_PEM');
    expectDecodeError(() => parseCert(new Uint8Array(9000)), 'TB_ERR_CERT_TOO_LARGE');
  });
});
