import type { z } from 'zod';
import {
  AgentHostMethods,
  emptyModeFigures,
  type AgentHostMethod,
  type BridgeTransport,
  type FieldProblem,
  type LogEntry,
  type MethodOutput,
  type OutboxSummary,
  type ResultEnvelope,
  type Snapshot,
} from './agent-host.js';
import type { TunnelSessionInfo, TunnelSummary } from './tunnel.js';

/*
 * A fake agent host for tests of the wiring around the AgentHost API (the panel's store, the
 * Electron IPC), on protocol/ alone so that every layer's tests can use it. A fixture: never
 * built into dist/.
 */

/** A snapshot that passes the schema. */
export function sampleSnapshot(overrides: Partial<Snapshot> = {}): Snapshot {
  const base: Snapshot = {
    now: 1_000_000,
    started_at: 900_000,
    agent: { id: 'pc-1', name: 'PC 1', version: '0.1.0' },
    state: {
      phase: 'connected',
      server: { index: 0, url: 'ws://127.0.0.1:1/api/v1/pc/ws' },
      since: 950_000,
      session_id: 's-1',
      hub_id: 'hub',
    },
    servers: [
      {
        index: 0,
        url: 'ws://127.0.0.1:1/api/v1/pc/ws',
        configured_url: 'http://127.0.0.1:1',
        role: 'primary',
        status: 'active',
        attempts: 1,
        failures: 0,
        registrations: 1,
        last_error: null,
        last_success_at: 950_000,
      },
    ],
    stats: {
      connected_at: 950_000,
      last_message_at: 999_000,
      reconnect_count: 0,
      messages_sent: 10,
      messages_received: 9,
      bytes_sent: 1000,
      bytes_received: 900,
      server: { index: 0, url: 'ws://127.0.0.1:1/api/v1/pc/ws' },
      servers: [],
      last_error: null,
      last_success_at: 950_000,
      disconnected_since: null,
      last_heartbeat_rtt_ms: 2,
      last_ping_rtt_ms: 1,
      heartbeat_rtt: [{ at: 999_000, rtt_ms: 2 }],
      heartbeat_lost: [],
    },
    throughput: [],
    quality: { level: 'excellent', median_rtt_ms: 2, loss: 0, samples: 1 },
    mode: {
      configured: 'auto',
      current: 'legacy',
      negotiated: true,
      available: ['legacy'],
      unavailable: { enhanced: 'the hub does not offer it' },
    },
    mode_figures: { legacy: emptyModeFigures(), enhanced: emptyModeFigures() },
    outbox: null,
    events: [],
    settings: {
      values: {
        server: { url: 'http://127.0.0.1:1', fallback_urls: [] },
        connection: {
          heartbeat_interval: 30,
          connect_timeout: 30,
          max_reconnect_delay: 60,
          initial_reconnect_delay: 1,
          reconnect_jitter: 0.2,
          registration_timeout: 15,
          ping_interval: 20,
          ping_timeout: 20,
          dead_timeout: 90,
          stable_after: 60,
        },
        agent: { name: 'PC 1' },
      },
      has_token: true,
      file: null,
      default_file: '/tmp/agent.yaml',
      overridden: [],
    },
    local_hub: null,
    cache: {
      hit_ratio: 0.5,
      hits: 2,
      misses: 2,
      loads: 2,
      single_flight_joins: 1,
      evictions: 0,
      memory_bytes: 512,
      tiers: [
        { tier: 'memory', hits: 2, misses: 2, entries: 2, errors: 0 },
        { tier: 'disk', hits: 0, misses: 2, entries: 1, errors: 0 },
      ],
      warm_start: { entries: 1, found: 1, ms: 0.4 },
    },
    agent_process: { pid: 4242, runs_in: 'headless', attached: false },
    ...overrides,
  };
  return base;
}

/** An outbox that passes the schema: a few messages waiting, nothing given up. */
export function sampleOutbox(overrides: Partial<OutboxSummary> = {}): OutboxSummary {
  return {
    state: 'ok',
    error: null,
    depth: 120,
    bytes: 48_000,
    max_messages: 100_000,
    max_bytes: 64_000_000,
    by_priority: { high: 0, normal: 100, low: 20 },
    unacked: 40,
    next_seq: 5_121,
    acked_seq: 5_000,
    oldest_accepted_at: 998_000,
    accepted: 5_120,
    delivered: 5_000,
    dropped: { high: 0, normal: 0, low: 0 },
    expired: 0,
    sync: 'flush',
    ...overrides,
  };
}

/**
 * The panel's enhanced-mode states, for tests and screenshots: connected in enhanced mode on a hub
 * that agreed; an outbox that was full and gave messages up; an outbox that cannot write; and a
 * hub that speaks only legacy.
 */
export const SAMPLE_STATES: Record<'enhanced' | 'drops' | 'outboxError' | 'legacyOnlyHub', () => Snapshot> = {
  enhanced: () =>
    sampleSnapshot({
      state: {
        phase: 'connected',
        server: { index: 0, url: 'ws://127.0.0.1:1/api/v1/pc/ws' },
        since: 950_000,
        session_id: 's-1',
        hub_id: 'hub-a',
        mode: 'enhanced',
      },
      mode: {
        configured: 'auto',
        current: 'enhanced',
        negotiated: true,
        available: ['legacy', 'enhanced'],
        unavailable: {},
      },
      mode_figures: {
        legacy: {
          frames_sent: 1_200,
          messages_sent: 1_200,
          bytes_sent: 240_000,
          frames_received: 1_100,
          messages_received: 1_100,
          bytes_received: 99_000,
          connected_ms: 600_000,
        },
        enhanced: {
          frames_sent: 400,
          messages_sent: 12_000,
          bytes_sent: 1_500_000,
          frames_received: 380,
          messages_received: 900,
          bytes_received: 60_000,
          connected_ms: 1_800_000,
        },
      },
      outbox: sampleOutbox(),
    }),
  drops: () =>
    sampleSnapshot({
      ...SAMPLE_STATES.enhanced(),
      outbox: sampleOutbox({
        depth: 99_990,
        bytes: 60_500_000,
        by_priority: { high: 12, normal: 99_978, low: 0 },
        unacked: 0,
        dropped: { high: 0, normal: 3, low: 1_250 },
        expired: 7,
      }),
    }),
  outboxError: () =>
    sampleSnapshot({
      ...SAMPLE_STATES.enhanced(),
      outbox: sampleOutbox({
        state: 'error',
        error: 'No space left on device (ENOSPC) writing the outbox in /var/lib/farmlink/outbox',
      }),
    }),
  legacyOnlyHub: () =>
    sampleSnapshot({
      state: {
        phase: 'connected',
        server: { index: 0, url: 'ws://127.0.0.1:1/api/v1/pc/ws' },
        since: 950_000,
        session_id: 's-1',
        hub_id: 'hub-old',
        mode: 'legacy',
      },
      mode: {
        configured: 'auto',
        current: 'legacy',
        negotiated: true,
        available: ['legacy'],
        unavailable: {
          enhanced: 'Hub hub-old does not offer enhanced mode; this agent speaks legacy with it (at most once).',
        },
      },
      outbox: sampleOutbox({ unacked: 0, sync: 'os' }),
    }),
};

/** One tunnel session as the farm PC sees it (times relative to sampleSnapshot's `now`). */
export function sampleTunnelSession(overrides: Partial<TunnelSessionInfo> = {}): TunnelSessionInfo {
  return {
    session_id: '0123456789abcdef0123456789abcdef',
    peer: 'alice',
    service: 'adb',
    state: 'active',
    path: 'relay',
    rtt_ms: 3.4,
    bytes_in: 1_250_000,
    bytes_out: 48_300_000,
    streams_open: 2,
    streams_total: 17,
    created_at: 1_000_000 - 754_000,
    last_activity_at: 999_500,
    recoveries: [],
    ...overrides,
  };
}

/**
 * The Tunnels card's states, for tests and screenshots: off (nothing exposed), waiting for a broker,
 * and connected with a session on the relay, one direct and one whose client is away.
 */
export const SAMPLE_TUNNELS: Record<'off' | 'waiting' | 'idle' | 'busy', () => TunnelSummary> = {
  off: () => ({
    services: [],
    link: { state: 'off', broker_url: null, observed_address: null, detail: null, next_attempt_at: null },
    sessions: [],
    closed_total: 0,
  }),
  waiting: () => ({
    services: [{ name: 'adb', target: '127.0.0.1:5037' }],
    link: {
      state: 'waiting',
      broker_url: 'wss://hub.example.com/api/v1/tunnel',
      observed_address: null,
      detail: 'connect ECONNREFUSED 203.0.113.5:443',
      next_attempt_at: 1_000_000 + 4_000,
    },
    sessions: [],
    closed_total: 0,
  }),
  idle: () => ({
    services: [
      { name: 'adb', target: '127.0.0.1:5037' },
      { name: 'ssh', target: '127.0.0.1:22' },
    ],
    link: {
      state: 'connected',
      broker_url: 'wss://hub.example.com/api/v1/tunnel',
      observed_address: '198.51.100.23:53122',
      detail: null,
      next_attempt_at: null,
    },
    sessions: [],
    closed_total: 3,
  }),
  busy: () => ({
    ...SAMPLE_TUNNELS.idle(),
    sessions: [
      sampleTunnelSession(),
      sampleTunnelSession({
        session_id: 'fedcba9876543210fedcba9876543210',
        peer: 'ci-runner-7',
        path: 'direct',
        rtt_ms: 0.8,
        bytes_in: 52_000,
        bytes_out: 9_100_000,
        streams_open: 1,
        streams_total: 1,
        created_at: 1_000_000 - 65_000,
        recoveries: [{ at: 990_000, kind: 'direct_up', reason: 'direct path answered for 10 s', took_ms: null }],
      }),
      sampleTunnelSession({
        session_id: 'aaaabbbbccccddddaaaabbbbccccdddd',
        peer: 'bob',
        service: 'ssh',
        state: 'degraded',
        rtt_ms: null,
        bytes_in: 4_200,
        bytes_out: 18_000,
        streams_open: 1,
        streams_total: 1,
        created_at: 1_000_000 - 900_000,
      }),
    ],
  }),
};

/** One implementation per method, as the agent's call router takes them (AgentHostHandlers has this shape). */
export type FakeHandlers = {
  [M in AgentHostMethod]: (
    input: z.output<(typeof AgentHostMethods)[M]['input']>,
  ) => Promise<MethodOutput<M>> | MethodOutput<M>;
};

/** A refusal as the agent sends one (its HostFailure): a code, a message, field problems for a form. */
export class FakeRefusal extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly problems?: FieldProblem[],
  ) {
    super(message);
  }
}

export function fakeHandlers(overrides: Partial<FakeHandlers> = {}): FakeHandlers {
  const logs: LogEntry[] = [
    { seq: 1, time: 1, level: 'info', msg: 'Connecting…' },
    { seq: 2, time: 2, level: 'warn', msg: 'Connection lost' },
  ];
  return {
    getSnapshot: () => sampleSnapshot(),
    reconnectNow: () => ({}),
    setMode: ({ mode }) => ({ mode }),
    sendEvents: ({ events }) => ({ seqs: events.map((_, i) => i + 1), agent_id: 'pc-test' }),
    saveSettings: () => ({ file: '/tmp/agent.yaml' }),
    tailLogs: ({ min_level }) => logs.filter((l) => min_level !== 'warn' || l.level === 'warn'),
    ...overrides,
  };
}

/**
 * An in-memory transport: inputs are checked against the API's schema as the agent checks them,
 * answers and refusals come back as result envelopes, and tests push events by hand.
 */
export class MemoryTransport implements BridgeTransport {
  readonly calls: Array<{ method: string; input: unknown }> = [];
  private readonly listeners = new Set<(event: string, payload: unknown) => void>();

  constructor(private readonly handlers: FakeHandlers) {}

  async call(method: string, input: unknown): Promise<ResultEnvelope> {
    this.calls.push({ method, input });
    if (!Object.hasOwn(AgentHostMethods, method))
      return { ok: false, error: { code: 'UNKNOWN_METHOD', message: `No method "${method}"` } };
    const name = method as AgentHostMethod;
    const parsed = AgentHostMethods[name].input.safeParse(input ?? {});
    if (!parsed.success) return { ok: false, error: { code: 'INVALID_INPUT', message: `Invalid input for ${name}` } };
    try {
      return { ok: true, value: await (this.handlers[name] as (input: unknown) => unknown)(parsed.data) };
    } catch (error) {
      if (error instanceof FakeRefusal) {
        return {
          ok: false,
          error: { code: error.code, message: error.message, ...(error.problems ? { problems: error.problems } : {}) },
        };
      }
      return {
        ok: false,
        error: { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) },
      };
    }
  }

  subscribe(listener: (event: string, payload: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  push(event: string, payload: unknown): void {
    for (const listener of this.listeners) listener(event, payload);
  }
}
