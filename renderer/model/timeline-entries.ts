import type { ConnectionEvent, ReasonCode } from '../../protocol/connection-state.js';
import { timelineItems, type TimelineItem } from './timeline.js';

export interface TimelineEntry extends TimelineItem {
  /** The transition's machine-readable reason, for `data-reason` and the code shown beside it. */
  code: ReasonCode | null;
  closeCode: number | undefined;
}

/** The phases timelineItems() writes a line for, one line per such event. */
const SHOWN = new Set(['connecting', 'connected', 'reconnecting', 'stopping']);

/**
 * timelineItems() with each line's reason code attached. It emits exactly one item per event in
 * SHOWN, in order, so the two lists line up; the timestamps are checked so that if that ever
 * stops being true the codes go missing rather than landing on the wrong lines.
 */
export function timelineEntries(events: readonly ConnectionEvent[]): TimelineEntry[] {
  const items = timelineItems(events);
  const shown = events.filter((e) => SHOWN.has(e.to.phase)).reverse();
  const aligned = shown.length === items.length && shown.every((e, i) => e.at === items[i]!.at);
  return items.map((item, i) => {
    const event = aligned ? shown[i] : undefined;
    return { ...item, code: event?.reason.code ?? null, closeCode: event?.reason.close_code };
  });
}
