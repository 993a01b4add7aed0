/**
 * Mesh transport over Tor: the same length-prefixed frames as ./tcp-transport.ts, carried
 * through onion services only.
 *
 * - Inbound: the node's tor hosts a small coordination onion service (torrc entries from
 *   src/core/mesh-torrc.ts: `HiddenServiceDir <data_dir>/mesh-hs`, `HiddenServicePort 7700
 *   unix:<data_dir>/mesh.sock`); tor forwards each onion stream to our unix socket, where this
 *   transport listens (socket mode 0600: only tor, running as the same user, connects).
 * - Outbound: `tor:<56>.onion:<port>` addresses are dialled through the node's SocksPort with
 *   src/adapters/net/socks-dialer.ts (`dialThroughTor`, remote name resolution, no DNS). The
 *   dialer returns a paused socket; the stream transport resumes it once its handlers are set.
 *
 * Onion dials are slow (a fresh rendezvous takes seconds), so the connect deadline and the
 * backoff floor default higher than for TCP. Frames, backpressure, idle handling and the
 * partition test hook are those of {@link StreamMeshTransport}.
 */
import type net from 'node:net';
import { TorbalanceError } from '../../core/errors.js';
import { parseMeshAddress, type MeshTransportKind } from '../../core/mesh/protocol.js';
import { dialThroughTor, type SocksEndpoint } from '../net/socks-dialer.js';
import {
  StreamMeshTransport,
  parseMeshAddressOrThrow,
  tcpConnector,
  type StreamConnector,
  type StreamTransportOptions,
} from './tcp-transport.js';

/** Connector for `tor:` addresses through the SocksPort at `socks`. */
export function torConnector(socks: SocksEndpoint): StreamConnector {
  return async (address: string, timeoutMs: number, signal: AbortSignal): Promise<net.Socket> => {
    const a = parseMeshAddressOrThrow(address);
    if (a.kind !== 'tor') throw new TorbalanceError('TB_ERR_MESH_ADDRESS', 'config', `${address} is not a tor: address`);
    return dialThroughTor(socks, { host: a.onion, port: a.port }, timeoutMs, signal);
  };
}

/** Options of {@link meshConnector}. */
export interface MeshConnectorOptions {
  /** The cluster transport (`cluster.transport`): the only address kind dialled. */
  readonly transport: MeshTransportKind;
  /** The node's SocksPort (required to dial with the tor transport). */
  readonly socks?: SocksEndpoint;
}

/**
 * The connector of a mesh node: with the tor transport it dials `tor:` addresses through
 * `socks` and refuses every other address (TB_ERR_MESH_ADDRESS) without touching the network
 * — no direct connection, no DNS lookup, whatever a peer managed to get past the decoder
 * (docs/SECURITY.md, "Mesh addresses"); without `socks` tor dials fail with
 * TB_ERR_MESH_NO_SOCKS. With the tcp transport it dials `tcp:` addresses only.
 */
export function meshConnector(o: MeshConnectorOptions): StreamConnector {
  const viaTor = o.socks === undefined ? undefined : torConnector(o.socks);
  return (address, timeoutMs, signal) => {
    const kind = parseMeshAddress(address)?.kind;
    if (kind !== o.transport) {
      return Promise.reject(new TorbalanceError('TB_ERR_MESH_ADDRESS', 'peer', `refusing to dial ${address.slice(0, 130)}: not a ${o.transport}: mesh address (the cluster transport)`));
    }
    if (o.transport === 'tcp') return tcpConnector(address, timeoutMs, signal);
    if (viaTor === undefined) {
      return Promise.reject(new TorbalanceError('TB_ERR_MESH_NO_SOCKS', 'config', `cannot dial ${address}: no SOCKS port configured for tor: peers`));
    }
    return viaTor(address, timeoutMs, signal);
  };
}

/** Options of {@link createTorTransport}. */
export type TorTransportOptions = Omit<StreamTransportOptions, 'listen' | 'connect'> & {
  /** The unix socket tor's HiddenServicePort forwards to (omit for dial-only). */
  readonly socketPath?: string;
  /** The node's tor SocksPort. */
  readonly socks: SocksEndpoint;
};

/** A mesh transport over Tor (see the module doc). Defaults: 60 s connect deadline, 2 s backoff floor. */
export function createTorTransport(o: TorTransportOptions): StreamMeshTransport {
  const { socketPath, socks, ...rest } = o;
  return new StreamMeshTransport({
    connectTimeoutMs: 60_000,
    backoff: { initialMs: 2000, maxMs: 60_000, factor: 2 },
    ...rest,
    ...(socketPath === undefined ? {} : { listen: { kind: 'unix', path: socketPath } }),
    connect: meshConnector({ transport: 'tor', socks }),
  });
}
