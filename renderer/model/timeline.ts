import type { ConnectionEvent, ReasonCode } from '../../protocol/connection-state.js';

export interface TimelineItem {
  at: number;
  /** What happened, in a few words ("Switched to fallback #2", "Registered on the primary"). */
  title: string;
  /** Why (the transition's reason, as the agent said it). */
  detail: string;
  /** The reason's stable code, and the WebSocket close code when the reason was a close. */
  code: ReasonCode;
  closeCode: number | undefined;
  tone: 'good' | 'warn' | 'bad' | 'neutral';
}

const serverName = (index: number) => (index === 0 ? 'the primary' : `fallback #${index}`);

/** One line of the connection timeline per transition worth showing, newest first. */
export function timelineItems(events: readonly ConnectionEvent[]): TimelineItem[] {
  const items: TimelineItem[] = [];
  let lastDialled = -1;
  for (const event of events) {
    const to = event.to;
    const why = { detail: event.reason.message, code: event.reason.code, closeCode: event.reason.close_code };
    switch (to.phase) {
      case 'connecting': {
        const switched = lastDialled !== -1 && to.server.index !== lastDialled;
        lastDialled = to.server.index;
        const title = switched
          ? to.server.index === 0
            ? 'Back to the primary'
            : `Switched to ${serverName(to.server.index)}`
          : `Connecting to ${serverName(to.server.index)}`;
        items.push({
          at: event.at,
          title,
          ...why,
          tone: event.reason.code === 'reconnect_requested' ? 'neutral' : event.from === 'connected' ? 'bad' : 'warn',
        });
        break;
      }
      case 'connected':
        items.push({ at: event.at, title: `Registered on ${serverName(to.server.index)}`, ...why, tone: 'good' });
        break;
      case 'reconnecting':
        items.push({
          at: event.at,
          title: `Waiting ${Math.round(to.delay_ms / 100) / 10}s before retrying (backoff #${to.backoff_step})`,
          ...why,
          tone: 'bad',
        });
        break;
      case 'stopping':
        items.push({ at: event.at, title: 'Disconnecting', ...why, tone: 'neutral' });
        break;
      default:
        break;
    }
  }
  return items.reverse();
}
