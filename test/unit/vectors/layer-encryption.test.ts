/**
 * layer-encryption.json: SHAKE-256 KDF, AES-256-CTR and SHA3-256 MAC of both descriptor
 * layers (every intermediate value), client-authorization cookies and 10000-byte padding.
 */
import { describe, expect, it } from 'vitest';
import { concatBytes, fromAscii, fromBase64, fromHex, toBase64, toBase64NoPad, toHex, utf8, wrapBase64 } from '../../../src/core/bytes.js';
import { shake256, x25519PublicKey } from '../../../src/core/crypto/index.js';
import { DecodeError } from '../../../src/core/errors.js';
import { decodeOnionAddress } from '../../../src/core/hs/address.js';
import { subcredential } from '../../../src/core/hs/blinding.js';
import {
  buildAuthClient,
  decryptDescriptorCookie,
  decryptLayer,
  deriveLayerKeys,
  descriptorCookieKeys,
  encryptLayer,
  layerMac,
  padPlaintext,
  secretInput,
  type LayerKind,
} from '../../../src/core/hsdesc/encryption.js';
import { forEachVector, type Vector } from '../../helpers/vectors.js';

function layerOf(constant: string): LayerKind {
  if (constant === 'hsdir-superencrypted-data') return 'superencrypted';
  if (constant === 'hsdir-encrypted-data') return 'encrypted';
  throw new Error(`unknown string constant ${constant}`);
}

function check(v: Vector): void {
  const i = v.inputs;
  const e = v.expected;
  if ('plaintext_length' in i) {
    // tor test_descriptor_padding
    const padded = padPlaintext(new Uint8Array(i['plaintext_length']).fill(0x41), i['pad_multiple']);
    expect(padded.length).toBe(e['padded_length']);
    const pad = padded.subarray(i['plaintext_length']);
    expect(pad.every((b) => b === parseInt(e['padding_bytes_value'], 16))).toBe(true);
    return;
  }
  if ('auth_ephemeral_x25519_secret_key' in i) {
    // tor test_build_authorized_client
    const sub = fromHex(i['subcredential']);
    const eph = fromHex(i['auth_ephemeral_x25519_secret_key']);
    const k = descriptorCookieKeys(sub, eph, fromHex(i['client_auth_x25519_public_key']))!;
    expect(toHex(k.secretSeed)).toBe(e['secret_seed']);
    expect(toHex(shake256(40, sub, k.secretSeed))).toBe(e['keys_40']);
    expect(toHex(k.clientId)).toBe(e['client_id']);
    expect(toHex(k.cookieKey)).toBe(e['cookie_key']);
    const c = buildAuthClient({
      subcredential: sub,
      clientPublicKey: fromHex(i['client_auth_x25519_public_key']),
      ephemeralSecretKey: eph,
      descriptorCookie: fromHex(i['descriptor_cookie']),
      iv: fromHex(i['iv']),
    });
    expect(toHex(c.clientId)).toBe(e['client_id']);
    expect(toHex(c.encryptedCookie)).toBe(e['encrypted_cookie']);
    return;
  }
  if ('auth_client_lines' in i) {
    // Arti hsdesc2 client cookie
    const sub = fromHex(i['subcredential']);
    const sk = fromHex(i['client_x25519_secret_key']);
    const eph = fromHex(i['desc_auth_ephemeral_key']);
    const k = descriptorCookieKeys(sub, sk, eph)!;
    expect(toHex(k.secretSeed)).toBe(e['secret_seed']);
    expect(toHex(k.clientId)).toBe(e['client_id']);
    expect(toBase64NoPad(k.clientId)).toBe(e['client_id_b64']);
    expect(toHex(k.cookieKey)).toBe(e['cookie_key']);
    const clients = (i['auth_client_lines'] as string[]).map((l) => {
      const [kw, id, iv, ck] = l.split(' ');
      expect(kw).toBe('auth-client');
      return { clientId: fromBase64(id!), iv: fromBase64(iv!), encryptedCookie: fromBase64(ck!) };
    });
    const mine = clients.find((c) => toHex(c.clientId) === e['client_id'])!;
    expect(toHex(mine.iv)).toBe(e['iv']);
    expect(toHex(mine.encryptedCookie)).toBe(e['encrypted_cookie']);
    const cookie = decryptDescriptorCookie({ subcredential: sub, clientSecretKey: sk, ephemeralPublicKey: eph, authClients: clients });
    expect(toHex(cookie!)).toBe(e['descriptor_cookie']);
    // A different client key matches no line.
    expect(decryptDescriptorCookie({ subcredential: sub, clientSecretKey: new Uint8Array(32).fill(5), ephemeralPublicKey: eph, authClients: clients })).toBeUndefined();
    return;
  }
  const layer = layerOf(i['string_constant']);
  const revisionCounter = BigInt(i['revision_counter']);
  const secretData = fromHex(i['secret_data']);
  const sub = fromHex(i['subcredential']);
  const cookieHex = (i['descriptor_cookie'] as string | undefined) ?? '';
  expect(i['secret_data']).toBe(`${String(i['blinded_public_key'])}${cookieHex}`);
  if ('onion_address' in i) {
    expect(toHex(subcredential(decodeOnionAddress(i['onion_address']).publicKey, fromHex(i['blinded_public_key'])))).toBe(i['subcredential']);
  }
  if ('plaintext_text' in i) {
    // deterministic encryption with a given salt
    const salt = fromHex(i['salt']);
    expect(toHex(secretInput(secretData, sub, revisionCounter))).toBe(e['secret_input_hex']);
    const keys = deriveLayerKeys({ secretData, subcredential: sub, revisionCounter, salt, layer });
    expect(toHex(keys.secretKey)).toBe(e['secret_key']);
    expect(toHex(keys.secretIv)).toBe(e['secret_iv']);
    expect(toHex(keys.macKey)).toBe(e['mac_key']);
    const blob = encryptLayer({ plaintext: utf8(i['plaintext_text']), secretData, subcredential: sub, revisionCounter, salt, layer });
    expect(toHex(blob.subarray(blob.length - 32))).toBe(e['mac']);
    expect(toBase64(blob)).toBe(e['encrypted_blob_base64']);
    expect(`-----BEGIN MESSAGE-----\n${wrapBase64(toBase64(blob))}-----END MESSAGE-----`).toBe(e['message_block']);
    const back = decryptLayer({ blob, secretData, subcredential: sub, revisionCounter, layer });
    expect(fromAscii(back.plaintext)).toBe(i['plaintext_text']);
    return;
  }
  const blob = fromBase64(i['encrypted_blob_base64']);
  const d = decryptLayer({ blob, secretData, subcredential: sub, revisionCounter, layer });
  expect(toHex(d.salt)).toBe(e['salt']);
  expect(toHex(d.mac)).toBe(e['mac']);
  const keys = deriveLayerKeys({ secretData, subcredential: sub, revisionCounter, salt: d.salt, layer });
  expect(toHex(keys.secretKey)).toBe(e['secret_key']);
  expect(toHex(keys.secretIv)).toBe(e['secret_iv']);
  expect(toHex(keys.macKey)).toBe(e['mac_key']);
  const ct = blob.subarray(16, blob.length - 32);
  expect(toHex(layerMac(keys.macKey, d.salt, ct))).toBe(e['mac']);
  expect(ct.length).toBe(e['ciphertext_length']);
  expect(d.paddedLength).toBe(e['plaintext_length']);
  expect(d.paddedLength - d.plaintext.length).toBe(e['plaintext_nul_padding_bytes']);
  expect(fromAscii(d.plaintext)).toBe(e['plaintext_text_without_nul_padding']);
  // Re-encrypting the plaintext with the same salt gives the same blob (tor pads the middle layer only).
  const again = encryptLayer({ plaintext: d.plaintext, secretData, subcredential: sub, revisionCounter, salt: d.salt, layer });
  expect(toHex(again)).toBe(toHex(blob));
  // Any flipped byte fails the MAC.
  const bad = blob.slice();
  bad[20] = bad[20]! ^ 1;
  expect(() => decryptLayer({ blob: bad, secretData, subcredential: sub, revisionCounter, layer })).toThrow(DecodeError);
}

describe('layer-encryption vectors', () => {
  forEachVector('layer-encryption', check);
});

describe('layer encryption edge cases', () => {
  const base = { secretData: new Uint8Array(32).fill(1), subcredential: new Uint8Array(32).fill(2), revisionCounter: 7n };
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (err) {
      return err instanceof DecodeError ? err.code : 'not a DecodeError';
    }
    return undefined;
  };
  it('rejects short blobs, bad MACs and empty plaintexts with typed errors', () => {
    expect(code(() => decryptLayer({ ...base, layer: 'encrypted', blob: new Uint8Array(48) }))).toBe('TB_ERR_HSDESC_LAYER_TOO_SHORT');
    const blob = encryptLayer({ ...base, layer: 'encrypted', plaintext: utf8('x'), salt: new Uint8Array(16) });
    expect(code(() => decryptLayer({ ...base, revisionCounter: 8n, layer: 'encrypted', blob }))).toBe('TB_ERR_HSDESC_LAYER_MAC');
    expect(code(() => decryptLayer({ ...base, layer: 'superencrypted', blob }))).toBe('TB_ERR_HSDESC_LAYER_MAC');
    const nul = encryptLayer({ ...base, layer: 'encrypted', plaintext: new Uint8Array([0, 65]), salt: new Uint8Array(16) });
    expect(code(() => decryptLayer({ ...base, layer: 'encrypted', blob: nul }))).toBe('TB_ERR_HSDESC_LAYER_EMPTY');
  });
  it('pads the middle layer to 10000 bytes and cuts at the first NUL on decryption', () => {
    const blob = encryptLayer({ ...base, layer: 'superencrypted', plaintext: utf8('abc'), salt: new Uint8Array(16).fill(3) });
    expect(blob.length).toBe(16 + 10000 + 32);
    const d = decryptLayer({ ...base, layer: 'superencrypted', blob });
    expect(fromAscii(d.plaintext)).toBe('abc');
    expect(toHex(concatBytes(d.salt))).toBe('03'.repeat(16));
  });
  it('client cookie round trip with a degenerate ephemeral key yields no match', () => {
    const sk = new Uint8Array(32).fill(9);
    expect(decryptDescriptorCookie({ subcredential: base.subcredential, clientSecretKey: sk, ephemeralPublicKey: new Uint8Array(32), authClients: [] })).toBeUndefined();
    const eph = new Uint8Array(32).fill(4);
    const cookie = new Uint8Array(16).fill(6);
    const c = buildAuthClient({ subcredential: base.subcredential, clientPublicKey: x25519PublicKey(sk), ephemeralSecretKey: eph, descriptorCookie: cookie, iv: new Uint8Array(16).fill(8) });
    const got = decryptDescriptorCookie({ subcredential: base.subcredential, clientSecretKey: sk, ephemeralPublicKey: x25519PublicKey(eph), authClients: [c] });
    expect(toHex(got!)).toBe(toHex(cookie));
  });
});
