import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_LEGACY_WS_PATH, AGENT_WS_PATH, Capability } from '../protocol/version.js';
import { AgentHarness, FAST_TIMING } from './helpers/agent-harness.js';
import { startHub as spawnHub, type HubProcess } from './helpers/hub-process.js';
import { RawClient, metricFromText, type HubFrame } from './helpers/raw-client.js';
import { waitUntil } from './helpers/wait.js';
import { mintToken } from '../server/auth.js';
import { MemoryEventSink } from '../server/events/memory-sink.fixture.js';
import { Hub } from '../server/hub.js';
import { HubOptionsSchema, type HubOptionsInput } from '../server/hub-options.js';
import type { LoadSample, LoadSampler } from '../server/load-monitor.js';

/**
 * The hub adapting to its own load. In this process (the load is fed as synthetic event-loop
 * delays, so a test can take the hub up to overloaded and back): real WebSockets, raw clients
 * speaking enhanced and legacy by hand, and a real agent. Then a real hub process measuring its
 * real event loop against a threshold any loop passes.
 */

const SECRET = 'test-secret-0123456789-abcdefghijklmnop';
const hubs: Hub[] = [];
const agents: AgentHarness[] = [];
const processes: HubProcess[] = [];

afterEach(async () => {
  RawClient.terminateAll();
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await Promise.all(hubs.splice(0).map((hub) => hub.close()));
  await Promise.all(processes.splice(0).map((p) => p.kill()));
});

/** The event-loop delay p99 the hub reads at its next sample: whatever the test set last. */
class DialSampler implements LoadSampler {
  p99 = 0;
  sample(): LoadSample {
    return { delayP50Ms: this.p99 / 2, delayP99Ms: this.p99, delayMaxMs: this.p99, utilization: 0.5 };
  }
  stop(): void {
    // nothing to release
  }
}

async function startHub(options: Partial<HubOptionsInput> = {}) {
  const dial = new DialSampler();
  const hub = new Hub(
    HubOptionsSchema.parse({
      secret: SECRET,
      port: 0,
      broadcast_interval_ms: 0,
      load_sample_ms: 50,
      load_dwell_ms: 300,
      ...options,
    }),
    pino({ level: 'silent' }),
    { events: new MemoryEventSink(), loadSampler: () => dial },
  );
  hubs.push(hub);
  const { url } = await hub.listen();
  const ws = url.replace('http', 'ws');
  return { hub, dial, url, wsUrl: `${ws}${AGENT_WS_PATH}`, legacyUrl: `${ws}${AGENT_LEGACY_WS_PATH}` };
}

async function rawAgent(wsUrl: string, id: string, enhanced = true) {
  const token = await mintToken(SECRET, { role: 'agent', agentId: id });
  const client = await RawClient.connect(wsUrl, { token });
  const registered = await client.register(id, enhanced ? { capabilities: [Capability.BATCH_V1] } : {});
  return { client, registered };
}

async function realAgent(url: string, id: string): Promise<AgentHarness> {
  const agent = await AgentHarness.create({ servers: [url], id });
  agents.push(agent);
  agent.start();
  await agent.registeredOn(0);
  return agent;
}

/** Every message the hub sent, batches unpacked, in order. */
function messages(client: RawClient): HubFrame[] {
  return client.frames.flatMap((f) => (f.type === 'batch' ? (f.messages as HubFrame[]) : [f]));
}

const tunes = (client: RawClient) => messages(client).filter((m) => m.type === 'tune');

function nthTune(client: RawClient, n: number): Promise<HubFrame> {
  return waitUntil(`tune #${n} (got ${JSON.stringify(tunes(client))})`, () => tunes(client)[n - 1], 10_000);
}

const pace = (agent: AgentHarness) => agent.agent.connection.getModeInfo().pace;

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

describe('the hub adapts to its load', () => {
  it('busy → overloaded → back to normal: enhanced agents are told each pace, legacy ones nothing', async () => {
    const { hub, dial, url, wsUrl, legacyUrl } = await startHub();
    const raw = await rawAgent(wsUrl, 'pc-raw');
    const legacy = await rawAgent(legacyUrl, 'pc-legacy', false);
    const agent = await realAgent(url, 'pc-real');
    expect(pace(agent)).toMatchObject({ batch_window_ms: 50, heartbeat_interval_ms: FAST_TIMING.heartbeatIntervalMs });

    dial.p99 = 80;
    const busy = await nthTune(raw.client, 1);
    expect(busy).toMatchObject({
      batch: { window_ms: 100, max_messages: 500 },
      heartbeat_interval_ms: 60_000,
      reason: 'hub busy: event-loop delay p99 80 ms ≥ 50 ms',
    });
    // The real agent batches and beats at the hub's slower pace (its dead timeout stretches with it).
    await waitUntil('the agent at the busy pace', () => pace(agent)?.heartbeat_interval_ms === 60_000);
    expect(pace(agent)).toEqual({ batch_window_ms: 100, heartbeat_interval_ms: 60_000, hub_reason: busy.reason });
    const text = await metricsText(url);
    expect(metricFromText(text, 'farmlink_hub_load_level')).toBe(1);
    expect(metricFromText(text, 'farmlink_hub_tunes_sent_total')).toBe(2);
    expect(metricFromText(text, 'farmlink_hub_event_loop_delay_seconds', { quantile: '0.99' })).toBe(0.08);
    expect(hub.metricsView().hub).toMatchObject({
      batch: { window_ms: 100 },
      load: { level: 1, name: 'busy', heartbeat_interval_ms: 60_000, adapt: true },
    });

    // Registering while busy: the current pace comes in `registered` (enhanced only).
    const late = await rawAgent(wsUrl, 'pc-late');
    expect(late.registered).toMatchObject({ batch: { window_ms: 100 }, heartbeat_interval_ms: 60_000 });
    const lateLegacy = await rawAgent(legacyUrl, 'pc-late-legacy', false);
    expect(lateLegacy.registered.heartbeat_interval_ms).toBeUndefined();

    dial.p99 = 300;
    expect(await nthTune(raw.client, 2)).toMatchObject({
      batch: { window_ms: 200 },
      heartbeat_interval_ms: 120_000,
      reason: 'hub overloaded: event-loop delay p99 300 ms ≥ 200 ms',
    });
    await waitUntil('the agent at the overloaded pace', () => pace(agent)?.batch_window_ms === 200);

    dial.p99 = 1;
    expect(await nthTune(raw.client, 3)).toMatchObject({ batch: { window_ms: 100 }, heartbeat_interval_ms: 60_000 });
    const normal = await nthTune(raw.client, 4);
    expect(normal).toMatchObject({ batch: { window_ms: 50 }, heartbeat_interval_ms: null });
    expect(normal.reason).toMatch(/^hub load back to normal: event-loop delay p99 1 ms, under 25 ms for 300 ms$/);
    expect(await nthTune(late.client, 3)).toEqual(normal);
    // Back at its own pace.
    await waitUntil('the agent at its own pace', () => pace(agent)?.batch_window_ms === 50);
    expect(pace(agent)?.heartbeat_interval_ms).toBe(FAST_TIMING.heartbeatIntervalMs);
    expect(hub.metricsView().hub.load).toMatchObject({ level: 0, heartbeat_interval_ms: null });
    expect(metricFromText(await metricsText(url), 'farmlink_hub_load_level')).toBe(0);

    // Legacy has no tune: those agents were told nothing, and are still connected.
    expect(tunes(legacy.client)).toEqual([]);
    expect(tunes(lateLegacy.client)).toEqual([]);
    expect(legacy.client.isClosed).toBe(false);
    expect(agent.state().phase).toBe('connected');
  });

  it('--no-adapt: the load is measured and shown, agents are told nothing', async () => {
    const { hub, dial, url, wsUrl } = await startHub({ adapt: false });
    const raw = await rawAgent(wsUrl, 'pc-raw');
    dial.p99 = 500;
    await waitUntil('the hub overloaded', () => hub.loadLevel === 2);
    const late = await rawAgent(wsUrl, 'pc-late');
    expect(late.registered.batch).toMatchObject({ window_ms: 50 });
    expect(late.registered.heartbeat_interval_ms).toBeUndefined();
    const text = await metricsText(url);
    expect(metricFromText(text, 'farmlink_hub_load_level')).toBe(2);
    expect(metricFromText(text, 'farmlink_hub_tunes_sent_total')).toBe(0);
    expect(hub.metricsView().hub.load).toMatchObject({ level: 2, adapt: false, heartbeat_interval_ms: null });
    expect(tunes(raw.client)).toEqual([]);
  });
});

describe('a real hub process measuring its own event loop', () => {
  it('with --load-busy-ms below any real delay it is busy: the agent gets the tune and the metrics say so', async () => {
    const hub = await spawnHub({ adapt: true, args: ['--load-busy-ms', '0.001', '--load-overload-ms', '100000'] });
    processes.push(hub);
    const agent = await AgentHarness.create({ servers: [hub.url], id: 'pc-real-load' });
    agents.push(agent);
    agent.start();
    await agent.registeredOn(0);
    const token = await hub.agentToken('pc-raw-load');
    const raw = await RawClient.connect(hub.wsUrl, { token });
    await raw.register('pc-raw-load', { capabilities: [Capability.BATCH_V1] });

    const line = await hub.waitForLog('the busy line', (l) => l.msg.startsWith('Hub busy ('), 20_000);
    expect(line.msg).toMatch(
      /^Hub busy \(event-loop delay p99 [\d.]+ ms ≥ 0\.001 ms\): telling \d+ enhanced agents? to batch every 100 ms and beat every 60 s/,
    );
    // An agent registering before the change got a tune; one registering just after got it in `registered`.
    await waitUntil(
      'the agent at the busy pace',
      () => pace(agent)?.heartbeat_interval_ms === 60_000 && pace(agent)?.batch_window_ms === 100,
      10_000,
    );
    const told = await waitUntil(`the busy pace at the raw client (got ${JSON.stringify(messages(raw))})`, () =>
      messages(raw).find(
        (m) => (m.type === 'tune' || m.type === 'registered') && (m.batch as { window_ms: number }).window_ms === 100,
      ),
    );
    expect(told).toMatchObject({ heartbeat_interval_ms: 60_000 });
    expect(await hub.metric('farmlink_hub_load_level')).toBeGreaterThanOrEqual(1);
    const view = await fetch(`${hub.url}/metrics`, { headers: { accept: 'application/json' } });
    expect(((await view.json()) as { hub: { load: { level: number } } }).hub.load.level).toBeGreaterThanOrEqual(1);
    expect(agent.state().phase).toBe('connected');
  });
});
