/**
 * The middle ("superencrypted", first) layer of a v3 descriptor (rend-spec-v3 §2.5.1.2; tor
 * `hs_descriptor.c: get_outer_encrypted_layer_plaintext, get_auth_client_str,
 * desc_decode_superencrypted_v3, decode_auth_client`).
 *
 * ```
 * desc-auth-type x25519\n
 * desc-auth-ephemeral-key <curve25519, 44-char padded base64>\n
 * auth-client <client-id b64 nopad, 11> <iv b64 nopad, 22> <encrypted cookie b64 nopad, 22>\n   (×16 in tor)
 * encrypted\n-----BEGIN MESSAGE-----\n<base64, 64 columns>-----END MESSAGE-----          (no final newline)
 * ```
 * tor NUL-pads this plaintext to a multiple of 10000 bytes before encrypting it.
 *
 * Parsing (table `hs_desc_superencrypted_v3_token_table`): desc-auth-type first with ≥ 1
 * argument, which must be "x25519"; exactly one desc-auth-ephemeral-key; at least one
 * auth-client with ≥ 3 arguments decoding to exactly 8/16/16 bytes; exactly one `encrypted`
 * MESSAGE object longer than 48 bytes. Any failure: TB_ERR_HSDESC_MIDDLE_PARSE.
 */
import { toBase64, toBase64NoPad, wrapBase64 } from '../bytes.js';
import { DecodeError } from '../errors.js';
import { checkRules, findAll, requireToken, rule, tokenize, type NetdocToken, type TokenRule } from '../netdoc/tokenize.js';
import { AUTH_IV_LEN, CLIENT_ID_LEN, DESCRIPTOR_COOKIE_LEN, MAC_LEN, SALT_LEN, type AuthClient } from './encryption.js';
import { base64Exact, curve25519FromBase64, curve25519ToBase64, rewrap } from './util.js';

/** Layer table (tor `hs_desc_superencrypted_v3_token_table`). */
export const MIDDLE_RULES: readonly TokenRule[] = [
  rule('desc-auth-type', 'T1_START', { ge: 1 }, 'none'),
  rule('desc-auth-ephemeral-key', 'T1', { ge: 1 }, 'none'),
  rule('auth-client', 'T1N', { ge: 3 }, 'none'),
  rule('encrypted', 'T1', 'NO_ARGS', 'required'),
];

export interface MiddleLayer {
  /** Always "x25519". */
  readonly authType: string;
  /** desc-auth-ephemeral-key (curve25519). */
  readonly ephemeralKey: Uint8Array;
  readonly authClients: readonly AuthClient[];
  /** The inner layer's `salt ‖ ciphertext ‖ MAC`. */
  readonly encryptedBlob: Uint8Array;
}

const CODE = 'TB_ERR_HSDESC_MIDDLE_PARSE';

/** Parse the middle-layer plaintext (already cut at its first NUL). */
export function parseMiddleLayer(text: string): MiddleLayer {
  let tokens: NetdocToken[];
  try {
    tokens = tokenize(text, { maxLength: 1024 * 1024 });
    checkRules(tokens, MIDDLE_RULES);
  } catch (e) {
    rewrap(CODE, 'middle layer', e);
  }
  const at = requireToken(tokens, 'desc-auth-type');
  if (at.args[0] !== 'x25519') throw new DecodeError(CODE, 'unrecognized desc-auth-type', at.line);
  const ephemeralKey = curve25519FromBase64(requireToken(tokens, 'desc-auth-ephemeral-key').args[0]!, CODE, 'desc-auth-ephemeral-key');
  const authClients = findAll(tokens, 'auth-client').map((t) => ({
    clientId: base64Exact(t.args[0]!, CLIENT_ID_LEN, CODE, 'auth-client id'),
    iv: base64Exact(t.args[1]!, AUTH_IV_LEN, CODE, 'auth-client iv'),
    encryptedCookie: base64Exact(t.args[2]!, DESCRIPTOR_COOKIE_LEN, CODE, 'auth-client cookie'),
  }));
  const enc = requireToken(tokens, 'encrypted');
  if (enc.object?.tag !== 'MESSAGE') throw new DecodeError(CODE, 'encrypted data section is not a MESSAGE', enc.line);
  if (enc.object.data.length <= SALT_LEN + MAC_LEN) throw new DecodeError(CODE, 'encrypted data section is too short', enc.line);
  return { authType: at.args[0], ephemeralKey, authClients, encryptedBlob: enc.object.data };
}

/** The middle-layer plaintext exactly as tor writes it (before NUL padding). */
export function encodeMiddleLayer(input: { readonly ephemeralKey: Uint8Array; readonly authClients: readonly AuthClient[]; readonly encryptedBlob: Uint8Array }): string {
  if (input.authClients.length === 0) throw new RangeError('at least one auth-client line is required');
  let s = `desc-auth-type x25519\ndesc-auth-ephemeral-key ${curve25519ToBase64(input.ephemeralKey)}\n`;
  for (const c of input.authClients) {
    if (c.clientId.length !== CLIENT_ID_LEN || c.iv.length !== AUTH_IV_LEN || c.encryptedCookie.length !== DESCRIPTOR_COOKIE_LEN) {
      throw new RangeError('auth-client fields have the wrong length');
    }
    s += `auth-client ${toBase64NoPad(c.clientId)} ${toBase64NoPad(c.iv)} ${toBase64NoPad(c.encryptedCookie)}\n`;
  }
  return `${s}encrypted\n-----BEGIN MESSAGE-----\n${wrapBase64(toBase64(input.encryptedBlob))}-----END MESSAGE-----`;
}
