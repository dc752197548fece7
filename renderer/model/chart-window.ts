import type { RttSample } from '../../protocol/connection-state.js';

/** The charts show the last 15 minutes, like the latency summary and the throughput history. */
export const CHART_WINDOW_MS = 15 * 60_000;

/**
 * The time axis for `now`. Its end moves in steps, so a chart redraws when the axis has moved a
 * visible amount (a few pixels), not on every snapshot.
 */
export function chartWindow(now: number, stepMs = 5000, windowMs = CHART_WINDOW_MS): { start: number; end: number } {
  const end = Math.ceil(now / stepMs) * stepMs;
  return { start: end - windowMs, end };
}

/** Tick marks on whole multiples of `everyMs` (5 minutes: 14:05, 14:10, 14:15) inside the window. */
export function timeTicks(start: number, end: number, everyMs = 5 * 60_000): number[] {
  const ticks: number[] = [];
  for (let t = Math.ceil(start / everyMs) * everyMs; t <= end; t += everyMs) ticks.push(t);
  return ticks;
}

/** "14:05" local time. */
export function formatTick(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
}

/**
 * Whether two time series (oldest first) hold the same samples. Each snapshot brings new arrays
 * with mostly the same content; comparing ends and length is enough because samples are only
 * ever appended at the end and dropped from the start.
 */
export function sameSeries<T>(a: readonly T[], b: readonly T[], at: (sample: T) => number): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  if (a.length === 0) return true;
  return [0, a.length - 1].every((i) => {
    const x = a[i];
    const y = b[i];
    return x !== undefined && y !== undefined && at(x) === at(y);
  });
}

/**
 * Round trips with a break (a null) wherever two consecutive ones are further apart than
 * `maxGapMs`, so the line shows a gap while the link was down instead of bridging it.
 */
export function rttWithGaps(samples: readonly RttSample[], maxGapMs: number): { at: number; rtt: number | null }[] {
  const out: { at: number; rtt: number | null }[] = [];
  let previous: RttSample | undefined;
  for (const sample of samples) {
    if (previous && sample.at - previous.at > maxGapMs) out.push({ at: (previous.at + sample.at) / 2, rtt: null });
    out.push({ at: sample.at, rtt: sample.rtt_ms });
    previous = sample;
  }
  return out;
}
