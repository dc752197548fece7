import { describe, expect, it } from 'vitest';
import { HubSessionPeaks, SessionCountReporter, type SessionCounts } from './session-peaks.js';

/** A reporter whose deferred reports run when the test says (one turn of the event loop). */
function reporter() {
  const reports: SessionCounts[] = [];
  const queued: Array<() => void> = [];
  const r = new SessionCountReporter(
    (counts) => reports.push(counts),
    (fn) => queued.push(fn),
  );
  const turn = () => {
    for (const fn of queued.splice(0)) fn();
  };
  return { r, reports, turn };
}

describe('SessionCountReporter', () => {
  it('sends one report per turn, carrying the highest count reached since the last one', () => {
    const { r, reports, turn } = reporter();
    r.changed('legacy', 1);
    r.changed('legacy', 2);
    r.changed('legacy', 3);
    r.changed('legacy', 1);
    r.changed('enhanced', 1);
    expect(reports).toHaveLength(0);
    turn();
    expect(reports).toEqual([{ enhanced: { current: 1, peak: 1 }, legacy: { current: 1, peak: 3 } }]);
    r.changed('legacy', 0);
    turn();
    // The peak starts again from what was open at the last report.
    expect(reports[1]).toEqual({ enhanced: { current: 1, peak: 1 }, legacy: { current: 0, peak: 1 } });
  });
});

const counts = (enhanced: [number, number], legacy: [number, number] = [0, 0]): SessionCounts => ({
  enhanced: { current: enhanced[0], peak: enhanced[1] },
  legacy: { current: legacy[0], peak: legacy[1] },
});

describe('HubSessionPeaks', () => {
  it('is the most open at once across workers, not the sum of their own peaks', () => {
    const peaks = new HubSessionPeaks();
    // w1 peaks at 10 and falls to 2 before w2 peaks at 10: together never more than 12.
    peaks.report(1, counts([10, 10]));
    peaks.report(1, counts([2, 10]));
    peaks.report(2, counts([10, 10]));
    expect(peaks.peak).toEqual({ enhanced: 12, legacy: 0 });
    peaks.report(1, counts([0, 2]));
    peaks.report(2, counts([5, 10]));
    expect(peaks.peak.enhanced).toBe(12);
    // A peak between two reports of a worker counts against what the others have open.
    peaks.report(1, counts([0, 9], [4, 4]));
    expect(peaks.peak).toEqual({ enhanced: 14, legacy: 4 });
  });

  it('forgets the sessions of a worker that exited; the peak stays', () => {
    const peaks = new HubSessionPeaks();
    peaks.report(1, counts([6, 6]));
    peaks.report(2, counts([3, 3]));
    peaks.workerGone(1);
    peaks.report(2, counts([4, 4]));
    expect(peaks.peak.enhanced).toBe(9);
    peaks.report(1, counts([6, 6]));
    expect(peaks.peak.enhanced).toBe(10);
  });
});
