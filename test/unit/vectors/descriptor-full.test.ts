/**
 * descriptor-full.json: complete descriptors, decoded and verified end to end with
 * decodeDescriptor, every expected field compared, and every layer re-encoded byte for byte
 * with our (tor-layout) encoders: outer body, middle plaintext, inner plaintext.
 *
 * Keys per vector: an onion address → identity-key mode (gobalance: the period is found
 * around the certificate's creation time; arti-hsdesc2: period pinned to the given 19397);
 * stem (a synthetic descriptor whose blinded key belongs to no period near its certificate
 * time) and arti-hsdesc1 (no address) → subcredential + blinded-key mode. "now" is the
 * certificate's creation time (expiry − 54 h), so nothing is expired.
 */
import { describe, expect } from 'vitest';
import { fromAscii, fromHex, toBase64, toBase64NoPad, toHex, wrapBase64 } from '../../../src/core/bytes.js';
import { DecodeError } from '../../../src/core/errors.js';
import { decodeOnionAddress } from '../../../src/core/hs/address.js';
import { subcredential } from '../../../src/core/hs/blinding.js';
import { decodeDescriptor, type DecodeDescriptorOptions, type DecodedDescriptor } from '../../../src/core/hsdesc/descriptor.js';
import { decryptLayer } from '../../../src/core/hsdesc/encryption.js';
import { encodeInnerLayer, type InnerLayer } from '../../../src/core/hsdesc/inner.js';
import { encodeMiddleLayer } from '../../../src/core/hsdesc/middle.js';
import { checkOuterLayer, encodeOuterBody, parseOuterLayer } from '../../../src/core/hsdesc/outer.js';
import { expectCert, expectIntroPoint } from '../../helpers/hsdesc-expect.js';
import { forEachVector, type Vector } from '../../helpers/vectors.js';

function expectOuterFields(d: Pick<DecodedDescriptor, 'version' | 'lifetimeMinutes' | 'revisionCounter' | 'signingKeyCert' | 'descriptorSigningKey' | 'blindedPublicKey' | 'signature' | 'signedTextLength'>, e: Record<string, any>): void {
  expect(d.version).toBe(e['hs_descriptor_version']);
  expect(d.lifetimeMinutes).toBe(e['descriptor_lifetime_minutes']);
  expect(d.revisionCounter).toBe(BigInt(e['revision_counter']));
  expectCert(d.signingKeyCert, e['descriptor_signing_key_cert']);
  expect(toHex(d.descriptorSigningKey)).toBe(e['descriptor_signing_public_key']);
  expect(toHex(d.blindedPublicKey)).toBe(e['blinded_public_key']);
  expect(toBase64NoPad(d.signature)).toBe(e['signature_base64_unpadded']);
  expect(toHex(d.signature)).toBe(e['signature']);
  expect(e['signature_valid']).toBe(true);
  expect(d.signedTextLength).toBe(e['signed_text_length']);
}

function expectInner(inner: InnerLayer, e: Record<string, any>): void {
  expect(inner.create2Formats).toEqual(e['create2_formats']);
  expect(inner.introAuthRequired ?? null).toEqual(e['intro_auth_required']);
  expect(inner.singleOnionService).toBe(e['single_onion_service']);
  expect(inner.flowControl === undefined ? null : `${inner.flowControl.versions} ${inner.flowControl.sendmeInc}`).toBe(e['flow_control']);
  expect(e['pow_params']).toEqual([]);
  expect(inner.powParams).toBeUndefined();
  expect(inner.unknownPowParams).toEqual([]);
  expect(inner.skippedIntroPoints).toEqual([]);
  expect(inner.introPoints.length).toBe(e['introduction_point_count']);
  const ips = e['introduction_points'] as Record<string, any>[];
  expect(ips.length).toBe(inner.introPoints.length);
  inner.introPoints.forEach((ip, k) => {
    expectIntroPoint(ip, ips[k]!);
  });
  for (const k of Object.keys(e)) {
    expect(['create2_formats', 'intro_auth_required', 'single_onion_service', 'flow_control', 'pow_params', 'introduction_points', 'introduction_point_count'].includes(k), k).toBe(true);
  }
}

function check(v: Vector): void {
  const i = v.inputs;
  const e = v.expected;
  const text: string = i['descriptor_text'];
  if (e['valid'] === false) {
    // tor-malformed-signature-line: tor rejects it (no "\nsignature " found); we reject the
    // leading space already in the tokenizer.
    let err: unknown;
    try {
      decodeDescriptor(text, { subcredential: new Uint8Array(32).fill(1), blindedPublicKey: new Uint8Array(32), nowSeconds: 1_500_000_000 });
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).code).toBe('TB_ERR_HSDESC_OUTER_PARSE');
    expect(() => parseOuterLayer(text)).toThrow(DecodeError);
    // With the space removed the document is well-formed again (so the space is what fails).
    expect(parseOuterLayer(text.replace('\n signature ', '\nsignature ')).revisionCounter).toBe(42n);
    expect(e['reason']).toMatch(/malformed signature line/i);
    return;
  }
  const nowSeconds = (e['descriptor_signing_key_cert']['expiration_hours_since_epoch'] - 54) * 3600 + 60;

  if (!('outer_layer' in e)) {
    // gobalance-parse-only: outer layer only (the address is unknown).
    const outer = checkOuterLayer(parseOuterLayer(text), { nowSeconds });
    expectOuterFields({ ...outer, signedTextLength: outer.signedText.length }, e);
    expect(`-----BEGIN MESSAGE-----\n${wrapBase64(toBase64(outer.superencryptedBlob))}-----END MESSAGE-----`).toBe(e['superencrypted_message']);
    expect(encodeOuterBody({ lifetimeMinutes: outer.lifetimeMinutes, signingKeyCert: outer.signingKeyCert.encoded, revisionCounter: outer.revisionCounter, superencryptedBlob: outer.superencryptedBlob })).toBe(outer.signedText);
    return;
  }

  let opts: DecodeDescriptorOptions;
  if ('onion_address' in i && v.name !== 'stem-hidden-service-v3') {
    const id = decodeOnionAddress(i['onion_address']).publicKey;
    expect(toHex(id)).toBe(e['identity_public_key']);
    opts = { identityPublicKey: id, nowSeconds, ...('time_period_num' in i ? { periodNum: i['time_period_num'] } : {}) };
  } else {
    const sub = 'subcredential' in i ? i['subcredential'] : e['subcredential'];
    if ('identity_public_key' in e) expect(toHex(subcredential(fromHex(e['identity_public_key']), fromHex(e['blinded_public_key'])))).toBe(sub);
    opts = { subcredential: fromHex(sub), blindedPublicKey: fromHex(e['blinded_public_key']), nowSeconds };
  }
  const clientKey = i['client_x25519_secret_key'] as string | undefined;
  if (clientKey !== undefined) {
    // Without the client key the inner layer does not decrypt (tor: NEED_CLIENT_AUTH) …
    let err: unknown;
    try {
      decodeDescriptor(text, opts);
    } catch (x) {
      err = x;
    }
    expect((err as DecodeError).code).toBe('TB_ERR_HSDESC_NEED_CLIENT_AUTH');
    // … and with a wrong one it still does not (tor: BAD_CLIENT_AUTH).
    try {
      decodeDescriptor(text, { ...opts, clientAuthKey: new Uint8Array(32).fill(7) });
      err = undefined;
    } catch (x) {
      err = x;
    }
    expect((err as DecodeError).code).toBe('TB_ERR_HSDESC_BAD_CLIENT_AUTH');
    opts = { ...opts, clientAuthKey: fromHex(clientKey) };
  }
  const d = decodeDescriptor(text, opts);
  expectOuterFields(d, e);
  if ('subcredential' in e) expect(toHex(d.subcredential)).toBe(e['subcredential']);
  if ('time_period_num' in i) expect(d.periodNum).toBe(i['time_period_num']);

  const ol = e['outer_layer'] as Record<string, any>;
  expect(d.middle.authType).toBe(ol['desc_auth_type']);
  expect(toBase64(d.middle.ephemeralKey)).toBe(ol['desc_auth_ephemeral_key_base64']);
  expect(toHex(d.middle.ephemeralKey)).toBe(ol['desc_auth_ephemeral_key']);
  expect(d.middle.authClients.length).toBe(ol['auth_client_count']);
  expect(d.middle.authClients.map((c) => ({ client_id_base64: toBase64NoPad(c.clientId), iv_base64: toBase64NoPad(c.iv), encrypted_cookie_base64: toBase64NoPad(c.encryptedCookie) }))).toEqual(ol['auth_clients']);
  const mid = decryptLayer({ blob: parseOuterLayer(text).superencryptedBlob, secretData: d.blindedPublicKey, subcredential: d.subcredential, revisionCounter: d.revisionCounter, layer: 'superencrypted' });
  expect(mid.paddedLength).toBe(ol['plaintext_length_with_padding']);
  expect(fromAscii(mid.plaintext)).toBe(d.middlePlaintext);

  if ('client_auth' in e) {
    const ca = e['client_auth'] as Record<string, any>;
    expect(toHex(d.descriptorCookie!)).toBe(ca['descriptor_cookie']);
    expect(toHex(d.blindedPublicKey) + toHex(d.descriptorCookie!)).toBe(e['second_layer_secret_data']);
    const mine = d.middle.authClients.find((c) => toHex(c.clientId) === ca['client_id'])!;
    expect(toBase64NoPad(mine.clientId)).toBe(ca['client_id_b64']);
    expect(toHex(mine.iv)).toBe(ca['iv']);
    expect(toHex(mine.encryptedCookie)).toBe(ca['encrypted_cookie']);
    // secret_seed and cookie_key are checked in layer-encryption (arti-hsdesc2-client-cookie).
    expect(typeof ca['secret_seed']).toBe('string');
    expect(typeof ca['cookie_key']).toBe('string');
  } else {
    expect(d.descriptorCookie).toBeUndefined();
  }
  expect(d.innerPlaintext).toBe(e['inner_layer_plaintext']);
  expectInner(d.inner, e['inner_layer']);

  // Byte-exact re-encoding of all three layers with tor's layout.
  expect(encodeMiddleLayer(d.middle)).toBe(d.middlePlaintext);
  expect(
    encodeInnerLayer({
      introAuthRequired: d.inner.introAuthRequired,
      singleOnionService: d.inner.singleOnionService,
      flowControl: d.inner.flowControl,
      powParams: d.inner.powParams,
      introPoints: d.inner.introPoints.map((ip) => ({ ...ip, authKeyCert: ip.authKeyCert.encoded, encKeyCert: ip.encKeyCert.encoded })),
    }),
  ).toBe(d.innerPlaintext);
  const outer = parseOuterLayer(text);
  expect(encodeOuterBody({ lifetimeMinutes: d.lifetimeMinutes, signingKeyCert: d.signingKeyCert.encoded, revisionCounter: d.revisionCounter, superencryptedBlob: outer.superencryptedBlob })).toBe(outer.signedText);
  expect(text).toBe(`${outer.signedText}signature ${toBase64NoPad(d.signature)}\n`);

  // The same descriptor is rejected after its signing certificate expired, and for another period.
  const expired = (): unknown => decodeDescriptor(text, { ...opts, nowSeconds: d.signingKeyCert.expirationHours * 3600 + 1 });
  expect(expired).toThrow(DecodeError);
  if ('identityPublicKey' in opts) {
    let err: unknown;
    try {
      decodeDescriptor(text, { ...opts, periodNum: (d.periodNum ?? 0) + 5 });
    } catch (x) {
      err = x;
    }
    expect((err as DecodeError).code).toBe('TB_ERR_HSDESC_WRONG_BLINDED_KEY');
  }
  for (const k of Object.keys(e)) {
    expect(
      [
        'hs_descriptor_version', 'descriptor_lifetime_minutes', 'revision_counter', 'descriptor_signing_key_cert', 'descriptor_signing_public_key',
        'blinded_public_key', 'signature_base64_unpadded', 'signature', 'signature_valid', 'signed_text_length', 'identity_public_key', 'subcredential',
        'outer_layer', 'inner_layer_plaintext', 'inner_layer', 'notes', 'client_auth', 'second_layer_secret_data',
      ].includes(k),
      `unchecked expected field ${k}`,
    ).toBe(true);
  }
}

describe('descriptor-full vectors', () => {
  forEachVector('descriptor-full', check);
});
