import pino from 'pino';

/**
 * The controller's log: one event per line, with a level and fields that
 * name what it is about (identity, node id, xDS type, version), so logs can
 * be filtered by machine. Every part of the controller logs through a `Log`
 * function: its message begins with the component (`xds: ...`), which becomes
 * a field of its own. On a terminal the events are lines for people; anywhere
 * else they are JSON lines (pino).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export interface LogFields {
  /** Default info. */
  readonly level?: LogLevel;
  readonly identity?: string;
  readonly nodeId?: string;
  readonly type?: string;
  readonly version?: string;
  readonly [field: string]: unknown;
}

export type Log = ((message: string, fields?: LogFields) => void) & {
  /** True when debug events are written: callers on hot paths (every push) check it before building one. */
  readonly debugEnabled?: boolean;
};

/** `component: message` -> both parts (the component is a lower-case word). */
export function splitComponent(message: string): { component?: string; msg: string } {
  const m = /^([a-z][a-z-]*): ([\s\S]*)$/.exec(message);
  return m ? { component: m[1]!, msg: m[2]! } : { msg: message };
}

export interface LoggerOptions {
  readonly level: LogLevel;
  /** JSON lines (default: when stderr is not a terminal). */
  readonly json: boolean;
  /** File descriptor written to (default 2, stderr). */
  readonly fd?: number;
}

export function createLogger(o: LoggerOptions): Log {
  const rank = LOG_LEVELS.indexOf(o.level);
  if (o.json) {
    const logger = pino(
      {
        level: o.level,
        base: undefined,
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
      },
      pino.destination({ dest: o.fd ?? 2, sync: true }),
    );
    const log = (message: string, fields: LogFields = {}) => {
      const { level = 'info', ...rest } = fields;
      const { component, msg } = splitComponent(message);
      logger[level]({ ...(component ? { component } : {}), ...rest }, msg);
    };
    return Object.assign(log, { debugEnabled: o.level === 'debug' });
  }
  const out = pino.destination({ dest: o.fd ?? 2, sync: true });
  const log = (message: string, fields: LogFields = {}) => {
    const { level = 'info', ...rest } = fields;
    if (LOG_LEVELS.indexOf(level) < rank) return;
    const extra = Object.entries(rest)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => ` ${k}=${typeof v === 'string' && !/[\s"=]/.test(v) ? v : JSON.stringify(v)}`)
      .join('');
    out.write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}${extra}\n`);
  };
  return Object.assign(log, { debugEnabled: o.level === 'debug' });
}
