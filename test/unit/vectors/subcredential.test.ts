/**
 * Known answers for the credential and subcredential (rend-spec-v3 §2.1 [SUBCRED];
 * tor `hs_get_subcredential`).
 */
import { describe, expect } from 'vitest';
import { fromBase64, fromHex, toBase64, toHex } from '../../../src/core/bytes.js';
import { ed25519ExpandSeed, ed25519PublicFromExpanded } from '../../../src/core/crypto/index.js';
import { encodeOnionAddress } from '../../../src/core/hs/address.js';
import { blindPublicKeyWithParam, credential, subcredential } from '../../../src/core/hs/blinding.js';
import { expectedOf, forEachVector } from '../../helpers/vectors.js';

describe('subcredential vectors', () => {
  forEachVector('subcredential', (v) => {
    const ex = expectedOf(v);
    const i = v.inputs;
    if (!('identity_public_key' in i) || !('blinded_public_key' in i)) throw new Error(`unrecognised vector shape: ${v.name}`);
    const pub = fromHex(i['identity_public_key']);
    const blinded = fromHex(i['blinded_public_key']);
    // input consistency
    if ('identity_secret_key_seed' in i) {
      expect(toHex(ed25519PublicFromExpanded(ed25519ExpandSeed(fromHex(i['identity_secret_key_seed']))))).toBe(i['identity_public_key']);
    }
    if ('identity_key_pem_pkcs8' in i) {
      const der = fromBase64((i['identity_key_pem_pkcs8'] as string).replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''));
      expect(toHex(der.slice(16))).toBe(i['identity_secret_key_seed']);
    }
    if ('blinded_public_key_base64' in i) expect(toBase64(blinded)).toBe(i['blinded_public_key_base64']);
    if ('onion_address' in i) expect(encodeOnionAddress(pub)).toBe(i['onion_address']);
    if (v.name === 'rustbalance-stem-generated') {
      // provenance note: seed 32×"A", blinded with raw parameter 32×"C"
      const seed = new Uint8Array(32).fill(0x41);
      expect(toHex(ed25519PublicFromExpanded(ed25519ExpandSeed(seed)))).toBe(i['identity_public_key']);
      expect(toHex(blindPublicKeyWithParam(pub, new Uint8Array(32).fill(0x43)))).toBe(i['blinded_public_key']);
    }

    expect(toHex(credential(pub))).toBe(ex.get('credential'));
    const sub = subcredential(pub, blinded);
    expect(toHex(sub)).toBe(ex.get('subcredential'));
    if (ex.has('subcredential_base64')) expect(toBase64(sub)).toBe(ex.get('subcredential_base64'));
    ex.done();
  });
});
