/**
 * `torbalance init --dir DIR --target <addr>.onion [--import-hs-dir PATH] [--name N] [--force]`:
 * set up a node directory:
 * - `DIR/` (0700) with `DIR/master/`, the master key in tor's HiddenServiceDir format (0700,
 *   files 0600; src/adapters/fs/key-store.ts), either freshly generated from the OS CSPRNG
 *   (tor's `ed25519_keypair_generate`) or imported from an existing tor HiddenServiceDir
 *   (permission- and consistency-checked);
 * - `DIR/torbalance.toml` (0600), a minimal config that loads with `loadConfig`; everything
 *   else takes the documented defaults (docs/config.md).
 * With `--cluster`: also `DIR/cluster/` (0700) holding a fresh node key (`node_key`, 0600) and
 * the cluster secret (`secret`, 0600; fresh, or copied from `--cluster-secret FILE` so every
 * node of a cluster shares it), and a `[cluster]` table in the config (enabled when the mesh
 * can start: `--cluster-listen` given, or `--cluster-transport tor`).
 * Prints the master onion address on stdout. Refuses to overwrite an existing config or key
 * unless `--force` (TB_ERR_INIT_EXISTS / TB_ERR_KEYSTORE_EXISTS).
 */
import { constants } from 'node:fs';
import { chmod, mkdir, open, rename, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { CONFIG_FILE_NAME, parseConfigText } from '../../adapters/config/load.js';
import { exists, importTorHiddenServiceDir, writeKeyDirectory } from '../../adapters/fs/key-store.js';
import { NODE_SECRET_BYTES, readNodeSecret, writeNodeSecret } from '../../adapters/fs/node-secrets.js';
import { systemRandomBytes } from '../../adapters/system/random.js';
import { TorbalanceError } from '../../core/errors.js';
import { decodeOnionAddress } from '../../core/hs/address.js';
import { HsIdentityKeypair } from '../../core/hs/keys.js';

/** Options of {@link initNode}. */
export interface InitOptions {
  readonly dir: string;
  readonly target: string;
  readonly importHsDir?: string;
  readonly name?: string;
  readonly force?: boolean;
  /** Also create the cluster files and a `[cluster]` table. */
  readonly cluster?: InitClusterOptions;
}

/** Cluster part of {@link InitOptions}. */
export interface InitClusterOptions {
  readonly transport?: 'tcp' | 'tor';
  /** Mesh listener for tcp ("<IP>:<port>"). */
  readonly listen?: string;
  /** Bootstrap peers ("tcp:<IP>:<port>" / "tor:<onion>:7700"). */
  readonly peers?: readonly string[];
  readonly priority?: number;
  /** Copy this existing cluster secret file instead of generating one. */
  readonly secretFrom?: string;
}

/** What {@link initNode} created. */
export interface InitResult {
  readonly masterAddress: string;
  readonly configPath: string;
  readonly keyDir: string;
  /** Cluster files, with `--cluster`. */
  readonly cluster?: { readonly secretFile: string; readonly nodeKeyFile: string; readonly enabled: boolean };
}

/** Whether `init` can enable the cluster right away (the mesh has a listener). */
function clusterEnabled(c: InitClusterOptions): boolean {
  return (c.transport ?? 'tcp') === 'tor' || c.listen !== undefined;
}

/** The `[cluster]` table `init --cluster` appends. */
export function initClusterText(c: InitClusterOptions): string {
  const enabled = clusterEnabled(c);
  const lines = [
    '',
    '[cluster]',
    '# Cluster files (copy `secret` to every node out of band; node_key is this node\'s own).',
    ...(enabled ? [] : ['# Set listen (this node\'s mesh address, e.g. its WireGuard IP) and peers, then enable.']),
    `enabled = ${enabled}`,
    'secret_file = "cluster/secret"',
    'node_key_file = "cluster/node_key"',
    `transport = ${JSON.stringify(c.transport ?? 'tcp')}`,
    ...(c.listen === undefined ? [] : [`listen = ${JSON.stringify(c.listen)}`]),
    `peers = [${(c.peers ?? []).map((p) => JSON.stringify(p)).join(', ')}]`,
    ...(c.priority === undefined ? [] : [`priority = ${c.priority}`]),
    '',
  ];
  return lines.join('\n');
}

/** The config text `init` writes. */
export function initConfigText(opts: { name: string; target: string }): string {
  return `# torbalance node configuration (written by \`torbalance init\`).
# Reference: docs/config.md; every key with its default: config/torbalance.example.toml.
# Relative paths are relative to this file's directory.

[node]
name = ${JSON.stringify(opts.name)}
data_dir = "data"

[master]
# The master key (tor HiddenServiceDir format; directory 0700, secret key 0600).
key_dir = "master"

[target]
# The onion service being balanced.
address = ${JSON.stringify(opts.target)}
port = 80
mode = "http"
`;
}


/** Write `text` to `path` with mode 0600 from creation (temp file + rename). */
async function writePrivateFile(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await unlink(tmp).catch(() => undefined);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** Create a node directory (see the module comment). */
export async function initNode(options: InitOptions): Promise<InitResult> {
  const dir = resolve(options.dir);
  const configPath = join(dir, CONFIG_FILE_NAME);
  const keyDir = join(dir, 'master');
  const name = options.name ?? 'torbalance';
  let target: string;
  try {
    target = decodeOnionAddress(options.target).address;
  } catch (cause) {
    throw new TorbalanceError('TB_ERR_INIT_TARGET', 'config', `--target is not a v3 onion address: ${(cause as Error).message}`, { cause });
  }
  // Validate the config before touching the disk (node name, target).
  const text = initConfigText({ name, target }) + (options.cluster === undefined ? '' : initClusterText(options.cluster));
  parseConfigText(text, { baseDir: dir, source: configPath });
  if (options.force !== true && (await exists(configPath))) {
    throw new TorbalanceError('TB_ERR_INIT_EXISTS', 'config', `${configPath} already exists (use --force to overwrite it)`);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  let keypair: HsIdentityKeypair;
  if (options.importHsDir !== undefined) {
    keypair = await importTorHiddenServiceDir(resolve(options.importHsDir), keyDir, { force: options.force === true });
  } else {
    keypair = HsIdentityKeypair.generate(systemRandomBytes);
    await writeKeyDirectory(keyDir, keypair, { force: options.force === true });
  }
  if (keypair.address === target) {
    throw new TorbalanceError('TB_ERR_CONFIG_TARGET_IS_MASTER', 'config', `--target is the master address ${target}; the target must be the backend service`);
  }
  let cluster: InitResult['cluster'];
  if (options.cluster !== undefined) {
    const secretFile = join(dir, 'cluster', 'secret');
    const nodeKeyFile = join(dir, 'cluster', 'node_key');
    const force = { force: options.force === true };
    const secret = options.cluster.secretFrom === undefined ? systemRandomBytes(NODE_SECRET_BYTES) : await readNodeSecret('cluster-secret', resolve(options.cluster.secretFrom));
    const seed = systemRandomBytes(NODE_SECRET_BYTES);
    try {
      await writeNodeSecret('cluster-secret', secretFile, secret, force);
      await writeNodeSecret('node-key', nodeKeyFile, seed, force);
    } finally {
      secret.fill(0);
      seed.fill(0);
    }
    cluster = { secretFile, nodeKeyFile, enabled: clusterEnabled(options.cluster) };
  }
  await writePrivateFile(configPath, text);
  return { masterAddress: keypair.address, configPath, keyDir, ...(cluster === undefined ? {} : { cluster }) };
}

/** Register `init`. */
export function register(program: Command): void {
  program
    .command('init')
    .description('create a node directory: master key (generated or imported) and a config file; prints the master address')
    .requiredOption('--dir <dir>', 'node directory to create (mode 0700)')
    .requiredOption('--target <address>', 'the onion service to balance (<56 characters>.onion)')
    .option('--import-hs-dir <path>', 'use the key of an existing tor HiddenServiceDir as the master key')
    .option('--name <name>', 'node name for logs', 'torbalance')
    .option('--force', 'overwrite an existing config and key', false)
    .option('--cluster', 'also create cluster/node_key and cluster/secret (0600) and a [cluster] table', false)
    .option('--cluster-secret <file>', 'with --cluster: copy this cluster secret (from the first node) instead of generating one')
    .option('--cluster-transport <tcp|tor>', 'with --cluster: mesh transport', 'tcp')
    .option('--cluster-listen <ip:port>', 'with --cluster: mesh listener for the tcp transport (e.g. the WireGuard IP)')
    .option('--cluster-peer <address>', 'with --cluster: a bootstrap peer (repeatable): tcp:<IP>:<port> or tor:<onion>:7700', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .action(
      async (opts: {
        dir: string;
        target: string;
        importHsDir?: string;
        name: string;
        force: boolean;
        cluster: boolean;
        clusterSecret?: string;
        clusterTransport: string;
        clusterListen?: string;
        clusterPeer: string[];
      }) => {
        if (opts.clusterTransport !== 'tcp' && opts.clusterTransport !== 'tor') {
          throw new TorbalanceError('TB_ERR_INIT_CLUSTER', 'config', '--cluster-transport must be "tcp" or "tor"');
        }
        const r = await initNode({
          dir: opts.dir,
          target: opts.target,
          name: opts.name,
          force: opts.force,
          ...(opts.importHsDir === undefined ? {} : { importHsDir: opts.importHsDir }),
          ...(opts.cluster
            ? {
                cluster: {
                  transport: opts.clusterTransport,
                  peers: opts.clusterPeer,
                  ...(opts.clusterListen === undefined ? {} : { listen: opts.clusterListen }),
                  ...(opts.clusterSecret === undefined ? {} : { secretFrom: opts.clusterSecret }),
                },
              }
            : {}),
        });
        if (r.cluster !== undefined) {
          process.stderr.write(
            `torbalance: wrote the node key ${r.cluster.nodeKeyFile} and the cluster secret ${r.cluster.secretFile}\n` +
              `torbalance: copy the master key directory and the cluster secret to the other nodes (out of band)\n` +
              (r.cluster.enabled ? '' : `torbalance: [cluster] is disabled until you set cluster.listen and cluster.peers\n`),
          );
        }
      process.stdout.write(`${r.masterAddress}\n`);
      process.stderr.write(
        `torbalance: wrote ${r.configPath} and the master key in ${r.keyDir}\n` +
          `torbalance: start the node with: torbalance run --config ${r.configPath}\n`,
      );
      },
    );
}
