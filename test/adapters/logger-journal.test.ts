/**
 * Logs under journald (src/adapters/log/logger.ts): with `JOURNAL_STREAM` naming stderr, every
 * line starts with the syslog priority of its pino level (`<4>` for warn …), the JSON after it
 * unchanged; nothing is prefixed when the variable is unset or names another file. The last
 * test runs the built daemon's logger in a child process whose stderr is a file, as systemd
 * would connect it to the journal.
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, isJournalStream, journalPrefix, syslogPriority } from '../../src/adapters/log/logger.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { requireBuilt } from '../helpers/built.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tb-journal-'));
  dirs.push(d);
  return d;
}

function capture(opts: { journal?: boolean; pretty?: boolean }): { log: ReturnType<typeof createLogger>; lines: () => string[] } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  return { log: createLogger({ level: 'trace', destination: out, ...opts }), lines: () => chunks.join('').split('\n').filter((l) => l !== '') };
}

const EXPECTED: readonly (readonly ['trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal', number])[] = [
  ['trace', 7], ['debug', 7], ['info', 6], ['warn', 4], ['error', 3], ['fatal', 2],
];

describe('syslog priorities', () => {
  it('maps pino levels: fatal 2, error 3, warn 4, info 6, debug/trace 7', () => {
    expect([10, 20, 30, 40, 50, 60].map(syslogPriority)).toEqual([7, 7, 6, 4, 3, 2]);
    expect(journalPrefix('{"level":40,"msg":"x"}')).toBe('<4>');
    expect(journalPrefix('{"level":60}')).toBe('<2>');
    expect(journalPrefix('not a record')).toBe('<6>');
  });

  it('journal: each line is <N> + the same JSON as without it', () => {
    const j = capture({ journal: true });
    const plain = capture({});
    for (const [lv] of EXPECTED) {
      j.log[lv]({ port: 1, password: 'hunter2' }, `${lv} msg`);
      plain.log[lv]({ port: 1, password: 'hunter2' }, `${lv} msg`);
    }
    const jl = j.lines();
    expect(jl).toHaveLength(EXPECTED.length);
    const strip = (l: string): Record<string, unknown> => {
      const r = JSON.parse(l) as Record<string, unknown>;
      delete r['time'];
      return r;
    };
    EXPECTED.forEach(([lv, prio], i) => {
      const m = /^<(\d)>(\{.*\})$/.exec(jl[i]!);
      expect(m, jl[i]).not.toBeNull();
      expect(Number(m![1]), lv).toBe(prio);
      expect(strip(m![2]!)).toEqual(strip(plain.lines()[i]!));
      expect(m![2]).toContain('[redacted]');
    });
    expect(plain.lines().every((l) => l.startsWith('{'))).toBe(true);
  });

  it('journal with the human format: the priority before the human line', () => {
    const j = capture({ journal: true, pretty: true });
    j.log.warn({ port: 1 }, 'careful');
    expect(j.lines()).toEqual([expect.stringMatching(/^<4>\d\d:\d\d:\d\d\.\d{3} WARN {2}careful port=1$/)]);
  });
});

describe('isJournalStream', () => {
  it('true only when JOURNAL_STREAM is the fd\'s device:inode', async () => {
    const d = await tmp();
    const a = openSync(join(d, 'a'), 'w');
    const b = openSync(join(d, 'b'), 'w');
    try {
      const st = fstatSync(a, { bigint: true });
      const env = { JOURNAL_STREAM: `${st.dev}:${st.ino}` };
      expect(isJournalStream(env, a)).toBe(true);
      expect(isJournalStream(env, b)).toBe(false); // inherited, but this fd goes elsewhere
      expect(isJournalStream({}, a)).toBe(false);
      expect(isJournalStream({ JOURNAL_STREAM: 'garbage' }, a)).toBe(false);
      expect(isJournalStream({ JOURNAL_STREAM: `${st.dev}:${st.ino}x` }, a)).toBe(false);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });
});

describe('the node logger in a process whose stderr is the "journal"', () => {
  /** Runs loggerForConfig (dist/) in a child with stderr = a file and JOURNAL_STREAM = `journal(file)`; returns the file. */
  async function child(journal: (st: { dev: bigint; ino: bigint }) => string | undefined): Promise<string> {
    const d = await tmp();
    const script = join(d, 'log.mjs');
    const dist = resolve('dist/src');
    await writeFile(
      script,
      `import { configFromObject } from ${JSON.stringify(join(dist, 'adapters/config/load.js'))};
import { loggerForConfig } from ${JSON.stringify(join(dist, 'node/node-logger.js'))};
const log = loggerForConfig(configFromObject({ node: { name: 'jn' }, log: { level: 'debug' }, target: { address: ${JSON.stringify(HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(3)).address)} } }));
log.debug('d'); log.info('i'); log.warn('w'); log.error('e');
`,
    );
    const file = join(d, 'stderr');
    const fd = openSync(file, 'w');
    try {
      const st = fstatSync(fd, { bigint: true });
      const { JOURNAL_STREAM: _inherited, ...env } = process.env;
      const js = journal(st);
      const code = await new Promise<number | null>((res) => {
        const p = spawn(process.execPath, [script], { env: { ...env, ...(js === undefined ? {} : { JOURNAL_STREAM: js }) }, stdio: ['ignore', 'ignore', fd] });
        p.on('close', res);
      });
      expect(code).toBe(0);
    } finally {
      closeSync(fd);
    }
    return readFile(file, 'utf8');
  }

  it('prefixes priorities when JOURNAL_STREAM names its stderr, not when unset or naming another file', async () => {
    requireBuilt('dist/src/node/daemon.js');
    const lines = (t: string): string[] => t.split('\n').filter((l) => l !== '');
    const on = lines(await child((st) => `${st.dev}:${st.ino}`));
    expect(on.map((l) => l.slice(0, 3))).toEqual(['<7>', '<6>', '<4>', '<3>']);
    expect(JSON.parse(on[2]!.slice(3))).toMatchObject({ level: 40, node: 'jn', msg: 'w' });
    const off = lines(await child(() => undefined));
    expect(off).toHaveLength(4);
    expect(off.every((l) => l.startsWith('{"level":'))).toBe(true);
    const other = lines(await child((st) => `${st.dev}:${st.ino + 1n}`));
    expect(other.every((l) => l.startsWith('{"level":'))).toBe(true);
  });
});
