/**
 * Which config file a command reads (docs/config.md "Where the config is"): `--config FILE`
 * if given, else the `TORBALANCE_CONFIG` environment variable if set and not empty, else
 * {@link DEFAULT_CONFIG_PATH}. Every command that reads a node's config goes through
 * {@link loadConfigFrom}, so they all resolve it the same way; a missing file is
 * TB_ERR_CONFIG_NOT_FOUND naming where the path came from (exit code 78, src/cli/main.ts).
 */
import { TorbalanceError } from '../../core/errors.js';
import { loadConfig } from './load.js';
import type { Config } from './schema.js';

/** The config file when neither `--config` nor `TORBALANCE_CONFIG` names one. */
export const DEFAULT_CONFIG_PATH = '/etc/torbalance/torbalance.toml';

/** The environment variable that names the config file when `--config` is not given. */
export const CONFIG_ENV = 'TORBALANCE_CONFIG';

/** A chosen config path and where it came from. */
export interface ConfigPathChoice {
  readonly path: string;
  readonly from: 'flag' | 'env' | 'default';
}

/** The config path by precedence: the flag, then {@link CONFIG_ENV}, then the default. */
export function chooseConfigPath(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  defaultPath: string = DEFAULT_CONFIG_PATH,
): ConfigPathChoice {
  if (flag !== undefined && flag !== '') return { path: flag, from: 'flag' };
  const e = env[CONFIG_ENV];
  if (e !== undefined && e !== '') return { path: e, from: 'env' };
  return { path: defaultPath, from: 'default' };
}

function describe(c: ConfigPathChoice): string {
  switch (c.from) {
    case 'flag':
      return `--config ${c.path}`;
    case 'env':
      return `${CONFIG_ENV}=${c.path}`;
    case 'default':
      return `the default ${c.path} (no --config, ${CONFIG_ENV} not set)`;
  }
}

/**
 * Choose the config path ({@link chooseConfigPath}) and load it. A missing file is
 * TB_ERR_CONFIG_NOT_FOUND saying which of the three it was; other problems are loadConfig's.
 */
export async function loadConfigFrom(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
  defaultPath: string = DEFAULT_CONFIG_PATH,
): Promise<{ config: Config; path: string }> {
  const choice = chooseConfigPath(flag, env, defaultPath);
  try {
    return { config: await loadConfig(choice.path), path: choice.path };
  } catch (e) {
    if (e instanceof TorbalanceError && e.code === 'TB_ERR_CONFIG_NOT_FOUND') {
      throw new TorbalanceError(
        'TB_ERR_CONFIG_NOT_FOUND',
        'config',
        `no config file: ${describe(choice)} does not exist; pass --config FILE, set ${CONFIG_ENV}, or create ${defaultPath} (docs/OPERATIONS.md)`,
        { cause: e },
      );
    }
    throw e;
  }
}
