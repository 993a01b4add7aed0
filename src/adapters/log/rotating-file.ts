/**
 * An append-only log file bounded in size: when a write would take it past `maxBytes`, the
 * file is renamed to `<path>.1` (replacing the previous one) and a new file is started, so at
 * most about 2 × `maxBytes` are kept (docs/OPERATIONS.md "Logs"). Used for tor's output
 * (`<data_dir>/tor/tor-output.log`). Files are created 0600 and opened with `O_NOFOLLOW`, so a
 * symlink planted at the path is refused rather than written through. Writes are synchronous
 * (tor's output is a few lines a minute); an I/O error drops the chunk, never the process.
 */
import { closeSync, constants, fstatSync, openSync, renameSync, writeSync } from 'node:fs';

/** Default size cap of tor's output log. */
export const DEFAULT_LOG_MAX_BYTES = 8 * 1024 * 1024;

const FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

/** See the module doc. */
export class RotatingLogFile {
  readonly path: string;
  readonly maxBytes: number;
  #fd: number | undefined;
  #size = 0;

  constructor(path: string, maxBytes: number = DEFAULT_LOG_MAX_BYTES) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new RangeError('maxBytes must be a positive integer');
    this.path = path;
    this.maxBytes = maxBytes;
  }

  #open(): number | undefined {
    if (this.#fd !== undefined) return this.#fd;
    try {
      const fd = openSync(this.path, FLAGS, 0o600);
      this.#fd = fd;
      this.#size = fstatSync(fd).size;
      return fd;
    } catch (_ignored) {
      // any open failure (missing directory, permissions, fd limit) must not take the node down: the next write retries
      return undefined;
    }
  }

  #rotate(): void {
    this.close();
    try {
      renameSync(this.path, `${this.path}.1`);
    } catch (_ignored) {
      // whatever the reason (nothing to rotate, not ours to move): keep appending after reopening
    }
  }

  /** Append `chunk`, rotating first if it would pass the cap. */
  write(chunk: Uint8Array): void {
    let fd = this.#open();
    if (fd === undefined) return;
    if (this.#size > 0 && this.#size + chunk.length > this.maxBytes) {
      this.#rotate();
      fd = this.#open();
      if (fd === undefined) return;
    }
    // A single chunk larger than the cap is cut to its tail.
    const data = chunk.length > this.maxBytes ? chunk.subarray(chunk.length - this.maxBytes) : chunk;
    try {
      writeSync(fd, data);
      this.#size += data.length;
    } catch (_ignored) {
      // any write failure (a full disk, an I/O error) must not take the node down
    }
  }

  /** Close the file (a later write reopens it). */
  close(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch (_ignored) {
        // the fd is released whatever close reports; nothing more can be done for a log file
      }
    }
  }
}
