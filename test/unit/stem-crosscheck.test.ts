/**
 * Independent cross-check of the descriptor core against stem 1.8.1 (Debian python3-stem,
 * with python3-cryptography 38), through test/interop/stem_descriptor.py.
 *
 * (a) We build (buildDescriptor) → stem parses with validation (descriptor signature),
 *     decrypts with the onion address and lists the intro points; the script also checks
 *     every certificate signature with python3-cryptography, computes the ed25519 form of
 *     each enc key and the blinded key (stem's `_blinded_pubkey`) on its own, and checks
 *     legacy RSA cross-certificates. Everything must equal what we put in and what our own
 *     decodeDescriptor reads back.
 * (b) stem builds (HiddenServiceDescriptorV3.content with blinding_nonce = our blindingParam)
 *     → our decodeDescriptor decrypts it and lists the same intro points.
 *
 * stem's quirks, and what tor does with them (checked against tor's hs_descriptor.c /
 * torcert.c):
 * - `IntroductionPointV3.create_for_link_specifiers` signs the intro-point certificates with
 *   a fresh random key unless `signing_key` is passed. tor (`decode_introduction_point`)
 *   checks both certificates with `tor_cert_checksig(cert, &desc signing key)`, which fails
 *   when the embedded signed-with-key differs, so tor drops every such intro point; we skip
 *   them with TB_ERR_CERT_KEY_MISMATCH. What tor accepts — stem with `signing_key` = the
 *   descriptor signing key — we decode fully.
 * - stem's enc-key-cert certifies the intro point's AUTH key, not the ed25519 form of the
 *   enc key. tor never compares the certified key with the enc key, so it accepts this, and
 *   so do we (asserted below).
 * - stem computes certificate expiry as floor(t/3600) (tor: ceil) and, for the signing-key
 *   certificate, utcnow + 54 h.
 * - stem NUL-pads the middle layer by `len % 10000` bytes instead of up to the next multiple
 *   of 10000; neither tor nor we check the padding length on decode.
 * - stem's descriptor and inner layer end without a final newline; tor's tokenizer and ours
 *   accept a last line without one.
 * - stem writes no flow-control or pow-params line (it does not know them); extra inner-layer
 *   lines can be given through `attr`, which we use to check flow-control.
 * - stem 1.8.1 cannot decrypt client-authorization descriptors, so restricted discovery is
 *   not cross-checked here (the arti-hsdesc2-client-auth vector covers it).
 */
import { generateKeyPairSync, privateEncrypt, constants as cryptoConstants } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromBase64, toHex } from '../../src/core/bytes.js';
import { certExpirationHours } from '../../src/core/cert/ed25519-cert.js';
import { ed25519ExpandSeed, ed25519PublicFromExpanded, x25519PublicKey } from '../../src/core/crypto/index.js';
import { encodeOnionAddress } from '../../src/core/hs/address.js';
import { blindingParam } from '../../src/core/hs/blinding.js';
import { timePeriodNum, timePeriodStart } from '../../src/core/hs/time-period.js';
import { buildDescriptor, decodeDescriptor, DEFAULT_FLOW_CONTROL, type IntroPointInput } from '../../src/core/hsdesc/descriptor.js';
import { HS_DESC_CERT_LIFETIME } from '../../src/core/hsdesc/inner.js';
import {
  describeLinkSpecifier,
  ed25519IdLinkSpecifier,
  ipv4LinkSpecifier,
  ipv6LinkSpecifier,
  legacyIdLinkSpecifier,
  parseIpv6,
  type LinkSpecifier,
} from '../../src/core/hsdesc/link-specifiers.js';
import type { RandomBytes } from '../../src/core/random.js';
import { runStem, seededRandom, stemAvailable } from '../interop/stem.js';

const STEM_OK = stemAvailable();
const RUN = STEM_OK || process.env['CI'] !== undefined;
const PERIOD_LEN = 1440;

function identity(rnd: RandomBytes): { seed: Uint8Array; expandedSecretKey: Uint8Array; publicKey: Uint8Array } {
  const seed = rnd(32);
  const expandedSecretKey = ed25519ExpandSeed(seed);
  return { seed, expandedSecretKey, publicKey: ed25519PublicFromExpanded(expandedSecretKey) };
}

function ipv4(rnd: RandomBytes): LinkSpecifier {
  const a = rnd(6);
  return ipv4LinkSpecifier(`${a[0]}.${a[1]}.${a[2]}.${a[3]}`, ((a[4]! << 8) | a[5]!) || 1);
}

function ipv6(rnd: RandomBytes): LinkSpecifier {
  const a = rnd(18);
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push((((a[2 * i]! << 8) | a[2 * i + 1]!) >>> 0).toString(16));
  if (a[0]! & 1) groups[3] = groups[4] = groups[5] = '0'; // exercise "::" compression
  return ipv6LinkSpecifier(groups.join(':'), (a[16]! << 8) | a[17]!);
}

/** Intro point with a varying mix of all four link-specifier types (and sometimes an unknown one). */
function introPoint(rnd: RandomBytes, i: number): IntroPointInput {
  const specs: LinkSpecifier[] = [];
  switch (i % 4) {
    case 0:
      specs.push(ipv4(rnd), legacyIdLinkSpecifier(rnd(20)), ed25519IdLinkSpecifier(rnd(32)));
      break;
    case 1:
      specs.push(ipv6(rnd), legacyIdLinkSpecifier(rnd(20)), ed25519IdLinkSpecifier(rnd(32)));
      break;
    case 2:
      specs.push(ipv4(rnd), legacyIdLinkSpecifier(rnd(20)), ed25519IdLinkSpecifier(rnd(32)), ipv6(rnd));
      break;
    default:
      // tor copies unknown types verbatim; stem keeps them as plain LinkSpecifier.
      specs.push(ipv4(rnd), legacyIdLinkSpecifier(rnd(20)), { type: 0x7f, data: rnd(5) });
  }
  return {
    linkSpecifiers: specs,
    onionKey: x25519PublicKey(rnd(32)),
    authKey: ed25519PublicFromExpanded(ed25519ExpandSeed(rnd(32))),
    encKey: x25519PublicKey(rnd(32)),
  };
}

function rsaSigner(): { keyDer: Uint8Array; signDigest: (d: Uint8Array) => Uint8Array } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 65537 });
  const keyDer = new Uint8Array(publicKey.export({ type: 'pkcs1', format: 'der' }));
  return {
    keyDer,
    signDigest: (d) => new Uint8Array(privateEncrypt({ key: privateKey, padding: cryptoConstants.RSA_PKCS1_PADDING }, d)),
  };
}

interface Case {
  readonly name: string;
  readonly nIntro: number;
  readonly revisionCounter: bigint;
  readonly singleOnionService?: boolean;
  readonly flowControl?: boolean;
  readonly pow?: boolean;
  readonly legacy?: boolean;
}

const NOW = 1_700_000_000; // 2023-11-14T22:13:20Z

const CASES: readonly Case[] = [
  { name: '4 intro points, every link-specifier type', nIntro: 4, revisionCounter: 12345n },
  { name: '20 intro points (the maximum), counter above 2^63', nIntro: 20, revisionCounter: 0x8000_0000_0000_0005n },
  { name: 'single-onion-service, flow-control and pow-params', nIntro: 2, revisionCounter: 1n, singleOnionService: true, flowControl: true, pow: true },
  { name: 'an intro point with a legacy RSA key and cross-certificate', nIntro: 2, revisionCounter: 77n, legacy: true },
];

describe.skipIf(!RUN)('stem cross-check', () => {
  it('/usr/bin/python3 imports stem and cryptography (required in CI)', () => {
    expect(STEM_OK).toBe(true);
  });

  describe('(a) we build, stem parses and decrypts', () => {
    const built = CASES.map((c) => {
      const rnd = seededRandom(`stem-a/${c.name}`);
      const id = identity(rnd);
      const period = timePeriodNum(NOW);
      const ips = Array.from({ length: c.nIntro }, (_, i) => introPoint(rnd, i));
      const legacy = c.legacy === true ? rsaSigner() : undefined;
      const introPoints = legacy === undefined ? ips : ips.map((ip, i) => (i === 1 ? { ...ip, legacy } : ip));
      const d = buildDescriptor({
        identity: { expandedSecretKey: id.expandedSecretKey, publicKey: id.publicKey },
        periodNum: period,
        periodLengthMinutes: PERIOD_LEN,
        revisionCounter: c.revisionCounter,
        nowSeconds: NOW,
        introPoints,
        singleOnionService: c.singleOnionService,
        flowControl: c.flowControl === true ? DEFAULT_FLOW_CONTROL : undefined,
        powParams: c.pow === true ? { seed: rnd(32), suggestedEffort: 250, expirationSeconds: NOW + 7200 } : undefined,
        randomBytes: rnd,
      });
      const address = encodeOnionAddress(id.publicKey);
      const ours = decodeDescriptor(d.text, { identityPublicKey: id.publicKey, nowSeconds: NOW });
      return { c, id, period, introPoints, d, address, ours };
    });
    let stemOut: Record<string, any>[] | undefined;
    const stem = (): Record<string, any>[] =>
      (stemOut ??= runStem(
        built.map((b) => ({
          op: 'parse',
          descriptor: b.d.text,
          address: b.address,
          identity_public_key: toHex(b.id.publicKey),
          blinding_nonce: toHex(blindingParam(b.id.publicKey, b.period, PERIOD_LEN)),
        })),
      ));

    built.forEach((b, k) => {
      it(`${b.c.name}: outer fields, signature, blinded key`, () => {
        const s = stem()[k]!;
        expect(s['error'], String(s['trace'])).toBeUndefined();
        expect(s['stem_signature_valid']).toBe(true);
        expect(s['identity_from_address']).toBe(toHex(b.id.publicKey));
        const o = s['outer'];
        expect(o.version).toBe(3);
        expect(o.lifetime).toBe(180);
        expect(o.revision_counter).toBe(String(b.c.revisionCounter));
        expect(o.signature).toBe(toHex(b.ours.signature));
        const sc = o.signing_cert;
        expect(sc.type).toBe(8);
        expect(sc.expiration_hours).toBe(certExpirationHours(NOW, HS_DESC_CERT_LIFETIME));
        expect(sc.expiration_hours).toBe(b.ours.signingKeyCert.expirationHours);
        expect(sc.key).toBe(toHex(b.d.descriptorSigningPublicKey));
        expect(sc.signing_key).toBe(toHex(b.d.blindedPublicKey));
        expect(sc.signature_valid).toBe(true);
        expect(sc.extensions).toEqual([{ type: 4, flags: 0, data: toHex(b.d.blindedPublicKey) }]);
        // stem's own key blinding (pure-Python ed25519) agrees with ours.
        expect(s['stem_blinded_key']).toBe(toHex(b.d.blindedPublicKey));
        expect(s['blinded_key']).toBe(toHex(b.d.blindedPublicKey));
        expect(s['middle']).toEqual({ auth_type: 'x25519', ephemeral_key: toHex(b.ours.middle.ephemeralKey), auth_clients: 16 });
      });

      it(`${b.c.name}: inner layer and every intro point`, () => {
        const s = stem()[k]!;
        expect(s['error'], String(s['trace'])).toBeUndefined();
        const inner = s['inner'];
        expect(inner.formats).toEqual([2]);
        expect(inner.is_single_service).toBe(b.c.singleOnionService === true);
        const extra = (inner.unrecognized_lines as string[]).filter((l) => !l.startsWith('single-onion-service'));
        const want: string[] = [];
        if (b.c.flowControl === true) want.push('flow-control 1-2 31');
        if (b.c.pow === true) want.push(b.ours.innerPlaintext.split('\n').find((l) => l.startsWith('pow-params v1 '))!);
        expect(extra).toEqual(want);
        expect(b.ours.inner.flowControl).toEqual(b.c.flowControl === true ? DEFAULT_FLOW_CONTROL : undefined);

        const ips = inner.introduction_points as Record<string, any>[];
        expect(ips.length).toBe(b.introPoints.length);
        expect(b.ours.introPoints.length).toBe(b.introPoints.length);
        ips.forEach((sip, i) => {
          const input = b.introPoints[i]!;
          const ours = b.ours.introPoints[i]!;
          const specs = sip['link_specifiers'] as Record<string, any>[];
          expect(specs.map((x) => ({ type: x['type'], data: x['value'] }))).toEqual(input.linkSpecifiers.map((ls) => ({ type: ls.type, data: toHex(ls.data) })));
          expect(ours.linkSpecifiers.map((ls) => ({ type: ls.type, data: toHex(ls.data) }))).toEqual(specs.map((x) => ({ type: x['type'], data: x['value'] })));
          specs.forEach((x, j) => {
            const info = describeLinkSpecifier(input.linkSpecifiers[j]!);
            if (info.kind === 'ipv4') expect({ a: x['address'], p: x['port'] }).toEqual({ a: info.address, p: info.port });
            else if (info.kind === 'ipv6') {
              expect(toHex(parseIpv6(x['address']))).toBe(toHex(parseIpv6(info.address)));
              expect(x['port']).toBe(info.port);
            } else expect(x['address']).toBeUndefined();
          });
          expect(sip['onion_key']).toBe(toHex(input.onionKey));
          expect(sip['auth_key']).toBe(toHex(input.authKey));
          expect(sip['enc_key']).toBe(toHex(input.encKey));
          expect(toHex(ours.onionKey)).toBe(sip['onion_key']);
          expect(toHex(ours.authKey)).toBe(sip['auth_key']);
          expect(toHex(ours.encKey)).toBe(sip['enc_key']);
          const ipExp = certExpirationHours(NOW - (NOW % 3600), HS_DESC_CERT_LIFETIME);
          const ac = sip['auth_key_cert'];
          expect(ac).toMatchObject({ type: 9, expiration_hours: ipExp, key: toHex(input.authKey), signing_key: toHex(b.d.descriptorSigningPublicKey), signature_valid: true });
          expect(ours.authKeyCert.expirationHours).toBe(ipExp);
          const ec = sip['enc_key_cert'];
          // The enc-key certificate certifies the ed25519 form (sign bit 0) of the enc key, computed by the script on its own.
          expect(ec).toMatchObject({ type: 11, expiration_hours: ipExp, key: sip['enc_key_ed25519'], signing_key: toHex(b.d.descriptorSigningPublicKey), signature_valid: true });
          expect(toHex(ours.encKeyCert.certifiedKey)).toBe(sip['enc_key_ed25519']);
          if (input.legacy === undefined) {
            expect(sip['legacy_key']).toBeNull();
            expect(ours.legacy).toBeUndefined();
          } else {
            expect(sip['legacy_crosscert']).toEqual({
              key_bits: 1024,
              exponent: 65537,
              ed_key: toHex(b.d.descriptorSigningPublicKey),
              expiration_hours: Math.ceil((NOW - (NOW % 3600) + HS_DESC_CERT_LIFETIME) / 3600),
              signature_valid: true,
              length_ok: true,
            });
            expect(toHex(ours.legacy!.keyDer)).toBe(toHex(input.legacy.keyDer));
          }
        });
      });
    });
  });

  describe('(b) stem builds, we decode', () => {
    const now = Math.floor(Date.now() / 1000);
    const period = timePeriodNum(now);
    const rnd = seededRandom('stem-b');
    const id = identity(rnd);
    const signingSeed = rnd(32);
    const signingPub = ed25519PublicFromExpanded(ed25519ExpandSeed(signingSeed));
    const ips = Array.from({ length: 5 }, (_, i) => introPoint(rnd, i));
    const introExpiry = now + 3 * 3600 + 1234;
    const base = {
      op: 'create',
      identity_seed: toHex(id.seed),
      signing_seed: toHex(signingSeed),
      blinding_nonce: toHex(blindingParam(id.publicKey, period, PERIOD_LEN)),
      expiration_unix: introExpiry,
      intro_points: ips.map((ip) => ({
        link_specifiers: ip.linkSpecifiers.map((ls) => ({ type: ls.type, value: toHex(ls.data) })),
        onion_key: toHex(ip.onionKey),
        enc_key: toHex(ip.encKey),
        auth_key: toHex(ip.authKey),
      })),
    };
    let out: Record<string, any>[] | undefined;
    const stem = (): Record<string, any>[] =>
      (out ??= runStem([
        { ...base, revision_counter: 987654321, intro_signing: 'descriptor' },
        { ...base, revision_counter: 5, intro_signing: 'random' },
        { ...base, revision_counter: 6, intro_signing: 'descriptor', inner_attr: { 'flow-control': '1-2 31' } },
      ]));
    const created = (i: number): Record<string, any> => {
      const s = stem()[i]!;
      expect(s['error'], String(s['trace'])).toBeUndefined();
      expect(s['address']).toBe(encodeOnionAddress(id.publicKey));
      return s;
    };

    it('stem descriptor with intro certs signed by the descriptor signing key: every intro point decodes', () => {
      const s = created(0);
      const d = decodeDescriptor(s['descriptor'], { identityPublicKey: id.publicKey, nowSeconds: now });
      expect(d.periodNum).toBe(period);
      expect(d.revisionCounter).toBe(987654321n);
      expect(d.lifetimeMinutes).toBe(180);
      expect(toHex(d.descriptorSigningKey)).toBe(toHex(signingPub));
      expect(d.middle.authClients.length).toBe(16);
      expect(d.inner.create2Formats).toEqual([2]);
      expect(d.inner.flowControl).toBeUndefined();
      expect(d.inner.powParams).toBeUndefined();
      expect(d.inner.skippedIntroPoints).toEqual([]);
      expect(d.introPoints.length).toBe(ips.length);
      // stem: signing-key cert expires floor((utcnow + 54 h)/3600) hours; intro certs floor(expiration/3600).
      expect(Math.abs(d.signingKeyCert.expirationHours - Math.floor((now + HS_DESC_CERT_LIFETIME) / 3600))).toBeLessThanOrEqual(1);
      d.introPoints.forEach((ip, i) => {
        const input = ips[i]!;
        expect(ip.linkSpecifiers.map((ls) => [ls.type, toHex(ls.data)])).toEqual(input.linkSpecifiers.map((ls) => [ls.type, toHex(ls.data)]));
        expect(toHex(ip.onionKey)).toBe(toHex(input.onionKey));
        expect(toHex(ip.authKey)).toBe(toHex(input.authKey));
        expect(toHex(ip.encKey)).toBe(toHex(input.encKey));
        expect(ip.authKeyCert.expirationHours).toBe(Math.floor(introExpiry / 3600));
        // stem quirk: the enc-key cert certifies the AUTH key; tor does not compare, nor do we.
        expect(toHex(ip.encKeyCert.certifiedKey)).toBe(toHex(input.authKey));
        expect(toHex(ip.encKeyCert.signingKey!)).toBe(toHex(signingPub));
        expect(ip.legacy).toBeUndefined();
      });
      // Same result with the period pinned instead of searched.
      const pinned = decodeDescriptor(s['descriptor'], { identityPublicKey: id.publicKey, periodNum: period, nowSeconds: now });
      expect(pinned.introPoints.length).toBe(ips.length);
      expect(s['descriptor'].endsWith('\n')).toBe(false);
      expect(s['inner_plaintext'].endsWith('\n')).toBe(false);
    });

    it("stem's default (a random signing key per intro point): tor and we drop every intro point", () => {
      const s = created(1);
      const d = decodeDescriptor(s['descriptor'], { identityPublicKey: id.publicKey, nowSeconds: now });
      expect(d.introPoints).toEqual([]);
      expect(d.inner.skippedIntroPoints.map((x) => x.code)).toEqual(ips.map(() => 'TB_ERR_CERT_KEY_MISMATCH'));
    });

    it('flow-control given to stem through attr decodes', () => {
      const s = created(2);
      const d = decodeDescriptor(s['descriptor'], { identityPublicKey: id.publicKey, nowSeconds: now });
      expect(d.inner.flowControl).toEqual({ versions: '1-2', sendmeInc: 31 });
      expect(d.introPoints.length).toBe(ips.length);
    });

    it('expiry: intro certs expired → skipped; signing cert expired → rejected', () => {
      const s = created(0);
      const later = introExpiry + 3600;
      const d = decodeDescriptor(s['descriptor'], { identityPublicKey: id.publicKey, periodNum: period, nowSeconds: later });
      expect(d.introPoints).toEqual([]);
      expect(d.inner.skippedIntroPoints.map((x) => x.code)).toEqual(ips.map(() => 'TB_ERR_CERT_EXPIRED'));
      const muchLater = timePeriodStart(period) + 4 * 86400;
      expect(() => decodeDescriptor(s['descriptor'], { identityPublicKey: id.publicKey, periodNum: period, nowSeconds: muchLater })).toThrow(
        expect.objectContaining({ code: 'TB_ERR_HSDESC_CERT_EXPIRED' }),
      );
    });

    it('a wrong identity key is refused (blinded key mismatch)', () => {
      const s = created(0);
      const other = identity(seededRandom('stem-b/other'));
      expect(() => decodeDescriptor(s['descriptor'], { identityPublicKey: other.publicKey, nowSeconds: now })).toThrow(
        expect.objectContaining({ code: 'TB_ERR_HSDESC_WRONG_BLINDED_KEY' }),
      );
      // and the decoded signature bytes are stem's
      const sig = /\nsignature (\S+)$/.exec(s['descriptor'])![1]!;
      expect(toHex(decodeDescriptor(s['descriptor'], { identityPublicKey: id.publicKey, nowSeconds: now }).signature)).toBe(toHex(fromBase64(sig)));
    });
  });
});
