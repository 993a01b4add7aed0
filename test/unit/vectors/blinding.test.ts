/**
 * Known answers for key blinding (rend-spec-v3 appendix A [KEYBLIND]): key expansion,
 * blinding parameter h from a time period, clamped h, blinded public and expanded secret keys,
 * signatures by expanded and blinded keys, and the subcredential where given.
 */
import { describe, expect } from 'vitest';
import { fromBase64, fromHex, toBase64, toHex, utf8 } from '../../../src/core/bytes.js';
import {
  ed25519ExpandSeed,
  ed25519PublicFromExpanded,
  ed25519SignExpanded,
  ed25519Verify,
} from '../../../src/core/crypto/index.js';
import { encodeOnionAddress } from '../../../src/core/hs/address.js';
import {
  blindExpandedSecretKeyWithParam,
  blindKeypair,
  blindPublicKey,
  blindPublicKeyWithParam,
  blindingParam,
  clampBlindingParam,
  signWithBlindedKey,
  subcredential,
} from '../../../src/core/hs/blinding.js';
import { HsIdentityKeypair } from '../../../src/core/hs/keys.js';
import { expectedOf, forEachVector } from '../../helpers/vectors.js';

/** The 32-byte seed inside a PKCS#8 ed25519 private key PEM (the last 32 bytes of the DER). */
function seedFromPkcs8Pem(pem: string): Uint8Array {
  const der = fromBase64(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''));
  expect(der.length).toBe(48);
  return der.slice(16);
}

/** A blinded key must sign and verify under its public key. */
function checkBlindedSigns(blindedSecret: Uint8Array, blindedPublic: Uint8Array): void {
  expect(toHex(ed25519PublicFromExpanded(blindedSecret))).toBe(toHex(blindedPublic));
  const msg = utf8('torbalance blinding check');
  const sig = signWithBlindedKey({ publicKey: blindedPublic, expandedSecretKey: blindedSecret }, msg);
  expect(ed25519Verify(sig, msg, blindedPublic)).toBe(true);
}

describe('blinding vectors', () => {
  forEachVector('blinding', (v) => {
    const ex = expectedOf(v);
    const i = v.inputs;
    if (v.name.startsWith('tor-ed25519-vectors-')) {
      // raw blinding parameter, no time period
      const expanded = ed25519ExpandSeed(fromHex(i['secret_key_seed']));
      expect(toHex(expanded)).toBe(ex.get('expanded_secret_key'));
      const pub = ed25519PublicFromExpanded(expanded);
      expect(toHex(pub)).toBe(ex.get('public_key'));
      const h = fromHex(i['blinding_param']);
      const bsk = blindExpandedSecretKeyWithParam(expanded, h);
      expect(toHex(bsk)).toBe(ex.get('blinded_secret_key'));
      const bpk = blindPublicKeyWithParam(pub, h);
      expect(toHex(bpk)).toBe(ex.get('blinded_public_key'));
      checkBlindedSigns(bsk, bpk);
      const sig = ed25519SignExpanded(expanded, pub, pub);
      expect(toHex(sig)).toBe(ex.get('self_signature'));
      expect(ed25519Verify(sig, pub, pub)).toBe(true);
    } else if ('time_period_num' in i) {
      // blinding from a time period
      const pub = fromHex(i['identity_public_key']);
      const tp = i['time_period_num'] as number;
      const len = i['time_period_length_minutes'] as number;
      expect(typeof i['time_period_note'] === 'string' || !('time_period_note' in i)).toBe(true);
      const h = blindingParam(pub, tp, len);
      expect(toHex(h)).toBe(ex.get('blinding_param_h'));
      if (ex.has('clamped_h')) expect(toHex(clampBlindingParam(h))).toBe(ex.get('clamped_h'));
      const bpk = blindPublicKey(pub, tp, len);
      expect(toHex(bpk)).toBe(ex.get('blinded_public_key'));
      expect(toHex(blindPublicKeyWithParam(pub, h))).toBe(toHex(bpk));
      if (ex.has('subcredential')) expect(toHex(subcredential(pub, bpk))).toBe(ex.get('subcredential'));
      if ('onion_address' in i) expect(encodeOnionAddress(pub)).toBe(i['onion_address']);
      if (ex.has('onion_address')) expect(encodeOnionAddress(pub)).toBe(ex.get('onion_address'));
      if ('identity_expanded_secret_key' in i) {
        const esk = fromHex(i['identity_expanded_secret_key']);
        expect(toHex(ed25519PublicFromExpanded(esk))).toBe(i['identity_public_key']);
        const kp = blindKeypair(esk, tp, len);
        expect(toHex(kp.publicKey)).toBe(toHex(bpk));
        expect(toHex(kp.expandedSecretKey)).toBe(ex.get('blinded_expanded_secret_key'));
        const id = HsIdentityKeypair.fromExpandedSecretKey(esk);
        expect(toHex(id.blind(tp, len).expandedSecretKey)).toBe(ex.get('blinded_expanded_secret_key'));
        checkBlindedSigns(kp.expandedSecretKey, kp.publicKey);
      }
    } else if ('blinding_param' in i) {
      // raw blinding parameter with an identity given as seed, PEM or public key
      const h = fromHex(i['blinding_param']);
      let pub: Uint8Array;
      if ('identity_secret_key_seed' in i) {
        const seed = fromHex(i['identity_secret_key_seed']);
        if ('identity_key_pem_pkcs8' in i) expect(toHex(seedFromPkcs8Pem(i['identity_key_pem_pkcs8']))).toBe(toHex(seed));
        const expanded = ed25519ExpandSeed(seed);
        pub = ed25519PublicFromExpanded(expanded);
        expect(toHex(pub)).toBe(ex.get('identity_public_key'));
        checkBlindedSigns(blindExpandedSecretKeyWithParam(expanded, h), blindPublicKeyWithParam(pub, h));
      } else {
        pub = fromHex(i['identity_public_key']);
      }
      if ('blinding_param_base64' in i) expect(toBase64(h)).toBe(i['blinding_param_base64']);
      const bpk = blindPublicKeyWithParam(pub, h);
      expect(toHex(bpk)).toBe(ex.get('blinded_public_key'));
      if (ex.has('blinded_public_key_base64')) expect(toBase64(bpk)).toBe(ex.get('blinded_public_key_base64'));
    } else {
      throw new Error(`unrecognised vector shape: ${v.name}`);
    }
    ex.done();
  });
});
