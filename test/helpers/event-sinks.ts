import { Redis } from 'ioredis';
import type { HubProcess } from './hub-process.js';

/** An event as a hub's sink holds it, read back the same way from a Redis Stream or a hub's admin API. */
export interface SinkEvent {
  agent_id: string;
  seq: number | null;
  name: string;
  data: unknown;
}

/** Every entry of the Redis Stream `key` (`<redis-prefix>events`), in stream order. */
export async function readStream(redisUrl: string, key: string): Promise<SinkEvent[]> {
  const client = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await client.connect();
  try {
    const events: SinkEvent[] = [];
    let start = '-';
    for (;;) {
      const page = await client.xrange(key, start, '+', 'COUNT', 1000);
      for (const [, fields] of page) {
        const record: Record<string, string> = {};
        for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
        events.push({
          agent_id: record.agent_id ?? '',
          seq: record.seq === undefined || record.seq === '' ? null : Number(record.seq),
          name: record.name ?? '',
          data: record.data === undefined ? undefined : (JSON.parse(record.data) as unknown),
        });
      }
      if (page.length < 1000) return events;
      start = `(${page.at(-1)![0]}`;
    }
  } finally {
    client.disconnect();
  }
}

/** The hub's event log (no Redis) through its admin API, every page. */
export async function readAdminEvents(hub: HubProcess): Promise<SinkEvent[]> {
  const token = await hub.adminToken();
  const events: SinkEvent[] = [];
  let after: string | null = null;
  for (let page = 0; page < 1000; page += 1) {
    const query = `limit=1000${after === null ? '' : `&after=${encodeURIComponent(after)}`}`;
    const { status, body, text } = await hub.get(`/api/v1/admin/events?${query}`, token);
    if (status !== 200) throw new Error(`GET /api/v1/admin/events?${query} answered ${status}: ${text}`);
    const answer = body as { events: Array<SinkEvent & { cursor: string }>; next: string | null };
    for (const e of answer.events) {
      events.push({
        agent_id: e.agent_id,
        seq: e.seq,
        name: e.name,
        data: typeof e.data === 'string' ? parseMaybe(e.data) : e.data,
      });
    }
    if (answer.next === null || answer.events.length === 0) return events;
    after = answer.next;
  }
  throw new Error('more than 1000 pages of events');
}

/**
 * Duplicates the hub dropped, from /metrics: the session's count and the sink's (outcome
 * "duplicate") count the same drops from two places, so the larger is taken. NaN if unreachable.
 */
export async function duplicatesDropped(hub: HubProcess): Promise<number> {
  try {
    const res = await fetch(`${hub.url}/metrics`, { signal: AbortSignal.timeout(5000) });
    let session = 0;
    let sink = 0;
    for (const line of (await res.text()).split('\n')) {
      const value = Number(line.split(' ').at(-1));
      if (/^farmlink_hub_duplicates_dropped_total[{ ]/.test(line)) session += value;
      else if (/^farmlink_hub_sink_appends_total\{[^}]*outcome="duplicate"/.test(line)) sink += value;
    }
    return Math.max(session, sink);
  } catch {
    return Number.NaN;
  }
}

function parseMaybe(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
