import type { LogEntry } from '../../protocol/agent-host.js';
import { LOG_LEVELS, type LogLevel } from '../../protocol/config.js';

const LEVEL_NAMES: Record<number, LogLevel> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};
const rank = (level: LogLevel) => LOG_LEVELS.indexOf(level);

/**
 * The last N log entries in memory, for the panel's live tail. It is a pino destination (one
 * JSON line per write) so it sees exactly what the console and the file see.
 */
export class LogBuffer {
  private readonly entries: LogEntry[] = [];
  private seq = 0;
  private readonly listeners = new Set<(entry: LogEntry) => void>();

  constructor(private readonly capacity = 2000) {}

  /** pino destination. */
  write(line: string): void {
    let parsed: { level?: number; time?: number; msg?: string; component?: string };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      return;
    }
    const entry: LogEntry = {
      seq: ++this.seq,
      time: parsed.time ?? Date.now(),
      level: LEVEL_NAMES[parsed.level ?? 30] ?? 'info',
      msg: parsed.msg ?? '',
      ...(parsed.component ? { component: parsed.component } : {}),
    };
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.shift();
    for (const listener of this.listeners) listener(entry);
  }

  /** The newest `limit` entries at or above `minLevel` (after `afterSeq`, when given), oldest first. */
  tail(options: { limit: number; minLevel: LogLevel; afterSeq?: number | undefined }): LogEntry[] {
    const min = rank(options.minLevel);
    const after = options.afterSeq ?? 0;
    const matching = this.entries.filter((e) => e.seq > after && rank(e.level) >= min);
    return matching.slice(-options.limit);
  }

  onEntry(listener: (entry: LogEntry) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
