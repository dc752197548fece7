import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../lib/clock.js';
import { InternalErrorRecovery } from './internal-errors.js';

function recordingLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) },
  );
  return { logger, lines };
}

describe('internal-error recovery', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('resets once for a storm of errors, from a timer, and logs the storm once', () => {
    const { logger, lines } = recordingLogger();
    const reset = vi.fn();
    const recovery = new InternalErrorRecovery({ logger, reset, clock: systemClock });
    for (let i = 0; i < 10_000; i += 1) recovery.handle('uncaught exception', new Error(`boom ${i}`));
    expect(reset).not.toHaveBeenCalled(); // never from inside the handler: the event loop gets its turn
    expect(lines.filter((l) => l.msg.startsWith('Internal error'))).toHaveLength(1);
    vi.advanceTimersByTime(0);
    expect(reset).toHaveBeenCalledTimes(1);
    expect(lines.some((l) => l.msg.startsWith('9999 more internal error(s)'))).toBe(true);
  });

  it('spaces resets by a backoff that doubles up to its ceiling, and starts over after a quiet spell', async () => {
    const { logger } = recordingLogger();
    const times: number[] = [];
    const start = Date.now();
    const recovery = new InternalErrorRecovery({
      logger,
      reset: () => times.push(Date.now() - start),
      clock: systemClock,
      minDelayMs: 1000,
      maxDelayMs: 4000,
      quietMs: 60_000,
    });
    // A bug that fires again on every reset: each reset brings the next error.
    const reset = (recovery as unknown as { options: { reset: (r: string) => void } }).options;
    const original = reset.reset;
    reset.reset = (reason) => {
      original(reason);
      void Promise.resolve().then(() => recovery.handle('uncaught exception', new Error('again')));
    };
    recovery.handle('uncaught exception', new Error('first'));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(times.slice(0, 6)).toEqual([0, 1000, 3000, 7000, 11_000, 15_000]);
    recovery.stop();
    const after = recovery.resets;
    vi.advanceTimersByTime(60_000);
    expect(recovery.resets).toBe(after); // stopped: nothing more

    const quiet = new InternalErrorRecovery({
      logger,
      reset: () => times.push(-1),
      clock: systemClock,
      minDelayMs: 1000,
      quietMs: 60_000,
    });
    quiet.handle('x', new Error('a'));
    vi.advanceTimersByTime(0);
    quiet.handle('x', new Error('b'));
    vi.advanceTimersByTime(999);
    expect(quiet.resets).toBe(1);
    vi.advanceTimersByTime(1);
    expect(quiet.resets).toBe(2);
    vi.advanceTimersByTime(61_000);
    quiet.handle('x', new Error('c')); // after a quiet minute: at once again
    vi.advanceTimersByTime(0);
    expect(quiet.resets).toBe(3);
  });

  it('an error raised while handling or resetting is never recovered from again', () => {
    const failingLogger = pino(
      { level: 'info' },
      {
        write: () => {
          throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
        },
      },
    );
    const reset = vi.fn(() => {
      throw new Error('reset failed');
    });
    const recovery = new InternalErrorRecovery({ logger: failingLogger, reset, clock: systemClock });
    expect(() => recovery.handle('uncaught exception', new Error('boom'))).not.toThrow();
    vi.advanceTimersByTime(0);
    expect(reset).toHaveBeenCalledTimes(1);
    // Nothing was scheduled by the failures themselves: no further reset however long we wait.
    vi.advanceTimersByTime(10 * 60_000);
    expect(reset).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
