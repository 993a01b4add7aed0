/**
 * The small HTML page visitors get when the target cannot be reached (502) or answers
 * something the proxy refuses to pass on. It names neither the target nor the node.
 */

/** Status line reason and short explanation per status. */
const TEXTS: Readonly<Record<number, readonly [string, string]>> = {
  400: ['Bad Request', 'The request could not be understood.'],
  502: ['Bad Gateway', 'The service is temporarily unavailable. Please try again in a moment.'],
  503: ['Service Unavailable', 'The service is busy. Please try again in a moment.'],
  504: ['Gateway Timeout', 'The service did not answer in time. Please try again in a moment.'],
};

/** Body and headers of an error page for `status`. */
export function errorPage(status: number): { readonly body: Buffer; readonly headers: Readonly<Record<string, string>>; readonly reason: string } {
  const [reason, text] = TEXTS[status] ?? ['Error', 'The request failed.'];
  const html = `<!doctype html>\n<html><head><meta charset="utf-8"><title>${status} ${reason}</title></head>\n<body><h1>${status} ${reason}</h1><p>${text}</p></body></html>\n`;
  const body = Buffer.from(html, 'utf8');
  return {
    body,
    reason,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(body.length),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    },
  };
}

/** A complete raw HTTP/1.1 error response (for sockets outside node:http, e.g. upgrades). */
export function rawErrorResponse(status: number): Buffer {
  const p = errorPage(status);
  const head = [`HTTP/1.1 ${status} ${p.reason}`, ...Object.entries(p.headers).map(([k, v]) => `${k}: ${v}`), 'connection: close', '', ''].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), p.body]);
}
