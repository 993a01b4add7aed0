/**
 * The service manager's readiness protocol (sd_notify(3), systemd.service(5) `Type=notify`),
 * sans-IO: what the node tells systemd and when. The I/O is src/adapters/system/sd-notify.ts.
 *
 * - `READY=1` once, when both the proxy listens (the node has started) and the node's tor has
 *   bootstrapped (100 %): before that `systemctl start` has not succeeded, and a visitor
 *   would find no intro points. Never after `STOPPING=1`.
 * - `STOPPING=1` once, when the node starts to drain (SIGTERM/SIGINT).
 * - `WATCHDOG=1` every half `WATCHDOG_USEC` (sd_watchdog_enabled(3)), when the variable is
 *   set and `WATCHDOG_PID`, if set, is this process.
 */

/** One `KEY=VALUE` assignment of a notification message. */
export type NotifyField = readonly [key: string, value: string];

/**
 * The `KEY=VALUE` strings of a message, checked: keys are upper-case `[A-Z_]` words, values
 * one line (sd_notify(3) separates assignments by newlines).
 */
export function notifyAssignments(fields: readonly NotifyField[]): string[] {
  return fields.map(([k, v]) => {
    if (!/^[A-Z][A-Z0-9_]*$/.test(k)) throw new RangeError(`sd_notify: bad key ${JSON.stringify(k)}`);
    if (/[\n\r\0]/.test(v)) throw new RangeError(`sd_notify: the value of ${k} is not one line`);
    return `${k}=${v}`;
  });
}

/**
 * The watchdog ping interval in ms: half of `WATCHDOG_USEC`, or undefined when the watchdog is
 * off (unset, not a positive integer, or `WATCHDOG_PID` names another process).
 */
export function watchdogIntervalMs(env: Readonly<Record<string, string | undefined>>, pid: number): number | undefined {
  const usec = env['WATCHDOG_USEC'];
  if (usec === undefined || !/^[1-9][0-9]{0,15}$/.test(usec)) return undefined;
  const wpid = env['WATCHDOG_PID'];
  if (wpid !== undefined && wpid !== '' && wpid !== String(pid)) return undefined;
  return Math.max(1, Math.floor(Number(usec) / 2000));
}

/** What happened to the node, as {@link ReadinessPolicy} sees it. */
export type NodeEvent =
  | { readonly kind: 'listening' }
  | { readonly kind: 'tor-progress'; readonly percent: number }
  | { readonly kind: 'stopping' };

/** Decides the `READY=1` and `STOPPING=1` messages from node events (see the module comment). */
export class ReadinessPolicy {
  #listening = false;
  #bootstrapped = false;
  #ready = false;
  #stopping = false;

  /** Feed one event; returns the message to send now (empty: nothing). */
  on(e: NodeEvent): NotifyField[] {
    if (e.kind === 'stopping') {
      if (this.#stopping) return [];
      this.#stopping = true;
      return [['STOPPING', '1'], ['STATUS', 'draining']];
    }
    if (e.kind === 'listening') this.#listening = true;
    // Bootstrap counts once reached: tor's later dips (a restart) do not take readiness back.
    else if (e.percent >= 100) this.#bootstrapped = true;
    if (this.#ready || this.#stopping || !this.#listening || !this.#bootstrapped) return [];
    this.#ready = true;
    return [['READY', '1'], ['STATUS', 'tor bootstrapped; proxy listening']];
  }

  get ready(): boolean {
    return this.#ready;
  }
}
