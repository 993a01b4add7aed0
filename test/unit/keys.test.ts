/**
 * Unit tests for src/core/hs/keys.ts: tor key-file encode/decode, exact sizes and headers,
 * consistency checks, key generation from injected randomness, and that secret bytes never
 * show in JSON, String() or util.inspect output.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toBase64, toHex, utf8 } from '../../src/core/bytes.js';
import { ed25519ExpandSeed, ed25519Verify } from '../../src/core/crypto/index.js';
import { DecodeError, TorbalanceError } from '../../src/core/errors.js';
import { blindKeypair } from '../../src/core/hs/blinding.js';
import {
  HsIdentityKeypair,
  PUBLIC_KEY_FILE_HEADER,
  SECRET_KEY_FILE_HEADER,
  decodeHostnameFile,
  decodePublicKeyFile,
  decodeSecretKeyFile,
  encodeHostnameFile,
  encodePublicKeyFile,
  encodeSecretKeyFile,
  encodeTorKeyFiles,
  identityFromTorKeyFiles,
} from '../../src/core/hs/keys.js';
import { loadVectors } from '../helpers/vectors.js';

/** Deterministic "random" bytes for tests. */
function seeded(start: number): (n: number) => Uint8Array {
  let x = start;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = x >>> 24;
    }
    return out;
  };
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TorbalanceError);
    return (e as TorbalanceError).code;
  }
  throw new Error('expected an error');
}

const arti = loadVectors('secret-key-file').vectors.find((v) => v.name === 'arti-tor-keymgr-tor-service')!;
const SECRET_FILE = fromHex(arti.inputs['secret_key_file_hex']);
const PUBLIC_FILE = fromHex(arti.inputs['public_key_file_hex']);
const HOSTNAME = arti.inputs['hostname_file_text'] as string;

describe('headers', () => {
  it('are the tor tagged-file headers, NUL-padded to 32 bytes', () => {
    expect(SECRET_KEY_FILE_HEADER).toEqual(concatBytes(utf8('== ed25519v1-secret: type0 =='), new Uint8Array(3)));
    expect(PUBLIC_KEY_FILE_HEADER).toEqual(concatBytes(utf8('== ed25519v1-public: type0 =='), new Uint8Array(3)));
  });
});

describe('decodeSecretKeyFile', () => {
  it('round-trips', () => {
    expect(encodeSecretKeyFile(decodeSecretKeyFile(SECRET_FILE))).toEqual(SECRET_FILE);
  });
  it('rejects wrong sizes', () => {
    expect(codeOf(() => decodeSecretKeyFile(SECRET_FILE.subarray(0, 95)))).toBe('TB_ERR_KEYFILE_LENGTH');
    expect(codeOf(() => decodeSecretKeyFile(concatBytes(SECRET_FILE, new Uint8Array(1))))).toBe('TB_ERR_KEYFILE_LENGTH');
    expect(codeOf(() => decodeSecretKeyFile(new Uint8Array(0)))).toBe('TB_ERR_KEYFILE_LENGTH');
    // a 32-byte seed file (as some tools write) is not tor's format
    expect(codeOf(() => decodeSecretKeyFile(concatBytes(SECRET_KEY_FILE_HEADER, new Uint8Array(32).fill(7))))).toBe('TB_ERR_KEYFILE_LENGTH');
  });
  it('rejects a public-key file, another tag, and non-zero padding', () => {
    expect(codeOf(() => decodeSecretKeyFile(concatBytes(PUBLIC_KEY_FILE_HEADER, SECRET_FILE.subarray(32))))).toBe('TB_ERR_KEYFILE_HEADER');
    const otherTag = concatBytes(utf8('== ed25519v1-secret: type1 =='), new Uint8Array(3), SECRET_FILE.subarray(32));
    expect(codeOf(() => decodeSecretKeyFile(otherTag))).toBe('TB_ERR_KEYFILE_HEADER');
    const padding = SECRET_FILE.slice();
    padding[31] = 1;
    expect(codeOf(() => decodeSecretKeyFile(padding))).toBe('TB_ERR_KEYFILE_HEADER');
  });
  it('rejects a zero scalar (its public key would be the identity)', () => {
    expect(codeOf(() => decodeSecretKeyFile(concatBytes(SECRET_KEY_FILE_HEADER, new Uint8Array(64))))).toBe('TB_ERR_KEYFILE_KEY');
  });
  it('never echoes file bytes in errors', () => {
    const bad = SECRET_FILE.slice();
    bad[0] = 0x41;
    try {
      decodeSecretKeyFile(bad);
      throw new Error('accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(DecodeError);
      expect((e as Error).message).not.toContain(toHex(SECRET_FILE.subarray(32, 40)));
    }
  });
});

describe('decodePublicKeyFile', () => {
  it('round-trips', () => {
    expect(encodePublicKeyFile(decodePublicKeyFile(PUBLIC_FILE))).toEqual(PUBLIC_FILE);
  });
  it('rejects size, header and invalid points', () => {
    expect(codeOf(() => decodePublicKeyFile(PUBLIC_FILE.subarray(0, 63)))).toBe('TB_ERR_KEYFILE_LENGTH');
    expect(codeOf(() => decodePublicKeyFile(concatBytes(SECRET_KEY_FILE_HEADER, PUBLIC_FILE.subarray(32))))).toBe('TB_ERR_KEYFILE_HEADER');
    // identity point (y = 1) and a point with y ≥ p
    const identity = new Uint8Array(32);
    identity[0] = 1;
    expect(codeOf(() => decodePublicKeyFile(concatBytes(PUBLIC_KEY_FILE_HEADER, identity)))).toBe('TB_ERR_KEYFILE_KEY');
    expect(codeOf(() => decodePublicKeyFile(concatBytes(PUBLIC_KEY_FILE_HEADER, new Uint8Array(32).fill(0xff))))).toBe('TB_ERR_KEYFILE_KEY');
  });
});

describe('hostname file', () => {
  it('is "<addr>.onion\\n" and parses with or without the newline', () => {
    const pub = decodePublicKeyFile(PUBLIC_FILE);
    expect(encodeHostnameFile(pub)).toBe(HOSTNAME);
    expect(decodeHostnameFile(HOSTNAME)).toEqual(pub);
    expect(decodeHostnameFile(HOSTNAME.trimEnd())).toEqual(pub);
    expect(decodeHostnameFile(utf8(HOSTNAME))).toEqual(pub);
  });
  it('rejects other shapes', () => {
    for (const bad of ['', '\n', HOSTNAME + '\n', ' ' + HOSTNAME, HOSTNAME.replace('.onion', ''), 'www.' + HOSTNAME, HOSTNAME.replace('\n', '\r\n'), 'x'.repeat(200)]) {
      expect(codeOf(() => decodeHostnameFile(bad))).toBe('TB_ERR_HOSTNAME_FILE');
    }
    expect(codeOf(() => decodeHostnameFile(HOSTNAME.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'))))).toMatch(/^TB_ERR_ONION_/);
  });
});

describe('HsIdentityKeypair', () => {
  it('generates from 32 injected random bytes like tor (seed → SHA-512, clamped)', () => {
    const rnd = seeded(42);
    const seed = seeded(42)(32);
    const kp = HsIdentityKeypair.generate(rnd);
    expect(kp.expandedSecretKey).toEqual(ed25519ExpandSeed(seed));
    expect(kp.address).toMatch(/^[a-z2-7]{56}\.onion$/);
    expect(kp.label).toBe(kp.address.slice(0, 56));
    expect(HsIdentityKeypair.fromSeed(seed).samePublicKey(kp)).toBe(true);
    expect(HsIdentityKeypair.generate(seeded(43)).samePublicKey(kp)).toBe(false);
  });
  it('signs with the expanded key and blinds', () => {
    const kp = HsIdentityKeypair.generate(seeded(1));
    const msg = utf8('hello');
    expect(ed25519Verify(kp.sign(msg), msg, kp.publicKey)).toBe(true);
    const b = kp.blind(19397, 1440);
    expect(b).toEqual(blindKeypair(kp.expandedSecretKey, 19397, 1440));
  });
  it('returns a copy of the secret', () => {
    const kp = HsIdentityKeypair.generate(seeded(2));
    const a = kp.expandedSecretKey;
    a.fill(0);
    expect(kp.expandedSecretKey.some((x) => x !== 0)).toBe(true);
  });
  it('rejects a wrong-length or zero expanded key with a DecodeError', () => {
    expect(codeOf(() => HsIdentityKeypair.fromExpandedSecretKey(new Uint8Array(63)))).toBe('TB_ERR_KEYFILE_KEY');
    expect(codeOf(() => HsIdentityKeypair.fromExpandedSecretKey(new Uint8Array(64)))).toBe('TB_ERR_KEYFILE_KEY');
  });
  it('never reveals secret bytes through JSON, String, inspect or template strings', () => {
    const kp = identityFromTorKeyFiles({ secretKeyFile: SECRET_FILE });
    const secret = kp.expandedSecretKey;
    const forms = [
      JSON.stringify(kp),
      JSON.stringify({ nested: [kp] }),
      String(kp),
      [kp].join(""),
      inspect(kp),
      inspect(kp, { showHidden: true, depth: 10 }),
      inspect({ kp }, { depth: 10 }),
      Object.keys(kp).join(','),
    ];
    const needles = [toHex(secret), toHex(secret.subarray(0, 16)), toHex(secret.subarray(32, 48)), toBase64(secret).slice(0, 20), String(secret[0]) + ', ' + String(secret[1]) + ', ' + String(secret[2])];
    for (const f of forms) {
      for (const n of needles) expect(f).not.toContain(n);
      expect(f).not.toMatch(/expanded|secretKey/i);
    }
    expect(JSON.parse(JSON.stringify(kp))).toEqual({ address: kp.address, publicKeyHex: toHex(kp.publicKey) });
    expect(inspect(kp)).toContain(kp.address);
  });
});

describe('identityFromTorKeyFiles', () => {
  it('accepts a consistent set and re-encodes it byte-identically', () => {
    const kp = identityFromTorKeyFiles({ secretKeyFile: SECRET_FILE, publicKeyFile: PUBLIC_FILE, hostnameFile: HOSTNAME });
    const files = encodeTorKeyFiles(kp);
    expect(files.secretKeyFile).toEqual(SECRET_FILE);
    expect(files.publicKeyFile).toEqual(PUBLIC_FILE);
    expect(new TextDecoder().decode(files.hostnameFile)).toBe(HOSTNAME);
  });
  it('names the file that disagrees, without secrets', () => {
    const other = HsIdentityKeypair.generate(seeded(9));
    const otherFiles = encodeTorKeyFiles(other);
    const secretHex = toHex(decodeSecretKeyFile(SECRET_FILE));
    for (const [input, name] of [
      [{ secretKeyFile: SECRET_FILE, publicKeyFile: otherFiles.publicKeyFile, hostnameFile: HOSTNAME }, 'hs_ed25519_public_key'],
      [{ secretKeyFile: SECRET_FILE, publicKeyFile: PUBLIC_FILE, hostnameFile: otherFiles.hostnameFile }, 'hostname'],
    ] as const) {
      try {
        identityFromTorKeyFiles(input);
        throw new Error('accepted');
      } catch (e) {
        expect(e).toBeInstanceOf(TorbalanceError);
        expect((e as TorbalanceError).code).toBe('TB_ERR_KEYFILE_MISMATCH');
        expect((e as Error).message.startsWith(name)).toBe(true);
        expect((e as Error).message).not.toContain(secretHex.slice(0, 16));
      }
    }
  });
});
