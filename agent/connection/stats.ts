import type {
  BreakerStatus,
  ConnectionStats,
  ErrorAt,
  Reason,
  RttSample,
  ServerRef,
  ServerStats,
} from '../../protocol/connection-state.js';
import type { Clock } from '../../lib/clock.js';

export interface StatsOptions {
  /** Heartbeat round trips older than this are dropped (the panel graphs 15 minutes). */
  rttWindowMs?: number;
  /** And never more than this many, however short the heartbeat interval. */
  rttMaxSamples?: number;
  /** Each server's circuit breaker, shown with its figures. */
  breakers?: { status(index: number): BreakerStatus };
}

/**
 * ConnectionStats (the connection's counters) plus what the panel and the operator need: which server, per-server
 * attempts/errors/successes, the last error, and heartbeat round trips.
 */
export class ConnectionStatsTracker {
  private connectedAt: number | null = null;
  private lastMessageAt: number | null = null;
  private registrations = 0;
  private messagesSent = 0;
  private messagesReceived = 0;
  private bytesSent = 0;
  private bytesReceived = 0;
  private server: ServerRef | null = null;
  private lastError: ErrorAt | null = null;
  private lastSuccessAt: number | null = null;
  private disconnectedSince: number | null = null;
  private lastHeartbeatRtt: number | null = null;
  private lastPingRtt: number | null = null;
  private readonly rtt: RttSample[] = [];
  private readonly lost: number[] = [];
  private readonly servers: ServerStats[];
  private readonly rttWindowMs: number;
  private readonly rttMaxSamples: number;
  private readonly breakers: StatsOptions['breakers'];

  constructor(
    urls: readonly string[],
    private readonly clock: Clock,
    options: StatsOptions = {},
  ) {
    this.servers = urls.map((url, index) => ({
      index,
      url,
      attempts: 0,
      failures: 0,
      registrations: 0,
      last_error: null,
      last_success_at: null,
    }));
    this.rttWindowMs = options.rttWindowMs ?? 15 * 60_000;
    this.rttMaxSamples = options.rttMaxSamples ?? 2_000;
    this.breakers = options.breakers;
  }

  attempt(index: number): void {
    const s = this.servers[index];
    if (s) s.attempts += 1;
  }

  failure(index: number, reason: Reason): void {
    const error: ErrorAt = { ...reason, at: this.clock.now() };
    this.lastError = error;
    const s = this.servers[index];
    if (s) {
      s.failures += 1;
      s.last_error = error;
    }
  }

  registered(server: ServerRef): void {
    const now = this.clock.now();
    this.registrations += 1;
    this.connectedAt = now;
    this.lastSuccessAt = now;
    this.disconnectedSince = null;
    this.server = server;
    const s = this.servers[server.index];
    if (s) {
      s.registrations += 1;
      s.last_success_at = now;
    }
  }

  disconnected(): void {
    // Only the end of a registered connection starts an outage; a failed dial during one does not.
    if (this.connectedAt !== null) this.disconnectedSince = this.clock.now();
    this.connectedAt = null;
    this.server = null;
  }

  sent(bytes: number): void {
    this.sentFrame(1, bytes);
  }

  /** A frame of `messages` messages went out (a batch in enhanced mode). */
  sentFrame(messages: number, bytes: number): void {
    this.messagesSent += messages;
    this.bytesSent += bytes;
  }

  received(bytes: number): void {
    this.messagesReceived += 1;
    this.bytesReceived += bytes;
    this.lastMessageAt = this.clock.now();
  }

  heartbeatRtt(rttMs: number): void {
    const now = this.clock.now();
    this.lastHeartbeatRtt = rttMs;
    this.rtt.push({ at: now, rtt_ms: rttMs });
    this.trim(this.rtt, now, (s) => s.at);
  }

  heartbeatLost(): void {
    const now = this.clock.now();
    this.lost.push(now);
    this.trim(this.lost, now, (at) => at);
  }

  /** Keeps a history within the window's age and the sample cap. */
  private trim<T>(history: T[], now: number, at: (item: T) => number): void {
    const cutoff = now - this.rttWindowMs;
    const excess = history.length - this.rttMaxSamples;
    const keepFrom = history.findIndex((item, i) => i >= excess && at(item) >= cutoff);
    history.splice(0, keepFrom === -1 ? history.length : keepFrom);
  }

  pingRtt(rttMs: number): void {
    this.lastPingRtt = rttMs;
  }

  snapshot(): ConnectionStats {
    return {
      connected_at: this.connectedAt,
      last_message_at: this.lastMessageAt,
      reconnect_count: Math.max(0, this.registrations - 1),
      messages_sent: this.messagesSent,
      messages_received: this.messagesReceived,
      bytes_sent: this.bytesSent,
      bytes_received: this.bytesReceived,
      server: this.server ? { ...this.server } : null,
      servers: this.servers.map((s) => ({
        ...s,
        last_error: s.last_error ? { ...s.last_error } : null,
        ...(this.breakers ? { breaker: this.breakers.status(s.index) } : {}),
      })),
      last_error: this.lastError ? { ...this.lastError } : null,
      last_success_at: this.lastSuccessAt,
      disconnected_since: this.disconnectedSince,
      last_heartbeat_rtt_ms: this.lastHeartbeatRtt,
      last_ping_rtt_ms: this.lastPingRtt,
      heartbeat_rtt: this.rtt.map((s) => ({ ...s })),
      heartbeat_lost: [...this.lost],
    };
  }
}
