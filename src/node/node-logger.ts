/** The node's logger, from `config.log` (src/adapters/log/logger.ts does the writing and redaction). */
import type { Config } from '../adapters/config/schema.js';
import { createLogger, isJournalStream, type Logger } from '../adapters/log/logger.js';

/** Logger for a config: level and format from `config.log`, stderr. */
export function loggerForConfig(config: Config, destination?: NodeJS.WritableStream | number): Logger {
  const pretty = config.log.format === 'pretty' || (config.log.format === 'auto' && process.stderr.isTTY);
  return createLogger({
    level: config.log.level,
    pretty,
    base: { node: config.node.name },
    // A file descriptor (default stderr) connected to the journal: syslog priorities.
    journal: typeof destination !== 'object' && isJournalStream(process.env, destination ?? 2),
    ...(destination === undefined ? {} : { destination }),
  });
}
