/**
 * Known answers for the HSDir hash ring: tor's hs_index / hsdir_index (test_hs_indexes) and
 * onionbalance's 255-node ring for the first and second descriptor (which period and SRV
 * each uses, the hs_index ring positions, the whole sorted ring and the 8 HSDirs).
 */
import { describe, expect } from 'vitest';
import { fromHex, toHex } from '../../../src/core/bytes.js';
import {
  buildRing,
  descriptorPlan,
  hsdirIndex,
  hsdirParams,
  hsIndex,
  responsibleHsdirs,
  type HsdirRelay,
  type RingConsensus,
} from '../../../src/core/hs/hashring.js';
import { expectedOf, forEachVector } from '../../helpers/vectors.js';

/** Node i = 1..255: RSA fingerprint byte i ×20, ed25519 id byte i ×32 (the vector's nodes_rule). */
function onionbalanceNodes(rule: string): HsdirRelay[] {
  expect(rule).toMatch(/^nodes i = 1\.\.255 \(255 nodes\); node i has RSA fingerprint = byte i repeated 20 times/);
  const out: HsdirRelay[] = [];
  for (let i = 1; i <= 255; i++) {
    out.push({ rsaFingerprint: toHex(new Uint8Array(20).fill(i)).toUpperCase(), ed25519Id: new Uint8Array(32).fill(i), nickname: `n${i}` });
  }
  return out;
}

describe('hashring vectors', () => {
  forEachVector('hashring', (v) => {
    const e = expectedOf(v);
    const inp = v.inputs;
    if (v.name === 'tor-hs-index') {
      expect(toHex(hsIndex(fromHex(inp['blinded_public_key']), inp['replica'], inp['time_period_length_minutes'], inp['time_period_num']))).toBe(
        e.get('hs_index'),
      );
    } else if (v.name === 'tor-hsdir-index') {
      expect(
        toHex(
          hsdirIndex(fromHex(inp['node_ed25519_identity']), fromHex(inp['shared_random_value']), inp['time_period_num'], inp['time_period_length_minutes']),
        ),
      ).toBe(e.get('hsdir_index'));
    } else if (v.name.startsWith('onionbalance-255-node-ring-')) {
      const nodes = onionbalanceNodes(inp['nodes_rule']);
      const len = inp['time_period_length_minutes'] as number;
      const consensus: RingConsensus = {
        validAfter: inp['consensus_valid_after_unix'],
        votingIntervalSeconds: 3600,
        params: new Map([
          ['hsdir_n_replicas', inp['hsdir_n_replicas']],
          ['hsdir_spread_store', inp['hsdir_spread_store']],
        ]),
        sharedRandCurrent: { value: fromHex(inp['current_srv']) },
        sharedRandPrevious: { value: fromHex(inp['previous_srv']) },
      };
      expect(new Date(consensus.validAfter * 1000).toISOString().replace('.000', '')).toBe(inp['consensus_valid_after_utc']);
      const plan = descriptorPlan(consensus, { lengthMinutes: len, votingIntervalSeconds: 3600 });
      expect(plan.inPeriodBetweenTpAndSrv).toBe(e.get('in_period_between_tp_and_srv'));
      expect(plan.currentPeriodNum).toBe(e.get('current_time_period_num'));
      const which = inp['descriptor'] as string;
      if (which !== 'first' && which !== 'second') throw new Error(`unknown descriptor ${which}`);
      const s = which === 'first' ? plan.first : plan.second;
      expect(s.periodNum).toBe(e.get('time_period_num_used'));
      expect(toHex(s.srv)).toBe(e.get('srv_used'));
      expect(s.srvSource).toBe(which === 'first' ? 'previous' : 'current');

      const ring = buildRing(nodes, s.srv, s.periodNum, len);
      const byFp = new Map(nodes.map((n, i) => [n.rsaFingerprint, i + 1]));
      expect(ring.map((r) => [byFp.get(r.relay.rsaFingerprint), toHex(r.hsdirIndex)])).toEqual(e.get('sorted_ring'));

      const hp = hsdirParams(consensus.params);
      expect(hp.replicas).toBe(inp['hsdir_n_replicas']);
      expect(hp.spreadStore).toBe(inp['hsdir_spread_store']);
      // Pass the ring unsorted: responsibleHsdirs must sort it itself.
      const r = responsibleHsdirs({
        blindedPublicKey: fromHex(inp['blinded_public_key']),
        periodNum: s.periodNum,
        periodLengthMinutes: len,
        ring: ring.slice().reverse(),
        replicas: hp.replicas,
        spread: hp.spreadStore,
      });
      expect(r.replicas.map((p) => ({ replica: p.replica, hs_index: toHex(p.hsIndex), ring_position: p.ringPosition }))).toEqual(e.get('hs_index'));
      expect(r.hsdirs.map((h) => h.rsaFingerprint.toLowerCase())).toEqual(e.get('responsible_hsdirs'));
      expect(r.hsdirs.map((h) => byFp.get(h.rsaFingerprint))).toEqual(e.get('responsible_hsdirs_node_i'));
      expect(e.get('responsible_hsdirs_note')).toMatch(/RSA identity fingerprints/);
    } else {
      throw new Error(`unrecognised hashring vector ${v.name}`);
    }
    e.done();
  });
});
