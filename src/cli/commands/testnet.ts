/**
 * `torbalance testnet up|down|status`: a private Tor network on 127.0.0.1 (see
 * src/adapters/tor/testnet.ts and /work/shared/torlab.md) that outlives the command, for
 * trying torbalance by hand. `up` records pids and ports in `<dir>/testnet.json`; `down`
 * stops exactly those processes (verified by pid and command line); `status` prints JSON.
 */
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { hasCode, TorbalanceError } from '../../core/errors.js';
import {
  livePid,
  readTestnetState,
  startTestnet,
  stopTestnetFromState,
  testnetStatus,
  type TestnetDescription,
} from '../../adapters/tor/testnet.js';

const DEFAULT_DIR = '.torlab/testnet';

function intArg(min: number, max: number): (v: string) => number {
  return (v: string) => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError('not an integer');
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    return n;
  };
}

function hostPortArg(v: string): { host: string; port: number } {
  const m = /^([^:\s]+):(\d{1,5})$/.exec(v);
  if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535)
    throw new InvalidArgumentError('expected host:port');
  return { host: m[1]!, port: Number(m[2]) };
}

interface UpOptions {
  dir: string;
  services: number;
  votingInterval: number;
  authorities: number;
  relays: number;
  target: { host: string; port: number };
  timeout: number;
  json?: boolean;
}

function summary(d: TestnetDescription): string {
  const lines = [
    `base dir: ${d.baseDir}`,
    `voting interval: ${d.votingIntervalSeconds}s (time period ${d.timePeriod.lengthMinutes} min)`,
  ];
  for (const c of d.clients)
    lines.push(
      `${c.nickname}: socks 127.0.0.1:${c.socksPort}  control unix:${c.control.kind === 'unix' ? c.control.path : `${c.control.host}:${c.control.port}`}`,
    );
  for (const s of d.services)
    lines.push(
      `${s.nickname}: ${s.onion}  -> ${s.target.host}:${s.target.port}  control unix:${s.control.kind === 'unix' ? s.control.path : ''}`,
    );
  for (const a of [...d.authorities, ...d.relays])
    lines.push(`${a.nickname}: ${a.fingerprint} or ${a.orPort} dir ${a.dirPort} pid ${a.pid}`);
  return lines.join('\n') + '\n';
}

/** Register `testnet` and its subcommands. */
export function register(program: Command): void {
  const testnet = program
    .command('testnet')
    .description('private Tor network on 127.0.0.1 (for trying torbalance)');

  testnet
    .command('up')
    .description('start a private network and leave it running')
    .option('--dir <dir>', 'base directory', DEFAULT_DIR)
    .option('--services <n>', 'onion services to start', intArg(0, 10), 0)
    .option(
      '--voting-interval <s>',
      'V3AuthVotingInterval in seconds (time period = 24 intervals)',
      intArg(10, 300),
      10,
    )
    .option('--authorities <n>', 'directory authorities', intArg(1, 9), 3)
    .option('--relays <n>', 'relays (HSDirs)', intArg(0, 30), 5)
    .option('--target <host:port>', 'where the onion services forward port 80', hostPortArg, {
      host: '127.0.0.1',
      port: 8080,
    })
    .option('--timeout <s>', 'give up after this many seconds', intArg(10, 3600), 180)
    .option('--json', 'print the network description as JSON')
    .action(async (opts: UpOptions) => {
      const baseDir = resolve(opts.dir);
      let existing: TestnetDescription | undefined;
      try {
        existing = readTestnetState(baseDir);
      } catch (e) {
        if (!hasCode(e, 'TB_ERR_TESTNET_STATE')) throw e; // no network (or an unreadable state file) there yet
        existing = undefined;
      }
      if (existing !== undefined) {
        const d = existing;
        if (
          [...d.authorities, ...d.relays, ...d.clients, ...d.services].some(
            (n) => livePid(n) !== undefined,
          )
        ) {
          throw new TorbalanceError(
            'TB_ERR_TESTNET_STATE',
            'config',
            `a testnet is already running in ${baseDir}; run \`torbalance testnet down --dir ${opts.dir}\` first`,
          );
        }
      }
      const net = await startTestnet({
        baseDir,
        owned: false,
        authorities: opts.authorities,
        relays: opts.relays,
        clients: 1,
        votingIntervalSeconds: opts.votingInterval,
        services: Array.from({ length: opts.services }, () => ({ target: opts.target })),
        readyTimeoutMs: opts.timeout * 1000,
        onProgress: (m) => process.stderr.write(`testnet: ${m}\n`),
      });
      await net.writeState();
      await net.detach();
      const d = net.description;
      process.stdout.write(
        opts.json === true
          ? JSON.stringify(d, null, 2) + '\n'
          : `testnet up in ${((d.readyAtMs - d.startedAtMs) / 1000).toFixed(1)}s\n${summary(d)}`,
      );
    });

  testnet
    .command('down')
    .description('stop every tor that `testnet up` started in --dir')
    .option('--dir <dir>', 'base directory', DEFAULT_DIR)
    .action(async (opts: { dir: string }) => {
      const result = await stopTestnetFromState(resolve(opts.dir));
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    });

  testnet
    .command('status')
    .description('JSON: processes alive, consensus size, client bootstrap')
    .option('--dir <dir>', 'base directory', DEFAULT_DIR)
    .action(async (opts: { dir: string }) => {
      const status = await testnetStatus(resolve(opts.dir));
      process.stdout.write(JSON.stringify(status, null, 2) + '\n');
    });
}
