import winston from 'winston';

export type Logger = winston.Logger;
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** JSON lines when not a TTY (log collectors), readable lines on a terminal. */
export function createLogger(level: LogLevel = 'info', opts: { json?: boolean } = {}): Logger {
  const json = opts.json ?? !process.stderr.isTTY;
  return winston.createLogger({
    level,
    format: json
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
          winston.format.colorize(),
          winston.format.printf(({ timestamp, level: lvl, message, component, ...rest }) => {
            const ctx = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
            return `${String(timestamp)} ${lvl} ${component ? `[${String(component)}] ` : ''}${String(message)}${ctx}`;
          }),
        ),
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
}

/** A logger that drops everything; for tests and offline commands that print their own output. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
