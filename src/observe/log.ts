/**
 * Structured logs: one JSON line per noteworthy event on stderr, never one per command by default.
 * Level from `--log-level` or RINGSIDE_LOG_LEVEL (error, warn, info, debug; default info).
 */
export type Level = 'error' | 'warn' | 'info' | 'debug';
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

let threshold: number = RANK[(process.env.RINGSIDE_LOG_LEVEL as Level) ?? 'info'] ?? RANK.info;
let sink: (line: string) => void = (line) => process.stderr.write(line + '\n');

export function setLogLevel(level: string): void {
  if (!(level in RANK)) throw new Error(`unknown log level ${JSON.stringify(level)} (error, warn, info, debug)`);
  threshold = RANK[level as Level];
}

/** Replaces where lines go (tests capture them). Returns the previous sink. */
export function setLogSink(fn: (line: string) => void): (line: string) => void {
  const prev = sink;
  sink = fn;
  return prev;
}

export function log(level: Level, event: string, fields: Record<string, unknown> = {}): void {
  if (RANK[level] > threshold) return;
  sink(JSON.stringify({ time: new Date().toISOString(), level, event, ...fields }));
}

export const logger = {
  error: (event: string, fields?: Record<string, unknown>) => log('error', event, fields),
  warn: (event: string, fields?: Record<string, unknown>) => log('warn', event, fields),
  info: (event: string, fields?: Record<string, unknown>) => log('info', event, fields),
  debug: (event: string, fields?: Record<string, unknown>) => log('debug', event, fields),
};
