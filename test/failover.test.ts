import type { LookupFunction } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectionEvent } from '../protocol/connection-state.js';
import { AgentHarness, FAST_TIMING } from './helpers/agent-harness.js';
import { ChaosProxy } from './helpers/chaos-proxy.js';
import { startHub, type HubProcess } from './helpers/hub-process.js';
import { freePort } from './helpers/ports.js';
import { sleep, waitUntil } from './helpers/wait.js';

/**
 * The agent's failure scenarios (docs/failure-scenarios.md) against real hub processes on
 * loopback, with millisecond timings. Faults are real: closed ports, SIGKILL, SIGTERM, and a TCP
 * proxy that blackholes traffic.
 */

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function hub(options: Parameters<typeof startHub>[0] = {}): Promise<HubProcess> {
  const h = await startHub(options);
  cleanups.push(() => h.kill());
  return h;
}

async function agent(options: Parameters<typeof AgentHarness.create>[0]): Promise<AgentHarness> {
  const a = await AgentHarness.create(options);
  cleanups.push(() => a.stop());
  return a.start();
}

async function proxy(target: number): Promise<ChaosProxy> {
  const p = await ChaosProxy.start({ port: target });
  cleanups.push(() => p.stop());
  return p;
}

const closedPortUrl = async () => `http://127.0.0.1:${await freePort()}`;

/** The dial sequence (server indices) and backoff waits, in order, from the recorded transitions. */
function dialPlan(events: readonly ConnectionEvent[]): string[] {
  return events.flatMap((e) => {
    if (e.to.phase === 'connecting') return [`dial ${e.to.server.index}`];
    if (e.to.phase === 'reconnecting') return [`wait #${e.to.backoff_step}`];
    if (e.to.phase === 'connected') return [`registered ${e.to.server.index}`];
    return [];
  });
}

describe('failover', () => {
  it('primary refusing connections → registered on the first fallback, without waiting', async () => {
    const fallback = await hub();
    const a = await agent({ servers: [await closedPortUrl(), fallback.url] });
    await a.registeredOn(1);
    expect(dialPlan(a.events)).toEqual(['dial 0', 'dial 1', 'registered 1']);
    const stats = a.agent.stats();
    expect(stats.servers[0]!.last_error?.code).toBe('connect_refused');
    expect(stats.server?.index).toBe(1);
    await fallback.waitForLog(
      'agent registered',
      (l) => typeof l.msg === 'string' && l.msg.includes('registered from'),
    );
  });

  it('primary that never answers (connect timeout) → fallback', async () => {
    const fallback = await hub();
    const nowhere = await proxy(await freePort());
    nowhere.setMode('blackhole'); // accepts TCP, never forwards: the WebSocket handshake never completes
    const a = await agent({ servers: [nowhere.url, fallback.url], timing: { connectTimeoutMs: 300 } });
    const registered = await a.registeredOn(1);
    const timedOut = a.events.find((e) => e.reason.code === 'connect_timeout');
    expect(timedOut?.to).toMatchObject({ phase: 'connecting', server: { index: 1 } });
    expect(registered.at - timedOut!.at).toBeGreaterThanOrEqual(0);
  });

  it('all servers down → rounds over every server with a growing backoff; registers as soon as one comes up', async () => {
    const ports = [await freePort(), await freePort(), await freePort()] as const;
    const a = await agent({ servers: ports.map((p) => `http://127.0.0.1:${p}`) });
    await a.transition(
      'third backoff wait',
      (e) => e.to.phase === 'reconnecting' && e.to.backoff_step === 3,
      10_000,
      0,
    );
    // Each round tries primary, fallback 1, fallback 2 back to back, then waits; the waits grow.
    expect(dialPlan(a.events).slice(0, 11)).toEqual([
      'dial 0',
      'dial 1',
      'dial 2',
      'wait #1',
      'dial 0',
      'dial 1',
      'dial 2',
      'wait #2',
      'dial 0',
      'dial 1',
      'dial 2',
    ]);
    const waits = a.events.flatMap((e) => (e.to.phase === 'reconnecting' ? [e.to] : []));
    const { initialReconnectDelayMs: initial, reconnectJitter: jitter } = FAST_TIMING;
    waits.slice(0, 3).forEach((w, i) => {
      const base = initial * 2 ** i;
      expect(w.delay_ms).toBeGreaterThanOrEqual(base * (1 - jitter) - 1e-9);
      expect(w.delay_ms).toBeLessThanOrEqual(base * (1 + jitter) + 1e-9);
      expect(w.next_server.index).toBe(0); // every round starts again at the primary
      expect(w.next_attempt_at).toBeGreaterThan(0);
    });
    // Keeps going however long it takes; the cap holds.
    await a.transition('backoff at the cap', (e) => e.to.phase === 'reconnecting' && e.to.backoff_step >= 5, 15_000, 0);
    const capped = a.events.flatMap((e) => (e.to.phase === 'reconnecting' ? [e.to.delay_ms] : []));
    expect(Math.max(...capped)).toBeLessThanOrEqual(FAST_TIMING.maxReconnectDelayMs);

    await hub({ port: ports[1] }); // fallback 1 comes back
    await a.registeredOn(1, 15_000);
    expect(
      a.agent
        .stats()
        .servers.map((s) => s.attempts)
        .every((n) => n >= 3),
    ).toBe(true);
  });

  it('hub SIGKILLed mid-session → loss detected, failed over to the fallback at once', async () => {
    const [primary, fallback] = [await hub(), await hub()];
    const a = await agent({ servers: [primary.url, fallback.url] });
    await a.registeredOn(0);
    const mark = a.events.length;
    await primary.kill();
    const registered = await a.registeredOn(1);
    const lost = a.events.slice(mark).find((e) => e.from === 'connected')!;
    expect(lost.reason.code).toBe('network_error'); // 1006: the kernel closed the dead process's socket
    expect(dialPlan(a.events.slice(mark))).toEqual(['dial 1', 'registered 1']); // no backoff wait before the fallback
    expect(registered.at).toBeGreaterThanOrEqual(lost.at);
  });

  it('traffic blackholed (no RST, no FIN) → dead connection detected by ping/heartbeat deadline; back when traffic flows', async () => {
    const h = await hub();
    const path = await proxy(h.port);
    const a = await agent({ servers: [path.url] });
    await a.registeredOn(0);
    const mark = a.events.length;
    path.setMode('blackhole');
    const lost = await a.transition('connection declared dead', (e) => e.from === 'connected', 10_000, mark);
    expect(['ping_timeout', 'heartbeat_timeout']).toContain(lost.reason.code);
    // While the path is dead, attempts time out and the agent backs off, forever.
    await a.transition('a backoff wait while blackholed', (e) => e.to.phase === 'reconnecting', 10_000, mark);
    await a.transition('an attempt that timed out', (e) => e.reason.code === 'connect_timeout', 10_000, mark);
    path.setMode('pass');
    await a.registeredOn(0, 15_000);
    expect(a.agent.stats().reconnect_count).toBe(1);
  });

  it('blackholed primary with a fallback → fails over once the deadline passes', async () => {
    const [primary, fallback] = [await hub(), await hub()];
    const path = await proxy(primary.port);
    const a = await agent({ servers: [path.url, fallback.url] });
    await a.registeredOn(0);
    const mark = a.events.length;
    path.setMode('blackhole');
    await a.registeredOn(1);
    const lost = a.events.slice(mark).find((e) => e.from === 'connected')!;
    expect(['ping_timeout', 'heartbeat_timeout']).toContain(lost.reason.code);
  });

  it('hub SIGTERM → it drains: agents move to the fallback before the hub exits', async () => {
    const [primary, fallback] = [await hub(), await hub()];
    const agents = await Promise.all([1, 2, 3].map(() => agent({ servers: [primary.url, fallback.url] })));
    await Promise.all(agents.map((a) => a.registeredOn(0)));
    const marks = agents.map((a) => a.events.length);
    primary.signal('SIGTERM');
    const moved = await Promise.all(agents.map((a) => a.registeredOn(1)));
    const exit = await primary.exited;
    expect(exit.code).toBe(0);
    for (const [i, a] of agents.entries()) {
      expect(moved[i]!.at).toBeLessThanOrEqual(exit.at);
      const left = a.events.slice(marks[i]).find((e) => e.from === 'connected')!;
      expect(left.reason.code).toBe('drained');
      expect(dialPlan(a.events.slice(marks[i]))).toEqual(['dial 1', 'registered 1']);
    }
    // The hub saw them leave gracefully, none had to be closed by force.
    const drained = await primary.waitForLog(
      'drain complete',
      (l) => typeof l.msg === 'string' && l.msg.startsWith('Drain complete'),
    );
    expect(drained.forced).toBe(0);
    expect(primary.logs.filter((l) => l.kind === 'graceful')).toHaveLength(3);
  });

  it('hub SIGTERM with the fallback down too → the agent lets the draining hub go instead of pinning it until its drain timeout', async () => {
    const primary = await hub({ args: ['--drain-timeout', '60'] });
    const a = await agent({ servers: [primary.url, await closedPortUrl()] });
    await a.registeredOn(0);
    const mark = a.events.length;
    primary.signal('SIGTERM');
    const exit = await primary.exited; // long before the 60 s drain timeout
    expect(exit.code).toBe(0);
    const drained = await primary.waitForLog(
      'drain complete',
      (l) => typeof l.msg === 'string' && l.msg.startsWith('Drain complete'),
    );
    expect(drained.forced).toBe(0);
    // The agent tried the fallback first (make before break), found nothing, and now backs off.
    await a.transition('backing off after the round', (e) => e.to.phase === 'reconnecting', 10_000, mark);
    expect(dialPlan(a.events.slice(mark)).slice(0, 2)).toEqual(['dial 1', 'wait #1']);
  });

  it('hub restarted on the same address (a deploy) → the agent is back on it', async () => {
    const port = await freePort();
    const first = await hub({ port });
    const a = await agent({ servers: [first.url] });
    await a.registeredOn(0);
    first.signal('SIGTERM');
    await first.exited;
    await a.transition('waiting to retry', (e) => e.to.phase === 'reconnecting');
    await hub({ port });
    await a.registeredOn(0, 15_000);
  });

  it('resolves the host name again on every attempt, so a hub that moved to a new IP is found', async () => {
    const port = await freePort();
    const oldHub = await hub({ port });
    const newHub = await hub({ port, args: ['--host', '127.0.0.2'] });
    let address = '127.0.0.1';
    let lookups = 0;
    const lookup = ((
      _host: string,
      options: unknown,
      callback: (err: Error | null, address: string | { address: string; family: number }[], family?: number) => void,
    ) => {
      lookups += 1;
      if ((options as { all?: boolean }).all) callback(null, [{ address, family: 4 }]);
      else callback(null, address, 4);
    }) as LookupFunction;
    const a = await agent({ servers: [`http://farm-hub.test:${port}`], lookup });
    await a.registeredOn(0);
    expect(lookups).toBe(1);
    address = '127.0.0.2'; // DNS now points at the new machine
    const mark = a.events.length;
    await oldHub.kill();
    // Wait for the loss first: right after the kill the agent may still read as registered on the old hub.
    await a.transition('the old hub lost', (e) => e.from === 'connected', 10_000, mark);
    await a.registeredOn(0);
    expect(lookups).toBeGreaterThanOrEqual(2);
    const registeredOnNew = await newHub.waitForLog(
      'agent registered on the new address',
      (l) => typeof l.msg === 'string' && l.msg.includes('registered from'),
    );
    expect(registeredOnNew.agent_id).toBe(a.agent.settings.identity.id);
  });

  it('"Reconnect now" while on a fallback goes back to the primary', async () => {
    const fallback = await hub();
    const primaryPort = await freePort();
    const a = await agent({ servers: [`http://127.0.0.1:${primaryPort}`, fallback.url] });
    await a.registeredOn(1);
    await hub({ port: primaryPort });
    const mark = a.events.length;
    a.agent.reconnectNow();
    await a.registeredOn(0);
    const requested = a.events.slice(mark).find((e) => e.reason.code === 'reconnect_requested');
    expect(requested?.to).toMatchObject({ phase: 'connecting', server: { index: 0 } });
    await fallback.waitForLog(
      'graceful disconnect on the fallback',
      (l) => l.kind === 'graceful' && l.reason === 'reconnect_requested',
    );
  });

  it('a stable connection resets the backoff: the next outage starts again from the first delay', async () => {
    const port = await freePort();
    const a = await agent({ servers: [`http://127.0.0.1:${port}`], timing: { stableAfterMs: 300 } });
    await a.transition('backoff #3', (e) => e.to.phase === 'reconnecting' && e.to.backoff_step === 3, 10_000, 0);
    const h = await hub({ port });
    const registered = a.logs.length;
    await a.registeredOn(0);
    await a.waitForLog(
      'connection stable, backoff reset',
      (l) => l.msg.startsWith('Connection stable'),
      10_000,
      registered,
    );
    expect(a.state().phase).toBe('connected'); // stable on this connection, not a stale timer of an earlier one
    const mark = a.events.length;
    await h.kill();
    const wait = await a.transition('first wait after the outage', (e) => e.to.phase === 'reconnecting', 10_000, mark);
    expect(wait.to).toMatchObject({ backoff_step: 1 });
  });

  it('stop() disconnects gracefully and stays stopped', async () => {
    const h = await hub();
    const a = await agent({ servers: [h.url] });
    await a.registeredOn(0);
    await a.stop();
    expect(a.state()).toEqual({ phase: 'stopped' });
    await h.waitForLog('graceful disconnect', (l) => l.kind === 'graceful' && l.reason === 'agent_shutdown');
    // Proves a negative: nothing (no backoff timer, no late socket event) moves it out of 'stopped'
    // within several backoff delays (FAST_TIMING caps them at 400 ms); there is no event to wait for.
    await sleep(600);
    expect(a.events.at(-1)?.to.phase).toBe('stopped');
    await waitUntil('hub lists no agents', async () => {
      const res = await h.get('/api/v1/admin/agents', await h.adminToken());
      return (res.body as { agents: unknown[] }).agents.length === 0;
    });
  });
});
