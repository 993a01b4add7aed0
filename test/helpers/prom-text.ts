/**
 * A strict little parser of the Prometheus text exposition format (version 0.0.4) for tests:
 * `# HELP` / `# TYPE` lines and samples `name{label="value",…} value`. Throws on any line it
 * does not recognise, so a malformed exposition fails the test.
 */
export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PromText {
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly PromSample[];
}

// Values as Prometheus parses them (Go's ParseFloat: `NaN` in any case — prom-client writes
// `Nan` —, `+Inf`, `-Inf`).
const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?(?:[0-9.eE+-]+|[Nn][Aa][Nn]|\+Inf|-Inf))(?: -?\d+)?$/;
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;

export function parsePromText(text: string): PromText {
  const types = new Map<string, string>();
  const samples: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      if (name === undefined || type === undefined) throw new Error(`bad TYPE line: ${line}`);
      types.set(name, type);
      continue;
    }
    const m = SAMPLE_RE.exec(line);
    if (m === null) throw new Error(`bad sample line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    LABEL_RE.lastIndex = 0;
    while (LABEL_RE.lastIndex < body.length) {
      const at = LABEL_RE.lastIndex;
      const l = LABEL_RE.exec(body);
      if (l === null || l.index !== at) throw new Error(`bad labels: ${line}`);
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const nan = /^nan$/i.test(m[4]!);
    const value = nan ? Number.NaN : Number(m[4]!.replace('+Inf', 'Infinity').replace('-Inf', '-Infinity'));
    if (Number.isNaN(value) && !nan) throw new Error(`bad value: ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { types, samples };
}

/** Sum of the samples named `name` whose labels include `match`. */
export function promValue(p: PromText, name: string, match: Record<string, string> = {}): number {
  return p.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}
