/**
 * Known answers for v3 onion addresses (rend-spec-v3 §6): encoding, checksum, version, and
 * rejection of invalid addresses; C tor's hostname parsing (subdomains stripped) via
 * parseOnionHostname and Arti's strict HsId parsing via decodeOnionAddress.
 */
import { describe, expect } from 'vitest';
import { fromBase32, fromHex, toHex } from '../../../src/core/bytes.js';
import { DecodeError } from '../../../src/core/errors.js';
import {
  decodeOnionAddress,
  encodeOnionAddress,
  onionChecksum,
  parseOnionHostname,
} from '../../../src/core/hs/address.js';
import { encodeHostnameFile } from '../../../src/core/hs/keys.js';
import { expectedOf, forEachVector } from '../../helpers/vectors.js';

/** Reads expected fields and fails if any is left unchecked or missing. */
/** The error code we give for each invalid vector (a vector missing here fails). */
const INVALID_CODES: Record<string, readonly string[]> = {
  'tor-too-short': ['TB_ERR_ONION_LENGTH'],
  'tor-too-long-57': ['TB_ERR_ONION_LENGTH'],
  'tor-bad-checksum-prop224': ['TB_ERR_ONION_CHECKSUM'],
  'tor-bad-checksum-2': ['TB_ERR_ONION_CHECKSUM'],
  'tor-not-base32': ['TB_ERR_ONION_BASE32'],
  // version byte 189 and a bad checksum: either check may fire first
  'stem-bad-checksum-5x56': ['TB_ERR_ONION_VERSION', 'TB_ERR_ONION_CHECKSUM'],
  'stem-not-an-address': ['TB_ERR_ONION_LENGTH'],
  'arti-unsupported-version-4': ['TB_ERR_ONION_VERSION'],
  'arti-wrong-checksum': ['TB_ERR_ONION_CHECKSUM'],
  'arti-not-onion-domain': ['TB_ERR_ONION_LENGTH'],
  // tor checks the length first ("@" is 1 character), Arti reports bad base32
  'arti-invalid-base32': ['TB_ERR_ONION_LENGTH', 'TB_ERR_ONION_BASE32'],
  'arti-wrong-length': ['TB_ERR_ONION_LENGTH'],
  'arti-subdomain': ['TB_ERR_ONION_LENGTH'],
  'tor-hostname-not-base32': ['TB_ERR_ONION_BASE32'],
  'tor-hostname-too-long': ['TB_ERR_ONION_LENGTH'],
  'tor-hostname-short-label': ['TB_ERR_ONION_LENGTH'],
  'tor-hostname-subdomain-of-short': ['TB_ERR_ONION_LENGTH'],
  'tor-hostname-two-subdomains-of-short': ['TB_ERR_ONION_LENGTH'],
  'tor-hostname-leading-dot': ['TB_ERR_ONION_LENGTH'],
};

function rejectCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return (e as DecodeError).code;
  }
  throw new Error('expected a DecodeError, but the input was accepted');
}

/** Check decoded_* fields of an invalid address by decoding its base32 label directly. */
function checkDecodedFields(ex: ReturnType<typeof expectedOf>, address: string): void {
  if (!ex.has('decoded_public_key')) return;
  const label = address.replace(/\.onion$/i, '');
  const raw = fromBase32(label);
  expect(raw.length).toBe(35);
  const pub = raw.subarray(0, 32);
  const version = raw[34]!;
  expect(toHex(pub)).toBe(ex.get('decoded_public_key'));
  expect(toHex(raw.subarray(32, 34))).toBe(ex.get('decoded_checksum'));
  expect(version).toBe(ex.get('decoded_version'));
  expect(toHex(onionChecksum(pub, version))).toBe(ex.get('checksum_computed_for_decoded_key_and_version'));
}

describe('onion-address vectors', () => {
  forEachVector('onion-address', (v) => {
    const ex = expectedOf(v);
    const valid = ex.get('valid') as boolean;
    if ('public_key' in v.inputs && !('onion_address' in v.inputs)) {
      // encode a key
      const pub = fromHex(v.inputs['public_key']);
      const address = encodeOnionAddress(pub);
      expect(address).toBe(ex.get('onion_address'));
      expect(toHex(onionChecksum(pub))).toBe(ex.get('checksum'));
      const raw = fromBase32(address.slice(0, -6));
      expect(toHex(raw)).toBe(ex.get('decoded_35_bytes'));
      expect(raw[34]).toBe(ex.get('version'));
      expect(valid).toBe(true);
      const d = decodeOnionAddress(address);
      expect(toHex(d.publicKey)).toBe(v.inputs['public_key']);
      expect(d.address).toBe(address);
      expect(d.label).toBe(address.slice(0, -6));
      expect(decodeOnionAddress(d.label).address).toBe(address);
      expect(toHex(parseOnionHostname(address).publicKey)).toBe(v.inputs['public_key']);
      if (typeof v.inputs['note'] === 'string' && v.inputs['note'].includes('hostname file')) {
        expect(v.inputs['note']).toContain(JSON.stringify(encodeHostnameFile(pub)));
      }
    } else if ('onion_address' in v.inputs) {
      // decode a (mixed-case) address
      const d = decodeOnionAddress(v.inputs['onion_address']);
      expect(valid).toBe(true);
      expect(toHex(d.publicKey)).toBe(ex.get('public_key'));
      expect(d.address).toBe(ex.get('canonical_onion_address'));
      expect(encodeOnionAddress(d.publicKey)).toBe(d.address);
    } else if ('address' in v.inputs) {
      // Arti/tor/stem strict address parsing
      const address = v.inputs['address'] as string;
      expect(valid).toBe(false);
      expect(typeof ex.get('reason')).toBe('string');
      const codes = INVALID_CODES[v.name];
      if (codes === undefined) throw new Error(`no expected error code listed for ${v.name}`);
      expect(codes).toContain(rejectCode(() => decodeOnionAddress(address)));
      checkDecodedFields(ex, address);
      if (v.name === 'arti-subdomain') {
        // C tor strips the subdomain instead (see tor-hostname-with-subdomain)
        expect(parseOnionHostname(address).label).toBe(address.slice(4, -6));
      }
    } else if ('hostname' in v.inputs) {
      // tor's parse_extended_hostname
      const hostname = v.inputs['hostname'] as string;
      const type = ex.get('hostname_type') as string;
      if (valid) {
        expect(type).toBe('ONION_V3_HOSTNAME');
        expect(parseOnionHostname(hostname).label).toBe(ex.get('parsed_address'));
      } else {
        expect(type).toBe('BAD_HOSTNAME');
        expect(typeof ex.get('reason')).toBe('string');
        const codes = INVALID_CODES[v.name];
        if (codes === undefined) throw new Error(`no expected error code listed for ${v.name}`);
        expect(codes).toContain(rejectCode(() => parseOnionHostname(hostname)));
      }
    } else {
      throw new Error(`unrecognised vector shape: ${v.name}`);
    }
    ex.done();
  });
});
