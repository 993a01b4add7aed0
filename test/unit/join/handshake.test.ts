/** The join handshake: a full round trip and each refusal/verification path. */
import { describe, expect, it } from 'vitest';
import {
  JoinFrameDecoder,
  JoinRefusedError,
  acceptJoin,
  createJoinRequest,
  decodeJoinToken,
  encodeJoinToken,
  issueJoinToken,
  openJoinResponse,
  refuseJoin,
  verifyJoinRequest,
  type VerifiedJoin,
} from '../../../src/core/join/index.js';
import { CLUSTER_SECRET, JOINER, MASTER, NOW, OTHER_MASTER, sampleBundle, seededRandom } from './helpers.js';

function body(frame: Uint8Array): Uint8Array {
  const d = new JoinFrameDecoder();
  const out = d.push(frame);
  expect(out).toHaveLength(1);
  return out[0]!;
}

function okOf(v: VerifiedJoin): VerifiedJoin & { ok: true } {
  if (!v.ok) throw new Error(`expected ok, got ${v.reason}`);
  return v;
}

describe('join handshake', () => {
  const rnd = seededRandom('hs');
  const token = decodeJoinToken(encodeJoinToken(issueJoinToken(CLUSTER_SECRET, MASTER, 7101, NOW + 3600, rnd)));

  it('round trip: the joiner opens the bundle the node sealed', () => {
    const { frame, state } = createJoinRequest(token, JOINER, rnd);
    const v = okOf(verifyJoinRequest(body(frame), CLUSTER_SECRET, MASTER, NOW));
    expect(v.tokenId).toBe(token.claims.id);
    expect(v.joiner).toBe(JOINER);
    expect(v.expiresAt).toBe(NOW + 3600);
    const bundle = openJoinResponse(state, body(acceptJoin(v, sampleBundle(), rnd)));
    expect(bundle).toEqual(sampleBundle());
  });

  it('refuses to seal a bundle whose peers are not of the cluster transport, or are host names', () => {
    const { frame } = createJoinRequest(token, JOINER, rnd);
    const v = okOf(verifyJoinRequest(body(frame), CLUSTER_SECRET, MASTER, NOW));
    const base = sampleBundle();
    const torPeer = `tor:${'a'.repeat(56)}.onion:7700`;
    for (const [transport, peers] of [
      ['tcp', ['tcp:127.0.0.1:7700', torPeer]],
      ['tor', [torPeer, 'tcp:127.0.0.1:7700']],
      ['tcp', ['tcp:node-2.example:7700']],
    ] as const) {
      const bad = { ...base, peers, settings: { ...base.settings, transport } };
      expect(() => acceptJoin(v, bad, rnd), `${transport} ${peers.join(' ')}`).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_BUNDLE' }));
    }
    const ok = { ...base, peers: [torPeer], settings: { ...base.settings, transport: 'tor' as const } };
    expect(() => acceptJoin(v, ok, rnd)).not.toThrow();
  });

  it('refuses a request made for another master', () => {
    const { frame } = createJoinRequest(token, JOINER, rnd);
    expect(verifyJoinRequest(body(frame), CLUSTER_SECRET, OTHER_MASTER, NOW)).toEqual({ ok: false, reason: 'wrong-master' });
  });

  it('refuses a request under another cluster secret (bad proof)', () => {
    const { frame } = createJoinRequest(token, JOINER, rnd);
    expect(verifyJoinRequest(body(frame), new Uint8Array(32).fill(8), MASTER, NOW)).toEqual({ ok: false, reason: 'bad-proof' });
  });

  it('refuses an expired token (at and after expiresAt)', () => {
    const { frame } = createJoinRequest(token, JOINER, rnd);
    expect(verifyJoinRequest(body(frame), CLUSTER_SECRET, MASTER, NOW + 3600)).toEqual({ ok: false, reason: 'expired' });
    expect(okOf(verifyJoinRequest(body(frame), CLUSTER_SECRET, MASTER, NOW + 3599)).ok).toBe(true);
  });

  it('a refusal frame surfaces as JoinRefusedError with the reason', () => {
    const { state } = createJoinRequest(token, JOINER, rnd);
    let err: unknown;
    try {
      openJoinResponse(state, body(refuseJoin('used')));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JoinRefusedError);
    expect((err as JoinRefusedError).code).toBe('TB_ERR_JOIN_REFUSED');
    expect((err as JoinRefusedError).reason).toBe('used');
  });

  it('a response meant for another request does not open (transcript binding)', () => {
    const a = createJoinRequest(token, JOINER, rnd);
    const b = createJoinRequest(token, JOINER, rnd);
    const resp = acceptJoin(okOf(verifyJoinRequest(body(a.frame), CLUSTER_SECRET, MASTER, NOW)), sampleBundle(), rnd);
    expect(() => openJoinResponse(b.state, body(resp))).toThrow(expect.objectContaining({ code: 'TB_ERR_JOIN_RESPONSE' }));
  });
});
