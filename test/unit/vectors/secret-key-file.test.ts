/**
 * Known answers for tor's HiddenServiceDir key files (`hs_ed25519_secret_key`,
 * `hs_ed25519_public_key`, `hostname`), signing with the 64-byte expanded key, and blinded
 * signing with a tor-format key.
 */
import { describe, expect } from 'vitest';
import { fromAscii, fromHex, fromUtf8, toHex, utf8 } from '../../../src/core/bytes.js';
import { ed25519SignExpanded, ed25519Verify } from '../../../src/core/crypto/index.js';
import {
  blindExpandedSecretKeyWithParam,
  blindPublicKeyWithParam,
  signWithBlindedKey,
} from '../../../src/core/hs/blinding.js';
import {
  HsIdentityKeypair,
  decodeHostnameFile,
  decodePublicKeyFile,
  decodeSecretKeyFile,
  encodePublicKeyFile,
  encodeSecretKeyFile,
  encodeTorKeyFiles,
  identityFromTorKeyFiles,
} from '../../../src/core/hs/keys.js';
import { expectedOf, forEachVector } from '../../helpers/vectors.js';

/** Header text: the bytes before the NUL padding, which must be all zero. */
function headerText(file: Uint8Array): string {
  const header = file.subarray(0, 32);
  const end = header.indexOf(0);
  expect(end).toBeGreaterThan(0);
  expect(header.subarray(end).every((b) => b === 0)).toBe(true);
  return fromAscii(header.subarray(0, end));
}

describe('secret-key-file vectors', () => {
  forEachVector('secret-key-file', (v) => {
    const ex = expectedOf(v);
    const i = v.inputs;
    if (!('secret_key_file_hex' in i)) throw new Error(`unrecognised vector shape: ${v.name}`);
    const secretFile = fromHex(i['secret_key_file_hex']);
    const expanded = decodeSecretKeyFile(secretFile);
    expect(toHex(expanded)).toBe(ex.get('expanded_secret_key'));
    expect(toHex(encodeSecretKeyFile(expanded))).toBe(i['secret_key_file_hex']);
    const kp = HsIdentityKeypair.fromExpandedSecretKey(expanded);
    expect(toHex(kp.publicKey)).toBe(ex.get('public_key'));
    expect(kp.address).toBe(ex.get('onion_address'));
    const files = encodeTorKeyFiles(kp);
    expect(toHex(files.secretKeyFile)).toBe(i['secret_key_file_hex']);

    if (ex.has('header_hex')) expect(toHex(secretFile.subarray(0, 32))).toBe(ex.get('header_hex'));
    const secretHeaderKey = ex.has('header_text') ? 'header_text' : 'secret_header_text';
    expect(headerText(secretFile)).toBe(ex.get(secretHeaderKey));
    if (ex.has('scalar')) expect(toHex(expanded.subarray(0, 32))).toBe(ex.get('scalar'));
    if (ex.has('nonce_prefix')) expect(toHex(expanded.subarray(32))).toBe(ex.get('nonce_prefix'));

    if ('public_key_file_hex' in i) {
      const publicFile = fromHex(i['public_key_file_hex']);
      expect(headerText(publicFile)).toBe(ex.get('public_header_text'));
      expect(toHex(decodePublicKeyFile(publicFile))).toBe(ex.get('public_key'));
      expect(toHex(encodePublicKeyFile(kp.publicKey))).toBe(i['public_key_file_hex']);
      expect(toHex(files.publicKeyFile)).toBe(i['public_key_file_hex']);
    }
    if ('hostname_file_text' in i) {
      expect(toHex(decodeHostnameFile(i['hostname_file_text']))).toBe(ex.get('public_key'));
      expect(fromUtf8(files.hostnameFile)).toBe(i['hostname_file_text']);
    }
    // the three files agree
    const loaded = identityFromTorKeyFiles({
      secretKeyFile: secretFile,
      publicKeyFile: 'public_key_file_hex' in i ? fromHex(i['public_key_file_hex']) : files.publicKeyFile,
      hostnameFile: i['hostname_file_text'] ?? files.hostnameFile,
    });
    expect(loaded.address).toBe(ex.get('onion_address'));

    if (ex.has('esk_signature')) {
      const s = ex.get('esk_signature');
      const msg = fromHex(s.message_hex);
      expect(msg).toEqual(utf8(s.message_text));
      const sig = kp.sign(msg);
      expect(toHex(sig)).toBe(s.signature);
      expect(toHex(ed25519SignExpanded(expanded, msg))).toBe(s.signature);
      expect(ed25519Verify(sig, msg, kp.publicKey)).toBe(true);
    }
    if (ex.has('blinded_with_raw_param')) {
      const b = ex.get('blinded_with_raw_param');
      const h = fromHex(b.blinding_param);
      expect(typeof b.blinding_param_note).toBe('string');
      const bpk = blindPublicKeyWithParam(kp.publicKey, h);
      expect(toHex(bpk)).toBe(b.blinded_public_key);
      const bsk = blindExpandedSecretKeyWithParam(expanded, h);
      expect(toHex(bsk)).toBe(b.blinded_expanded_secret_key);
      const msg = fromHex(b.message_hex);
      expect(msg).toEqual(utf8(b.message_text));
      const sig = signWithBlindedKey({ publicKey: bpk, expandedSecretKey: bsk }, msg);
      expect(toHex(sig)).toBe(b.blinded_signature);
      expect(ed25519Verify(sig, msg, bpk)).toBe(true);
      // every sub-field was used
      expect(Object.keys(b).sort()).toEqual(
        ['blinded_expanded_secret_key', 'blinded_public_key', 'blinded_signature', 'blinding_param', 'blinding_param_note', 'message_hex', 'message_text'],
      );
    }
    ex.done();
  });
});
