/**
 * torrc entries for a node's *coordination* onion service: the small, separate onion
 * service through which cluster nodes reach each other's mesh listener when the mesh runs
 * over Tor (the `tor:` transport, src/adapters/mesh/tor-transport.ts).
 *
 * Layout: a second HiddenServiceDir
 * `<data_dir>/mesh-hs` (0700, tor's `check_private_dir`) holding tor's three key files
 * (`hs_ed25519_secret_key`, `hs_ed25519_public_key`, `hostname`), with `HiddenServicePort
 * <port> unix:<socket>` forwarding onion streams to the mesh listener's unix socket. It has
 * nothing to do with the master key.
 *
 * Publishing while clustered (tor-facts §1.9): `PublishHidServDescriptors` is GLOBAL, so a
 * node in clustered mode (0) also stops tor from uploading this coordination service's
 * descriptors. The node therefore publishes them itself, with the same machinery as the
 * master (src/node/cluster.ts: an IntroCollector + Publisher whose identity is the mesh key
 * and whose input is only this node's own mesh intro points). For that the node must hold the
 * mesh key (src/node/cluster.ts generates it before tor's first start, tor accepts our key
 * files) and, with {@link MeshTorrcInput.onionBalanceSelf}, the service is an OnionBalance
 * instance of ITSELF: `HiddenServiceOnionBalanceInstance 1` plus `<mesh-hs>/ob_config` =
 * `MasterOnionAddress <mesh address>.onion` ({@link meshObConfigContent}; naming itself is
 * accepted, tor-facts §4). Its intro points then accept INTRODUCE2 under the subcredentials of
 * the time periods TP−1, TP and TP+1, so the harvested `desc_current` intro points can be
 * listed in BOTH published descriptors (the `desc_next` intro points cannot be read, §1.4).
 * `ob_config` must exist before tor starts (a missing file is a config error; enabling OB at
 * runtime leaves `ob_subcreds` unset until the next rotation, §1.8).
 *
 * tor facts used (tor manual, `hs_config.c`): each `HiddenServiceDir` starts a new service
 * group, and the `HiddenService*` lines after it belong to that service; `HiddenServicePort
 * VIRTPORT unix:PATH` is a valid target. Put these entries after any other service group.
 */
import { TorbalanceError } from './errors.js';
import { decodeOnionAddress } from './hs/address.js';
import type { TorrcEntry } from './torrc.js';

/** Default onion port of the coordination service. */
export const MESH_ONION_PORT = 7700;
/** Name of the coordination service's HiddenServiceDir inside the node's data dir. */
export const MESH_HS_DIR_NAME = 'mesh-hs';
/** tor's OnionBalance config file inside a HiddenServiceDir (`hs_ob.c`). */
export const MESH_OB_CONFIG_NAME = 'ob_config';
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
  /**
   * Make the service an OnionBalance instance of itself (`HiddenServiceOnionBalanceInstance 1`;
   * `<mesh-hs>/ob_config` from {@link meshObConfigContent} must exist before tor starts).
   * Needed when the node publishes the service's descriptors itself. Default false.
   */
  readonly onionBalanceSelf?: boolean;
}

/** Paths of the coordination service. */
export interface MeshOnionPaths {
  readonly hsDir: string;
  readonly socketPath: string;
  readonly hostnameFile: string;
  /** `<hsDir>/ob_config` (used with {@link MeshTorrcInput.onionBalanceSelf}). */
  readonly obConfigFile: string;
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
  return { hsDir, socketPath, hostnameFile: joinPath(hsDir, 'hostname'), obConfigFile: joinPath(hsDir, MESH_OB_CONFIG_NAME), port };
}

/**
 * The torrc entries of the coordination onion service:
 * `HiddenServiceDir <dataDir>/mesh-hs` and `HiddenServicePort <port> unix:<socket>`, plus
 * `HiddenServiceOnionBalanceInstance 1` with {@link MeshTorrcInput.onionBalanceSelf}.
 */
export function meshTorrcEntries(input: MeshTorrcInput): TorrcEntry[] {
  const p = meshOnionPaths(input);
  const e: TorrcEntry[] = [
    ['HiddenServiceDir', p.hsDir],
    ['HiddenServicePort', `${p.port} unix:${p.socketPath}`],
  ];
  if (input.onionBalanceSelf === true) e.push(['HiddenServiceOnionBalanceInstance', '1']);
  return e;
}

/**
 * The coordination service's `ob_config`: `MasterOnionAddress <its own address>.onion\n` (the
 * `.onion` suffix is mandatory, `hs_ob.c: get_onion_public_key`). Throws TB_ERR_MESH_TORRC
 * for an address that is not a valid v3 onion address.
 */
export function meshObConfigContent(meshAddress: string): string {
  let addr: string;
  try {
    addr = decodeOnionAddress(meshAddress).address;
  } catch (cause) {
    throw new TorbalanceError('TB_ERR_MESH_TORRC', 'config', 'the coordination service address is not a valid v3 onion address', { cause });
  }
  return `MasterOnionAddress ${addr}\n`;
}

/** Parse tor's `hostname` file (`<56 base32>.onion\n`) → the `.onion` name, or throw DecodeError-like config error. */
export function parseMeshHostname(text: string): string {
  const t = text.trim();
  if (!/^[a-z2-7]{56}\.onion$/.test(t)) throw new TorbalanceError('TB_ERR_MESH_TORRC', 'tor', 'the coordination service hostname file does not hold a v3 .onion name');
  return t;
}
