import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode } from '../protocol/close-codes.js';
import { AGENT_LEGACY_WS_PATH, AGENT_WS_PATH, Capability } from '../protocol/version.js';
import { RawClient, expectClosedWith, metricFromText, type HubFrame } from './helpers/raw-client.js';
import { waitUntil } from './helpers/wait.js';
import { mintToken } from '../server/auth.js';
import { MemoryEventSink } from '../server/events/memory-sink.fixture.js';
import { Hub } from '../server/hub.js';
import { HubOptionsSchema, type HubOptionsInput } from '../server/hub-options.js';

/**
 * The hub's enhanced mode over real WebSockets on loopback: a hub in this process (so the test
 * controls its event sink: holds appends back, makes them fail) and raw clients speaking the
 * protocol by hand.
 */

const SECRET = 'test-secret-0123456789-abcdefghijklmnop';
const hubs: Hub[] = [];

afterEach(async () => {
  RawClient.terminateAll();
  await Promise.all(hubs.splice(0).map((hub) => hub.close()));
});

async function startHub(options: Partial<HubOptionsInput> = {}, sink = new MemoryEventSink()) {
  const hub = new Hub(
    // adapt off: a busy test machine must not widen the batch settings these tests assert (see hub-load-adapt).
    HubOptionsSchema.parse({ secret: SECRET, port: 0, broadcast_interval_ms: 0, adapt: false, ...options }),
    pino({ level: 'silent' }),
    { events: sink },
  );
  hubs.push(hub);
  const { url } = await hub.listen();
  const ws = url.replace('http', 'ws');
  return {
    hub,
    sink,
    url,
    wsUrl: `${ws}${AGENT_WS_PATH}`,
    legacyUrl: `${ws}${AGENT_LEGACY_WS_PATH}`,
  };
}

async function agent(wsUrl: string, id: string, overrides: Record<string, unknown> = {}, expiresIn?: string) {
  const token = await mintToken(SECRET, { role: 'agent', agentId: id, expiresIn });
  const client = await RawClient.connect(wsUrl, { token });
  const registered = await client.register(id, { capabilities: [Capability.BATCH_V1], ...overrides });
  return { client, registered };
}

/** Every message the hub sent, batches unpacked, in order. */
function messages(client: RawClient): HubFrame[] {
  return client.frames.flatMap((f) => (f.type === 'batch' ? (f.messages as HubFrame[]) : [f]));
}

function nextMessage(client: RawClient, what: string, match: (m: HubFrame) => boolean, timeoutMs = 5000) {
  return waitUntil(
    `${what} from the hub (got ${JSON.stringify(messages(client)).slice(0, 400)})`,
    () => {
      const found = messages(client).find(match);
      if (!found && client.isClosed) throw new Error(`closed before ${what}`);
      return found;
    },
    timeoutMs,
  );
}

const ackOf = (seq: number) => (m: HubFrame) => m.type === 'ack' && m.seq === seq;
const event = (seq: number) => ({
  type: 'event',
  seq,
  name: 'device.attached',
  data: { serial: `S${seq}` },
  timestamp: Date.now(),
});
const heartbeat = (seq: number) => ({ type: 'heartbeat', seq, cpu_usage: 1, ram_usage: 1, timestamp: Date.now() });
const batch = (...items: unknown[]) => ({ type: 'batch', messages: items });

describe('negotiation', () => {
  it('grants batch.v1 when hello offers it, with acked_seq and the batch settings', async () => {
    const { wsUrl } = await startHub({ batch_window_ms: 20, batch_max_messages: 64 });
    const { registered } = await agent(wsUrl, 'pc-enh');
    expect(registered).toMatchObject({
      capabilities: ['batch.v1'],
      acked_seq: 0,
      batch: { window_ms: 20, max_messages: 64, max_bytes: 65_536 },
    });
  });

  it('does not grant it on the legacy path, nor when hello does not offer it, nor with --no-enhanced', async () => {
    const { wsUrl, legacyUrl } = await startHub();
    const onLegacyPath = await agent(legacyUrl, 'pc-a');
    const notOffered = await agent(wsUrl, 'pc-b', { capabilities: undefined });
    const { wsUrl: offUrl } = await startHub({ enhanced: false });
    const turnedOff = await agent(offUrl, 'pc-c');
    for (const { registered } of [onLegacyPath, notOffered, turnedOff]) {
      expect(registered.capabilities).toBeUndefined();
      expect(registered.acked_seq).toBeUndefined();
      expect(registered.batch).toBeUndefined();
    }
    // Legacy as before: one message per frame.
    onLegacyPath.client.sendHeartbeat(1);
    await onLegacyPath.client.nextFrame('heartbeat_ack');
  });

  it('the 404 for another path names both endpoints', async () => {
    const { url } = await startHub();
    const client = RawClient.dial(`${url.replace('http', 'ws')}/elsewhere`);
    await client.closed;
    expect(client.rejection?.status).toBe(404);
    expect(client.rejection?.body).toContain(AGENT_WS_PATH);
    expect(client.rejection?.body).toContain(AGENT_LEGACY_WS_PATH);
  });
});

describe('an enhanced session', () => {
  it('acks a batch of events only once the sink has them, cumulatively', async () => {
    const { wsUrl, sink } = await startHub();
    const { client } = await agent(wsUrl, 'pc-1');
    sink.hold();
    client.sendJson(batch(event(1), event(2), event(3)));
    await waitUntil('the append', () => sink.calls.length === 1);
    // A heartbeat is answered at once, though the append before it is held.
    client.sendJson(batch(heartbeat(2)));
    await nextMessage(client, 'heartbeat_ack', (m) => m.type === 'heartbeat_ack' && m.seq === 2);
    expect(messages(client).filter((m) => m.type === 'ack')).toEqual([]);
    sink.release();
    await nextMessage(client, 'ack 3', ackOf(3));
    expect(sink.seqsOf('pc-1')).toEqual([1, 2, 3]);
    expect(sink.calls).toEqual([{ agentId: 'pc-1', seqs: [1, 2, 3] }]);
    // Every frame after registered is a batch.
    expect(client.frames.slice(1).every((f) => f.type === 'batch')).toBe(true);
  });

  it('the same seqs resent on a new connection are acked and kept once; registered says where to resume', async () => {
    const { wsUrl, sink, url } = await startHub();
    const first = await agent(wsUrl, 'pc-2');
    first.client.sendJson(batch(event(1), event(2), event(3)));
    await nextMessage(first.client, 'ack 3', ackOf(3));
    first.client.ws.terminate();
    const second = await agent(wsUrl, 'pc-2');
    expect(second.registered.acked_seq).toBe(3);
    second.client.sendJson(batch(event(2), event(3), event(4), event(5)));
    await nextMessage(second.client, 'ack 5', ackOf(5));
    expect(sink.seqsOf('pc-2')).toEqual([1, 2, 3, 4, 5]);
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(metricFromText(text, 'farmlink_hub_duplicates_dropped_total')).toBe(2);
  });

  it('a failing sink gets a nack, the connection stays, and the resend is kept once the sink is back', async () => {
    const { wsUrl, sink } = await startHub();
    const { client } = await agent(wsUrl, 'pc-3');
    client.sendJson(batch(event(1)));
    await nextMessage(client, 'ack 1', ackOf(1));
    sink.failWith = new Error('disk unavailable');
    client.sendJson(batch(event(2), event(3)));
    const nack = await nextMessage(client, 'nack', (m) => m.type === 'nack');
    expect(nack).toMatchObject({ seq: 2, error: { code: 'SINK_UNAVAILABLE' } });
    expect(nack.retry_after_ms).toBeGreaterThan(0);
    client.sendJson(batch(event(4))); // sent before the agent heard the nack: ignored
    client.sendJson(batch(heartbeat(7)));
    await nextMessage(client, 'heartbeat_ack', (m) => m.type === 'heartbeat_ack' && m.seq === 7);
    expect(client.isClosed).toBe(false);
    sink.failWith = undefined;
    client.sendJson(batch(event(2), event(3), event(4)));
    await nextMessage(client, 'ack 4', ackOf(4));
    expect(sink.seqsOf('pc-3')).toEqual([1, 2, 3, 4]);
  });

  it('a result with a seq answers a command, and is acked', async () => {
    const { wsUrl, hub } = await startHub();
    const { client } = await agent(wsUrl, 'pc-4');
    const outcome = hub.command('pc-4', 'ping', { n: 1 }, 5000);
    const command = await nextMessage(client, 'command', (m) => m.type === 'command');
    client.sendJson(batch({ type: 'result', seq: 1, id: command.id, ok: true, data: { pong: 1 } }));
    await expect(outcome).resolves.toEqual({ status: 'ok', data: { pong: 1 } });
    await nextMessage(client, 'ack 1', ackOf(1));
  });

  it('closes with 4422 on a frame that is not a batch, or seqs that do not increase within a frame', async () => {
    const { wsUrl } = await startHub();
    const a = await agent(wsUrl, 'pc-5');
    a.client.sendHeartbeat(1);
    await expectClosedWith(a.client, CloseCode.INVALID_MESSAGE, /expected a batch frame/);
    const b = await agent(wsUrl, 'pc-6');
    b.client.sendJson(batch(event(2), event(2)));
    await expectClosedWith(b.client, CloseCode.INVALID_MESSAGE, /seqs must increase/);
  });

  it('a result without a seq (an agent without its outbox) answers its command at once, unacknowledged', async () => {
    const { wsUrl, hub } = await startHub();
    const { client } = await agent(wsUrl, 'pc-noseq');
    const outcome = hub.command('pc-noseq', 'ping', {}, 5000);
    const command = await nextMessage(client, 'command', (m) => m.type === 'command');
    client.sendJson(batch({ type: 'result', id: command.id, ok: true, data: 'pong' }));
    await expect(outcome).resolves.toEqual({ status: 'ok', data: 'pong' });
    expect(messages(client).filter((m) => m.type === 'ack')).toEqual([]);
  });

  it('broadcasts and draining reach enhanced agents inside batches; legacy agents get them as before', async () => {
    const { wsUrl, legacyUrl, hub } = await startHub();
    const enhanced = await agent(wsUrl, 'pc-7');
    const legacy = await agent(legacyUrl, 'pc-8');
    hub.broadcast({ hello: 'all' });
    await nextMessage(enhanced.client, 'broadcast', (m) => m.type === 'broadcast');
    await legacy.client.nextFrame('broadcast');
    void hub.drain('test drain', 2000);
    await nextMessage(enhanced.client, 'draining', (m) => m.type === 'draining');
    await legacy.client.nextFrame('draining');
    expect(enhanced.client.frames.find((f) => f.type === 'draining')).toBeUndefined();
  });
});

describe('token expiry', () => {
  it('an agent whose token expires while connected gets token_expired, then close 4440', async () => {
    const { wsUrl, url } = await startHub();
    const { client } = await agent(wsUrl, 'pc-exp', {}, '2s');
    const expired = await nextMessage(client, 'token_expired', (m) => m.type === 'token_expired', 10_000);
    expect(expired.reason).toMatch(/expired/);
    expect(typeof expired.expired_at).toBe('number');
    await expectClosedWith(client, CloseCode.TOKEN_EXPIRED, /token expired/, 5000);
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(metricFromText(text, 'farmlink_errors_total', { kind: 'token_expired' })).toBe(1);
  });

  it('a legacy agent is told the same way', async () => {
    const { legacyUrl } = await startHub();
    const { client } = await agent(legacyUrl, 'pc-exp2', {}, '1s');
    await client.nextFrame('token_expired', 10_000);
    await expectClosedWith(client, CloseCode.TOKEN_EXPIRED, /token expired/, 5000);
  });
});

describe('metrics per mode', () => {
  it('GET /metrics with Accept: application/json answers the per-mode view; text stays the default', async () => {
    const { wsUrl, legacyUrl, url } = await startHub();
    const enhanced = await agent(wsUrl, 'pc-m1');
    const legacy = await agent(legacyUrl, 'pc-m2');
    enhanced.client.sendJson(batch(event(1), event(2)));
    await nextMessage(enhanced.client, 'ack 2', ackOf(2));
    legacy.client.sendJson({ type: 'event', name: 'x', data: null, timestamp: Date.now() });
    legacy.client.sendHeartbeat(1);
    await legacy.client.nextFrame('heartbeat_ack');
    const res = await fetch(`${url}/metrics`, { headers: { accept: 'application/json' } });
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const view = (await res.json()) as Record<string, Record<string, unknown>>;
    expect(view.enhanced).toMatchObject({ total_connections: 1, current_connections: 1, peak_connections: 1 });
    expect(view.enhanced?.messages_received).toBe(2);
    expect(view.enhanced?.events_received).toBe(2);
    expect(view.enhanced?.frames_received).toBe(1);
    expect(view.enhanced?.average_latency).toEqual(expect.any(Number));
    expect(view.legacy).toMatchObject({ total_connections: 1, messages_received: 2, events_received: 1 });
    expect(view.hub).toMatchObject({ agents_connected: 2, enhanced_granted: true });
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toContain('# TYPE farmlink_hub_batch_messages histogram');
    expect(metricFromText(text, 'farmlink_hub_sessions', { mode: 'enhanced' })).toBe(1);
    expect(metricFromText(text, 'farmlink_hub_ack_lag_seconds_count')).toBeGreaterThanOrEqual(1);
    const agents = await fetch(`${url}/api/v1/admin/agents`, {
      headers: { authorization: `Bearer ${await mintToken(SECRET, { role: 'admin' })}` },
    });
    const body = (await agents.json()) as { agents: Array<{ agent_id: string; mode: string; events_in: number }> };
    expect(body.agents.find((a) => a.agent_id === 'pc-m1')).toMatchObject({ mode: 'enhanced', events_in: 2 });
    expect(body.agents.find((a) => a.agent_id === 'pc-m2')).toMatchObject({ mode: 'legacy', events_in: 1 });
  });
});

describe('the event sink breaker', () => {
  it('opens after --breaker-failures, nacks at once without calling the sink, and closes after a probe', async () => {
    const { wsUrl, sink, url } = await startHub({ breaker_failures: 2, breaker_recovery_ms: 300 });
    const { client } = await agent(wsUrl, 'pc-br');
    const nacks = () => messages(client).filter((m) => m.type === 'nack');
    const state = async () =>
      metricFromText(await (await fetch(`${url}/metrics`)).text(), 'farmlink_hub_breaker_state', { breaker: 'sink' });
    sink.failWith = new Error('disk unavailable');
    for (let n = 1; n <= 3; n += 1) {
      client.sendJson(batch(event(1)));
      await waitUntil(`nack #${n}`, () => nacks().length === n);
    }
    expect(sink.calls).toHaveLength(2);
    expect(nacks()[2]).toMatchObject({ seq: 1, error: { code: 'SINK_UNAVAILABLE' } });
    expect((nacks()[2]?.error as { message: string }).message).toMatch(/circuit breaker open/);
    expect(await state()).toBe(2);
    sink.failWith = undefined;
    await waitUntil('the breaker half-open', async () => (await state()) === 1, 5000);
    client.sendJson(batch(event(1)));
    await nextMessage(client, 'ack 1', ackOf(1));
    expect(await state()).toBe(0);
    expect(client.isClosed).toBe(false);
  });
});
