/**
 * Streaming body rewriting for the HTTP proxy: a Transform around core's StreamReplacer,
 * and the decode → rewrite → encode chain for gzip, deflate and br bodies (node:zlib). The
 * encoders flush after every write so visitors get data as it arrives (nothing buffers a
 * whole response).
 */
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { StreamReplacer, type RuleSet } from '../../core/rewrite/index.js';

/** Transform that replaces target → master across chunk boundaries. */
export class RewriteTransform extends Transform {
  readonly #r: StreamReplacer;

  constructor(rules: RuleSet) {
    super();
    this.#r = new StreamReplacer(rules);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out = this.#r.push(chunk);
    cb(null, out.length === 0 ? undefined : Buffer.from(out.buffer, out.byteOffset, out.length));
  }

  override _flush(cb: TransformCallback): void {
    const out = this.#r.end();
    cb(null, out.length === 0 ? undefined : Buffer.from(out.buffer, out.byteOffset, out.length));
  }
}

/** Content codings the proxy can decode and re-encode. */
export type SupportedCoding = 'identity' | 'gzip' | 'deflate' | 'br';

/** Normalise a Content-Encoding value; undefined if unsupported (incl. stacked codings). */
export function parseCoding(value: string | undefined): SupportedCoding | undefined {
  const v = (value ?? '').trim().toLowerCase();
  switch (v) {
    case '':
    case 'identity':
      return 'identity';
    case 'gzip':
    case 'x-gzip':
      return 'gzip';
    case 'deflate':
      return 'deflate';
    case 'br':
      return 'br';
    default:
      return undefined;
  }
}

/** The transforms that rewrite a body in `coding` (decoder, rewriter, encoder). */
export function rewriteChain(coding: SupportedCoding, rules: RuleSet): Transform[] {
  const rw = new RewriteTransform(rules);
  switch (coding) {
    case 'identity':
      return [rw];
    case 'gzip':
      return [zlib.createGunzip(), rw, zlib.createGzip({ flush: zlib.constants.Z_SYNC_FLUSH })];
    case 'deflate':
      return [zlib.createInflate(), rw, zlib.createDeflate({ flush: zlib.constants.Z_SYNC_FLUSH })];
    case 'br':
      return [
        zlib.createBrotliDecompress(),
        rw,
        zlib.createBrotliCompress({ flush: zlib.constants.BROTLI_OPERATION_FLUSH, params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } }),
      ];
  }
}

/** Keep only codings we can rewrite in an Accept-Encoding value (q-values kept). */
export function filterAcceptEncoding(value: string): string {
  const kept = value
    .split(',')
    .map((t) => t.trim())
    .filter((t) => {
      const name = (t.split(';')[0] ?? '').trim().toLowerCase();
      return name === 'gzip' || name === 'x-gzip' || name === 'deflate' || name === 'br' || name === 'identity';
    });
  return kept.length === 0 ? 'identity' : kept.join(', ');
}
