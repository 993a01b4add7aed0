/**
 * Which response bodies are text worth rewriting (HTML, CSS, JavaScript, JSON, XML, …).
 *
 * Media types per RFC 6838: `type/subtype[+suffix]; params`, case-insensitive. Structured
 * syntax suffixes `+json` and `+xml` (RFC 6839) count as text; so do the JavaScript MIME
 * type essence matches of the WHATWG MIME Sniffing standard §4.6 and web app manifests.
 */

const TEXT_TYPES = new Set([
  'application/javascript', 'application/x-javascript', 'application/ecmascript', 'application/x-ecmascript',
  'application/json', 'application/ld+json', 'application/manifest+json', 'application/xml',
  'application/xhtml+xml', 'application/rss+xml', 'application/atom+xml', 'application/x-www-form-urlencoded',
  'image/svg+xml', 'application/wasm-text', 'application/graphql', 'application/x-json', 'text/x-component',
]);

/** The lower-cased essence (`type/subtype`) of a Content-Type value, or undefined. */
export function mediaTypeEssence(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const essence = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(essence) ? essence : undefined;
}

/** True if a response with this Content-Type should have its body rewritten. */
export function isRewritableContentType(contentType: string | undefined): boolean {
  const e = mediaTypeEssence(contentType);
  if (e === undefined) return false;
  if (e.startsWith('text/')) return true;
  if (TEXT_TYPES.has(e)) return true;
  return e.endsWith('+json') || e.endsWith('+xml') || e.endsWith('/xml') || e.endsWith('/json') || e.endsWith('javascript');
}
