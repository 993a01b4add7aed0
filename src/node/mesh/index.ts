/**
 * The cluster mesh service:
 * {@link MeshNode} and its types, plus the transports and helpers it is built from.
 */
export { MeshNode, type ClusterView, type LocalMeshState, type MeshOptions, type MeshStats, type PeerView } from './mesh-node.js';
export {
  StreamMeshTransport,
  createTcpTransport,
  tcpConnector,
  type MeshConnection,
  type StreamListen,
  type TransportStats,
} from '../../adapters/mesh/tcp-transport.js';
export { createTorTransport, meshConnector, torConnector } from '../../adapters/mesh/tor-transport.js';
export { meshOnionPaths, meshTorrcEntries, parseMeshHostname, MESH_ONION_PORT } from '../../core/mesh-torrc.js';
