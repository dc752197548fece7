import path from 'node:path';
import type { Logger } from 'pino';
import { redactUrl } from '../../protocol/server-url.js';
import { ConfigError } from '../../lib/errors.js';
import type { HubOptions } from '../hub-options.js';
import type { EventSink } from './event-sink.js';
import { LocalEventLog } from './local-event-log.js';
import { RedisStreamSink } from './redis-stream-sink.js';
import { reasonOf } from './sink-error.js';

export type EventSinkOptions = Pick<HubOptions, 'redis_url' | 'redis_cluster' | 'redis_prefix' | 'data_dir'>;

/** The directory of the local event log inside a hub's data dir. */
export function eventLogDir(dataDir: string): string {
  return path.join(dataDir, 'events');
}

/**
 * The hub's event sink: the Redis Stream `<redis-prefix>events` shared by every hub of the farm
 * when Redis is configured, else the event log in `<data-dir>/events` (this hub's alone, unless
 * its workers share the directory).
 */
export function createEventSink(options: EventSinkOptions, logger: Logger): EventSink {
  if (options.redis_url !== undefined || options.redis_cluster !== undefined) {
    const sink = new RedisStreamSink({
      ...(options.redis_url !== undefined ? { url: options.redis_url } : {}),
      ...(options.redis_cluster !== undefined ? { cluster: options.redis_cluster } : {}),
      prefix: options.redis_prefix,
      logger,
    });
    const where = options.redis_url
      ? redactUrl(options.redis_url)
      : `cluster ${(options.redis_cluster ?? []).map((n) => `${n.host}:${n.port}`).join(',')}`;
    logger.info(
      { sink: 'redis', redis: where, stream: sink.streamKey },
      `Events go to the Redis Stream ${sink.streamKey} on ${where}, once per agent and seq across every hub sharing it`,
    );
    return sink;
  }
  const dir = eventLogDir(options.data_dir);
  let log: LocalEventLog;
  try {
    log = LocalEventLog.open(dir);
  } catch (error) {
    throw new ConfigError([
      `hub option --data-dir / FARMLINK_HUB_DATA_DIR: expected a directory the hub can write its event log in ` +
        `(${dir}), got: ${reasonOf(error instanceof Error && error.cause !== undefined ? error.cause : error)}`,
    ]);
  }
  logger.info(
    { sink: 'local', path: dir },
    `Events go to this hub's event log in ${dir} (no Redis configured); read them with GET /api/v1/admin/events`,
  );
  return log;
}
