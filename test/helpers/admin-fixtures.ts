/**
 * Status fixtures for the admin unit tests: a node status and its cluster part, as the daemon
 * and ClusterService report them (a 3-node cluster seen from node0, the publisher; node1 alive,
 * node2 dead). Tests override what they look at.
 */
import type { ClusterStatus } from '../../src/node/cluster.js';
import type { NodeStatus } from '../../src/node/node-status.js';

/** ClusterStatus of node0 (publisher) with node1 alive and node2 dead. */
export function clusterStatusFixture(over: Partial<ClusterStatus> = {}): ClusterStatus {
  return {
    nodeId: 'aaaa1111',
    name: 'node0',
    transport: 'tcp',
    advertise: 'tcp:127.0.0.1:7000',
    state: 'running',
    clustered: true,
    torPublishes: false,
    role: 'publisher',
    publisher: 'aaaa1111',
    selfIsPublisher: true,
    leaseUntil: 1,
    electionReason: 'lowest id',
    selfHealthy: true,
    introPoints: 3,
    peers: [
      { id: 'bbbb2222', name: 'node1', addr: 'tcp:127.0.0.1:7001', state: 'alive', healthy: true, reasons: [], priority: 100, introPoints: 3, lastSeenAgoMs: 400 },
      { id: 'cccc3333', name: 'node2', addr: 'tcp:127.0.0.1:7002', state: 'dead', healthy: false, reasons: ['target'], priority: 100, introPoints: 0, lastSeenAgoMs: 9000 },
    ],
    publishing: ['aaaa1111', 'bbbb2222'],
    publish: undefined,
    failClosed: { active: false, pauses: 0 },
    mesh: undefined,
    lastModeError: undefined,
    meshOnion: undefined,
    ...over,
  };
}

/** NodeStatus of a healthy running node0 with {@link clusterStatusFixture} as its cluster part. */
export function nodeStatusFixture(over: Partial<NodeStatus> = {}): NodeStatus {
  return {
    name: 'node0',
    masterAddress: 'x'.repeat(56) + '.onion',
    targetAddress: '127.0.0.1',
    state: 'running',
    tor: { state: 'ready', pid: 42, restarts: 0, socksPort: 9050 },
    health: {
      healthy: true,
      target: { healthy: true, consecutiveFailures: 0, latencyMs: 12, lastCheckAt: 1 },
      tor: { progress: 100 },
      intro: { descriptor: 'present', introPoints: 3 },
      reasons: [],
    },
    proxy: { open: 1, accepted: 10, rejected: 2, rejectedBy: { limit: 1, 'proxy-header': 1 }, bytesIn: 1000, bytesOut: 5000, requests: 9, byStatus: { '200': 7, '404': 1, '502': 1 } },
    cluster: clusterStatusFixture(),
    ...over,
  };
}
