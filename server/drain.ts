import { untilOrTimeout } from './until-or-timeout.js';
import type { Logger } from 'pino';

export interface DrainTarget {
  connectionCount(): number;
  /** Tell every agent the hub is draining, so it moves to its next server now. */
  notifyDraining(reason: string, deadline: number): void;
  /** Close whatever is still open (the timeout passed). */
  closeAll(): void;
  /** Resolves the next time the connection count reaches zero. */
  whenEmpty(): Promise<void>;
}

export interface DrainOptions {
  reason: string;
  timeoutMs: number;
  progressIntervalMs: number;
  logger: Logger;
}

export interface DrainResult {
  durationMs: number;
  /** Connections still open at the timeout and closed by force. */
  forced: number;
}

/**
 * The hub's graceful shutdown (docs/failure-scenarios.md, a hub deploy): warn everyone, then wait until all have left or the timeout
 * passes, logging progress; at the timeout close the rest. New connections are refused by the
 * caller (with 1001) for the whole time.
 */
export async function drainConnections(target: DrainTarget, options: DrainOptions): Promise<DrainResult> {
  const started = Date.now();
  const { logger, timeoutMs } = options;
  const initial = target.connectionCount();
  logger.info(
    { connections: initial, timeout_ms: timeoutMs },
    `Draining: ${initial} connection(s) open; telling agents to move, waiting up to ${Math.round(timeoutMs / 1000)}s`,
  );
  target.notifyDraining(options.reason, started + timeoutMs);

  let timeoutTimer: NodeJS.Timeout | undefined;
  const progress =
    options.progressIntervalMs > 0
      ? setInterval(() => {
          const left = target.connectionCount();
          const remaining = Math.max(0, timeoutMs - (Date.now() - started));
          logger.info(
            { connections: left, remaining_ms: remaining },
            `Draining: waiting for ${left} connection(s) to leave (${Math.round(remaining / 1000)}s until forced close)`,
          );
        }, options.progressIntervalMs)
      : undefined;

  const timedOut = new Promise<'timeout'>((resolve) => {
    timeoutTimer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome =
    target.connectionCount() === 0
      ? 'empty'
      : await Promise.race([target.whenEmpty().then(() => 'empty' as const), timedOut]);
  clearTimeout(timeoutTimer);
  if (progress) clearInterval(progress);

  let forced = 0;
  if (outcome === 'timeout') {
    forced = target.connectionCount();
    logger.warn({ connections: forced }, `Drain timeout reached: closing the ${forced} connection(s) still open`);
    target.closeAll();
    // Give the close frames a moment; sockets that do not answer are cut by their own grace timer.
    await untilOrTimeout(target.whenEmpty(), 2000);
  }
  const durationMs = Date.now() - started;
  logger.info(
    { duration_ms: durationMs, forced },
    `Drain complete in ${(durationMs / 1000).toFixed(1)}s (${forced} closed by force)`,
  );
  return { durationMs, forced };
}
