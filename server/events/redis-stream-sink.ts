import { createHash } from 'node:crypto';
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../../lib/clock.js';
import { ConfigError, FarmlinkError } from '../../lib/errors.js';
import type { AppendOutcome, EventPage, EventSink, SinkEvent, StoredEvent } from './event-sink.js';
import { SinkError, reasonOf } from './sink-error.js';

/**
 * KEYS[1]: the stream; KEYS[2]: the hash of each agent's last seq. ARGV[1]: the agent id, then
 * four per event: seq ('' when it has none), name, data (JSON), ts. Appends, in order, the events
 * whose seq is above the agent's last one (and those without a seq), then records the new last
 * seq; returns {appended, duplicates, last seq}.
 *
 * A script runs atomically: no other hub's append can land between the check and the XADDs, so
 * each (agent, seq) is in the stream once, however many hubs replay it. A failed write can only
 * be the first one (out of memory is refused before a script's first write, never after it; a key
 * of the wrong type fails the first XADD), so a call that fails has written nothing.
 * The seq is formatted with %d: Lua's tostring would write large numbers as 1e+15.
 */
const APPEND_SCRIPT = `
local agent = ARGV[1]
local before = tonumber(redis.call('HGET', KEYS[2], agent) or '0')
local last = before
local appended = 0
local duplicates = 0
for i = 2, #ARGV, 4 do
  local seq = ARGV[i]
  local keep = true
  if seq ~= '' then
    local n = tonumber(seq)
    if n <= last then
      keep = false
      duplicates = duplicates + 1
    else
      last = n
    end
  end
  if keep then
    redis.call('XADD', KEYS[1], '*', 'agent_id', agent, 'seq', seq, 'name', ARGV[i + 1], 'data', ARGV[i + 2], 'ts', ARGV[i + 3])
    appended = appended + 1
  end
end
if last ~= before then
  redis.call('HSET', KEYS[2], agent, string.format('%d', last))
end
return {appended, duplicates, string.format('%d', last)}
`;
const APPEND_SHA = createHash('sha1').update(APPEND_SCRIPT).digest('hex');

/** A stream id: milliseconds, optionally "-" and a sequence. */
const STREAM_ID = /^\d{1,20}(-\d{1,20})?$/;

export interface RedisStreamSinkOptions {
  /** redis://[:password@]host:port[/db] for a single node… */
  url?: string;
  /** …or the nodes of a Redis Cluster to start from. */
  cluster?: ClusterNode[];
  /** The farm's key prefix (--redis-prefix): the stream is `<prefix>events`. */
  prefix: string;
  /** No call waits longer than this for Redis (connecting included). Default 5 s. */
  timeoutMs?: number;
  /** The wait for the first connection runs on it. */
  clock?: Clock;
  logger: Logger;
}

type Client = Redis | Cluster;

/**
 * The hub's event sink with Redis: the stream `<prefix>events`, shared by every hub of the farm,
 * with fields agent_id, seq ('' for an event without one), name, data (JSON) and ts (epoch ms).
 * `append` resolves once Redis has run the append script: the events are in Redis's memory, and
 * on its disk as far as its persistence settings say (docs/delivery.md: appendonly yes and
 * appendfsync always for every acknowledged event to survive a Redis restart). The hub never
 * trims the stream; its consumers or the operator do.
 *
 * Calls fail fast while Redis is unreachable (no offline queue) rather than holding events the
 * hub would acknowledge later: the caller is told, and the agent keeps them.
 */
export class RedisStreamSink implements EventSink {
  readonly kind = 'redis' as const;
  readonly streamKey: string;
  /**
   * Each agent's last seq. The hash tag `{<prefix>events}` makes a Redis Cluster hash only that
   * part, which is the stream's whole name: both keys land in the same slot, so one script may
   * touch both (a script's keys must all be in one slot).
   */
  readonly lastSeqKey: string;
  private readonly client: Client;
  private readonly timeoutMs: number;
  private connected = false;
  /** Ready at least once: from then on a call fails at once while Redis is away, instead of waiting. */
  private everReady = false;
  private closed = false;

  constructor(private readonly options: RedisStreamSinkOptions) {
    if (options.cluster?.length && /[{}]/.test(options.prefix)) {
      // A brace in the prefix would make the cluster hash a different part of each key.
      throw new ConfigError([
        `hub option --redis-prefix: expected no "{" or "}" with --redis-cluster (the event stream and its ` +
          `last-seq hash must hash to one slot), got "${options.prefix}"`,
      ]);
    }
    if (!options.cluster?.length && options.url === undefined) {
      throw new FarmlinkError('SINK_CONFIG', 'The Redis event sink needs a url or cluster nodes');
    }
    this.streamKey = `${options.prefix}events`;
    this.lastSeqKey = `{${this.streamKey}}:last_seq`;
    this.timeoutMs = options.timeoutMs ?? 5000;
    const redisOptions: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: this.timeoutMs,
      commandTimeout: this.timeoutMs,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
    };
    this.client = options.cluster?.length
      ? new Cluster(options.cluster, {
          redisOptions,
          enableOfflineQueue: false,
          clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
        })
      : new Redis(options.url ?? '', redisOptions);
    this.client.on('ready', () => {
      if (!this.connected) options.logger.info({ sink: 'redis' }, 'Event sink: Redis connected');
      this.connected = true;
      this.everReady = true;
    });
    this.client.on('close', () => {
      if (this.connected && !this.closed) {
        options.logger.warn(
          { sink: 'redis' },
          'Event sink: lost Redis; events are refused (agents keep them) until it is back, reconnecting',
        );
      }
      this.connected = false;
    });
    // ioredis reports connection errors here; the calls themselves fail on their own.
    this.client.on('error', () => undefined);
  }

  async append(agentId: string, events: readonly SinkEvent[]): Promise<AppendOutcome> {
    if (events.length === 0) return { appended: 0, duplicates: 0, last_seq: await this.lastSeq(agentId) };
    const args: string[] = [agentId];
    for (const event of events) {
      args.push(
        event.seq === null ? '' : String(event.seq),
        event.name,
        JSON.stringify(event.data ?? null),
        String(event.ts),
      );
    }
    const reply = await this.call(`append ${events.length} events of agent ${agentId}`, () => this.runAppend(args));
    const [appended, duplicates, last] = reply as [number, number, string];
    return { appended, duplicates, last_seq: Number(last) };
  }

  async lastSeq(agentId: string): Promise<number> {
    const value = await this.call(`read the last seq of agent ${agentId}`, () =>
      this.client.hget(this.lastSeqKey, agentId),
    );
    return value === null ? 0 : Number(value);
  }

  async read(after: string | undefined, limit: number): Promise<EventPage> {
    if (after !== undefined && !STREAM_ID.test(after)) {
      throw new FarmlinkError(
        'BAD_CURSOR',
        `after: expected an id of the Redis Stream ${this.streamKey} (such as 1764547200000-0, from an earlier answer), got "${after.slice(0, 40)}"`,
      );
    }
    // "(" makes the start exclusive (Redis 6.2+); one past the limit says whether more follow.
    const start = after === undefined ? '-' : `(${after}`;
    const entries = await this.call(`read the stream ${this.streamKey}`, () =>
      this.client.xrange(this.streamKey, start, '+', 'COUNT', limit + 1),
    );
    const events: StoredEvent[] = entries.slice(0, limit).map(([id, fields]) => storedEvent(id, fields));
    const last = events.at(-1);
    return { events, next: entries.length > limit && last ? last.cursor : null };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private async runAppend(args: readonly string[]): Promise<unknown> {
    try {
      return await this.client.evalsha(APPEND_SHA, 2, this.streamKey, this.lastSeqKey, ...args);
    } catch (error) {
      // Redis (each node of a cluster) learns the script the first time; EVALSHA saves sending it again.
      if (!reasonOf(error).startsWith('NOSCRIPT')) throw error;
      return this.client.eval(APPEND_SCRIPT, 2, this.streamKey, this.lastSeqKey, ...args);
    }
  }

  /** Runs one call once Redis is ready (waiting for it at most the timeout), as a SinkError on failure. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new SinkError('SINK_CLOSED', `Event sink: cannot ${what}: the hub is stopping`);
    if (this.client.status !== 'ready') {
      if (this.everReady) {
        throw new SinkError(
          'SINK_UNAVAILABLE',
          `Event sink: Redis is not reachable (${this.client.status}) to ${what}; nothing of it was kept`,
        );
      }
      // Starting up: the first events may come before the first connection is made.
      await this.whenReady(what);
    }
    try {
      return await fn();
    } catch (error) {
      const reason = reasonOf(error);
      if (/timed out/i.test(reason)) {
        throw new SinkError(
          'SINK_TIMEOUT',
          `Event sink: Redis did not answer within ${this.timeoutMs} ms to ${what}; it may or may not have ` +
            'been done (events with a seq can be sent again: duplicates are dropped)',
          { cause: error },
        );
      }
      const unreachable = this.client.status !== 'ready' || /writeable|connection|ECONNREFUSED|closed/i.test(reason);
      throw new SinkError(
        unreachable ? 'SINK_UNAVAILABLE' : 'SINK_WRITE_FAILED',
        `Event sink: could not ${what} in Redis: ${reason}; nothing of it was kept`,
        { cause: error },
      );
    }
  }

  private whenReady(what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const clock = this.options.clock ?? systemClock;
      const timer = clock.setTimeout(() => {
        this.client.off('ready', onReady);
        reject(
          new SinkError(
            'SINK_UNAVAILABLE',
            `Event sink: Redis is not reachable (${this.client.status}) to ${what}; nothing of it was kept`,
          ),
        );
      }, this.timeoutMs);
      const onReady = () => {
        clock.clearTimeout(timer);
        resolve();
      };
      this.client.once('ready', onReady);
    });
  }
}

function storedEvent(id: string, fields: string[]): StoredEvent {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] ?? '', fields[i + 1] ?? '');
  const seq = map.get('seq') ?? '';
  let data: unknown = null;
  try {
    data = JSON.parse(map.get('data') ?? 'null');
  } catch {
    // Written by something other than a hub: shown as the text it is.
    data = map.get('data') ?? null;
  }
  return {
    cursor: id,
    agent_id: map.get('agent_id') ?? '',
    seq: seq === '' ? null : Number(seq),
    name: map.get('name') ?? '',
    data,
    ts: Number(map.get('ts') ?? 0),
  };
}
