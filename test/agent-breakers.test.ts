import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectionEvent } from '../protocol/connection-state.js';
import { AgentHarness } from './helpers/agent-harness.js';
import { startHub, type HubProcess } from './helpers/hub-process.js';
import { waitUntil } from './helpers/wait.js';

/**
 * The agent's per-server breakers against real hubs: a primary signed with another secret refuses
 * this PC's token; the fallback accepts it.
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

const dials = (events: readonly ConnectionEvent[]): number[] =>
  events.flatMap((e) => (e.to.phase === 'connecting' ? [e.to.server.index] : []));

describe('per-server breakers, real hubs', () => {
  it('a primary that refuses the token opens its breaker; the agent stays on the fallback, then probes once', async () => {
    const primary = await hub({ secret: 'another-secret-0123456789-abcdefghijklmnop' });
    const fallback = await hub();
    const a = await AgentHarness.create({
      servers: [primary.url, fallback.url],
      breaker: { failures: 2, windowMs: 60_000, recoveryMs: 1500 },
    });
    cleanups.push(() => a.stop());
    a.start();
    const breaker = () => a.agent.stats().servers[0]?.breaker;

    // Refusal #1 at start, #2 on a reconnect asked for: the breaker opens.
    await a.registeredOn(1);
    expect(breaker()).toMatchObject({ state: 'closed', failures: 1 });
    a.agent.connection.reconnectNow('test: back to the primary');
    await a.registeredOn(1);
    expect(breaker()).toMatchObject({ state: 'open', failures: 2 });
    expect(breaker()?.reason).toMatch(/^(4401 UNAUTHORIZED|HTTP 401)/);
    const opened = await a.waitForLog('breaker opened', (l) => l.msg.includes('refused this PC 2 times'));
    expect(opened.msg).toMatch(/^Server #0 \(primary, ws:\/\/127\.0\.0\.1:\d+\/api\/v1\/pc\/ws\) refused this PC/);
    expect(opened.msg).toMatch(/skipping it until \d\d:\d\d:\d\d; next: server #1 \(fallback #1\/1, /);

    // While it is open, a reconnect goes straight to the fallback.
    let from = a.events.length;
    a.agent.connection.reconnectNow('test: while open');
    await a.registeredOn(1);
    expect(dials(a.events.slice(from))).toEqual([1]);

    // After the recovery time, the next dial to the primary is the probe; it is refused, so it opens again.
    await waitUntil('the breaker half-open', () => breaker()?.state === 'half-open', 10_000);
    from = a.events.length;
    const logsFrom = a.logs.length;
    a.agent.connection.reconnectNow('test: after recovery');
    await a.registeredOn(1);
    expect(dials(a.events.slice(from))).toEqual([0, 1]);
    expect(breaker()).toMatchObject({ state: 'open' });
    await a.waitForLog('probe', (l) => l.msg.startsWith('Probing server #0'), 10_000, logsFrom);
    await a.waitForLog('still refuses', (l) => l.msg.includes('still refuses this PC'), 10_000, logsFrom);
    expect(a.agent.stats().servers[1]?.breaker).toMatchObject({ state: 'closed', failures: 0 });
  });
});
