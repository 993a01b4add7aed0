/**
 * Node system errors (`ENOENT`, `ESRCH`, …): the one way torbalance reads their `code`, so a
 * `catch` can handle the failure it expects and rethrow everything else.
 */

/** The `code` of a Node system error, or undefined if `e` has none. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/** True if `e` is a Node system error whose `code` is one of `codes`. */
export function isErrno(e: unknown, ...codes: readonly string[]): e is NodeJS.ErrnoException {
  const code = errnoCode(e);
  return code !== undefined && codes.includes(code);
}
