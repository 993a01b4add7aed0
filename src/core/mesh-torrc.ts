/**
 * torrc entries for a node's *coordination* onion service: the small, separate onion
 * service through which cluster nodes reach each other's mesh listener when the mesh runs
 * over Tor (the `tor:` transport, src/adapters/mesh/tor-transport.ts).
 *
 * Layout (/work/notes/cluster-contracts.md "Transports"): a second HiddenServiceDir
 * `<data_dir>/mesh-hs` whose key tor generates itself on first start (tor writes
 * `hs_ed25519_secret_key`, `hs_ed25519_public_key` and `hostname` into it; the directory must
 * be 0700, tor's `check_private_dir`), with `HiddenServicePort <port> unix:<socket>`
 * forwarding onion streams to the mesh listener's unix socket. It is NOT an OnionBalance
 * instance and has nothing to do with the master key.
 *
 * tor facts used (tor manual, `hs_config.c`): each `HiddenServiceDir` starts a new service
 * group, and the `HiddenService*` lines after it belong to that service; `HiddenServicePort
 * VIRTPORT unix:PATH` is a valid target. Put these entries after any other service group.
 *
 * Caveat (tor-facts.md §1.9): `PublishHidServDescriptors` is GLOBAL. A node in clustered
 * mode sets it to 0 for the master service, which also stops tor from uploading this
 * coordination service's descriptor; then peers cannot reach it unless something else
 * uploads that descriptor (e.g. HSPOST of `GETINFO hs/service/desc/id/<mesh address>`).
 */
import { TorbalanceError } from './errors.js';
import type { TorrcEntry } from './torrc.js';

/** Default onion port of the coordination service. */
export const MESH_ONION_PORT = 7700;
/** Name of the coordination service's HiddenServiceDir inside the node's data dir. */
export const MESH_HS_DIR_NAME = 'mesh-hs';
/** Name of the mesh listener's unix socket inside the node's data dir. */
export const MESH_SOCKET_NAME = 'mesh.sock';
/** Unix socket paths longer than this do not fit `sockaddr_un.sun_path` (108 with the NUL on Linux). */
export const MAX_UNIX_SOCKET_PATH = 107;

/** Input of {@link meshTorrcEntries}. */
export interface MeshTorrcInput {
  /** The node's data directory (absolute, no whitespace). */
  readonly dataDir: string;
  /** Onion port peers dial. Default {@link MESH_ONION_PORT}. */
  readonly port?: number;
  /** Unix socket of the mesh listener. Default `<dataDir>/mesh.sock`. */
  readonly socketPath?: string;
}

/** Paths of the coordination service. */
export interface MeshOnionPaths {
  readonly hsDir: string;
  readonly socketPath: string;
  readonly hostnameFile: string;
  readonly port: number;
}

function bad(message: string): TorbalanceError {
  return new TorbalanceError('TB_ERR_MESH_TORRC', 'config', message);
}

function checkPath(what: string, p: string): void {
  if (!p.startsWith('/') || /[\s\0"\\]/.test(p)) throw bad(`${what} must be an absolute path without whitespace, quotes or backslashes`);
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/** The coordination service's paths for `input` (validated; throws TB_ERR_MESH_TORRC). */
export function meshOnionPaths(input: MeshTorrcInput): MeshOnionPaths {
  checkPath('data directory', input.dataDir);
  const port = input.port ?? MESH_ONION_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad('mesh onion port must be from 1 to 65535');
  const hsDir = joinPath(input.dataDir, MESH_HS_DIR_NAME);
  const socketPath = input.socketPath ?? joinPath(input.dataDir, MESH_SOCKET_NAME);
  checkPath('mesh unix socket', socketPath);
  if (new TextEncoder().encode(socketPath).length > MAX_UNIX_SOCKET_PATH) {
    throw bad(`mesh unix socket path is longer than ${MAX_UNIX_SOCKET_PATH} bytes; use a shorter data directory`);
  }
  return { hsDir, socketPath, hostnameFile: joinPath(hsDir, 'hostname'), port };
}

/**
 * The torrc entries of the coordination onion service:
 * `HiddenServiceDir <dataDir>/mesh-hs` and `HiddenServicePort <port> unix:<socket>`.
 */
export function meshTorrcEntries(input: MeshTorrcInput): TorrcEntry[] {
  const p = meshOnionPaths(input);
  return [
    ['HiddenServiceDir', p.hsDir],
    ['HiddenServicePort', `${p.port} unix:${p.socketPath}`],
  ];
}

/** Parse tor's `hostname` file (`<56 base32>.onion\n`) → the `.onion` name, or throw DecodeError-like config error. */
export function parseMeshHostname(text: string): string {
  const t = text.trim();
  if (!/^[a-z2-7]{56}\.onion$/.test(t)) throw new TorbalanceError('TB_ERR_MESH_TORRC', 'tor', 'the coordination service hostname file does not hold a v3 .onion name');
  return t;
}
