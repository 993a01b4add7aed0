import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadMasterKey, parseConfigText, tomlKeyLines } from '../../src/adapters/config/load.js';
import { DEFAULTS, schemaKeys } from '../../src/adapters/config/schema.js';
import { writeKeyDirectory } from '../../src/adapters/fs/key-store.js';
import { HsIdentityKeypair } from '../../src/core/hs/keys.js';
import { hasCode } from '../../src/core/errors.js';
import { publishModeNotes } from '../../src/node/cluster.js';

const ROOT = resolve(import.meta.dirname, '../..');
const EXAMPLE = join(ROOT, 'config/torbalance.example.toml');
const DOCS = join(ROOT, 'docs/config.md');
const TARGET = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(7)).address;
const MASTER = HsIdentityKeypair.fromSeed(new Uint8Array(32).fill(9));

function issuesOf(text: string): ConfigError['issues'] {
  try {
    parseConfigText(text, { baseDir: '/srv/tb' });
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

/** Keys written in the example, active or commented out (`# key = …`), with whether the block above says EXAMPLE. */
function exampleKeys(text: string): Map<string, { active: boolean; example: boolean }> {
  const out = new Map<string, { active: boolean; example: boolean }>();
  let table = '';
  let comment = '';
  for (const line of text.split('\n')) {
    const h = /^\[([a-z_.]+)\]$/.exec(line);
    if (h !== null) {
      table = h[1]!;
      comment = '';
      continue;
    }
    const active = /^([a-z_]+) = /.exec(line);
    const commented = /^# ([a-z_]+) = /.exec(line);
    const m = active ?? commented;
    if (m !== null) {
      out.set(`${table}.${m[1]!}`, { active: active !== null, example: /EXAMPLE/.test(comment) });
      comment = '';
    } else if (line.startsWith('#')) comment += line + '\n';
    else comment = '';
  }
  return out;
}

function getPath(obj: unknown, path: string): unknown {
  let v = obj;
  for (const p of path.split('.')) v = (v as Record<string, unknown>)[p];
  return v;
}

describe('example config', () => {
  it('loads and equals the defaults (except the required target)', () => {
    return readFile(EXAMPLE, 'utf8').then((text) => {
      const c = parseConfigText(text, { baseDir: '/srv/tb' });
      expect(c.target.address).toBe(TARGET);
      expect(c.node.data_dir).toBe('/srv/tb/data');
      expect(c.master.key_dir).toBe('/srv/tb/master');
      expect(c.proxy.listen).toEqual({ kind: 'unix', path: '/srv/tb/data/proxy.sock' });
      expect(c.tor.socks_port).toBe(DEFAULTS.tor.socks_port);
      expect(c.source).toBeUndefined();
    });
  });

  it('lists every schema key and no other (active or commented out)', async () => {
    const keys = exampleKeys(await readFile(EXAMPLE, 'utf8'));
    expect([...keys.keys()].sort()).toEqual(schemaKeys().map((k) => k.path).sort());
  });

  it('active values equal the schema defaults unless marked EXAMPLE; optional keys are commented out', async () => {
    const text = await readFile(EXAMPLE, 'utf8');
    const doc = parseToml(text);
    const keys = exampleKeys(text);
    for (const k of schemaKeys()) {
      const e = keys.get(k.path)!;
      if (k.default === undefined) {
        expect(e.example || !e.active, `${k.path} has no default and must be marked EXAMPLE`).toBe(true);
        if (k.optional) expect(e.active, `${k.path} is optional: keep it commented out`).toBe(false);
        continue;
      }
      expect(e.active, k.path).toBe(true);
      if (!e.example) expect(getPath(doc, k.path), k.path).toEqual(k.default);
    }
  });
});

describe('docs/config.md', () => {
  it('documents every schema key and no other, with the right default', async () => {
    const md = await readFile(DOCS, 'utf8');
    const rows = new Map<string, string>();
    for (const m of md.matchAll(/^\| `([a-z_.]+)` \|(.*)$/gm)) rows.set(m[1]!, m[2]!);
    const keys = schemaKeys();
    expect([...rows.keys()].sort()).toEqual(keys.map((k) => k.path).sort());
    for (const k of keys) {
      const row = rows.get(k.path)!;
      const cells = row.split(' | ');
      const dflt = cells[1]!;
      if (k.default === undefined) expect(dflt, k.path).toMatch(/required|none|unix:/);
      else expect(dflt, k.path).toContain(`\`${JSON.stringify(k.default)}\``);
    }
  });
});

describe('config validation errors name the key and line', () => {
  const base = `[target]\naddress = "${TARGET}"\n`;

  it('minimal config gets defaults and is deeply frozen', () => {
    const c = parseConfigText(base, { baseDir: '/srv/tb' });
    expect(c.proxy.limits.max_connections).toBe(DEFAULTS.proxy.limits.max_connections);
    expect(c.tor.extra_config).toEqual([]);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.proxy.limits)).toBe(true);
    expect(Object.isFrozen(c.tor.extra_config)).toBe(true);
    expect(() => {
      (c.proxy.limits as { max_connections: number }).max_connections = 1;
    }).toThrow(TypeError);
  });

  it('unknown keys at every level', () => {
    const issues = issuesOf(`${base}bogus = 1\n[proxy.limits]\nmax_conections = 5\n[nope]\nx = 1\n`);
    expect(issues).toContainEqual(expect.objectContaining({ key: 'target.bogus', line: 3 }));
    const typo = issues.find((i) => i.key === 'proxy.limits.max_conections')!;
    expect(typo.line).toBe(5);
    expect(typo.message).toMatch(/unknown key \(did you mean "max_connections"\?\); expected one of max_connections,/);
    expect(issues).toContainEqual(expect.objectContaining({ key: 'nope', line: 6 }));
  });

  it('wrong types, ranges and enums', () => {
    const issues = issuesOf(
      `${base}port = "80"\nmode = "udp"\n[tor]\nnum_intro_points = 21\nsocks_port = "any"\n[log]\nlevel = 3\n[drain]\ntimeout_ms = 1.5\n`,
    );
    const by = new Map(issues.map((i) => [i.key, i]));
    expect(by.get('target.port')).toMatchObject({ line: 3, message: 'expected a port number from 1 to 65535' });
    expect(by.get('target.mode')).toMatchObject({ line: 4, message: 'expected one of "http", "tcp"' });
    expect(by.get('tor.num_intro_points')?.line).toBe(6);
    expect(by.get('tor.num_intro_points')?.message).toMatch(/^expected an integer from 3 to 20/);
    expect(by.get('tor.socks_port')).toMatchObject({ line: 7, message: 'expected "auto" or a port number from 1 to 65535' });
    expect(by.get('log.level')?.line).toBe(9);
    expect(by.get('drain.timeout_ms')?.line).toBe(11);
    for (const i of issues) expect(i.message).toMatch(/^expected /);
  });

  it('cluster.priority may not exceed cluster.max_priority', () => {
    const by = new Map(issuesOf(`${base}[cluster]\npriority = 200\nmax_priority = 100\n`).map((i) => [i.key, i]));
    expect(by.get('cluster.priority')?.message).toBe('expected priority ≤ max_priority');
    expect(parseConfigText(`${base}[cluster]\npriority = 100\nmax_priority = 100\n`).cluster.max_priority).toBe(100);
  });

  it('invalid onion address and missing required key', () => {
    const bad = issuesOf(`[target]\naddress = "${TARGET.slice(0, 10)}aaaa${TARGET.slice(14)}"\n`);
    expect(bad[0]).toMatchObject({ key: 'target.address', line: 2 });
    expect(bad[0]!.message).toMatch(/^expected a v3 onion address/);
    const missing = issuesOf(`[node]\nname = "a"\n\n[target]\nport = 80\n`);
    expect(missing[0]).toMatchObject({ key: 'target.address', line: 4 });
    expect(missing[0]!.message).toMatch(/^missing required key; expected a v3 onion address/);
    const noTable = issuesOf(`[node]\nname = "a"\n`);
    expect(noTable[0]).toMatchObject({ key: 'target', line: undefined });
    expect(noTable[0]!.message).toMatch(/^missing required key; expected a \[target\] table/);
  });

  it('inline tables, dotted keys and multi-line arrays get the right line', () => {
    const text = `${base}tls = { enabled = "yes" }\n[tor]\nextra_config = [\n  "DisableNetwork 1",\n  "HiddenServicePort 80 127.0.0.1:1",\n]\npow.queue_rate = 10\npow.queue_burst = 5\n`;
    const by = new Map(issuesOf(text).map((i) => [i.key, i]));
    expect(by.get('target.tls.enabled')).toMatchObject({ line: 3, message: 'expected true or false' });
    expect(by.get('tor.extra_config[1]')?.line).toBe(5);
    expect(by.get('tor.extra_config[1]')?.message).toMatch(/HiddenServicePort is \(or abbreviates\) an option torbalance manages/);
    expect(by.get('tor.pow.queue_burst')).toMatchObject({ line: 10 });
    expect(by.get('tor.pow.queue_burst')?.message).toMatch(/queue_burst >= queue_rate/);
    const lines = tomlKeyLines(text);
    expect(lines.get('tor.extra_config')).toBe(5);
    expect(lines.get('tor.pow.queue_rate')).toBe(9);
  });

  it('extra_config lines must be "Keyword value"', () => {
    for (const bad of ['', '1abc', 'Log notice\nstdout', 'DataDirectory /x', 'controlport 9051', '__OwningControllerProcess 1']) {
      const issues = issuesOf(`${base}[tor]\nextra_config = [${JSON.stringify(bad)}]\n`);
      expect(issues[0]?.key, JSON.stringify(bad)).toBe('tor.extra_config[0]');
    }
    const ok = parseConfigText(`${base}[tor]\nextra_config = ["DisableNetwork 1", "Log info file /tmp/x.log", "TestingTorNetwork 1"]\n`);
    expect(ok.tor.extra_config).toEqual([['DisableNetwork', '1'], ['Log', 'info file /tmp/x.log'], ['TestingTorNetwork', '1']]);
  });

  it('extra_config refuses abbreviations of managed options and options not on the list', () => {
    for (const bad of ['ControlP 0.0.0.0:9051', 'SocksP 0.0.0.0:9050', 'HashedControlPasswor 16:00', 'DataDirector /tmp/x', 'ORPort 9001', 'MetricsPort 0.0.0.0:9035']) {
      const issues = issuesOf(`${base}[tor]\nextra_config = [${JSON.stringify(bad)}]\n`);
      expect(issues[0]?.key, bad).toBe('tor.extra_config[0]');
      expect(issues[0]?.message, bad).toMatch(/expected a tor option tor.extra_config may set/);
    }
  });

  it('tor.intro_dos and tor.max_streams_close_circuit', () => {
    const c = parseConfigText(`${base}[tor]\nmax_streams_close_circuit = true\nintro_dos = { enabled = true, rate_per_sec = 30, burst_per_sec = 300 }\n`);
    expect(c.tor.intro_dos).toEqual({ enabled: true, rate_per_sec: 30, burst_per_sec: 300 });
    expect(c.tor.max_streams_close_circuit).toBe(true);
    expect(issuesOf(`${base}[tor.intro_dos]\nrate_per_sec = 30\nburst_per_sec = 20\n`)[0]).toMatchObject({ key: 'tor.intro_dos.burst_per_sec' });
    expect(issuesOf(`${base}[tor.intro_dos]\nrate_per_sec = 0\n`)[0]).toMatchObject({ key: 'tor.intro_dos.rate_per_sec' });
    expect(issuesOf(`${base}[proxy.limits]\nmax_connections_per_circuit = 65536\n`)[0]).toMatchObject({ key: 'proxy.limits.max_connections_per_circuit' });
  });

  it('proxy.listen forms', () => {
    expect(parseConfigText(`${base}[proxy]\nlisten = "127.0.0.1:8080"\n`).proxy.listen).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 8080 });
    expect(parseConfigText(`${base}[proxy]\nlisten = "unix:run/p.sock"\n`, { baseDir: '/srv' }).proxy.listen).toEqual({ kind: 'unix', path: '/srv/run/p.sock' });
    for (const bad of ['0.0.0.0:80', '127.0.0.1:0', 'unix:', 'localhost:80', `unix:/${'x'.repeat(120)}`]) {
      expect(issuesOf(`${base}[proxy]\nlisten = ${JSON.stringify(bad)}\n`)[0], bad).toMatchObject({ key: 'proxy.listen', line: 4 });
    }
  });

  it('syntax errors carry line and column', () => {
    try {
      parseConfigText('[node]\nname = "a"\n[tor]\nbinary = \n');
      expect.unreachable();
    } catch (e) {
      expect(hasCode(e, 'TB_ERR_CONFIG_SYNTAX')).toBe(true);
      const i = (e as ConfigError).issues[0]!;
      expect(i.line).toBe(4);
      expect(i.column).toBeGreaterThan(0);
      expect((e as Error).message).toMatch(/\(line 4, column \d+\): expected valid TOML/);
    }
  });

  it('every error is a ConfigError with code TB_ERR_CONFIG_INVALID whose message lists all issues', () => {
    try {
      parseConfigText(`${base}port = 0\nmode = 1\n`, { source: '/etc/tb.toml' });
      expect.unreachable();
    } catch (e) {
      expect(hasCode(e, 'TB_ERR_CONFIG_INVALID')).toBe(true);
      expect((e as Error).message).toContain('invalid configuration /etc/tb.toml:');
      expect((e as Error).message).toContain('target.port (line 3): expected');
      expect((e as Error).message).toContain('target.mode (line 4): expected');
    }
  });
});

describe('loading files', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  async function tmp(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'tb-cfg-'));
    dirs.push(d);
    return d;
  }

  it('resolves paths relative to the file and checks the master key', async () => {
    const d = await tmp();
    await writeKeyDirectory(join(d, 'master'), MASTER);
    await writeFile(join(d, 'tb.toml'), `[target]\naddress = "${TARGET}"\n`, { mode: 0o600 });
    const c = await loadConfig(join(d, 'tb.toml'));
    expect(c.master.key_dir).toBe(join(d, 'master'));
    expect(c.source).toBe(join(d, 'tb.toml'));
    const m = await loadMasterKey(c);
    expect(m.masterAddress).toBe(MASTER.address);
    expect(m.warnings).toEqual([]);
  });

  it('refuses a group/world-readable secret key and a target equal to the master', async () => {
    const d = await tmp();
    await writeKeyDirectory(join(d, 'master'), MASTER);
    await writeFile(join(d, 'tb.toml'), `[target]\naddress = "${MASTER.address}"\n`, { mode: 0o600 });
    await expect(loadMasterKey(await loadConfig(join(d, 'tb.toml')))).rejects.toMatchObject({ code: 'TB_ERR_CONFIG_TARGET_IS_MASTER' });
    await writeFile(join(d, 'tb.toml'), `[target]\naddress = "${TARGET}"\n`, { mode: 0o600 });
    await chmod(join(d, 'master', 'hs_ed25519_secret_key'), 0o640);
    await expect(loadMasterKey(await loadConfig(join(d, 'tb.toml')))).rejects.toMatchObject({ code: 'TB_ERR_KEYSTORE_FILE_PERMISSIONS' });
  });

  it('missing file, missing ca_file', async () => {
    const d = await tmp();
    await expect(loadConfig(join(d, 'none.toml'))).rejects.toMatchObject({ code: 'TB_ERR_CONFIG_NOT_FOUND' });
    await writeKeyDirectory(join(d, 'master'), MASTER);
    await writeFile(join(d, 'tb.toml'), `[target]\naddress = "${TARGET}"\n[target.tls]\nenabled = true\nca_file = "ca.pem"\n`, { mode: 0o600 });
    await expect(loadMasterKey(await loadConfig(join(d, 'tb.toml')))).rejects.toMatchObject({ code: 'TB_ERR_CONFIG_FILE' });
    await writeFile(join(d, 'ca.pem'), 'x');
    expect((await loadMasterKey(await loadConfig(join(d, 'tb.toml')))).warnings).toEqual([]);
  });

  it('a group- or world-writable config is refused (it names tor.binary); readable is fine', async () => {
    const d = await tmp();
    const f = join(d, 'tb.toml');
    // Whoever can write this file chooses the program the node runs as tor.
    await writeFile(f, `[target]\naddress = "${TARGET}"\n[tor]\nbinary = "/tmp/not-tor"\n`, { mode: 0o600 });
    for (const mode of [0o666, 0o646, 0o620, 0o660]) {
      await chmod(f, mode);
      const e = await loadConfig(f).then(() => undefined, (x: unknown) => x);
      expect(e, mode.toString(8)).toMatchObject({ code: 'TB_ERR_CONFIG_PERMISSIONS', kind: 'config' });
      expect((e as Error).message).toContain(`chmod 600 '${f}'`);
    }
    for (const mode of [0o600, 0o640, 0o644, 0o400]) {
      await chmod(f, mode);
      expect((await loadConfig(f)).tor.binary, mode.toString(8)).toBe('/tmp/not-tor');
    }
  });
});

describe('proxy limit defaults (docs/SECURITY.md "Host hardening")', () => {
  it('attack: one visitor needs well over 100 rendezvous circuits to fill the proxy, and idle connections go within a minute', () => {
    const l = DEFAULTS.proxy.limits;
    // the old defaults (1024 total, 16 per circuit, 300 s idle) were filled by 64 circuits
    expect(Math.ceil(l.max_connections / l.max_connections_per_circuit)).toBeGreaterThan(150);
    expect(l.max_connections_per_circuit).toBeLessThanOrEqual(8);
    expect(l.idle_timeout_ms).toBeLessThanOrEqual(60_000);
  });
});

describe('publishModeNotes (config check, doctor)', () => {
  const base = `[target]\naddress = "${TARGET}"\n`;
  const notes = (extra: string): ReturnType<typeof publishModeNotes> => publishModeNotes(parseConfigText(base + extra, { baseDir: '/srv/tb' }));
  it('says plainly what PoW and rotation safety do in each mode', () => {
    expect(notes('')).toEqual({ warn: false, text: 'PoW: off (tor.pow.enabled = false).' });
    expect(notes('[tor.pow]\nenabled = true\n').text).toMatch(/^PoW: on\. .*solve puzzles/);
    const cl = '[cluster]\nenabled = true\nlisten = "127.0.0.1:7700"\n';
    expect(notes(cl)).toMatchObject({ warn: false, text: expect.stringMatching(/^Rotation: safe .*PoW: off for visitors/) as unknown });
    expect(notes(`${cl}[cluster.publish]\nrotation_safe = false\n`)).toMatchObject({ warn: true, text: expect.stringMatching(/^Rotation: NOT safe .*dark/) as unknown });
    expect(notes(`${cl}[tor.pow]\nenabled = true\n`)).toMatchObject({ warn: false, text: expect.stringMatching(/PoW: on, switched automatically\. .*effort is 0 .*without pow-params.*that node's pow-params/) as unknown });
    expect(notes(`${cl}[cluster.publish]\nplacement = "per-node"\n[tor.pow]\nenabled = true\n`)).toMatchObject({ warn: false, text: expect.stringMatching(/PoW: on\. Each HSDir gets one node's intro points/) as unknown });
    expect(notes(`${cl}[cluster.publish]\nplacement = "merged"\n[tor.pow]\nenabled = true\n`)).toMatchObject({ warn: true, text: expect.stringMatching(/no pow-params .*solve no puzzles/) as unknown });
  });
});
