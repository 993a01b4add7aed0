/**
 * Keeping the logs of a failed run (test/integration/global-setup.ts): the test harness's own
 * need, so it lives here rather than in `torbalance testnet` (src/adapters/tor/testnet.ts).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestnetDescription } from '../../src/adapters/tor/testnet.js';

/** The state file `torbalance testnet up` writes in its directory. */
const STATE_FILE = 'testnet.json';

/**
 * Copy `torrc`, `tor-output.log` and `info.log` of every node directory under `baseDir` to
 * `dest/<nickname>/` (no keys), plus the network's description: `description` when given (a
 * running network), else `baseDir/testnet.json` if present.
 */
export async function preserveTestnetLogs(baseDir: string, dest: string, description?: TestnetDescription): Promise<void> {
  await mkdir(dest, { recursive: true });
  const state = join(baseDir, STATE_FILE);
  if (description !== undefined) await writeFile(join(dest, STATE_FILE), JSON.stringify(description, null, 2) + '\n');
  else if (existsSync(state)) await copyFile(state, join(dest, STATE_FILE)).catch(() => undefined);
  const entries = await readdir(baseDir, { withFileTypes: true }).catch(() => []);
  for (const ent of entries) {
    if (!ent.isDirectory()) continue;
    const to = join(dest, ent.name);
    await mkdir(to, { recursive: true });
    for (const f of ['torrc', 'tor-output.log', 'info.log']) {
      const from = join(baseDir, ent.name, f);
      if (existsSync(from)) await copyFile(from, join(to, f)).catch(() => undefined);
    }
  }
}
