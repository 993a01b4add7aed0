/**
 * Unit tests for the v3 descriptor API: tor's layout and key/cert rules when building, the
 * 20-intro-point and 50000-byte limits, every rejection code of decodeDescriptor, expiry,
 * wrong blinded keys, period selection, client authorization, skipped intro points, and
 * the netdoc tokenizer rules.
 */
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64, toHex } from '../../src/core/bytes.js';
import { buildCert, certExpirationHours, parseCert } from '../../src/core/cert/ed25519-cert.js';
import { ed25519FromCurve25519, x25519PublicKey } from '../../src/core/crypto/index.js';
import { DecodeError, TorbalanceError } from '../../src/core/errors.js';
import { blindPublicKey, subcredential } from '../../src/core/hs/blinding.js';
import { buildDescriptor, decodeDescriptor, DEFAULT_FLOW_CONTROL, introPointInputFrom, type BuildDescriptorInput, type DecodeDescriptorOptions } from '../../src/core/hsdesc/descriptor.js';
import { decryptLayer } from '../../src/core/hsdesc/encryption.js';
import { encodeIntroPoint, parseRsaPublicKeyDer } from '../../src/core/hsdesc/inner.js';
import { ipv6LinkSpecifier } from '../../src/core/hsdesc/link-specifiers.js';
import { parseOuterLayer } from '../../src/core/hsdesc/outer.js';
import { checkRules, rule, tokenize } from '../../src/core/netdoc/tokenize.js';
import { assembleDescriptor, identityFrom, introBlocks, NOW, PERIOD, randomIntroPoint, seededRandom } from '../helpers/hsdesc-fixtures.js';

const identity = identityFrom('unit');

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof TorbalanceError) return e.code;
    return `untyped ${String(e)}`;
  }
  return undefined;
}

function build(over: Partial<BuildDescriptorInput> = {}, n = 3): ReturnType<typeof buildDescriptor> & { input: BuildDescriptorInput } {
  const rnd = seededRandom(`ips:${n}`);
  const input: BuildDescriptorInput = {
    identity,
    periodNum: PERIOD,
    periodLengthMinutes: 1440,
    revisionCounter: 98765n,
    nowSeconds: NOW,
    introPoints: Array.from({ length: n }, () => randomIntroPoint(rnd)),
    randomBytes: seededRandom('build'),
    ...over,
  };
  return { ...buildDescriptor(input), input };
}

const idOpts: DecodeDescriptorOptions = { identityPublicKey: identity.publicKey, nowSeconds: NOW };

describe('buildDescriptor', () => {
  it('writes tor’s layout and decodes to the same intro points', () => {
    const b = build({ flowControl: DEFAULT_FLOW_CONTROL });
    const t = b.text;
    expect(t).toMatch(/^hs-descriptor 3\ndescriptor-lifetime 180\ndescriptor-signing-key-cert\n-----BEGIN ED25519 CERT-----\n[A-Za-z0-9+/=\n]+-----END ED25519 CERT-----\nrevision-counter 98765\nsuperencrypted\n-----BEGIN MESSAGE-----\n[A-Za-z0-9+/=\n]+-----END MESSAGE-----\nsignature [A-Za-z0-9+/]{86}\n$/);
    for (const l of t.split('\n')) expect(l.length).toBeLessThanOrEqual(l.startsWith('signature ') ? 96 : 64);
    const d = decodeDescriptor(t, idOpts);
    expect(d.periodNum).toBe(PERIOD);
    expect(toHex(d.blindedPublicKey)).toBe(toHex(b.blindedPublicKey));
    expect(toHex(d.subcredential)).toBe(toHex(subcredential(identity.publicKey, blindPublicKey(identity.publicKey, PERIOD, 1440))));
    expect(d.revisionCounter).toBe(98765n);
    expect(d.introPoints.map(introPointInputFrom)).toEqual(b.input.introPoints);
    expect(d.inner.flowControl).toEqual(DEFAULT_FLOW_CONTROL);
    expect(d.innerPlaintext.startsWith('create2-formats 2\nflow-control 1-2 31\nintroduction-point ')).toBe(true);
    // 16 fake auth-client lines, fresh ephemeral key, middle padded to 10000 bytes.
    expect(d.middle.authClients.length).toBe(16);
    expect(d.middlePlaintext).toMatch(/^desc-auth-type x25519\ndesc-auth-ephemeral-key [A-Za-z0-9+/]{43}=\n(auth-client [A-Za-z0-9+/]{11} [A-Za-z0-9+/]{22} [A-Za-z0-9+/]{22}\n){16}encrypted\n-----BEGIN MESSAGE-----\n/);
    expect(d.middlePlaintext.endsWith('-----END MESSAGE-----')).toBe(true);
    const mid = decryptLayer({ blob: parseOuterLayer(t).superencryptedBlob, secretData: d.blindedPublicKey, subcredential: d.subcredential, revisionCounter: 98765n, layer: 'superencrypted' });
    expect(mid.paddedLength % 10000).toBe(0);
    // Certificates: type 08 signed by the blinded key, 54 h from now; IP certs 54 h from the hour.
    expect(d.signingKeyCert.certType).toBe(8);
    expect(toHex(d.signingKeyCert.signingKey!)).toBe(toHex(b.blindedPublicKey));
    expect(d.signingKeyCert.expirationHours).toBe(Math.ceil((NOW + 54 * 3600) / 3600));
    for (const [k, ip] of d.introPoints.entries()) {
      expect(ip.authKeyCert.certType).toBe(9);
      expect(ip.encKeyCert.certType).toBe(0x0b);
      expect(ip.authKeyCert.expirationHours).toBe(Math.floor(NOW / 3600) + 54);
      expect(ip.encKeyCert.expirationHours).toBe(Math.floor(NOW / 3600) + 54);
      expect(toHex(ip.encKeyCert.certifiedKey)).toBe(toHex(ed25519FromCurve25519(b.input.introPoints[k]!.encKey, 0)));
      expect(toHex(ip.authKeyCert.signingKey!)).toBe(toHex(d.descriptorSigningKey));
    }
  });

  it('is deterministic for a given random source and emits optional lines in tor’s order', () => {
    const seed = new Uint8Array(32).fill(0xab);
    const pow = { seed, suggestedEffort: 123, expirationSeconds: NOW + 7200 };
    const a = build({ randomBytes: seededRandom('x'), powParams: pow, singleOnionService: true, flowControl: DEFAULT_FLOW_CONTROL });
    const b = build({ randomBytes: seededRandom('x'), powParams: pow, singleOnionService: true, flowControl: DEFAULT_FLOW_CONTROL });
    expect(a.text).toBe(b.text);
    const d = decodeDescriptor(a.text, idOpts);
    expect(d.innerPlaintext.startsWith(`create2-formats 2\nsingle-onion-service\nflow-control 1-2 31\npow-params v1 ${toBase64(seed)} 123 2023-11-15T00:13:20\nintroduction-point `)).toBe(true);
    expect(d.inner.singleOnionService).toBe(true);
    expect(d.inner.powParams).toEqual(pow);
  });

  it('enforces 20 intro points and the 50000-byte limit with typed errors', () => {
    expect(codeOf(() => build({}, 21))).toBe('TB_ERR_HSDESC_TOO_MANY_INTRO_POINTS');
    const twenty = build({ flowControl: DEFAULT_FLOW_CONTROL }, 20);
    expect(twenty.text.length).toBeLessThan(50000);
    expect(decodeDescriptor(twenty.text, idOpts).introPoints.length).toBe(20);
    expect(codeOf(() => build({ maxSize: twenty.text.length }, 20))).toBe('TB_ERR_HSDESC_TOO_LARGE');
    expect(codeOf(() => decodeDescriptor(`${twenty.text}${'x'.repeat(50000)}`, idOpts))).toBe('TB_ERR_HSDESC_TOO_LARGE');
  });

  it('rejects bad inputs with TB_ERR_HSDESC_BUILD_INVALID', () => {
    expect(codeOf(() => build({ revisionCounter: -1n }))).toBe('TB_ERR_HSDESC_BUILD_INVALID');
    expect(codeOf(() => build({ identity: { ...identity, publicKey: new Uint8Array(32).fill(1) } }))).toBe('TB_ERR_HSDESC_BUILD_INVALID');
    const ip = randomIntroPoint(seededRandom('bad'));
    expect(codeOf(() => build({ introPoints: [{ ...ip, linkSpecifiers: [] }] }))).toBe('TB_ERR_HSDESC_BUILD_INVALID');
    expect(codeOf(() => build({ introPoints: [{ ...ip, onionKey: new Uint8Array(31) }] }))).toBe('TB_ERR_HSDESC_BUILD_INVALID');
    // u = p − 1 has no ed25519 form (u + 1 ≡ 0).
    const pm1 = new Uint8Array(32).fill(0xff);
    pm1[0] = 0xec;
    pm1[31] = 0x7f;
    expect(codeOf(() => build({ introPoints: [{ ...ip, encKey: pm1 }] }))).toBe('TB_ERR_HSDESC_BUILD_INVALID');
    expect(codeOf(() => build({ lifetimeMinutes: 721 }))).toBe('TB_ERR_HSDESC_BUILD_INVALID');
  });

  it('client authorization: the authorized client decrypts, others cannot', () => {
    const sk = new Uint8Array(32).fill(0x42);
    const others = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)].map(x25519PublicKey);
    const b = build({ authorizedClientKeys: [x25519PublicKey(sk), ...others] });
    const d = decodeDescriptor(b.text, { ...idOpts, clientAuthKey: sk });
    expect(d.introPoints.length).toBe(3);
    expect(d.middle.authClients.length).toBe(16);
    expect(d.descriptorCookie?.length).toBe(16);
    expect(codeOf(() => decodeDescriptor(b.text, idOpts))).toBe('TB_ERR_HSDESC_NEED_CLIENT_AUTH');
    expect(codeOf(() => decodeDescriptor(b.text, { ...idOpts, clientAuthKey: new Uint8Array(32).fill(9) }))).toBe('TB_ERR_HSDESC_BAD_CLIENT_AUTH');
  });

  it('round-trips IPv6 and unknown link specifiers verbatim', () => {
    const ip = randomIntroPoint(seededRandom('v6'));
    const specs = [...ip.linkSpecifiers, ipv6LinkSpecifier('2001:db8::1', 443), { type: 9, data: new Uint8Array([1, 2, 3]) }];
    const d = decodeDescriptor(build({ introPoints: [{ ...ip, linkSpecifiers: specs }] }).text, idOpts);
    expect(d.introPoints[0]!.linkSpecifiers).toEqual(specs);
  });
});

describe('decodeDescriptor period selection', () => {
  it('accepts the other active period around now, or a pinned one, and rejects others', () => {
    for (const tp of [PERIOD - 1, PERIOD, PERIOD + 1]) {
      const t = build({ periodNum: tp }).text;
      expect(decodeDescriptor(t, idOpts).periodNum).toBe(tp);
      expect(decodeDescriptor(t, { ...idOpts, periodNum: tp }).periodNum).toBe(tp);
    }
    const far = build({ periodNum: PERIOD + 2 }).text;
    expect(codeOf(() => decodeDescriptor(far, idOpts))).toBe('TB_ERR_HSDESC_WRONG_BLINDED_KEY');
    expect(decodeDescriptor(far, { ...idOpts, periodNum: PERIOD + 2 }).periodNum).toBe(PERIOD + 2);
    expect(codeOf(() => decodeDescriptor(far, { ...idOpts, periodNum: PERIOD }))).toBe('TB_ERR_HSDESC_WRONG_BLINDED_KEY');
    // A test network's short periods.
    const short = build({ periodNum: Math.floor((NOW / 60 - 720) / 30), periodLengthMinutes: 30 }).text;
    expect(decodeDescriptor(short, { ...idOpts, periodLengthMinutes: 30 }).periodNum).toBe(Math.floor((NOW / 60 - 720) / 30));
  });

  it('rejects another service’s descriptor and a bad caller key', () => {
    const other = identityFrom('other');
    expect(codeOf(() => decodeDescriptor(build().text, { identityPublicKey: other.publicKey, nowSeconds: NOW }))).toBe('TB_ERR_HSDESC_WRONG_BLINDED_KEY');
    const b = build();
    expect(codeOf(() => decodeDescriptor(b.text, { subcredential: b.subcredential, blindedPublicKey: new Uint8Array(32).fill(3), nowSeconds: NOW }))).toBe('TB_ERR_HSDESC_WRONG_BLINDED_KEY');
    expect(codeOf(() => decodeDescriptor(b.text, { subcredential: new Uint8Array(32).fill(4), blindedPublicKey: b.blindedPublicKey, nowSeconds: NOW }))).toBe('TB_ERR_HSDESC_SUPERENCRYPTED_MAC');
    expect(decodeDescriptor(b.text, { subcredential: b.subcredential, blindedPublicKey: b.blindedPublicKey, nowSeconds: NOW }).periodNum).toBeUndefined();
  });
});

describe('decodeDescriptor rejection codes', () => {
  const sub = (a: ReturnType<typeof assembleDescriptor>): DecodeDescriptorOptions => ({ subcredential: a.subcredential, blindedPublicKey: a.blindedPublicKey, nowSeconds: NOW });

  it('outer layer: parse, lifetime, cert, expiry, signature', () => {
    const a = assembleDescriptor({ identity });
    expect(decodeDescriptor(a.text, sub(a)).introPoints.length).toBe(1);
    expect(codeOf(() => decodeDescriptor(a.text.replace('revision-counter', 'revision-countr'), sub(a)))).toBe('TB_ERR_HSDESC_OUTER_PARSE');
    expect(codeOf(() => decodeDescriptor(a.text.replace('hs-descriptor 3', 'hs-descriptor 4'), sub(a)))).toBe('TB_ERR_HSDESC_OUTER_PARSE');
    expect(codeOf(() => decodeDescriptor(`extra-line\n${a.text}`, sub(a)))).toBe('TB_ERR_HSDESC_OUTER_PARSE');
    expect(codeOf(() => decodeDescriptor(`${a.text}extra-line\n`, sub(a)))).toBe('TB_ERR_HSDESC_OUTER_PARSE');
    expect(codeOf(() => decodeDescriptor(a.text.replace('descriptor-lifetime 180', 'descriptor-lifetime 721'), sub(a)))).toBe('TB_ERR_HSDESC_LIFETIME');
    expect(codeOf(() => decodeDescriptor(a.text.replace('descriptor-lifetime 180', 'descriptor-lifetime 720'), sub(a)))).toBe('TB_ERR_HSDESC_SIGNATURE');
    expect(codeOf(() => decodeDescriptor(a.text.replace('revision-counter 1234', 'revision-counter 1235'), sub(a)))).toBe('TB_ERR_HSDESC_SIGNATURE');
    const wrongType = assembleDescriptor({ identity, signingCertType: 9 });
    expect(codeOf(() => decodeDescriptor(wrongType.text, sub(wrongType)))).toBe('TB_ERR_HSDESC_CERT');
    const expired = assembleDescriptor({ identity, signingCertExpirationHours: Math.floor(NOW / 3600) - 1 });
    expect(codeOf(() => decodeDescriptor(expired.text, sub(expired)))).toBe('TB_ERR_HSDESC_CERT_EXPIRED');
    expect(codeOf(() => decodeDescriptor(a.text, { ...sub(a), nowSeconds: NOW + 55 * 3600 }))).toBe('TB_ERR_HSDESC_CERT_EXPIRED');
    // A certificate that does not parse.
    const p = parseOuterLayer(a.text);
    const badCert = toBase64(new Uint8Array([...p.signingKeyCert.encoded, 0]));
    const certText = a.text.replace(/-----BEGIN ED25519 CERT-----\n[^-]+-----END/, `-----BEGIN ED25519 CERT-----\n${(badCert.match(/.{1,64}/g) ?? []).join('\n')}\n-----END`);
    expect(codeOf(() => decodeDescriptor(certText, sub(a)))).toBe('TB_ERR_HSDESC_CERT');
  });

  it('middle layer: MAC and parse errors', () => {
    const broken = assembleDescriptor({ identity, middle: () => 'desc-auth-type x25519\nencrypted\n' });
    expect(codeOf(() => decodeDescriptor(broken.text, sub(broken)))).toBe('TB_ERR_HSDESC_MIDDLE_PARSE');
    const wrongType = assembleDescriptor({ identity, middle: (blob, eph) => `desc-auth-type x448\ndesc-auth-ephemeral-key ${toBase64(eph)}\nauth-client AAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA\nencrypted\n-----BEGIN MESSAGE-----\n${toBase64(blob)}\n-----END MESSAGE-----` });
    expect(codeOf(() => decodeDescriptor(wrongType.text, sub(wrongType)))).toBe('TB_ERR_HSDESC_MIDDLE_PARSE');
    const noClients = assembleDescriptor({ identity, middle: (blob, eph) => `desc-auth-type x25519\ndesc-auth-ephemeral-key ${toBase64(eph)}\nencrypted\n-----BEGIN MESSAGE-----\n${toBase64(blob)}\n-----END MESSAGE-----` });
    expect(codeOf(() => decodeDescriptor(noClients.text, sub(noClients)))).toBe('TB_ERR_HSDESC_MIDDLE_PARSE');
    // A plaintext that starts with NUL is empty after tor's cut at the first NUL.
    const nul = assembleDescriptor({ identity, middle: () => '\u0000desc-auth-type x25519\n' });
    expect(codeOf(() => decodeDescriptor(nul.text, sub(nul)))).toBe('TB_ERR_HSDESC_MIDDLE_PARSE');
    // An empty plaintext pads to nothing: the superencrypted blob is 48 bytes, which the outer parse rejects.
    const empty = assembleDescriptor({ identity, middle: () => '' });
    expect(codeOf(() => decodeDescriptor(empty.text, sub(empty)))).toBe('TB_ERR_HSDESC_OUTER_PARSE');
  });

  it('inner layer: parse, flow-control, pow-params, too many intro points, skipped blocks', () => {
    const ips = (n: number, seed: string) => {
      const r = seededRandom(seed);
      return Array.from({ length: n }, () => randomIntroPoint(r));
    };
    const mk = (f: (blocks: string) => string, n = 1) => assembleDescriptor({ identity, inner: (k, exp) => f(introBlocks(ips(n, 'in'), k, exp)) });
    const dec = (a: ReturnType<typeof assembleDescriptor>) => decodeDescriptor(a.text, sub(a));
    expect(codeOf(() => dec(mk((b) => `create2-formats 3\n${b}`)))).toBe('TB_ERR_HSDESC_INNER_PARSE');
    expect(codeOf(() => dec(mk((b) => b)))).toBe('TB_ERR_HSDESC_INNER_PARSE');
    expect(codeOf(() => dec(mk((b) => `create2-formats 2\nsingle-onion-service\nsingle-onion-service\n${b}`)))).toBe('TB_ERR_HSDESC_INNER_PARSE');
    expect(codeOf(() => dec(mk((b) => `create2-formats 2\nintro-auth-required password\n${b}`)))).toBe('TB_ERR_HSDESC_INNER_PARSE');
    expect(codeOf(() => dec(mk((b) => `create2-formats 2\nflow-control 1-2 40\n${b}`)))).toBe('TB_ERR_HSDESC_FLOW_CONTROL');
    expect(codeOf(() => dec(mk((b) => `create2-formats 2\nflow-control 1-2 0\n${b}`)))).toBe('TB_ERR_HSDESC_FLOW_CONTROL');
    expect(dec(mk((b) => `create2-formats 2\nflow-control 1-2 32\n${b}`)).inner.flowControl).toEqual({ versions: '1-2', sendmeInc: 32 });
    const seed = toBase64(new Uint8Array(32).fill(1));
    const v1 = `pow-params v1 ${seed} 10 2030-01-01T00:00:00\n`;
    expect(codeOf(() => dec(mk((b) => `create2-formats 2\n${v1}${v1}${b}`)))).toBe('TB_ERR_HSDESC_POW_PARAMS');
    expect(codeOf(() => dec(mk((b) => `create2-formats 2\npow-params v1 ${seed} 10\n${b}`)))).toBe('TB_ERR_HSDESC_POW_PARAMS');
    expect(codeOf(() => dec(mk((b) => `create2-formats 2\npow-params v1 ${seed} 10 2030-01-01\n${b}`)))).toBe('TB_ERR_HSDESC_POW_PARAMS');
    const unknown = dec(mk((b) => `create2-formats 2\npow-params v2 abc\n${v1}${b}`));
    expect(unknown.inner.unknownPowParams).toEqual([{ scheme: 'v2', args: ['abc'] }]);
    expect(unknown.inner.powParams?.expirationSeconds).toBe(1893456000);
    // 21 usable intro points: tor clients reject the descriptor.
    expect(codeOf(() => dec(mk((b) => `create2-formats 2\n${b}`, 21)))).toBe('TB_ERR_HSDESC_TOO_MANY_INTRO_POINTS');
    // A broken block is skipped and counted; with it the 21st does not count.
    const brokenBlock = (b: string) => b.replace(/onion-key ntor [^\n]+\n/, 'onion-key ntor AAAA\n');
    const skipped = dec(mk((b) => `create2-formats 2\n${brokenBlock(b)}`, 21));
    expect(skipped.introPoints.length).toBe(20);
    expect(skipped.inner.skippedIntroPoints).toEqual([{ index: 0, code: 'TB_ERR_HSDESC_INTRO_POINT', message: 'ntor onion-key has the wrong length' }]);
    // A syntax error inside an intro-point block fails the whole layer, as tor's first pass does.
    expect(codeOf(() => dec(mk((b) => `create2-formats 2\n${b.replace('-----END ED25519 CERT-----', '-----END ED25519 CERX-----')}`)))).toBe('TB_ERR_HSDESC_INNER_PARSE');
  });

  it('skips intro points with expired, mis-typed or foreign certificates', () => {
    const rnd = seededRandom('skip');
    const ip = randomIntroPoint(rnd);
    const cases: [string, (k: Parameters<NonNullable<Parameters<typeof assembleDescriptor>[0]['inner']>>[0], exp: number) => string][] = [
      ['TB_ERR_CERT_EXPIRED', (k) => introBlocks([ip], k, Math.floor(NOW / 3600) - 1)],
      [
        'TB_ERR_CERT_TYPE',
        (k, exp) =>
          encodeIntroPoint({ linkSpecifiers: ip.linkSpecifiers, onionKey: ip.onionKey, authKeyCert: buildCert({ certType: 0x0b, certifiedKey: ip.authKey, expirationHours: exp, signingKey: k }), encKey: ip.encKey, encKeyCert: buildCert({ certType: 0x0b, certifiedKey: ip.authKey, expirationHours: exp, signingKey: k }) }),
      ],
      ['TB_ERR_CERT_KEY_MISMATCH', (_k, exp) => introBlocks([ip], assembleDescriptor({ identity, seed: 'foreign' }).signingKey, exp)],
      ['TB_ERR_LINKSPEC_LENGTH', (k, exp) => introBlocks([ip], k, exp).replace(/^introduction-point \S+/, `introduction-point ${toBase64(new Uint8Array([1, 0, 5, 1, 2, 3, 4, 5]))}`)],
    ];
    for (const [code, block] of cases) {
      const a = assembleDescriptor({ identity, inner: (k, exp) => `create2-formats 2\n${block(k, exp)}${introBlocks([ip], k, exp)}` });
      const d = decodeDescriptor(a.text, sub(a));
      expect(d.introPoints.length, code).toBe(1);
      expect(d.inner.skippedIntroPoints.map((s) => s.code), code).toEqual([code]);
    }
  });
});

describe('netdoc tokenizer', () => {
  const code = (f: () => unknown): string | undefined => codeOf(f);
  it('splits items, objects and arguments like tor', () => {
    const t = tokenize('a  b\tc \nobj\n-----BEGIN X Y-----\nAAEC\n-----END X Y-----\nlast');
    expect(t.map((x) => [x.keyword, x.args, x.line])).toEqual([['a', ['b', 'c'], 1], ['obj', [], 2], ['last', [], 6]]);
    expect(Array.from(t[1]!.object!.data)).toEqual([0, 1, 2]);
    expect(t[1]!.object!.tag).toBe('X Y');
    expect(t[0]!.rest).toBe('b\tc ');
    expect(t[2]!.offset).toBe(t[1]!.endOffset);
  });
  it('rejects what it must, with line numbers', () => {
    expect(code(() => tokenize(' a\n'))).toBe('TB_ERR_NETDOC_SYNTAX');
    expect(code(() => tokenize('a\n\nb\n'))).toBe('TB_ERR_NETDOC_SYNTAX');
    expect(code(() => tokenize('a\u0000\n'))).toBe('TB_ERR_NETDOC_SYNTAX');
    expect(code(() => tokenize('a\r\n'))).toBe('TB_ERR_NETDOC_SYNTAX');
    expect(code(() => tokenize('-----BEGIN X-----\n'))).toBe('TB_ERR_NETDOC_SYNTAX');
    expect(code(() => tokenize('a\n-----BEGIN X-----\nAAAA\n'))).toBe('TB_ERR_NETDOC_OBJECT');
    expect(code(() => tokenize('a\n-----BEGIN X-----\nAAAA\n-----END Y-----\n'))).toBe('TB_ERR_NETDOC_OBJECT');
    expect(code(() => tokenize('a\n-----BEGIN X-----\nA!AA\n-----END X-----\n'))).toBe('TB_ERR_NETDOC_OBJECT');
    expect(code(() => tokenize('a\n-----BEGIN X-----\nAAAAA\n-----END X-----\n'))).toBe('TB_ERR_NETDOC_OBJECT');
    expect(code(() => tokenize(`a ${'x '.repeat(513)}\n`))).toBe('TB_ERR_NETDOC_SYNTAX');
    expect(code(() => tokenize('a\n'.repeat(10), { maxTokens: 5 }))).toBe('TB_ERR_NETDOC_TOO_LARGE');
    expect(code(() => tokenize('a\n', { maxLength: 1 }))).toBe('TB_ERR_NETDOC_TOO_LARGE');
    let err: unknown;
    try {
      tokenize('a\nb\n c\n');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).position).toBe(3);
  });
  it('checks counts, positions, arguments and objects', () => {
    const rules = [rule('first', 'T1_START', { eq: 1 }, 'none'), rule('many', 'T1N', { ge: 2 }, 'optional'), rule('obj', 'T01', 'NO_ARGS', 'required'), rule('end', 'T1_END', 'ARGS', 'none')];
    const ok = tokenize('first x\nmany a b\nunknown\n-----BEGIN Q-----\nAA==\n-----END Q-----\nmany c d e\nend\n');
    checkRules(ok, rules);
    const bad = ['first\nmany a b\nend\n', 'many a b\nfirst x\nend\n', 'first x\nend\n', 'first x\nmany a b\nend\nmore\n', 'first x\nmany a\nend\n', 'first x\nmany a b\nobj\nend\n', 'first x\nmany a b\nend\n-----BEGIN Q-----\nAA==\n-----END Q-----\n', 'first x\nfirst y\nmany a b\nend\n'];
    for (const b of bad) {
      expect(
        code(() => {
          checkRules(tokenize(b), rules);
        }),
        b,
      ).toBe('TB_ERR_NETDOC_RULE');
    }
  });
});

describe('RSA public key DER', () => {
  it('reads the modulus size and exponent of a PKCS#1 key', () => {
    const der = fromBase64('MIGJAoGBAMO3ZXrcA+PclKppGCh9TOG0H6mubTAgji4fLF87GelggQs5bnPdQeaSv4HgP42J/mMinSLpbg5LhL5gd7AqwOxe9cpEhbvwrM63ot7gkj2tJqs2PLlokqSxZBEAssKbE/8F2iVoEWoXd8g8Pn5nG7wRKDGGQRAjintrBSncTvfRAgMBAAE=');
    expect(parseRsaPublicKeyDer(der)).toEqual({ modulusBits: 1024, exponent: 65537n });
    expect(parseRsaPublicKeyDer(der.subarray(0, der.length - 1))).toBeUndefined();
    expect(parseRsaPublicKeyDer(new Uint8Array([0x30, 0x00]))).toBeUndefined();
  });
  it('parses certificates it builds', () => {
    const c = buildCert({ certType: 8, certifiedKey: new Uint8Array(32), expirationHours: certExpirationHours(NOW, 3600), signingKey: assembleDescriptor({ identity }).signingKey });
    expect(parseCert(c).expirationHours).toBe(Math.ceil(NOW / 3600) + 1);
  });
});
