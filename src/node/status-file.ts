/**
 * The debug status file: with `TORBALANCE_STATUS_FILE` set, the node writes a JSON status
 * snapshot (no secrets: addresses, counters, cluster roles) to that file every second
 * (atomically, mode 0600); off by default.
 */
import { dirname } from 'node:path';
import { writeFileAtomic } from '../adapters/fs/key-store.js';
import type { Logger } from '../adapters/log/logger.js';
import type { NodeStatus } from './node-status.js';

/**
 * Write the debug status file safely: a fresh temp file in the same directory, created 0600
 * with O_EXCL|O_NOFOLLOW, renamed over `path` (src/adapters/fs/key-store.ts `writeFileAtomic`).
 * A symlink at `path` is replaced, not followed.
 */
export function writeStatusFile(path: string, text: string): Promise<void> {
  return writeFileAtomic(dirname(path), path, new TextEncoder().encode(text));
}

/** Write `snapshot()` to `path` now and every second; returns the function that stops it. */
export function startStatusFile(path: string, snapshot: () => NodeStatus, log: Logger): () => void {
  let writing = false;
  const write = (): void => {
    if (writing) return;
    writing = true;
    const text = JSON.stringify({ ...snapshot(), pid: process.pid, atMs: Date.now() }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    // A fresh temp name opened O_CREAT|O_EXCL|O_NOFOLLOW 0600, then renamed over the path
    // (rename replaces a symlink there instead of following it): a symlink planted at the
    // path or at a guessable temp name cannot redirect the write.
    writeStatusFile(path, text)
      .catch((e: unknown) => {
        log.debug({ err: e }, 'cannot write the status file');
      })
      .finally(() => {
        writing = false;
      });
  };
  write();
  const timer = setInterval(write, 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
  };
}
