/**
 * Streaming body rewriting for the HTTP proxy: a Transform around core's StreamReplacer,
 * and the decode → rewrite → encode chain for gzip, deflate and br bodies (node:zlib). The
 * encoder is flushed (sync flush) once per event-loop turn in which rewritten text reached
 * it, so visitors get data as it arrives (nothing buffers a whole response) without a
 * flush — and its bytes and compression loss — after every 16 KiB chunk of decoded text.
 */
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { StreamReplacer, type RuleSet } from '../../core/rewrite/index.js';

/** Transform that replaces target → master across chunk boundaries. */
export class RewriteTransform extends Transform {
  readonly #r: StreamReplacer;
  readonly #afterOutput: (() => void) | undefined;

  /** `afterOutput` runs after each chunk of output was passed on. */
  constructor(rules: RuleSet, afterOutput?: () => void) {
    super();
    this.#r = new StreamReplacer(rules);
    this.#afterOutput = afterOutput;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out = this.#r.push(chunk);
    cb(null, out.length === 0 ? undefined : Buffer.from(out.buffer, out.byteOffset, out.length));
    if (out.length > 0) this.#afterOutput?.();
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
  if (coding === 'identity') return [new RewriteTransform(rules)];
  const c = zlib.constants;
  const enc = coding === 'gzip' ? zlib.createGzip() : coding === 'deflate' ? zlib.createDeflate() : zlib.createBrotliCompress({ params: { [c.BROTLI_PARAM_QUALITY]: 4 } });
  const dec = coding === 'gzip' ? zlib.createGunzip() : coding === 'deflate' ? zlib.createInflate() : zlib.createBrotliDecompress();
  const kind = coding === 'br' ? c.BROTLI_OPERATION_FLUSH : c.Z_SYNC_FLUSH;
  let scheduled = false;
  const flushThisTurn = (): void => {
    if (scheduled) return;
    scheduled = true;
    // setImmediate: after what arrived in this turn went through (pipe writes synchronously)
    setImmediate(() => {
      scheduled = false;
      if (!enc.destroyed && !enc.writableEnded) enc.flush(kind, () => undefined);
    });
  };
  return [dec, new RewriteTransform(rules, flushThisTurn), enc];
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
