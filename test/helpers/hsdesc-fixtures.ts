/**
 * Fixtures for descriptor tests: a seeded random source, random intro points, and
 * `assembleDescriptor`, which does what buildDescriptor does but lets a test replace any
 * layer's text or certificate field, so every rejection path can be reached with a
 * descriptor that is otherwise correctly signed and encrypted.
 */
import { createHash } from 'node:crypto';
import { concatBytes, utf8 } from '../../src/core/bytes.js';
import { buildCert, certExpirationHours, type Ed25519SigningKey } from '../../src/core/cert/ed25519-cert.js';
import { ed25519ExpandSeed, ed25519FromCurve25519, ed25519PublicFromExpanded, x25519PublicKey } from '../../src/core/crypto/index.js';
import { blindKeypair, subcredential } from '../../src/core/hs/blinding.js';
import type { IntroPointInput } from '../../src/core/hsdesc/descriptor.js';
import { buildFakeAuthClient, encryptLayer } from '../../src/core/hsdesc/encryption.js';
import { encodeIntroPoint, HS_DESC_CERT_LIFETIME } from '../../src/core/hsdesc/inner.js';
import { ed25519IdLinkSpecifier, ipv4LinkSpecifier, legacyIdLinkSpecifier } from '../../src/core/hsdesc/link-specifiers.js';
import { encodeMiddleLayer } from '../../src/core/hsdesc/middle.js';
import { encodeOuterLayer } from '../../src/core/hsdesc/outer.js';
import type { RandomBytes } from '../../src/core/random.js';

/** Deterministic random bytes: SHA-256(seed ‖ counter) blocks. */
export function seededRandom(seed: string): RandomBytes {
  let counter = 0;
  let pool: Uint8Array = new Uint8Array(0);
  return (n: number) => {
    while (pool.length < n) {
      const block = new Uint8Array(createHash('sha256').update(`${seed}/${counter++}`).digest());
      pool = concatBytes(pool, block);
    }
    const out = pool.slice(0, n);
    pool = pool.slice(n);
    return out;
  };
}

export interface Identity {
  readonly expandedSecretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

export function identityFrom(seed: string): Identity {
  const expandedSecretKey = ed25519ExpandSeed(seededRandom(`identity:${seed}`)(32));
  return { expandedSecretKey, publicKey: ed25519PublicFromExpanded(expandedSecretKey) };
}

/** A plausible intro point with random keys. */
export function randomIntroPoint(rnd: RandomBytes): IntroPointInput {
  const a = rnd(4);
  return {
    linkSpecifiers: [ipv4LinkSpecifier(`${a[0]}.${a[1]}.${a[2]}.${a[3]}`, 9001), legacyIdLinkSpecifier(rnd(20)), ed25519IdLinkSpecifier(rnd(32))],
    onionKey: x25519PublicKey(rnd(32)),
    authKey: ed25519PublicFromExpanded(ed25519ExpandSeed(rnd(32))),
    encKey: x25519PublicKey(rnd(32)),
  };
}

/** 2023-11-14T22:13:20Z, inside period 19675 (1440-minute periods). */
export const NOW = 1_700_000_000;
export const PERIOD = 19675;

export interface AssembleOptions {
  readonly identity: Identity;
  readonly periodNum?: number;
  readonly nowSeconds?: number;
  readonly revisionCounter?: bigint;
  readonly lifetimeMinutes?: number;
  /** Replace the type-08 certificate's type or expiry. */
  readonly signingCertType?: number;
  readonly signingCertExpirationHours?: number;
  /** Build the inner plaintext from the signing key and the IP-cert expiry tor would use. */
  readonly inner?: (signingKey: Ed25519SigningKey, ipExpirationHours: number) => string;
  /** Build the middle plaintext from the inner blob and the ephemeral key. */
  readonly middle?: (innerBlob: Uint8Array, ephemeralKey: Uint8Array, rnd: RandomBytes) => string;
  readonly seed?: string;
}

/** Intro point blocks, certified by `signingKey`, as tor writes them. */
export function introBlocks(ips: readonly IntroPointInput[], signingKey: Ed25519SigningKey, expirationHours: number): string {
  return ips
    .map((ip) =>
      encodeIntroPoint({
        linkSpecifiers: ip.linkSpecifiers,
        onionKey: ip.onionKey,
        authKeyCert: buildCert({ certType: 9, certifiedKey: ip.authKey, expirationHours, signingKey }),
        encKey: ip.encKey,
        encKeyCert: buildCert({ certType: 0x0b, certifiedKey: ed25519FromCurve25519(ip.encKey, 0), expirationHours, signingKey }),
      }),
    )
    .join('');
}

export function assembleDescriptor(o: AssembleOptions): { text: string; subcredential: Uint8Array; blindedPublicKey: Uint8Array; signingKey: Ed25519SigningKey } {
  const rnd = seededRandom(o.seed ?? 'assemble');
  const now = o.nowSeconds ?? NOW;
  const rev = o.revisionCounter ?? 1234n;
  const blinded = blindKeypair(o.identity.expandedSecretKey, o.periodNum ?? PERIOD, 1440);
  const sub = subcredential(o.identity.publicKey, blinded.publicKey);
  const sx = ed25519ExpandSeed(rnd(32));
  const signingKey = { expandedSecretKey: sx, publicKey: ed25519PublicFromExpanded(sx) };
  const ipExp = certExpirationHours(now - (now % 3600), HS_DESC_CERT_LIFETIME);
  const innerText = o.inner?.(signingKey, ipExp) ?? `create2-formats 2\n${introBlocks([randomIntroPoint(rnd)], signingKey, ipExp)}`;
  const innerBlob = encryptLayer({ plaintext: utf8(innerText), secretData: blinded.publicKey, subcredential: sub, revisionCounter: rev, salt: rnd(16), layer: 'encrypted' });
  const eph = x25519PublicKey(rnd(32));
  const middleText =
    o.middle?.(innerBlob, eph, rnd) ??
    encodeMiddleLayer({ ephemeralKey: eph, authClients: Array.from({ length: 16 }, () => buildFakeAuthClient(rnd)), encryptedBlob: innerBlob });
  const middleBlob = encryptLayer({ plaintext: utf8(middleText), secretData: blinded.publicKey, subcredential: sub, revisionCounter: rev, salt: rnd(16), layer: 'superencrypted' });
  const cert = buildCert({
    certType: o.signingCertType ?? 8,
    certifiedKey: signingKey.publicKey,
    expirationHours: o.signingCertExpirationHours ?? certExpirationHours(now, HS_DESC_CERT_LIFETIME),
    signingKey: { expandedSecretKey: blinded.expandedSecretKey, publicKey: blinded.publicKey },
  });
  const text = encodeOuterLayer({ lifetimeMinutes: o.lifetimeMinutes ?? 180, signingKeyCert: cert, revisionCounter: rev, superencryptedBlob: middleBlob, signingKey });
  return { text, subcredential: sub, blindedPublicKey: blinded.publicKey, signingKey };
}
