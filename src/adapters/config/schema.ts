/**
 * The torbalance node configuration: its schema (zod 4), its defaults (all in {@link DEFAULTS})
 * and the deeply frozen {@link Config} type.
 *
 * Every object is strict (unknown keys are errors) and every check carries an operator-facing
 * "expected …" message; src/adapters/config/load.ts adds the key path and the TOML line.
 * Reference: docs/config.md; example: config/torbalance.example.toml (tests keep the three in
 * sync). Tor limits used here come from tor itself: HiddenServiceNumIntroductionPoints 3..20
 * (`hs_config.c`, `HS_CONFIG_V3_MAX_INTRO_POINTS`), PoW queue defaults 250/s and burst 2500
 * (`hs_config.c`; burst must be ≥ rate), intro-point DoS defence defaults 25/s and burst 200
 * (`hs_config.h`, up to INT32_MAX, burst ≥ rate), HiddenServiceMaxStreams ≤ 65535
 * (`HS_CONFIG_MAX_STREAMS_PER_RDV_CIRCUIT`), see /work/shared/tor-facts.md §1.7, §3.2.
 *
 * Paths in the schema are taken as written; {@link resolveConfigPaths} (used by the loader)
 * makes them absolute relative to the config file's directory and fills the defaults that
 * depend on `node.data_dir`.
 */
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import * as z from 'zod';
import { DecodeError } from '../../core/errors.js';
import { decodeOnionAddress } from '../../core/hs/address.js';
import { checkExtraTorrcKeyword, INT32_MAX } from '../../core/node-torrc.js';

/** All defaults, in one place. Paths are relative to the config file's directory. */
export const DEFAULTS = {
  node: { name: 'torbalance', data_dir: 'data' },
  master: { key_dir: 'master' },
  target: { port: 80, mode: 'http', tls: { enabled: false, verify: true } },
  proxy: {
    // listen: unix:<data_dir>/proxy.sock (computed by resolveConfigPaths)
    virtual_port: 80,
    limits: {
      max_connections: 1024,
      // 6 per circuit (what a browser opens to one host) and a 60 s idle timeout: one visitor
      // needs 171 rendezvous circuits to fill the proxy (docs/OPERATIONS.md "Proxy limits").
      max_connections_per_circuit: 6,
      connect_timeout_ms: 30_000,
      header_timeout_ms: 30_000,
      idle_timeout_ms: 60_000,
    },
    rewrite_bodies: true,
  },
  tor: {
    binary: 'tor',
    socks_port: 'auto',
    num_intro_points: 3,
    pow: { enabled: false, queue_rate: 250, queue_burst: 2500 },
    intro_dos: { enabled: false, rate_per_sec: 25, burst_per_sec: 200 },
    max_streams_close_circuit: false,
    extra_config: [] as string[],
  },
  health: { kind: 'tcp', path: '/', interval_ms: 30_000, timeout_ms: 10_000 },
  log: { level: 'info', format: 'auto' },
  drain: { timeout_ms: 30_000 },
  cluster: {
    enabled: false,
    secret_file: 'cluster/secret',
    node_key_file: 'cluster/node_key',
    transport: 'tcp',
    peers: [] as string[],
    priority: 100,
    max_priority: 1000,
    heartbeat_ms: 1000,
    suspect_after_ms: 3000,
    dead_after_ms: 10_000,
    lease_ms: 15_000,
    max_skew_ms: 30_000,
    publish: { refresh_ms: 3_600_000, upload_timeout_ms: 30_000, rotation_safe: true, placement: 'auto' as 'auto' | 'merged' | 'per-node' },
    join: { enabled: true, onion_port: 7101, max_attempts_per_minute: 6 },
  },
  admin: {
    enabled: true,
    // listen: unix:/run/torbalance/admin.sock when that runtime directory is usable, else
    // unix:<data_dir>/admin.sock (computed by resolveConfigPaths)
    tcp_open_reads: false,
  },
} as const;

/**
 * The runtime directory systemd creates for the unit (`RuntimeDirectory=torbalance`); when it
 * is usable the admin socket defaults to it (src/adapters/config/load.ts `defaultRuntimeDir`).
 */
export const RUNTIME_DIR = '/run/torbalance';

/** The admin API socket name (in the runtime directory, else in `node.data_dir`) when `admin.listen` is not set. */
export const DEFAULT_ADMIN_SOCKET_NAME = 'admin.sock';

/** The proxy socket name inside `node.data_dir` when `proxy.listen` is not set. */
export const DEFAULT_PROXY_SOCKET_NAME = 'proxy.sock';

/** Longest unix socket path we accept (sun_path is 108 bytes on Linux, including the NUL). */
export const MAX_UNIX_SOCKET_PATH = 100;

const ms = (min: number, max: number): z.ZodNumber =>
  int(min, max, `expected a duration in milliseconds, an integer from ${min} to ${max}`);

function int(min: number, max: number, message = `expected an integer from ${min} to ${max}`): z.ZodNumber {
  return z.number({ error: message }).int({ error: message }).min(min, { error: message }).max(max, { error: message });
}

const bool = (): z.ZodBoolean => z.boolean({ error: 'expected true or false' });

function oneOf<const T extends readonly [string, ...string[]]>(values: T): z.ZodEnum<{ [K in T[number]]: K }> {
  return z.enum(values, { error: `expected one of ${values.map((v) => JSON.stringify(v)).join(', ')}` });
}

function text(what: string, max = 4096): z.ZodString {
  return z
    .string({ error: `expected ${what} (a string)` })
    .min(1, { error: `expected ${what}, not an empty string` })
    .max(max, { error: `expected ${what} of at most ${max} characters` })
    .refine((s) => !/[\0\r\n]/.test(s), { error: `expected ${what} without NUL or line breaks` });
}

/** A filesystem path: no NUL/newlines; whitespace is refused because tor's torrc would need quoting games. */
function path(what: string): z.ZodString {
  return text(what).refine((s) => !/\s/.test(s), { error: `expected ${what} without whitespace` });
}

/** A v3 onion address, normalised to lower case with ".onion". */
const onionAddress = z
  .string({ error: 'expected a v3 onion address ("<56 characters>.onion")' })
  .transform((s, ctx) => {
    try {
      return decodeOnionAddress(s).address;
    } catch (e) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a v3 onion address ("<56 characters>.onion"): ${e instanceof Error ? e.message : 'invalid'}`,
      });
      return z.NEVER;
    }
  });

/** `unix:<absolute-or-relative path>` or `127.0.0.1:<port>`. */
const LISTEN_MESSAGE = 'expected "unix:<path>" or "127.0.0.1:<port>"';
const listen = z.string({ error: LISTEN_MESSAGE }).refine((s) => parseListenString(s) !== undefined, { error: LISTEN_MESSAGE });

/** One raw torrc line for `tor.extra_config`: "Keyword value". */
const TORRC_LINE_MESSAGE = 'expected a torrc line "Keyword value" (keyword: letters, digits, _; no line breaks or NUL)';
const torrcLine = z
  .string({ error: TORRC_LINE_MESSAGE })
  .max(8192, { error: 'expected a torrc line of at most 8192 characters' })
  .superRefine((s, ctx) => {
    const entry = parseTorrcLine(s);
    if (entry === undefined) {
      ctx.addIssue({ code: 'custom', message: TORRC_LINE_MESSAGE });
      return;
    }
    const why = checkExtraTorrcKeyword(entry[0]);
    if (why !== undefined) ctx.addIssue({ code: 'custom', message: `expected a tor option tor.extra_config may set: ${why}` });
  });

/** Mesh peer/advertise address: "tcp:<IP literal>:<port>" (no names: nothing is resolved locally) or "tor:<56>.onion:<port>". */
const MESH_ADDRESS_MESSAGE = 'expected a mesh address "tcp:<IP>:<port>" (IPv6 as [addr]) or "tor:<56 characters>.onion:<port>"';
const meshAddress = z.string({ error: MESH_ADDRESS_MESSAGE }).refine((s) => parseClusterAddress(s) !== undefined, { error: MESH_ADDRESS_MESSAGE });

/** `cluster.listen` for the tcp transport: "<IP>:<port>" (IPv6 as "[addr]:port"). */
const CLUSTER_LISTEN_MESSAGE = 'expected "<IP>:<port>" (IPv6 as "[addr]:port"), e.g. the node\'s WireGuard address "10.99.0.1:7700"';
const clusterListen = z.string({ error: CLUSTER_LISTEN_MESSAGE }).refine((s) => parseHostPort(s) !== undefined, { error: CLUSTER_LISTEN_MESSAGE });

/** Status codes for HTTP health checks. */
const statusCode = int(100, 599, 'expected an HTTP status code from 100 to 599');

/** The schema of the TOML file. */
export const configSchema = z
  .strictObject({
    node: z
      .strictObject({
        name: text('a node name of letters, digits, "." "_" "-"', 64)
          .regex(/^[A-Za-z0-9._-]+$/, { error: 'expected a node name of letters, digits, ".", "_" or "-"' })
          .default(DEFAULTS.node.name),
        data_dir: path('a directory path').default(DEFAULTS.node.data_dir),
      })
      .prefault({}),
    master: z.strictObject({ key_dir: path('a directory path').default(DEFAULTS.master.key_dir) }).prefault({}),
    target: z.strictObject({
      address: onionAddress,
      port: int(1, 65535, 'expected a port number from 1 to 65535').default(DEFAULTS.target.port),
      mode: oneOf(['http', 'tcp']).default(DEFAULTS.target.mode),
      tls: z
        .strictObject({
          enabled: bool().default(DEFAULTS.target.tls.enabled),
          verify: bool().default(DEFAULTS.target.tls.verify),
          ca_file: path('a file path').optional(),
          servername: text('a TLS server name', 253)
            .regex(/^[A-Za-z0-9.-]+$/, { error: 'expected a TLS server name (letters, digits, ".", "-")' })
            .optional(),
        })
        .prefault({}),
    }, { error: 'expected a [target] table with at least address = "<56 characters>.onion"' }),
    proxy: z
      .strictObject({
        listen: listen.optional(),
        virtual_port: int(1, 65535, 'expected a port number from 1 to 65535').default(DEFAULTS.proxy.virtual_port),
        limits: z
          .strictObject({
            max_connections: int(1, 1_000_000).default(DEFAULTS.proxy.limits.max_connections),
            max_connections_per_circuit: int(1, 65_535, 'expected an integer from 1 to 65535 (tor\'s limit for HiddenServiceMaxStreams)').default(DEFAULTS.proxy.limits.max_connections_per_circuit),
            connect_timeout_ms: ms(100, 600_000).default(DEFAULTS.proxy.limits.connect_timeout_ms),
            header_timeout_ms: ms(100, 600_000).default(DEFAULTS.proxy.limits.header_timeout_ms),
            idle_timeout_ms: ms(1000, 86_400_000).default(DEFAULTS.proxy.limits.idle_timeout_ms),
          })
          .prefault({}),
        rewrite_bodies: bool().default(DEFAULTS.proxy.rewrite_bodies),
      })
      .prefault({}),
    tor: z
      .strictObject({
        binary: path('a program name or path').default(DEFAULTS.tor.binary),
        socks_port: z
          .union([z.literal('auto'), int(1, 65535)], { error: 'expected "auto" or a port number from 1 to 65535' })
          .default(DEFAULTS.tor.socks_port),
        num_intro_points: int(3, 20, 'expected an integer from 3 to 20 (tor\'s limits for HiddenServiceNumIntroductionPoints)').default(
          DEFAULTS.tor.num_intro_points,
        ),
        pow: z
          .strictObject({
            enabled: bool().default(DEFAULTS.tor.pow.enabled),
            queue_rate: int(1, 1_000_000, 'expected requests per second, an integer from 1 to 1000000').default(DEFAULTS.tor.pow.queue_rate),
            queue_burst: int(1, 10_000_000, 'expected an integer from 1 to 10000000').default(DEFAULTS.tor.pow.queue_burst),
          })
          .prefault({})
          .refine((p) => p.queue_burst >= p.queue_rate, {
            error: 'expected queue_burst >= queue_rate (tor refuses a burst below the rate)',
            path: ['queue_burst'],
          }),
        intro_dos: z
          .strictObject({
            enabled: bool().default(DEFAULTS.tor.intro_dos.enabled),
            rate_per_sec: int(1, INT32_MAX, `expected INTRODUCE2 cells per second, an integer from 1 to ${INT32_MAX}`).default(DEFAULTS.tor.intro_dos.rate_per_sec),
            burst_per_sec: int(1, INT32_MAX).default(DEFAULTS.tor.intro_dos.burst_per_sec),
          })
          .prefault({})
          .refine((d) => d.burst_per_sec >= d.rate_per_sec, {
            error: 'expected burst_per_sec >= rate_per_sec (tor refuses a burst below the rate)',
            path: ['burst_per_sec'],
          }),
        max_streams_close_circuit: bool().default(DEFAULTS.tor.max_streams_close_circuit),
        extra_config: z
          .array(torrcLine, { error: 'expected an array of torrc lines, e.g. ["DisableNetwork 1"]' })
          .max(512, { error: 'expected at most 512 extra torrc lines' })
          .default([...DEFAULTS.tor.extra_config]),
      })
      .prefault({}),
    health: z
      .strictObject({
        kind: oneOf(['http', 'tcp']).default(DEFAULTS.health.kind),
        path: text('an HTTP path starting with "/"', 2048)
          .regex(/^\/[\x21-\x7e]*$/, { error: 'expected an HTTP path starting with "/" (printable ASCII, no spaces)' })
          .default(DEFAULTS.health.path),
        interval_ms: ms(1000, 86_400_000).default(DEFAULTS.health.interval_ms),
        timeout_ms: ms(100, 600_000).default(DEFAULTS.health.timeout_ms),
        expect_status: z
          .array(statusCode, { error: 'expected an array of HTTP status codes, e.g. [200, 204]' })
          .min(1, { error: 'expected at least one status code (omit the key for the default)' })
          .max(100)
          .optional(),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(DEFAULTS.log.level),
        format: oneOf(['auto', 'json', 'pretty']).default(DEFAULTS.log.format),
      })
      .prefault({}),
    drain: z.strictObject({ timeout_ms: ms(0, 3_600_000).default(DEFAULTS.drain.timeout_ms) }).prefault({}),
    cluster: z
      .strictObject({
        enabled: bool().default(DEFAULTS.cluster.enabled),
        secret_file: path('a file path').default(DEFAULTS.cluster.secret_file),
        node_key_file: path('a file path').default(DEFAULTS.cluster.node_key_file),
        transport: oneOf(['tcp', 'tor']).default(DEFAULTS.cluster.transport),
        listen: clusterListen.optional(),
        advertise: meshAddress.optional(),
        peers: z
          .array(meshAddress, { error: 'expected an array of mesh addresses, e.g. ["tcp:10.99.0.2:7700"]' })
          .max(64, { error: 'expected at most 64 bootstrap peers' })
          .default([...DEFAULTS.cluster.peers]),
        priority: int(0, 1000).default(DEFAULTS.cluster.priority),
        max_priority: int(0, 1000).default(DEFAULTS.cluster.max_priority),
        heartbeat_ms: ms(100, 60_000).default(DEFAULTS.cluster.heartbeat_ms),
        suspect_after_ms: ms(200, 600_000).default(DEFAULTS.cluster.suspect_after_ms),
        dead_after_ms: ms(300, 3_600_000).default(DEFAULTS.cluster.dead_after_ms),
        lease_ms: ms(100, 3_600_000).default(DEFAULTS.cluster.lease_ms),
        max_skew_ms: ms(1000, 600_000).default(DEFAULTS.cluster.max_skew_ms),
        publish: z
          .strictObject({
            refresh_ms: ms(60_000, 86_400_000).default(DEFAULTS.cluster.publish.refresh_ms),
            upload_timeout_ms: ms(1000, 600_000).default(DEFAULTS.cluster.publish.upload_timeout_ms),
            rotation_safe: bool().default(DEFAULTS.cluster.publish.rotation_safe),
            placement: oneOf(['auto', 'merged', 'per-node'] as const).default(DEFAULTS.cluster.publish.placement),
          })
          .prefault({}),
        join: z
          .strictObject({
            enabled: bool().default(DEFAULTS.cluster.join.enabled),
            onion_port: int(1, 65535, 'expected a port number from 1 to 65535').default(DEFAULTS.cluster.join.onion_port),
            max_attempts_per_minute: int(1, 600).default(DEFAULTS.cluster.join.max_attempts_per_minute),
          })
          .prefault({}),
      })
      .prefault({})
      .superRefine((c, ctx) => {
        if (!(c.heartbeat_ms < c.suspect_after_ms && c.suspect_after_ms < c.dead_after_ms)) {
          ctx.addIssue({ code: 'custom', message: 'expected heartbeat_ms < suspect_after_ms < dead_after_ms', path: ['suspect_after_ms'] });
        }
        // Peers' claimed priorities are capped at max_priority (docs/SECURITY.md "One member"); so is our own.
        if (c.priority > c.max_priority) {
          ctx.addIssue({ code: 'custom', message: 'expected priority ≤ max_priority', path: ['priority'] });
        }
        if (!c.enabled) return;
        if (c.transport === 'tcp' && c.listen === undefined) {
          ctx.addIssue({ code: 'custom', message: `missing required key for transport "tcp"; ${CLUSTER_LISTEN_MESSAGE}`, path: ['listen'] });
        }
        if (c.transport === 'tor' && c.listen !== undefined) {
          ctx.addIssue({ code: 'custom', message: 'expected no listen with transport "tor" (the mesh listens on a unix socket behind the coordination onion service)', path: ['listen'] });
        }
        if (c.advertise !== undefined && !c.advertise.startsWith(`${c.transport}:`)) {
          ctx.addIssue({ code: 'custom', message: `expected a "${c.transport}:" address matching cluster.transport`, path: ['advertise'] });
        }
        // The mesh dials only addresses of its transport (docs/SECURITY.md, "Mesh addresses").
        c.peers.forEach((p, i) => {
          if (!p.startsWith(`${c.transport}:`)) ctx.addIssue({ code: 'custom', message: `expected a "${c.transport}:" address matching cluster.transport`, path: ['peers', i] });
        });
      }),
    admin: z
      .strictObject({
        enabled: bool().default(DEFAULTS.admin.enabled),
        listen: listen.optional(),
        // docs/SECURITY.md, "Admin API": over TCP nothing is served on trust.
        secret_file: path('a file path').optional(),
        tcp_open_reads: bool().default(DEFAULTS.admin.tcp_open_reads),
      })
      .prefault({}),
  }, { error: 'expected a TOML document' });

/** Recursively readonly. */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** What the schema yields (before path resolution). */
export type ParsedConfig = z.output<typeof configSchema>;

/** Where the proxy listens (the target of tor's HiddenServicePort). */
export type ListenAddress =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/**
 * The loaded configuration: the schema's output with every path absolute, `proxy.listen`
 * filled in and parsed, and `tor.extra_config` split into entries. Deeply frozen.
 */
export type Config = DeepReadonly<
  Omit<ParsedConfig, 'proxy' | 'tor' | 'admin'> & {
    proxy: Omit<ParsedConfig['proxy'], 'listen'> & { listen: ListenAddress };
    admin: Omit<ParsedConfig['admin'], 'listen'> & { listen: ListenAddress };
    tor: Omit<ParsedConfig['tor'], 'extra_config'> & { extra_config: (readonly [string, string])[] };
    /** The config file this came from (absolute), or undefined for in-memory configs. */
    source: string | undefined;
  }
>;

/** Parse `unix:<path>` / `127.0.0.1:<port>` (undefined if invalid). The unix path may be relative. */
export function parseListenString(s: string): ListenAddress | undefined {
  if (s.startsWith('unix:')) {
    const p = s.slice(5);
    if (p === '' || /[\s\0]/.test(p) || Buffer.byteLength(p) > MAX_UNIX_SOCKET_PATH) return undefined;
    return { kind: 'unix', path: p };
  }
  const m = /^127\.0\.0\.1:([0-9]{1,5})$/.exec(s);
  if (m === null) return undefined;
  const port = Number(m[1]);
  return port >= 1 && port <= 65535 ? { kind: 'tcp', host: '127.0.0.1', port } : undefined;
}

/** Parse "<IP>:<port>" / "[<IPv6>]:<port>" (IP literals only; undefined if invalid). */
export function parseHostPort(s: string): { readonly host: string; readonly port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]{2,45})\]|([0-9.]{7,15})):([0-9]{1,5})$/.exec(s);
  if (m === null) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined ? isIP(host) !== 6 : isIP(host) !== 4) return undefined;
  return { host, port };
}

/** A cluster address "tcp:<IP>:<port>" or "tor:<56>.onion:<port>" (undefined if invalid; names are refused for tcp). */
export function parseClusterAddress(s: string): { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'tor'; readonly onion: string; readonly port: number } | undefined {
  if (s.startsWith('tcp:')) {
    const hp = parseHostPort(s.slice(4));
    return hp === undefined ? undefined : { kind: 'tcp', ...hp };
  }
  const m = /^tor:([a-z2-7]{56}\.onion):([0-9]{1,5})$/.exec(s);
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  try {
    decodeOnionAddress(m[1]!);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return undefined;
  }
  return { kind: 'tor', onion: m[1]!, port };
}

/** Split a raw torrc line "Keyword value" (undefined if not of that shape). */
export function parseTorrcLine(line: string): readonly [string, string] | undefined {
  if (/[\0\r\n]/.test(line)) return undefined;
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]{0,127})(?:[ \t]+(.*?))?\s*$/.exec(line);
  if (m === null) return undefined;
  return [m[1]!, m[2] ?? ''];
}

/** Deep-freeze an object graph (arrays and plain objects). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Turn the schema output into a {@link Config}: paths absolute (relative ones are taken
 * relative to `baseDir`, the config file's directory), `proxy.listen` defaulted to
 * `unix:<data_dir>/proxy.sock` and parsed, `admin.listen` defaulted to
 * `unix:<runtimeDir>/admin.sock` when a runtime directory is given, else
 * `unix:<data_dir>/admin.sock`, `tor.extra_config` split. Returns a frozen object.
 */
export function resolveConfigPaths(parsed: ParsedConfig, baseDir: string, source?: string, runtimeDir?: string): Config {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const dataDir = abs(parsed.node.data_dir);
  const listenRaw = parsed.proxy.listen ?? `unix:${resolve(dataDir, DEFAULT_PROXY_SOCKET_NAME)}`;
  const listenParsed = parseListenString(listenRaw) ?? { kind: 'unix' as const, path: listenRaw.slice(5) };
  const listenAddr: ListenAddress = listenParsed.kind === 'unix' ? { kind: 'unix', path: abs(listenParsed.path) } : listenParsed;
  const adminRaw = parsed.admin.listen ?? `unix:${resolve(runtimeDir ?? dataDir, DEFAULT_ADMIN_SOCKET_NAME)}`;
  const adminParsed = parseListenString(adminRaw) ?? { kind: 'unix' as const, path: adminRaw.slice(5) };
  const adminListen: ListenAddress = adminParsed.kind === 'unix' ? { kind: 'unix', path: abs(adminParsed.path) } : adminParsed;
  const binary = parsed.tor.binary.includes('/') ? abs(parsed.tor.binary) : parsed.tor.binary;
  const tls = parsed.target.tls;
  const out = {
    ...parsed,
    node: { ...parsed.node, data_dir: dataDir },
    master: { key_dir: abs(parsed.master.key_dir) },
    target: {
      ...parsed.target,
      tls: { ...tls, ...(tls.ca_file === undefined ? {} : { ca_file: abs(tls.ca_file) }) },
    },
    proxy: { ...parsed.proxy, listen: listenAddr },
    tor: { ...parsed.tor, binary, extra_config: parsed.tor.extra_config.map((l) => parseTorrcLine(l)!) },
    cluster: { ...parsed.cluster, secret_file: abs(parsed.cluster.secret_file), node_key_file: abs(parsed.cluster.node_key_file) },
    admin: {
      ...parsed.admin,
      listen: adminListen,
      ...(parsed.admin.secret_file === undefined ? {} : { secret_file: abs(parsed.admin.secret_file) }),
    },
    source,
  };
  return deepFreeze(out);
}

/** One documented key: its dotted path and whether it has a default. */
export interface SchemaKey {
  readonly path: string;
  readonly default: unknown;
  readonly optional: boolean;
}

interface ZodInternals {
  readonly _zod: { readonly def: { readonly type: string; readonly innerType?: unknown; readonly shape?: Record<string, unknown>; readonly in?: unknown; readonly schema?: unknown; readonly defaultValue?: unknown } };
}

function defOf(s: unknown): ZodInternals['_zod']['def'] {
  return (s as ZodInternals)._zod.def;
}

/** Every leaf key of the schema (tables are walked, arrays are leaves), with its default. */
export function schemaKeys(schema: unknown = configSchema, prefix = ''): SchemaKey[] {
  const out: SchemaKey[] = [];
  let s = schema;
  for (;;) {
    const d = defOf(s);
    if (d.type === 'pipe') s = d.in;
    else if (d.type === 'prefault' || d.type === 'optional' || d.type === 'default' || d.type === 'readonly') s = d.innerType;
    else break;
  }
  const shape = defOf(s).shape ?? {};
  for (const [k, field] of Object.entries(shape)) {
    const p = prefix === '' ? k : `${prefix}.${k}`;
    let inner: unknown = field;
    let dflt: unknown = undefined;
    let optional = false;
    for (;;) {
      const d = defOf(inner);
      if (d.type === 'default') {
        dflt = d.defaultValue;
        inner = d.innerType;
      } else if (d.type === 'optional') {
        optional = true;
        inner = d.innerType;
      } else if (d.type === 'prefault' || d.type === 'readonly') inner = d.innerType;
      else if (d.type === 'pipe') inner = d.in;
      else break;
    }
    if (defOf(inner).type === 'object') out.push(...schemaKeys(inner, p));
    else out.push({ path: p, default: dflt, optional });
  }
  return out;
}
