/**
 * Errors with stable codes (after undici's `UND_ERR_*` and fastify's `FST_ERR_*`).
 *
 * Callers match on `code` (or `kind`), never on message text. Messages never contain
 * secret material: key bytes, cluster secrets or descriptor plaintext. Codes are listed in
 * docs/errors.md and a test keeps the two in sync.
 *
 * `kind` says where the fault is, so an operator knows what to fix (Arti's ErrorKind rule):
 * - `input`: untrusted data was malformed or failed a check (descriptor, cert, address, reply)
 * - `config`: the operator's configuration or files
 * - `tor`: the local tor process or its control port
 * - `peer`: another cluster node
 * - `target`: the proxied application
 * - `internal`: a bug in torbalance
 */
export type ErrorKind = 'input' | 'config' | 'tor' | 'peer' | 'target' | 'internal';

export interface TorbalanceErrorOptions {
  readonly cause?: unknown;
}

/** Base class of every error torbalance throws on purpose. */
export class TorbalanceError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;

  constructor(code: string, kind: ErrorKind, message: string, options: TorbalanceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TorbalanceError';
    this.code = code;
    this.kind = kind;
  }

  toJSON(): { code: string; kind: ErrorKind; message: string } {
    return { code: this.code, kind: this.kind, message: this.message };
  }
}

/**
 * Untrusted input failed to parse or verify. `code` is one of the `TB_ERR_*` input codes;
 * `position` (line number, 1-based, or byte offset) is set where it helps.
 */
export class DecodeError extends TorbalanceError {
  readonly position: number | undefined;

  constructor(code: string, message: string, position?: number, options: TorbalanceErrorOptions = {}) {
    super(code, 'input', position === undefined ? message : `${message} (at ${position})`, options);
    this.name = 'DecodeError';
    this.position = position;
  }
}

/** A programmer error: an invariant torbalance itself should have kept. */
export class BugError extends TorbalanceError {
  constructor(message: string) {
    super('TB_ERR_BUG', 'internal', message);
    this.name = 'BugError';
  }
}

/** Exhaustiveness helper for discriminated unions. */
export function assertNever(value: never, what = 'value'): never {
  throw new BugError(`unexpected ${what}: ${String(value)}`);
}

/** True if `e` is a TorbalanceError with the given code. */
export function hasCode(e: unknown, code: string): boolean {
  return e instanceof TorbalanceError && e.code === code;
}
