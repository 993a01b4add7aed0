/**
 * A linter of Prometheus text expositions after promtool's `check metrics` (client_golang's
 * promlint) and Prometheus' naming conventions ("Metric and label naming"):
 *
 * - every family has `# HELP` with text and a `# TYPE`;
 * - metric and label names are snake_case (lower case, digits, single underscores; no `:`,
 *   reserved for recording rules);
 * - counters end in `_total`, nothing else does; only histograms/summaries have
 *   `_bucket`/`_count`/`_sum` series and the `le`/`quantile` labels;
 * - units are base units (`seconds`, `bytes`, `ratio`, …), unabbreviated, and are the suffix
 *   (only `_total` may follow); no `_percent` (a 0–1 `_ratio`); a duration or latency names
 *   its unit;
 * - no metric type in the name; `_info` metrics are gauges of value 1.
 *
 * Each problem is `<family>: <what>`; an empty list means the exposition passes.
 */

/** Base units Prometheus recommends (and that are therefore expected as the suffix). */
const BASE_UNITS = new Set(['seconds', 'bytes', 'ratio', 'volts', 'amperes', 'joules', 'grams', 'meters', 'celsius', 'kelvin']);
/** Units that have a base unit (what to use instead). */
const NON_BASE_UNITS: Readonly<Record<string, string>> = {
  milliseconds: 'seconds',
  microseconds: 'seconds',
  nanoseconds: 'seconds',
  minutes: 'seconds',
  hours: 'seconds',
  days: 'seconds',
  weeks: 'seconds',
  kilobytes: 'bytes',
  megabytes: 'bytes',
  gigabytes: 'bytes',
  kibibytes: 'bytes',
  mebibytes: 'bytes',
  gibibytes: 'bytes',
  bits: 'bytes',
  percent: 'ratio',
  percentage: 'ratio',
  fahrenheit: 'celsius',
};
/** Abbreviated units promlint rejects. */
const ABBREVIATIONS = new Set(['ms', 'us', 'ns', 'sec', 'secs', 'min', 'mins', 'hr', 'hrs', 'kb', 'mb', 'gb', 'kib', 'mib', 'gib', 'pct', 'perc', 'cnt']);
const TYPE_WORDS = new Set(['gauge', 'counter', 'histogram', 'summary', 'untyped', 'metric']);
const SNAKE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const SAMPLE = /^([^\s{]+)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /([^=,\s]+)="(?:[^"\\]|\\.)*"/g;

interface Family {
  help?: string;
  type?: string;
  readonly samples: { readonly name: string; readonly labels: readonly string[]; readonly value: string }[];
}

function familyOf(name: string, families: ReadonlyMap<string, Family>): string {
  for (const suffix of ['_bucket', '_count', '_sum']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const t = families.get(base)?.type;
      if (t === 'histogram' || t === 'summary') return base;
    }
  }
  return name;
}

/** Parse the exposition into families (HELP, TYPE, samples). Throws on a line it cannot read. */
export function expositionFamilies(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const get = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (meta !== null) {
      const f = get(meta[2]!);
      if (meta[1] === 'HELP') f.help = meta[3] ?? '';
      else f.type = meta[3] ?? '';
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`unreadable exposition line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(LABEL)].map((l) => l[1]!);
    get(familyOf(m[1]!, families)).samples.push({ name: m[1]!, labels, value: m[3]! });
  }
  return families;
}

/** The problems of one family (see the module doc). */
function lintFamily(name: string, f: Family): string[] {
  const out: string[] = [];
  const type = f.type;
  if (f.help === undefined || f.help.trim() === '') out.push('no help text');
  if (type === undefined || type === '') out.push('no TYPE');
  if (!SNAKE.test(name)) out.push(name.includes(':') ? 'colons are reserved for recording rules' : 'name is not snake_case');
  const parts = name.split('_');
  const isCounter = type === 'counter';
  if (isCounter && !name.endsWith('_total')) out.push('counter metrics should have "_total" suffix');
  if (!isCounter && name.endsWith('_total')) out.push('non-counter metrics should not have "_total" suffix');
  const histo = type === 'histogram' || type === 'summary';
  for (const suffix of ['_bucket', '_count', '_sum']) {
    if (!histo && name.endsWith(suffix)) out.push(`non-histogram and non-summary metrics should not have "${suffix}" suffix`);
  }
  // the unit: a base unit, spelled out, and last (only `_total` after it)
  const tail = isCounter && parts.at(-1) === 'total' ? parts.slice(0, -1) : parts;
  parts.forEach((p, i) => {
    const base = NON_BASE_UNITS[p];
    if (base !== undefined) out.push(p.startsWith('percent') ? `no "_${p}": use a 0-1 "_ratio"` : `use base unit "${base}" instead of "${p}"`);
    if (ABBREVIATIONS.has(p)) out.push(`metric names should not contain abbreviated units ("${p}")`);
    if (TYPE_WORDS.has(p) && i > 0) out.push(`metric name should not include type "${p}"`);
    if (BASE_UNITS.has(p) && i < tail.length - 1) out.push(`the unit "${p}" must be the suffix`);
  });
  if (/_(duration|latency|elapsed|age)(_|$)/.test(name) && !BASE_UNITS.has(tail.at(-1)!)) out.push('a duration must name its unit ("_seconds")');
  if (name.endsWith('_info')) {
    if (type !== 'gauge') out.push('an _info metric must be a gauge');
    if (f.samples.some((s) => s.value !== '1')) out.push('an _info metric must have the value 1');
  }
  const labels = new Set(f.samples.flatMap((s) => s.labels));
  for (const l of labels) {
    if (!SNAKE.test(l)) out.push(`label name "${l}" is not snake_case`);
    if (!histo && (l === 'le' || l === 'quantile')) out.push(`label "${l}" is reserved for histograms and summaries`);
  }
  return out.map((p) => `${name}: ${p}`);
}

/** Lint the families of `text` for which `include(name)` holds (default: all). */
export function lintExposition(text: string, include: (name: string) => boolean = () => true): string[] {
  return [...expositionFamilies(text)].filter(([n]) => include(n)).flatMap(([n, f]) => lintFamily(n, f));
}
