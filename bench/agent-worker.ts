/**
 * Child process hosting a share of the simulated agents: real AgentConnection instances, driven
 * over IPC by bench/lib/fleet.ts. Kept out of the driver so each share has its own event loop,
 * its own open-file limit and a CPU figure of its own in /proc.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { AgentConnection } from '../agent/connection/connection.js';
import { Delivery } from '../agent/delivery/delivery.js';
import { MemoryOutbox } from '../agent/outbox/memory-outbox.js';
import { addModeFigures, emptyModeFigures, type ModeFigures } from '../protocol/agent-host.js';
import { systemClock, systemRandom } from '../lib/clock.js';
import { silentLogger } from '../agent/log/logger.js';
import { SystemUsage } from '../agent/system/system-usage.js';
import type { ConnectionEvent } from '../protocol/connection-state.js';
import { STATUS_INTERVAL_MS, type FromWorker, type Timeline, type ToWorker } from './lib/fleet-protocol.js';

interface Transition {
  at: number;
  from: string;
  to: string;
  server: number;
  reason: string;
}

const send = (message: FromWorker) => process.send!(message);

const connections: AgentConnection[] = [];
/** With `outbox`: each agent's outbox, and seq → accept time (monotonic) of what is not acknowledged yet. */
const outboxes: MemoryOutbox[] = [];
const acceptedAt: Array<Map<number, number>> = [];
let ackLatency: number[] = [];
const startedAt: number[] = [];
const transitions: Transition[][] = [];
/** Server index each agent is registered on, or -1. */
const connectedOn: number[] = [];
let serverCount = 0;
let collecting = false;
let rtt: number[] = [];
/** Epoch ms each round trip ended, to line slow ones up with what the hub was doing. */
let rttAt: number[] = [];
const LOOP_RESOLUTION_MS = 10;
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });

/** "network_error" alone hides EMFILE and EADDRNOTAVAIL, which are what runs out first at this scale. */
function reasonKey(e: ConnectionEvent): string {
  if (e.reason.close_code !== undefined) return `${e.reason.code}:${e.reason.close_code}`;
  const errno = /\b(E[A-Z]{3,})\b/.exec(e.reason.message)?.[1];
  return errno ? `${e.reason.code}:${errno}` : e.reason.code;
}

function start(message: Extract<ToWorker, { cmd: 'start' }>): void {
  const usage = new SystemUsage();
  const logger = silentLogger();
  serverCount = message.servers.length;
  for (const [i, spec] of message.agents.entries()) {
    const conn = new AgentConnection({
      servers: message.servers,
      timing: message.timing,
      identity: {
        id: spec.id,
        name: spec.id,
        token: spec.token,
        version: 'bench',
        hostname: 'bench',
        platform: process.platform,
      },
      clock: systemClock,
      random: systemRandom,
      logger,
      usage: () => usage.sample(),
      localAddress: spec.localAddress,
      mode: message.mode ?? 'legacy',
    });
    connections.push(conn);
    if (message.outbox === true) {
      const outbox = new MemoryOutbox();
      const pending = new Map<number, number>();
      outboxes.push(outbox);
      acceptedAt.push(pending);
      new Delivery({ outbox, connection: conn, clock: systemClock, logger }).start();
      conn.events.on('message', (m) => {
        if (m.type !== 'ack') return;
        const now = performance.now();
        for (const [seq, at] of pending) {
          if (seq > m.seq) break;
          ackLatency.push(now - at);
          pending.delete(seq);
        }
      });
    }
    transitions.push([]);
    connectedOn.push(-1);
    startedAt.push(Number.NaN);
    conn.events.on('state', (e) => {
      const server = 'server' in e.to ? e.to.server.index : -1;
      transitions[i]!.push({ at: e.at, from: e.from, to: e.to.phase, server, reason: reasonKey(e) });
      connectedOn[i] = e.to.phase === 'connected' ? server : -1;
    });
    conn.events.on('heartbeatRtt', (ms) => {
      if (!collecting) return;
      rtt.push(ms);
      rttAt.push(Date.now());
    });
  }
  const begin = (i: number) => {
    startedAt[i] = Date.now();
    connections[i]!.start();
  };
  if (message.rampMs <= 0) {
    for (let i = 0; i < connections.length; i += 1) begin(i);
    return;
  }
  // A ramp: equal batches every 10 ms across rampMs.
  const batches = Math.max(1, Math.floor(message.rampMs / 10));
  const perBatch = Math.ceil(connections.length / batches);
  let next = 0;
  const timer = setInterval(() => {
    const end = Math.min(connections.length, next + perBatch);
    for (; next < end; next += 1) begin(next);
    if (next >= connections.length) clearInterval(timer);
  }, 10);
}

function status(): void {
  const counts = new Array<number>(serverCount).fill(0);
  const phases: Record<string, number> = {};
  for (const [i, conn] of connections.entries()) {
    const on = connectedOn[i]!;
    if (on >= 0) counts[on] = (counts[on] ?? 0) + 1;
    const phase = conn.getState().phase;
    phases[phase] = (phases[phase] ?? 0) + 1;
  }
  send({ ev: 'status', connectedOn: counts, phases });
}

function query(since: number, server: number): Timeline {
  const n = connections.length;
  const timeline: Timeline = {
    startedAt: Float64Array.from(startedAt),
    registeredAt: new Float64Array(n).fill(Number.NaN),
    leftAt: new Float64Array(n).fill(Number.NaN),
    refusedAt: new Float64Array(n).fill(Number.NaN),
    reasons: {},
  };
  for (let i = 0; i < n; i += 1) {
    for (const t of transitions[i]!) {
      if (t.at < since) continue;
      timeline.reasons[t.reason] = (timeline.reasons[t.reason] ?? 0) + 1;
      if (t.to === 'connected' && t.server === server && Number.isNaN(timeline.registeredAt[i]))
        timeline.registeredAt[i] = t.at;
      if (t.from === 'connected' && Number.isNaN(timeline.leftAt[i])) timeline.leftAt[i] = t.at;
      if (t.reason === 'connect_refused' && Number.isNaN(timeline.refusedAt[i])) timeline.refusedAt[i] = t.at;
    }
  }
  return timeline;
}

function sumFigures(): { legacy: ModeFigures; enhanced: ModeFigures } {
  let out = { legacy: emptyModeFigures(), enhanced: emptyModeFigures() };
  for (const conn of connections) {
    const f = conn.getModeFigures();
    out = { legacy: addModeFigures(out.legacy, f.legacy), enhanced: addModeFigures(out.enhanced, f.enhanced) };
  }
  return out;
}

/**
 * A steady rate of events into every agent's outbox, in 100 ms ticks; then the reply once delivered.
 * Each agent starts at its own phase, so a fleet at 1 event/s is spread over the second instead of
 * firing together, and the rate follows elapsed time, so a late tick (a busy worker) sends what is owed.
 */
function emit(message: Extract<ToWorker, { cmd: 'emit' }>): void {
  const TICK_MS = 100;
  const owed = outboxes.map((_, i) => i / Math.max(1, outboxes.length));
  let accepted = 0;
  let acceptCpuMs = 0;
  ackLatency = [];
  const started = performance.now();
  let last = started;
  const timer = setInterval(() => {
    const now = performance.now();
    const due = Math.min(now, started + message.durationMs);
    const add = (message.perAgentPerSecond * Math.max(0, due - last)) / 1000;
    last = Math.max(last, due);
    const cpu = process.cpuUsage();
    for (const [i, outbox] of outboxes.entries()) {
      owed[i]! += add;
      const n = Math.floor(owed[i]!);
      if (n <= 0) continue;
      owed[i]! -= n;
      const inputs = Array.from({ length: n }, () => ({
        type: 'event' as const,
        body: { name: 'bench.tick', data: { worker: process.pid }, timestamp: Date.now() },
        priority: 'normal' as const,
      }));
      const at = performance.now();
      void outbox.accept(inputs).then((seqs) => {
        for (const seq of seqs) acceptedAt[i]!.set(seq, at);
      });
      accepted += n;
    }
    const used = process.cpuUsage(cpu);
    acceptCpuMs += (used.user + used.system) / 1000;
    if (performance.now() - started < message.durationMs) return;
    clearInterval(timer);
    const settleUntil = performance.now() + message.settleMs;
    const check = setInterval(() => {
      const undelivered = outboxes.reduce((s, o) => s + o.entries.length, 0);
      if (undelivered > 0 && performance.now() < settleUntil) return;
      clearInterval(check);
      send({
        ev: 'emitted',
        accepted,
        undelivered,
        ackLatency: Float64Array.from(ackLatency),
        figures: sumFigures(),
        acceptCpuMs,
      });
    }, 50);
  }, TICK_MS);
}

async function stop(): Promise<void> {
  // Bounded: each stop() waits at most closeTimeoutMs for the hub's close frame.
  await Promise.race([
    Promise.all(connections.map((c) => c.stop('bench finished'))),
    new Promise((r) => setTimeout(r, 15_000)),
  ]);
  send({ ev: 'stopped' });
  setTimeout(() => process.exit(0), 100);
}

process.on('message', (message: ToWorker) => {
  switch (message.cmd) {
    case 'start':
      start(message);
      setInterval(status, STATUS_INTERVAL_MS);
      return;
    case 'window-open':
      rtt = [];
      rttAt = [];
      collecting = true;
      loopDelay.reset();
      loopDelay.enable();
      return;
    case 'window-close': {
      collecting = false;
      loopDelay.disable();
      // The histogram records the sampling timer's whole period; an idle loop reads ≈ the resolution.
      const ms = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);
      send({
        ev: 'window',
        rtt: Float64Array.from(rtt),
        rttAt: Float64Array.from(rttAt),
        loopDelay: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) },
      });
      rtt = [];
      rttAt = [];
      return;
    }
    case 'query':
      send({ ev: 'query', timeline: query(message.since, message.server) });
      return;
    case 'emit':
      emit(message);
      return;
    case 'stop':
      void stop();
      return;
  }
});

process.on('uncaughtException', (error) => {
  send({ ev: 'fatal', message: error.stack ?? String(error) });
  setTimeout(() => process.exit(1), 100);
});
// The driver going away (crash, SIGKILL) closes the IPC channel: never outlive it.
process.on('disconnect', () => process.exit(0));

send({ ev: 'ready' });
