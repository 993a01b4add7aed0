/**
 * HTTP header rewriting between a target onion service and the master address visitors use.
 *
 * Response headers (target → master), each by its grammar:
 * - `Location`, `Content-Location` (RFC 9110 §10.2.2, §8.7): absolute, scheme-relative
 *   (`//host/…`) or relative URI references; only absolute/scheme-relative ones name a host.
 * - `Refresh` (`5; url=https://…`, HTML living standard "shared declarative refresh steps").
 * - `Set-Cookie` (RFC 6265 §4.1): the `Domain` attribute (leading dot allowed, subdomains).
 * - `Content-Security-Policy[-Report-Only]` (CSP3 §2.3.1 source lists): host-sources such as
 *   `https://x.onion`, `*.x.onion`, `x.onion:*`.
 * - `Link` (RFC 8288 §3): `<URI-Reference>; params`, comma-separated.
 * - `Access-Control-Allow-Origin` (Fetch): `*`, `null` or a serialized origin.
 * Every other header value passes through the generic replacement rules as well, and the
 * caller drops any header that still names the target ({@link headerLeaksTarget}).
 *
 * Request headers (master → target): `Host`, `Origin`, `Referer`.
 *
 * When the node speaks TLS to the target, the target believes itself `https`; visitors reach
 * the master over plain HTTP inside the onion, so `https://<target>` becomes `http://<master>`
 * (and `wss` → `ws`), and the reverse on requests. Visitors are assumed to reach the master
 * on the default port: `<target>:<targetPort>` becomes `<master>`.
 */
import { compileRules, replaceAllString, type ReplaceRule, type RuleSet } from './rules.js';

/** What to rewrite: both addresses as `<56 chars>.onion` (any case; stored lower-cased). */
export interface AddressMapping {
  readonly target: string;
  readonly targetPort: number;
  readonly master: string;
  /** The node talks TLS to the target. */
  readonly targetTls: boolean;
}

/** Compiled rewriting context for one proxy (immutable, shared by all requests). */
export interface RewriteContext {
  readonly target: string;
  readonly master: string;
  readonly targetPort: number;
  readonly targetTls: boolean;
  /** target → master rules (bodies and response headers). */
  readonly forward: RuleSet;
  /** master → target rules (request headers other than Host). */
  readonly reverse: RuleSet;
  /** `Host` value to send to the target. */
  readonly targetAuthority: string;
}

function defaultPort(tls: boolean): number {
  return tls ? 443 : 80;
}

/** The forward (target → master) rule list; exported for tests and the body rewriter. */
export function forwardRuleList(m: AddressMapping): ReplaceRule[] {
  const t = m.target.toLowerCase();
  const master = m.master.toLowerCase();
  const rules: ReplaceRule[] = [];
  if (m.targetTls) {
    for (const [s, v] of [['https', 'http'], ['wss', 'ws']] as const) {
      rules.push({ from: `${s}://${t}:${m.targetPort}`, to: `${v}://${master}`, notFollowedByDigit: true });
      rules.push({ from: `${s}://${t}`, to: `${v}://${master}` });
    }
  }
  rules.push({ from: `${t}:${m.targetPort}`, to: master, notFollowedByDigit: true });
  rules.push({ from: t, to: master });
  return rules;
}

/** The reverse (master → target) rule list. */
export function reverseRuleList(m: AddressMapping): ReplaceRule[] {
  const t = m.target.toLowerCase();
  const master = m.master.toLowerCase();
  const auth = m.targetPort === defaultPort(m.targetTls) ? t : `${t}:${m.targetPort}`;
  const rules: ReplaceRule[] = [];
  if (m.targetTls) {
    rules.push({ from: `http://${master}`, to: `https://${auth}` });
    rules.push({ from: `ws://${master}`, to: `wss://${auth}` });
  }
  rules.push({ from: `//${master}`, to: `//${auth}` });
  rules.push({ from: master, to: t });
  return rules;
}

/** Build the rewriting context. Addresses are lower-cased; ports must be 1..65535. */
export function createRewriteContext(m: AddressMapping): RewriteContext {
  if (!Number.isInteger(m.targetPort) || m.targetPort < 1 || m.targetPort > 65535) throw new RangeError('target port out of range');
  const target = m.target.toLowerCase();
  const master = m.master.toLowerCase();
  return {
    target,
    master,
    targetPort: m.targetPort,
    targetTls: m.targetTls,
    forward: compileRules(forwardRuleList(m)),
    reverse: compileRules(reverseRuleList(m)),
    targetAuthority: m.targetPort === defaultPort(m.targetTls) ? target : `${target}:${m.targetPort}`,
  };
}

/** True if `host` (lower-case) is `base` or a subdomain of it. */
function isHostOrSub(host: string, base: string): boolean {
  return host === base || host.endsWith(`.${base}`);
}

const URL_RE = /^(\s*)([a-zA-Z][a-zA-Z0-9+.-]*:)?\/\/([^/?#\s]*)(.*)$/s;

function splitAuthority(auth: string): { userinfo: string; host: string; port: string | undefined } {
  const at = auth.lastIndexOf('@');
  const userinfo = at >= 0 ? auth.slice(0, at + 1) : '';
  const hp = auth.slice(at + 1);
  const m = /^(.*?)(?::(\d*))?$/.exec(hp)!;
  return { userinfo, host: m[1] ?? '', port: m[2] };
}

/**
 * Rewrite one URI reference naming the target (or a subdomain) to the master. Relative
 * references and other hosts are returned unchanged (then the generic rules still apply).
 */
export function rewriteUrlToMaster(url: string, ctx: RewriteContext): string {
  const m = URL_RE.exec(url);
  if (m === null) return replaceAllString(url, ctx.forward);
  const [, lead = '', scheme, authority = '', rest = ''] = m;
  const a = splitAuthority(authority);
  const host = a.host.toLowerCase();
  if (!isHostOrSub(host, ctx.target)) return replaceAllString(url, ctx.forward);
  const newHost = host.slice(0, host.length - ctx.target.length) + ctx.master;
  let newScheme = scheme;
  let port = a.port;
  const samePort = port === undefined || port === '' || Number(port) === ctx.targetPort;
  if (samePort) port = undefined;
  if (ctx.targetTls && samePort && scheme !== undefined) {
    const s = scheme.toLowerCase();
    if (s === 'https:') newScheme = 'http:';
    else if (s === 'wss:') newScheme = 'ws:';
  }
  const out = `${lead}${newScheme ?? ''}//${a.userinfo}${newHost}${port === undefined ? '' : `:${port}`}${rest}`;
  return replaceAllString(out, ctx.forward);
}

/**
 * Rewrite one URI reference naming the master (or a subdomain) to the target: `Origin`,
 * `Referer`. Scheme goes `http` → `https` when the target speaks TLS; the port becomes the
 * target's (omitted when it is the scheme's default).
 */
export function rewriteUrlToTarget(url: string, ctx: RewriteContext): string {
  const m = URL_RE.exec(url);
  if (m === null) return url;
  const [, lead = '', scheme, authority = '', rest = ''] = m;
  const a = splitAuthority(authority);
  const host = a.host.toLowerCase();
  if (!isHostOrSub(host, ctx.master)) return url;
  const newHost = host.slice(0, host.length - ctx.master.length) + ctx.target;
  let newScheme = scheme;
  if (ctx.targetTls && scheme !== undefined) {
    const s = scheme.toLowerCase();
    if (s === 'http:') newScheme = 'https:';
    else if (s === 'ws:') newScheme = 'wss:';
  }
  const tls = (newScheme ?? '').toLowerCase() === 'https:' || (newScheme ?? '').toLowerCase() === 'wss:';
  const port = ctx.targetPort === defaultPort(tls) ? '' : `:${ctx.targetPort}`;
  return `${lead}${newScheme ?? ''}//${a.userinfo}${newHost}${port}${rest}`;
}

/** `Refresh: 5; url=…` (the URL may be quoted). */
export function rewriteRefresh(value: string, ctx: RewriteContext): string {
  const m = /^(\s*[\d.]*\s*[;,]?\s*(?:url\s*=\s*)?)(['"]?)(.*?)(\2\s*)$/is.exec(value);
  if (m === null) return replaceAllString(value, ctx.forward);
  const [, head = '', q = '', url = '', tailStr = ''] = m;
  return replaceAllString(`${head}${q}${rewriteUrlToMaster(url, ctx)}${tailStr}`, ctx.forward);
}

/** `Link: <uri>; rel=x, <uri2>; rel=y` — every `<URI-Reference>` is rewritten. */
export function rewriteLink(value: string, ctx: RewriteContext): string {
  const out = value.replace(/<([^>]*)>/g, (_all, uri: string) => `<${rewriteUrlToMaster(uri, ctx)}>`);
  return replaceAllString(out, ctx.forward);
}

/** `Set-Cookie`: rewrite the `Domain` attribute (leading dot kept; subdomains mapped). */
export function rewriteSetCookie(value: string, ctx: RewriteContext): string {
  const parts = value.split(';');
  const out = parts.map((part, idx) => {
    if (idx === 0) return part;
    const m = /^(\s*domain\s*=\s*)(\.?)(.*?)(\s*)$/is.exec(part);
    if (m === null) return part;
    const [, head = '', dot = '', dom = '', sp = ''] = m;
    const d = dom.toLowerCase();
    if (!isHostOrSub(d, ctx.target)) return part;
    return `${head}${dot}${d.slice(0, d.length - ctx.target.length)}${ctx.master}${sp}`;
  });
  return replaceAllString(out.join(';'), ctx.forward);
}

/** CSP source lists: each whitespace-separated source expression naming the target. */
export function rewriteCsp(value: string, ctx: RewriteContext): string {
  const out = value.replace(/[^\s;,]+/g, (tok) => (tok.includes('//') ? rewriteUrlToMaster(tok, ctx) : tok));
  return replaceAllString(out, ctx.forward);
}

/** `Access-Control-Allow-Origin`: `*` and `null` pass; an origin naming the target is mapped. */
export function rewriteAcao(value: string, ctx: RewriteContext): string {
  const v = value.trim();
  if (v === '*' || v.toLowerCase() === 'null') return value;
  return rewriteUrlToMaster(value, ctx);
}

/** Rewrite one response header value (target → master) by the header's grammar. */
export function rewriteResponseHeader(name: string, value: string, ctx: RewriteContext): string {
  switch (name.toLowerCase()) {
    case 'location':
    case 'content-location':
      return rewriteUrlToMaster(value, ctx);
    case 'refresh':
      return rewriteRefresh(value, ctx);
    case 'link':
      return rewriteLink(value, ctx);
    case 'set-cookie':
      return rewriteSetCookie(value, ctx);
    case 'content-security-policy':
    case 'content-security-policy-report-only':
      return rewriteCsp(value, ctx);
    case 'access-control-allow-origin':
      return rewriteAcao(value, ctx);
    default:
      return replaceAllString(value, ctx.forward);
  }
}

/**
 * Rewrite one request header value (master → target). `Host` becomes the target authority;
 * `Origin` and `Referer` are mapped by {@link rewriteUrlToTarget}; others are unchanged.
 */
export function rewriteRequestHeader(name: string, value: string, ctx: RewriteContext): string {
  switch (name.toLowerCase()) {
    case 'host':
      return ctx.targetAuthority;
    case 'origin':
    case 'referer':
      return rewriteUrlToTarget(value, ctx);
    default:
      return value;
  }
}

/** True if a header name or value still names the target (the last guard before sending). */
export function headerLeaksTarget(name: string, value: string, ctx: RewriteContext): boolean {
  const label = targetLabel(ctx);
  return containsLabel(name, label) || containsLabel(value, label);
}

/**
 * True if `s` may name the target: its 56-character label occurs in it case-insensitively
 * (true for a few non-ASCII spellings the exact check rejects). When false, no rewriting
 * function changes `s` (every rule and every
 * URL, cookie and CSP rewrite starts from an occurrence of the target host), so callers can
 * pass such header values on untouched.
 */
export function mayNameTarget(s: string, ctx: RewriteContext): boolean {
  // a superset of the exact check (see containsLabel): enough to decide "nothing to do"
  return s.toLowerCase().includes(targetLabel(ctx));
}

function targetLabel(ctx: RewriteContext): string {
  return ctx.target.slice(0, ctx.target.length - '.onion'.length);
}

function containsLabel(s: string, label: string): boolean {
  // toLowerCase maps ASCII A-Z exactly like ASCII folding and can only add matches (e.g.
  // U+212A KELVIN SIGN → "k"), never remove one: a miss here is a miss for the exact check.
  if (!s.toLowerCase().includes(label)) return false;
  return asciiLower(s).includes(label);
}

function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) | 0x20));
}
