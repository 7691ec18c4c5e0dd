// One logger factory: structured JSON lines (pino), pretty when a person is
// watching a terminal. Components get a child logger through their constructor.
import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  readonly level?: string;
  /** Force pretty (true) or JSON (false); default: pretty when stdout is a TTY. */
  readonly pretty?: boolean;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? process.env.DETOUR_LOG_LEVEL ?? 'info';
  const pretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base: { name: 'detour' } });
}

/** For tests and embedded use: drops everything. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
