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
  | 'socket_error';

/** How a registered agent's connection ended, on farmlink_agent_disconnects_total. */
export type DisconnectKind = 'graceful' | 'closed' | 'replaced' | 'error' | 'drain_timeout';

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
];

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
