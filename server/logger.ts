import { type Level, type Logger, pino } from 'pino';
import pretty from 'pino-pretty';

export type LogLevel = Level | 'silent';

/**
 * The server's logger: readable lines (pino-pretty) when stdout is a terminal, one JSON object per
 * line otherwise (files, pipes, log collectors). Both write to stdout synchronously in this thread
 * (no transport worker), so lines logged just before `process.exit` are not lost.
 */
export function createLogger(level: LogLevel, options: { pretty?: boolean } = {}): Logger {
  const usePretty = options.pretty ?? process.stdout.isTTY === true;
  const destination = usePretty
    ? pretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
    : pino.destination({ dest: 1, sync: true });
  return pino({ level }, destination);
}
