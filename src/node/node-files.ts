/**
 * The node's files under `node.data_dir`, written before tor starts (src/node/daemon.ts): the
 * data directory and tor's DataDirectory (0700, ours), and the HiddenServiceDir `hs/`
 * (0700) with a copy of the master key (files 0600) and `ob_config`
 * (`MasterOnionAddress <master>.onion`, 0600), as `HiddenServiceOnionBalanceInstance` requires
 * (tor-facts §1.8, §4).
 */
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadMasterKey } from '../adapters/config/load.js';
import type { Config } from '../adapters/config/schema.js';
import { writeKeyDirectory, type LoadedKeyDirectory } from '../adapters/fs/key-store.js';
import type { Logger } from '../adapters/log/logger.js';
import { TorbalanceError } from '../core/errors.js';
import { obConfigContent } from '../core/node-torrc.js';

/** Layout of `node.data_dir`. */
export interface NodePaths {
  readonly dataDir: string;
  /** tor's DataDirectory (torrc, control.sock, tor-output.log). */
  readonly torDir: string;
  /** The HiddenServiceDir (master key copy + ob_config). */
  readonly hsDir: string;
  readonly obConfig: string;
}

/** The paths the node uses under `dataDir`. */
export function nodePaths(dataDir: string): NodePaths {
  const hsDir = join(dataDir, 'hs');
  return { dataDir, torDir: join(dataDir, 'tor'), hsDir, obConfig: join(hsDir, 'ob_config') };
}

function dataDirError(message: string, cause?: unknown): TorbalanceError {
  return new TorbalanceError('TB_ERR_NODE_DATA_DIR', 'config', message, cause === undefined ? {} : { cause });
}

/** Create `dir` with mode 0700 (tightening an existing one) and check it is ours. */
async function privateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await stat(dir);
    if (!st.isDirectory()) throw dataDirError(`${dir} is not a directory`);
    const uid = process.getuid?.();
    if (uid !== undefined && uid !== 0 && st.uid !== uid) {
      throw dataDirError(`${dir} is owned by uid ${st.uid}, not by this user (uid ${uid})`);
    }
    if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
  } catch (e) {
    if (e instanceof TorbalanceError) throw e;
    throw dataDirError(`cannot prepare directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, e);
  }
}

/** The master key as loaded, and where the node keeps its files. */
export interface NodeFiles {
  /** The master key. Secret: never log. */
  readonly key: LoadedKeyDirectory;
  readonly masterAddress: string;
  readonly paths: NodePaths;
}

/**
 * Load the master key (key-store permission checks; target ≠ master; warnings are logged) and
 * write the data directory, tor's directory and the HiddenServiceDir for tor.
 */
export async function prepareNodeFiles(config: Config, log: Logger): Promise<NodeFiles> {
  const paths = nodePaths(config.node.data_dir);
  const { key, masterAddress, warnings } = await loadMasterKey(config);
  for (const w of warnings) log.warn(w);
  await privateDir(paths.dataDir);
  await privateDir(paths.torDir);
  await writeKeyDirectory(paths.hsDir, key.keypair, { force: true });
  await writeFile(paths.obConfig, obConfigContent(masterAddress), { mode: 0o600 });
  await chmod(paths.obConfig, 0o600);
  return { key, masterAddress, paths };
}
