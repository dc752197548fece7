import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AppendOutcome } from './events/event-sink.js';

/** Kinds of connection errors, one label value each on farmlink_errors_total. */
export type ErrorKind =
  | 'invalid_json'
  | 'invalid_message'
  | 'unsupported_data'
  | 'message_too_big'
  | 'unauthorized'
  | 'forbidden'
  | 'unsupported_protocol'
  | 'hello_timeout'
  | 'rate_limited'
  | 'slow_consumer'
  | 'ping_timeout'
  | 'at_capacity'
  | 'unauthenticated_per_address'
  | 'unauthenticated_total'
  | 'refused_draining'
  | 'internal'
  | 'protocol_error'
  | 'wrong_path'
  | 'socket_error'
  | 'token_expired'
  | 'sink_unavailable'
  | 'breaker_open';

/** How a registered session speaks: one message per frame, or batches with seq/ack (batch.v1). */
export type SessionMode = 'legacy' | 'enhanced';
export const SESSION_MODES: readonly SessionMode[] = ['enhanced', 'legacy'];

/** How a registered agent's connection ended, on farmlink_agent_disconnects_total. */
export type DisconnectKind = 'graceful' | 'closed' | 'replaced' | 'error' | 'drain_timeout' | 'token_expired';

const MESSAGE_TYPES = [
  'hello',
  'heartbeat',
  'disconnect',
  'result',
  'event',
  'registered',
  'heartbeat_ack',
  'command',
  'draining',
  'broadcast',
  'ack',
  'nack',
  'tune',
  'token_expired',
];

/** What the JSON view of /metrics says about one mode (docs/protocol.md, "Metrics"). */
export interface ModeFigures {
  /** Sessions registered in this mode since the hub started. */
  total_connections: number;
  current_connections: number;
  peak_connections: number;
  /** Messages after registration (a batch frame counts each message it carries). */
  messages_sent: number;
  messages_received: number;
  frames_sent: number;
  frames_received: number;
  bytes_sent: number;
  bytes_received: number;
  events_received: number;
  /**
   * Mean seconds from a frame's receipt to its messages being handled: enhanced, until its events
   * are durably in the sink and the ack is queued; legacy, until the handler (and the sink append
   * of its event) finished. Null before the first frame.
   */
  average_latency: number | null;
  /** Registered sessions of this mode the hub closed for an error. */
  connection_errors: number;
  /** Enhanced only (0 in legacy): seq'd messages the hub already held, acked and not kept again. */
  duplicates_dropped: number;
  nacks: number;
}

/** Seconds of handling summed over `count` frames. */
export interface LatencyTotal {
  sum: number;
  count: number;
}

export function emptyFigures(): ModeFigures {
  return {
    total_connections: 0,
    current_connections: 0,
    peak_connections: 0,
    messages_sent: 0,
    messages_received: 0,
    frames_sent: 0,
    frames_received: 0,
    bytes_sent: 0,
    bytes_received: 0,
    events_received: 0,
    average_latency: null,
    connection_errors: 0,
    duplicates_dropped: 0,
    nacks: 0,
  };
}

const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000];
const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The hub's Prometheus metrics, in a registry of its own so that several hubs in one process
 * (tests) keep separate counts.
 */
export class HubMetrics {
  readonly registry = new Registry();
  readonly registrations: Counter;
  readonly connectionsTotal: Counter;
  readonly bytesReceived: Counter;
  readonly bytesSent: Counter;
  readonly draining: Gauge;
  private readonly messagesReceived: Counter<'type'>;
  private readonly messagesSent: Counter<'type'>;
  private readonly errors: Counter<'kind'>;
  private readonly disconnects: Counter<'kind'>;
  private readonly commands: Counter<'outcome'>;
  private readonly sinkAppends: Counter<'sink' | 'outcome'>;
  private readonly sinkFailures: Counter<'sink'>;
  private readonly sinkAppendSeconds: Histogram<'sink'>;
  // Labelled children looked up once: these are on the per-message path.
  private readonly receivedByType = new Map<string, ReturnType<Counter<'type'>['labels']>>();
  private readonly sentByType = new Map<string, ReturnType<Counter<'type'>['labels']>>();
  private readonly framesReceived: Counter<'mode'>;
  private readonly framesSent: Counter<'mode'>;
  private readonly modeMessagesReceived: Counter<'mode'>;
  private readonly modeMessagesSent: Counter<'mode'>;
  private readonly batchMessages: Histogram<'direction'>;
  private readonly ackLagSeconds: Histogram;
  private readonly handlingSeconds: Histogram<'mode'>;
  private readonly duplicatesDropped: Counter;
  private readonly nacks: Counter;
  private readonly eventsReceived: Counter<'mode'>;
  private readonly sessionsTotal: Counter<'mode'>;
  private readonly figures: Record<SessionMode, ModeFigures & { latencySum: number; latencyCount: number }> = {
    enhanced: { ...emptyFigures(), latencySum: 0, latencyCount: 0 },
    legacy: { ...emptyFigures(), latencySum: 0, latencyCount: 0 },
  };
  private errorsTotal = 0;
  private readonly tunesSent: Counter;
  private readonly loadChanges: Counter<'to'>;
  private sessionsListener: ((mode: SessionMode, current: number) => void) | undefined;

  constructor(gauges: {
    agentsConnected: () => number;
    connectionsOpen: () => number;
    connectionsUnauthenticated: () => number;
  }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'farmlink_agents_connected',
      help: 'Agents registered on this hub right now',
      registers,
      collect() {
        this.set(gauges.agentsConnected());
      },
    });
    new Gauge({
      name: 'farmlink_connections_open',
      help: 'WebSocket connections open right now, registered or not',
      registers,
      collect() {
        this.set(gauges.connectionsOpen());
      },
    });
    new Gauge({
      name: 'farmlink_connections_unauthenticated',
      help: 'WebSocket connections open right now that have not shown a valid agent token yet',
      registers,
      collect() {
        this.set(gauges.connectionsUnauthenticated());
      },
    });
    this.registrations = new Counter({
      name: 'farmlink_agent_registrations_total',
      help: 'Successful hello → registered handshakes',
      registers,
    });
    this.connectionsTotal = new Counter({
      name: 'farmlink_connections_total',
      help: 'WebSocket connections accepted',
      registers,
    });
    this.bytesReceived = new Counter({
      name: 'farmlink_bytes_received_total',
      help: 'Payload bytes received from agents',
      registers,
    });
    this.bytesSent = new Counter({
      name: 'farmlink_bytes_sent_total',
      help: 'Payload bytes sent to agents',
      registers,
    });
    this.messagesReceived = new Counter({
      name: 'farmlink_messages_received_total',
      help: 'Messages received from agents, by type',
      labelNames: ['type'],
      registers,
    });
    this.messagesSent = new Counter({
      name: 'farmlink_messages_sent_total',
      help: 'Messages sent to agents, by type',
      labelNames: ['type'],
      registers,
    });
    this.errors = new Counter({
      name: 'farmlink_errors_total',
      help: 'Connections closed or refused by the hub, by kind of error',
      labelNames: ['kind'],
      registers,
    });
    this.disconnects = new Counter({
      name: 'farmlink_agent_disconnects_total',
      help: 'Registered agents that left, by how',
      labelNames: ['kind'],
      registers,
    });
    this.commands = new Counter({
      name: 'farmlink_commands_total',
      help: 'Commands sent through the admin API, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.draining = new Gauge({
      name: 'farmlink_draining',
      help: '1 while the hub is draining for shutdown',
      registers,
    });
    this.sinkAppends = new Counter({
      name: 'farmlink_hub_sink_appends_total',
      help: 'Events given to the event sink, by sink and outcome (appended, or duplicate: already there and skipped)',
      labelNames: ['sink', 'outcome'],
      registers,
    });
    this.sinkFailures = new Counter({
      name: 'farmlink_hub_sink_failures_total',
      help: 'Event sink appends that failed (nothing of them acknowledged), by sink',
      labelNames: ['sink'],
      registers,
    });
    this.sinkAppendSeconds = new Histogram({
      name: 'farmlink_hub_sink_append_seconds',
      help: 'Time from handing events to the sink until they are durably in it, by sink',
      labelNames: ['sink'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    for (const type of MESSAGE_TYPES) {
      this.receivedByType.set(type, this.messagesReceived.labels(type));
      this.sentByType.set(type, this.messagesSent.labels(type));
    }
    this.framesReceived = new Counter({
      name: 'farmlink_hub_frames_received_total',
      help: 'WebSocket frames received from registered agents, by mode (an enhanced frame is a batch)',
      labelNames: ['mode'],
      registers,
    });
    this.framesSent = new Counter({
      name: 'farmlink_hub_frames_sent_total',
      help: 'WebSocket frames sent to registered agents, by mode (an enhanced frame is a batch)',
      labelNames: ['mode'],
      registers,
    });
    this.modeMessagesReceived = new Counter({
      name: 'farmlink_hub_mode_messages_received_total',
      help: 'Messages received from registered agents, by mode (each message of a batch counts)',
      labelNames: ['mode'],
      registers,
    });
    this.modeMessagesSent = new Counter({
      name: 'farmlink_hub_mode_messages_sent_total',
      help: 'Messages sent to registered agents, by mode (each message of a batch counts)',
      labelNames: ['mode'],
      registers,
    });
    this.batchMessages = new Histogram({
      name: 'farmlink_hub_batch_messages',
      help: 'Messages per enhanced batch frame, received from agents (in) and sent to them (out)',
      labelNames: ['direction'],
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.ackLagSeconds = new Histogram({
      name: 'farmlink_hub_ack_lag_seconds',
      help: 'Enhanced: from receipt of a frame to the ack covering it being written to the socket',
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.handlingSeconds = new Histogram({
      name: 'farmlink_hub_handling_seconds',
      help: 'From receipt of a frame to its messages being handled (enhanced: durably in the sink), by mode',
      labelNames: ['mode'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.duplicatesDropped = new Counter({
      name: 'farmlink_hub_duplicates_dropped_total',
      help: 'Enhanced: seq-numbered messages the hub already held (a resend), acknowledged and not kept again',
      registers,
    });
    this.nacks = new Counter({
      name: 'farmlink_hub_nacks_total',
      help: 'Enhanced: nacks sent because the event sink could not take events (the agent sends them again)',
      registers,
    });
    // Events per agent are in the admin API (events_in); an agent_id label here would make one
    // series per agent — tens of thousands on a large farm — which Prometheus is not for.
    this.eventsReceived = new Counter({
      name: 'farmlink_hub_events_received_total',
      help: 'Events received from agents, by mode (per agent: events_in in GET /api/v1/admin/agents)',
      labelNames: ['mode'],
      registers,
    });
    this.sessionsTotal = new Counter({
      name: 'farmlink_hub_sessions_total',
      help: 'Sessions registered, by mode',
      labelNames: ['mode'],
      registers,
    });
    this.tunesSent = new Counter({
      name: 'farmlink_hub_tunes_sent_total',
      help: 'tune messages sent to enhanced agents (a new batch window and heartbeat interval on a load level change)',
      registers,
    });
    this.loadChanges = new Counter({
      name: 'farmlink_hub_load_changes_total',
      help: 'Load level changes, by the level entered',
      labelNames: ['to'],
      registers,
    });
    const figures = this.figures;
    new Gauge({
      name: 'farmlink_hub_sessions',
      help: 'Registered sessions open right now, by mode',
      labelNames: ['mode'],
      registers,
      collect() {
        for (const mode of SESSION_MODES) this.labels(mode).set(figures[mode].current_connections);
      },
    });
    for (const mode of SESSION_MODES) {
      for (const counter of [
        this.framesReceived,
        this.framesSent,
        this.modeMessagesReceived,
        this.modeMessagesSent,
        this.eventsReceived,
        this.sessionsTotal,
      ])
        counter.labels(mode).inc(0);
    }
  }

  /**
   * The hub's own load (server/load-monitor.ts). Under --workers each worker measures its own loop:
   * the aggregate shows the most loaded worker's level and delay, and the mean utilization.
   */
  loadGauges(read: () => { level: number; delayP50Ms: number; delayP99Ms: number; utilization: number }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'farmlink_hub_load_level',
      help: "The hub's load level from its event-loop delay: 0 normal, 1 busy, 2 overloaded (agents told to slow down)",
      aggregator: 'max',
      registers,
      collect() {
        this.set(read().level);
      },
    });
    new Gauge({
      name: 'farmlink_hub_event_loop_delay_seconds',
      help: 'How late the hub ran timers over the last sampling interval, by quantile (what the load level is decided on)',
      labelNames: ['quantile'],
      aggregator: 'max',
      registers,
      collect() {
        const { delayP50Ms, delayP99Ms } = read();
        this.labels('0.5').set(delayP50Ms / 1000);
        this.labels('0.99').set(delayP99Ms / 1000);
      },
    });
    new Gauge({
      name: 'farmlink_hub_event_loop_utilization',
      help: 'Share of the last sampling interval the hub event loop was busy (0–1)',
      aggregator: 'average',
      registers,
      collect() {
        this.set(read().utilization);
      },
    });
  }

  /** A `tune` handed to one enhanced session. */
  tuneSent(): void {
    this.tunesSent.inc();
  }

  loadChanged(to: number): void {
    this.loadChanges.labels(String(to)).inc();
  }

  /** A frame from a registered session (a batch of `count` messages in enhanced mode). */
  receivedFrame(mode: SessionMode, bytes: number, count: number): void {
    const f = this.figures[mode];
    f.frames_received += 1;
    f.messages_received += count;
    f.bytes_received += bytes;
    this.framesReceived.labels(mode).inc();
    this.modeMessagesReceived.labels(mode).inc(count);
    if (mode === 'enhanced') this.batchMessages.labels('in').observe(count);
  }

  sentFrame(mode: SessionMode, bytes: number, count: number): void {
    const f = this.figures[mode];
    f.frames_sent += 1;
    f.messages_sent += count;
    f.bytes_sent += bytes;
    this.framesSent.labels(mode).inc();
    this.modeMessagesSent.labels(mode).inc(count);
    if (mode === 'enhanced') this.batchMessages.labels('out').observe(count);
  }

  handled(mode: SessionMode, seconds: number): void {
    const f = this.figures[mode];
    f.latencySum += seconds;
    f.latencyCount += 1;
    this.handlingSeconds.labels(mode).observe(seconds);
  }

  ackLag(seconds: number): void {
    this.ackLagSeconds.observe(seconds);
  }

  duplicates(count: number): void {
    this.figures.enhanced.duplicates_dropped += count;
    this.duplicatesDropped.inc(count);
  }

  nack(): void {
    this.figures.enhanced.nacks += 1;
    this.nacks.inc();
  }

  eventReceived(mode: SessionMode): void {
    this.figures[mode].events_received += 1;
    this.eventsReceived.labels(mode).inc();
  }

  sessionOpened(mode: SessionMode): void {
    const f = this.figures[mode];
    f.total_connections += 1;
    f.current_connections += 1;
    f.peak_connections = Math.max(f.peak_connections, f.current_connections);
    this.sessionsTotal.labels(mode).inc();
    this.sessionsListener?.(mode, f.current_connections);
  }

  sessionClosed(mode: SessionMode, byError: boolean): void {
    const f = this.figures[mode];
    f.current_connections -= 1;
    if (byError) f.connection_errors += 1;
    this.sessionsListener?.(mode, f.current_connections);
  }

  /**
   * Told the number of open sessions of a mode each time it changes: a worker of a multi-process
   * hub reports it to the primary, which alone can see the whole hub's peak.
   */
  onSessions(listener: (mode: SessionMode, current: number) => void): void {
    this.sessionsListener = listener;
  }

  /** What the mean handling time is made of, per mode: to average across workers, weighted by frames. */
  latencyTotals(): Record<SessionMode, LatencyTotal> {
    const total = (mode: SessionMode): LatencyTotal => ({
      sum: this.figures[mode].latencySum,
      count: this.figures[mode].latencyCount,
    });
    return { enhanced: total('enhanced'), legacy: total('legacy') };
  }

  /** The JSON view of /metrics (Accept: application/json): per mode, and the hub's own figures. */
  json(): { enhanced: ModeFigures; legacy: ModeFigures; connection_errors: number } {
    const view = (mode: SessionMode): ModeFigures => {
      const { latencySum, latencyCount, ...figures } = this.figures[mode];
      return { ...figures, average_latency: latencyCount > 0 ? latencySum / latencyCount : null };
    };
    return { enhanced: view('enhanced'), legacy: view('legacy'), connection_errors: this.errorsTotal };
  }

  received(type: string, bytes: number): void {
    (this.receivedByType.get(type) ?? this.messagesReceived.labels('other')).inc();
    this.bytesReceived.inc(bytes);
  }

  sent(type: string, bytes: number, count = 1): void {
    (this.sentByType.get(type) ?? this.messagesSent.labels('other')).inc(count);
    this.bytesSent.inc(bytes * count);
  }

  error(kind: ErrorKind): void {
    this.errorsTotal += 1;
    this.errors.labels(kind).inc();
  }

  disconnect(kind: DisconnectKind): void {
    this.disconnects.labels(kind).inc();
  }

  command(outcome: 'ok' | 'error' | 'timeout' | 'agent_gone' | 'not_connected' | 'result_too_deep'): void {
    this.commands.labels(outcome).inc();
  }

  sinkAppended(sink: 'redis' | 'local', outcome: AppendOutcome, seconds: number): void {
    if (outcome.appended > 0) this.sinkAppends.labels(sink, 'appended').inc(outcome.appended);
    if (outcome.duplicates > 0) this.sinkAppends.labels(sink, 'duplicate').inc(outcome.duplicates);
    this.sinkAppendSeconds.labels(sink).observe(seconds);
  }

  sinkFailed(sink: 'redis' | 'local'): void {
    this.sinkFailures.labels(sink).inc();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Why the broker dropped a binary frame instead of relaying it. */
export type TunnelDropReason = 'short_frame' | 'unknown_route' | 'not_a_party' | 'peer_away' | 'signal_peer_away';
export type TunnelDirection = 'client_to_farm' | 'farm_to_client';
const TUNNEL_STATES = ['establishing', 'active', 'degraded'] as const;

/**
 * The tunnel broker's metrics (server/tunnel/), on the hub's registry: who is connected, sessions
 * by state, opened and ended (by code), relay bytes by direction, frames dropped (by reason). Kept
 * as plain figures too, for the JSON view of /metrics.
 */
export class TunnelMetrics {
  private readonly openedTotal: Counter<'kind'>;
  private readonly endedTotal: Counter<'code'>;
  private readonly openFailedTotal: Counter<'code'>;
  private readonly relayBytes: Counter<'direction'>;
  private readonly droppedFrames: Counter<'reason'>;
  private readonly upgradesRefused: Counter<'status'>;
  private readonly socketFaults: Counter<'kind'>;
  private readonly plain = {
    opened: 0,
    resumed: 0,
    ended: {} as Record<string, number>,
    openFailed: {} as Record<string, number>,
    bytes: { client_to_farm: 0, farm_to_client: 0 } as Record<TunnelDirection, number>,
    dropped: {} as Record<string, number>,
  };
  // The relay counts on every frame: its two children are looked up once.
  private readonly bytesChild: Record<TunnelDirection, ReturnType<Counter<'direction'>['labels']>>;

  constructor(private readonly registry: Registry) {
    const registers = [registry];
    this.openedTotal = new Counter({
      name: 'farmlink_tunnel_sessions_opened_total',
      help: 'Tunnel sessions opened (kind=new) or resumed on this broker (kind=resumed)',
      labelNames: ['kind'],
      registers,
    });
    this.endedTotal = new Counter({
      name: 'farmlink_tunnel_sessions_ended_total',
      help: 'Tunnel sessions ended, by end code (replaced, peer_restarted, resume_window_expired, idle_timeout, …)',
      labelNames: ['code'],
      registers,
    });
    this.openFailedTotal = new Counter({
      name: 'farmlink_tunnel_open_failed_total',
      help: 'Tunnel opens refused before a session existed, by code (not_authorized, farm_unavailable, …)',
      labelNames: ['code'],
      registers,
    });
    this.relayBytes = new Counter({
      name: 'farmlink_tunnel_relay_bytes_total',
      help: 'Bytes of binary frames relayed between the ends of tunnel sessions, by direction',
      labelNames: ['direction'],
      registers,
    });
    this.droppedFrames = new Counter({
      name: 'farmlink_tunnel_dropped_frames_total',
      help: 'Tunnel frames not relayed, by reason (unknown_route: a race after a session ended)',
      labelNames: ['reason'],
      registers,
    });
    this.upgradesRefused = new Counter({
      name: 'farmlink_tunnel_upgrades_refused_total',
      help: 'Upgrades to /api/v1/tunnel refused with an HTTP status (401 token, 403 admin token, 503 draining)',
      labelNames: ['status'],
      registers,
    });
    this.socketFaults = new Counter({
      name: 'farmlink_tunnel_socket_faults_total',
      help: 'Tunnel sockets the broker closed for a fault of the peer (ping_timeout, slow_consumer, invalid_message, …)',
      labelNames: ['kind'],
      registers,
    });
    for (const kind of ['new', 'resumed']) this.openedTotal.labels(kind).inc(0);
    this.bytesChild = {
      client_to_farm: this.relayBytes.labels('client_to_farm'),
      farm_to_client: this.relayBytes.labels('farm_to_client'),
    };
    this.bytesChild.client_to_farm.inc(0);
    this.bytesChild.farm_to_client.inc(0);
  }

  /** The gauges read the broker's registries when scraped. */
  gauges(read: { farms: () => number; clients: () => number; sessions: () => Record<string, number> }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'farmlink_tunnel_farms_connected',
      help: 'Farm PCs with a tunnel socket to this broker right now',
      registers,
      collect() {
        this.set(read.farms());
      },
    });
    new Gauge({
      name: 'farmlink_tunnel_clients_connected',
      help: 'Remote tunnel clients connected to this broker right now (sockets)',
      registers,
      collect() {
        this.set(read.clients());
      },
    });
    new Gauge({
      name: 'farmlink_tunnel_sessions',
      help: 'Tunnel sessions on this broker right now, by state',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = read.sessions();
        for (const state of TUNNEL_STATES) this.labels(state).set(counts[state] ?? 0);
      },
    });
  }

  opened(resumed: boolean): void {
    this.openedTotal.labels(resumed ? 'resumed' : 'new').inc();
    if (resumed) this.plain.resumed += 1;
    else this.plain.opened += 1;
  }

  ended(code: string): void {
    this.endedTotal.labels(code).inc();
    this.plain.ended[code] = (this.plain.ended[code] ?? 0) + 1;
  }

  openFailed(code: string): void {
    this.openFailedTotal.labels(code).inc();
    this.plain.openFailed[code] = (this.plain.openFailed[code] ?? 0) + 1;
  }

  relayed(direction: TunnelDirection, bytes: number): void {
    this.bytesChild[direction].inc(bytes);
    this.plain.bytes[direction] += bytes;
  }

  dropped(reason: TunnelDropReason): void {
    this.droppedFrames.labels(reason).inc();
    this.plain.dropped[reason] = (this.plain.dropped[reason] ?? 0) + 1;
  }

  refused(status: number): void {
    this.upgradesRefused.labels(String(status)).inc();
  }

  socketFault(kind: string): void {
    this.socketFaults.labels(kind).inc();
  }

  /** The JSON view's figures (the gauges' values come from the broker). */
  figures(sessions: Record<string, number>): {
    sessions: Record<'establishing' | 'active' | 'degraded' | 'closed', number>;
    sessions_opened: number;
    sessions_resumed: number;
    sessions_ended: Record<string, number>;
    open_failed: Record<string, number>;
    relay_bytes: { client_to_farm: number; farm_to_client: number };
    dropped_frames: Record<string, number>;
  } {
    return {
      sessions: {
        establishing: sessions.establishing ?? 0,
        active: sessions.active ?? 0,
        degraded: sessions.degraded ?? 0,
        closed: 0,
      },
      sessions_opened: this.plain.opened,
      sessions_resumed: this.plain.resumed,
      sessions_ended: { ...this.plain.ended },
      open_failed: { ...this.plain.openFailed },
      relay_bytes: { ...this.plain.bytes },
      dropped_frames: { ...this.plain.dropped },
    };
  }
}
