import { defineConfig } from 'vitest/config';

// Three projects:
// - `unit`: pure core, property tests, loopback adapter tests, CLI tests (fast, no tor: a test
//   that runs the tor binary, even offline or for `--verify-config`, goes to `integration`);
// - `integration`: real tor in a private network (test/integration/global-setup.ts), one file
//   at a time because the files share that network's client and tors;
// - `integration-wait`: the real-tor files that mostly WAIT (for 4-minute time-period
//   roll-overs, or for a demo that starts its own network). They run concurrently with each
//   other, against their OWN private network (the same global setup, one client tor per
//   worker: test/helpers/testnet.ts gives each concurrently running file its own
//   `clients[0]`, so NEWNYM / HSFETCH / client descriptor caches never cross files).
// scripts/test.sh runs `integration-wait` in a second vitest process alongside `unit` and
// `integration`; `vitest run --project 'integration*'` runs both integration projects in one
// process (the concurrent group first, then the sequential one).
//
// A new integration file lands in the sequential `integration` project by default. Add it to
// WAITING only if it spends most of its time waiting, starts nothing that other files on the
// network could observe (no SETCONF on the network's tors, its own onion keys), and uses only
// `clients[0]` (or its own `addClient()`) as a client.
export const WAITING = [
  'test/integration/mesh-tor-clustered.test.ts',
  'test/integration/cluster.test.ts',
  'test/integration/publisher.test.ts',
  'test/integration/period-rollover.test.ts',
  'test/integration/demo.test.ts',
  'test/integration/node-loss.test.ts',
];

/**
 * How many WAITING files run at once (default: all). TORBALANCE_WAIT_WORKERS=1 runs them one
 * after another (still beside the rest of the suite): a fallback for an overloaded machine.
 */
const waitWorkers = Math.max(1, Math.min(WAITING.length, Number(process.env['TORBALANCE_WAIT_WORKERS'] ?? WAITING.length) || WAITING.length));

const integration = {
  testTimeout: 600_000,
  hookTimeout: 600_000,
  globalSetup: ['test/integration/global-setup.ts'],
};

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/property/**/*.test.ts', 'test/adapters/**/*.test.ts', 'test/cli/**/*.test.ts'],
          // Generous: the fuzz files take ~25 s alone and run beside the integration-wait
          // process (scripts/test.sh); a deadline is a hang detector here, never a timing check.
          testTimeout: 180_000,
          hookTimeout: 120_000,
          // vitest's default is one worker per core minus one, i.e. ONE on the 2-core CI
          // machines; the main process is idle while tests run, and many files wait on child
          // processes (CLI tests) or loopback sockets.
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: WAITING,
          fileParallelism: false,
          ...integration,
        },
      },
      {
        test: {
          name: 'integration-wait',
          include: WAITING,
          fileParallelism: waitWorkers > 1,
          maxWorkers: waitWorkers,
          // Its own order group: `vitest run --project 'integration*'` runs it, all files at
          // once, before the sequential group.
          sequence: { groupOrder: 1 },
          ...integration,
        },
      },
    ],
  },
});
