import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../protocol/close-codes.js';
import type { AgentListing } from '../server/hub-view.js';
import { runCli } from './helpers/cli-process.js';
import { startHub, TEST_SECRET, type HubProcess } from './helpers/hub-process.js';
import { RawClient, expectClosedWith, metricFromText, withTimeout, type HubFrame } from './helpers/raw-client.js';
import { waitUntil } from './helpers/wait.js';

/**
 * `farmlink hub --workers 2`: two hub processes behind one port, answering as one hub. Real
 * processes on loopback; the agents are raw WebSocket clients that answer commands themselves.
 */

const HUB_ID = 'workers-hub';
const WORKER_IDS = [`${HUB_ID}/w1`, `${HUB_ID}/w2`];
const AGENTS = 40;
/** The machine is shared: two worker processes can take a while to start under load. */
const START_TIMEOUT_MS = 90_000;

interface Answer {
  status: number;
  body: unknown;
  text: string;
}

/**
 * One HTTP request through `agent`: `false` opens a fresh connection (the cluster hands each new
 * connection to the next worker), a keep-alive agent with one socket stays on one worker.
 */
function request(
  agent: http.Agent | false,
  port: number,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
  accept?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(accept ? { accept } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // /metrics is text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A raw agent that answers every command with its own id, as a real agent answers with its data. */
async function connectAgent(hub: HubProcess, agentId: string): Promise<{ client: RawClient; hubId: string }> {
  const client = await RawClient.connect(hub.wsUrl, { token: await hub.agentToken(agentId) });
  client.ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString('utf8')) as HubFrame;
    if (frame.type === 'command')
      client.sendJson({ type: 'result', id: frame.id, ok: true, data: { agent_id: agentId, command: frame.name } });
  });
  client.sendHello(agentId);
  const registered = await waitUntil(`${agentId} registered`, () => client.frames.find((f) => f.type === 'registered'));
  return { client, hubId: String(registered.hub_id) };
}

describe('farmlink hub --workers 2', () => {
  let hub: HubProcess;
  let admin: string;
  const agents = new Map<string, { client: RawClient; hubId: string }>();
  const ids = Array.from({ length: AGENTS }, (_, i) => `worker-agent-${String(i).padStart(2, '0')}`);

  beforeAll(async () => {
    hub = await startHub({
      hubId: HUB_ID,
      args: ['--workers', '2', '--broadcast-interval', '0', '--drain-timeout', '120'],
      startTimeoutMs: START_TIMEOUT_MS,
    });
    admin = await hub.adminToken();
    for (const id of ids) agents.set(id, await connectAgent(hub, id));
  }, START_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    RawClient.terminateAll();
    await (hub as HubProcess | undefined)?.kill();
  });

  /** Keeps asking on fresh connections until every worker has answered `path`; returns the answers. */
  async function fromEveryWorker(path: string, token?: string): Promise<Map<string, Answer>> {
    const answers = new Map<string, Answer>();
    await waitUntil(`${path} answered by both workers`, async () => {
      const answer = await request(false, hub.port, 'GET', path, token);
      const body = answer.body as { hub_id?: string };
      expect(answer.status, `${path}: ${answer.text}`).toBe(200);
      if (body.hub_id !== undefined) answers.set(body.hub_id, answer);
      return answers.size === WORKER_IDS.length;
    });
    expect([...answers.keys()].sort()).toEqual(WORKER_IDS);
    return answers;
  }

  /** A connection that stays on one worker, and which worker that is. */
  async function pinnedTo(workerId: string): Promise<http.Agent> {
    return waitUntil(`a connection to ${workerId}`, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const health = await request(agent, hub.port, 'GET', '/health');
      if ((health.body as { hub_id: string }).hub_id === workerId) return agent;
      agent.destroy();
      return undefined;
    });
  }

  it('spreads the agents over both workers, each registered under its worker id', () => {
    const perWorker = new Map<string, number>();
    for (const { hubId } of agents.values()) perWorker.set(hubId, (perWorker.get(hubId) ?? 0) + 1);
    expect([...perWorker.keys()].sort()).toEqual(WORKER_IDS);
    for (const count of perWorker.values()) expect(count).toBeGreaterThan(0);
  });

  it('lists every agent, with the worker holding it, whichever worker the admin request lands on', async () => {
    for (let round = 0; round < 3; round++) {
      const answers = await fromEveryWorker('/api/v1/admin/agents', admin);
      for (const [worker, answer] of answers) {
        const listed = (answer.body as { agents: AgentListing[] }).agents;
        const where = Object.fromEntries(listed.map((a) => [a.agent_id, a.hub_id]));
        const expected = Object.fromEntries([...agents].map(([id, a]) => [id, a.hubId]));
        expect(where, `agents listed by ${worker}`).toEqual(expected);
      }
    }
  });

  it('answers for one agent from the worker that does not hold it', async () => {
    for (const holder of WORKER_IDS) {
      const other = WORKER_IDS.find((w) => w !== holder) ?? '';
      const [agentId] = [...agents].find(([, a]) => a.hubId === holder) ?? [];
      expect(agentId, `an agent on ${holder}`).toBeDefined();
      const connection = await pinnedTo(other);
      const answer = await request(connection, hub.port, 'GET', `/api/v1/admin/agents/${agentId ?? ''}`, admin);
      connection.destroy();
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body).toMatchObject({ agent_id: agentId, hub_id: holder, here: true });
    }
  });

  it('delivers a command to every agent from either worker, and says when no worker has the agent', async () => {
    for (const worker of WORKER_IDS) {
      const connection = await pinnedTo(worker);
      for (const [agentId, { hubId }] of agents) {
        const answer = await request(connection, hub.port, 'POST', `/api/v1/admin/agents/${agentId}/commands`, admin, {
          name: 'ping',
          args: {},
        });
        expect(answer.status, `command to ${agentId} (on ${hubId}) asked through ${worker}: ${answer.text}`).toBe(200);
        expect(answer.body).toEqual({ ok: true, data: { agent_id: agentId, command: 'ping' } });
      }
      const missing = await request(connection, hub.port, 'POST', '/api/v1/admin/agents/nobody/commands', admin, {
        name: 'ping',
      });
      expect(missing.status, missing.text).toBe(404);
      expect(missing.body).toMatchObject({ error: { code: 'AGENT_NOT_CONNECTED' } });
      connection.destroy();
    }
  });

  it('counts every agent on /metrics, in total and per worker, whichever worker is asked', async () => {
    const answers = await fromEveryWorker('/health');
    for (const answer of answers.values()) expect(answer.body).toMatchObject({ agents_connected: AGENTS });
    for (const worker of WORKER_IDS) {
      const connection = await pinnedTo(worker);
      const { text } = await request(connection, hub.port, 'GET', '/metrics');
      connection.destroy();
      expect(metricFromText(text, 'farmlink_agents_connected'), `summed, asked ${worker}`).toBe(AGENTS);
      expect(metricFromText(text, 'farmlink_agent_registrations_total')).toBeGreaterThanOrEqual(AGENTS);
      const perWorker = WORKER_IDS.map((w) =>
        metricFromText(text, 'farmlink_worker_agents_connected', { worker: w.slice(HUB_ID.length + 1) }),
      );
      expect(perWorker.reduce((a, b) => a + b, 0)).toBe(AGENTS);
      for (const count of perWorker) expect(count).toBeGreaterThan(0);
      expect(metricFromText(text, 'farmlink_worker_cpu_seconds_total', { worker: 'w1' })).toBeGreaterThan(0);
      expect(metricFromText(text, 'farmlink_worker_cpu_seconds_total', { worker: 'w2' })).toBeGreaterThan(0);
    }
  });

  it('answers the JSON /metrics for the whole hub from either worker, with each worker’s part', async () => {
    type Figures = Record<string, number | null>;
    type View = {
      enhanced: Figures;
      legacy: Figures;
      hub: Record<string, unknown>;
      workers: Array<Record<string, unknown>>;
    };
    const byWorker = new Map<string, View>();
    const times = new Map<string, number>();
    // Fresh connections land on the workers in turn: ask until each has answered twice.
    await waitUntil('JSON /metrics answered by both workers, twice each', async () => {
      const answer = await request(false, hub.port, 'GET', '/metrics', undefined, undefined, 'application/json');
      expect(answer.status, answer.text).toBe(200);
      const view = answer.body as View;
      const answeredBy = String(view.hub.hub_id);
      const earlier = byWorker.get(answeredBy);
      if (earlier) expect(view.legacy, `the same totals asked twice of ${answeredBy}`).toEqual(earlier.legacy);
      byWorker.set(answeredBy, view);
      times.set(answeredBy, (times.get(answeredBy) ?? 0) + 1);
      return WORKER_IDS.every((w) => (times.get(w) ?? 0) >= 2);
    });
    const views = WORKER_IDS.map((w) => byWorker.get(w) as View);
    for (const view of views) {
      // The raw agents speak legacy; each registered once, all open at once.
      expect(view.legacy).toMatchObject({
        total_connections: AGENTS,
        current_connections: AGENTS,
        peak_connections: AGENTS,
      });
      expect(view.enhanced).toMatchObject({ total_connections: 0, current_connections: 0, peak_connections: 0 });
      expect(view.hub).toMatchObject({ agents_connected: AGENTS, connections_open: AGENTS });
      expect(view.workers.map((w) => w.hub_id)).toEqual(WORKER_IDS);
      const onEach = view.workers.map((w) => (w.legacy as Figures).current_connections ?? 0);
      expect(onEach.reduce((a, b) => a + b, 0)).toBe(AGENTS);
      for (const [i, count] of onEach.entries()) {
        const holding = [...agents.values()].filter((a) => a.hubId === WORKER_IDS[i]).length;
        expect(count, `sessions on ${WORKER_IDS[i] ?? '?'}`).toBe(holding);
      }
    }
    // Whichever worker answered, the same whole-hub figures: the results of the commands above included.
    expect(views[0]?.legacy).toEqual(views[1]?.legacy);
    expect(views[0]?.legacy.messages_received).toBeGreaterThanOrEqual(AGENTS * WORKER_IDS.length);
  });

  it('replaces a worker that was SIGKILLed; its agents reconnect and the hub keeps serving', async () => {
    const started = hub.logs.filter((l) => l.event === 'worker_started' && l.worker === WORKER_IDS[0]);
    const pid = Number(started.at(-1)?.pid);
    expect(pid, 'pid of worker w1 from the primary log').toBeGreaterThan(0);
    const onIt = [...agents].filter(([, a]) => a.hubId === WORKER_IDS[0]);
    process.kill(pid, 'SIGKILL');
    // Its agents lose the connection as with any lost hub…
    for (const [, { client }] of onIt) await withTimeout(client.closed, 10_000, 'the killed worker’s agent to drop');
    await hub.waitForLog(
      'the primary reports the death',
      (l) => typeof l.msg === 'string' && l.msg.startsWith(`Worker ${WORKER_IDS[0] ?? ''} died unexpectedly`),
    );
    await hub.waitForLog('w1 restarted', (l) => l.event === 'worker_ready' && l.worker === WORKER_IDS[0], 60_000);
    // …and come back: to whichever worker the cluster hands them.
    for (const [agentId] of onIt) agents.set(agentId, await connectAgent(hub, agentId));
    const answers = await fromEveryWorker('/api/v1/admin/agents', admin);
    for (const answer of answers.values()) {
      const listed = (answer.body as { agents: AgentListing[] }).agents.map((a) => a.agent_id).sort();
      expect(listed).toEqual(ids);
    }
    // New connections reach the restarted worker too.
    const perWorker = new Set<string>();
    await waitUntil('a new agent registered on each worker', async () => {
      const { client, hubId } = await connectAgent(hub, `newcomer-${String(perWorker.size)}-${String(Date.now())}`);
      client.ws.close();
      await client.closed;
      perWorker.add(hubId);
      return perWorker.size === WORKER_IDS.length;
    });
  }, 120_000);

  it('drains every worker on SIGTERM to the primary, and exits 0 once the agents have left', async () => {
    hub.signal('SIGTERM');
    for (const [agentId, { client }] of agents) {
      await waitUntil(`${agentId} told draining`, () => client.frames.some((f) => f.type === 'draining'), 20_000);
    }
    // Still open, refusing newcomers with 1001 while the agents move.
    const late = RawClient.dial(hub.wsUrl, { token: await hub.agentToken('latecomer') });
    await expectClosedWith(late, CloseCode.GOING_AWAY, /draining/, 10_000);
    expect(hub.alive, 'the hub waits for its agents').toBe(true);
    for (const { client } of agents.values()) client.ws.close(CloseCode.NORMAL, 'moving on');
    const exit = await withTimeout(hub.exited, 30_000, 'the hub to exit once every agent left');
    expect(exit).toMatchObject({ code: 0 });
    expect(hub.logs.filter((l) => /^Worker .* exited \(code 0\)/.test(l.msg))).toHaveLength(WORKER_IDS.length);
  }, 60_000);
});

describe('farmlink hub --workers 2: POST /api/v1/admin/drain', () => {
  afterAll(() => RawClient.terminateAll());

  it(
    'drains every worker, asked through one of them; the hub stays up, refusing newcomers with 1001',
    async () => {
      const hub = await startHub({
        hubId: HUB_ID,
        args: ['--workers', '2', '--broadcast-interval', '0'],
        startTimeoutMs: START_TIMEOUT_MS,
      });
      try {
        const admin = await hub.adminToken();
        const onWorker = new Map<string, RawClient[]>();
        for (let i = 0; onWorker.size < WORKER_IDS.length || i < 4; i++) {
          const { client, hubId } = await connectAgent(hub, `drain-agent-${String(i)}`);
          onWorker.set(hubId, [...(onWorker.get(hubId) ?? []), client]);
        }
        const answer = await request(false, hub.port, 'POST', '/api/v1/admin/drain', admin, { reason: 'deploy' });
        expect(answer.status, answer.text).toBe(202);
        expect(answer.body).toMatchObject({ draining: true, started: true });
        for (const [worker, clients] of onWorker)
          for (const client of clients)
            await waitUntil(`an agent on ${worker} told draining`, () =>
              client.frames.find((f) => f.type === 'draining' && f.reason === 'deploy'),
            );
        const health = await fromEveryWorkerOf(hub, '/health', 503);
        for (const body of health.values()) expect(body).toMatchObject({ status: 'draining' });
        const late = RawClient.dial(hub.wsUrl, { token: await hub.agentToken('latecomer') });
        await expectClosedWith(late, CloseCode.GOING_AWAY, /draining/, 10_000);
        expect(hub.alive).toBe(true);
      } finally {
        await hub.kill();
      }
    },
    START_TIMEOUT_MS + 60_000,
  );
});

/** Fresh connections until every worker has answered `path` with `status`; the bodies by worker. */
async function fromEveryWorkerOf(hub: HubProcess, path: string, status: number): Promise<Map<string, unknown>> {
  const bodies = new Map<string, unknown>();
  await waitUntil(`${path} answered ${String(status)} by both workers`, async () => {
    const answer = await request(false, hub.port, 'GET', path);
    expect(answer.status, `${path}: ${answer.text}`).toBe(status);
    bodies.set((answer.body as { hub_id: string }).hub_id, answer.body);
    return bodies.size === WORKER_IDS.length;
  });
  return bodies;
}

describe('farmlink hub --workers: bad values', () => {
  it.each(['0', 'abc', '65', '1.5', '-2', ''])('--workers=%s exits 78 naming the flag', async (value) => {
    const run = await runCli(['hub', '--port', '0', `--workers=${value}`], { FARMLINK_HUB_SECRET: TEST_SECRET });
    expect(run.code, run.stderr).toBe(78);
    expect(run.stderr).toContain('--workers');
    expect(run.stderr).toMatch(/expected a whole number from 1 to 64, or "auto"/);
  });
});
