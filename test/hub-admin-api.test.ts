import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../protocol/close-codes.js';
import type { AgentSummary } from '../server/hub.js';
import { AgentHarness } from './helpers/agent-harness.js';
import { startHub, type HubProcess } from './helpers/hub-process.js';
import { RawClient, errorCount, expectClosedWith, metric } from './helpers/raw-client.js';
import { waitUntil } from './helpers/wait.js';

/**
 * The hub's HTTP side as the platform operator uses it: /health, /metrics and the admin API
 * (agents, commands, broadcasts, drain), against a real hub process with a real agent on it.
 */

interface ApiError {
  error: { code: string; message: string };
}

type CommandAnswer =
  { ok: true; data: Record<string, unknown> } | { ok: false; error: { code: string; message: string } };

afterEach(() => {
  RawClient.terminateAll();
});

/** True when `command` is an executable on PATH (decides which devices.list answer is right). */
function onPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      accessSync(path.join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Sends `request` as is on a fresh TCP connection and returns everything the hub answers until it closes. */
function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(request));
    let answer = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
  });
}

describe('hub admin API, /health and /metrics', () => {
  let hub: HubProcess;
  let harness: AgentHarness;
  let admin: string;
  const agentId = 'admin-api-agent';

  beforeAll(async () => {
    hub = await startHub({ args: ['--broadcast-interval', '0.1', '--command-timeout', '5'] });
    admin = await hub.adminToken();
    harness = await AgentHarness.create({ servers: [hub.url], id: agentId });
    harness.start();
    await harness.registeredOn(0);
  });

  afterAll(async () => {
    // beforeAll may have failed before assigning these.
    await (harness as AgentHarness | undefined)?.stop();
    await (hub as HubProcess | undefined)?.kill();
  });

  async function listAgents(): Promise<AgentSummary[]> {
    const res = await hub.get('/api/v1/admin/agents', admin);
    expect(res.status, `GET /api/v1/admin/agents: ${res.text}`).toBe(200);
    return (res.body as { agents: AgentSummary[] }).agents;
  }

  /** Waits until the hub lists exactly these agent ids (raw clients of earlier tests take a moment to leave). */
  async function waitForAgents(ids: string[]): Promise<void> {
    const want = [...ids].sort();
    let seen: string[] = [];
    await waitUntil(
      `the hub to list exactly ${JSON.stringify(want)} (lists ${JSON.stringify(seen)})`,
      async () => {
        seen = (await listAgents()).map((a) => a.agent_id).sort();
        return JSON.stringify(seen) === JSON.stringify(want);
      },
      5000,
    );
  }

  function sendCommand(id: string, body: unknown) {
    return hub.post(`/api/v1/admin/agents/${encodeURIComponent(id)}/commands`, body, admin);
  }

  /** A raw peer registered with a valid agent token, which then does only what the test makes it do. */
  async function rawAgent(id: string): Promise<RawClient> {
    const client = await RawClient.connect(hub.wsUrl, { token: await hub.agentToken(id) });
    await client.register(id);
    return client;
  }

  it('GET /health is 200 with status ok while serving', async () => {
    // The harness's agent may still be between its upgrade and `registered` on a loaded machine.
    await waitForAgents([agentId]);
    const res = await hub.get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', agents_connected: 1, hub_id: expect.any(String) as string });
  });

  it('/metrics: farmlink_agents_connected counts registered agents only; registrations are counted', async () => {
    await waitForAgents([agentId]);
    const gauge = () => metric(hub, 'farmlink_agents_connected');
    expect(await gauge()).toBe(1);
    const registrations = await metric(hub, 'farmlink_agent_registrations_total');
    expect(registrations, 'the harness registration was counted').toBeGreaterThanOrEqual(1);

    // Open but not registered: a connection, not an agent.
    const client = await RawClient.connect(hub.wsUrl, { token: await hub.agentToken('metrics-peer') });
    await waitUntil(
      'farmlink_connections_open to be 2',
      async () => (await metric(hub, 'farmlink_connections_open')) === 2,
      5000,
    );
    expect(await gauge(), 'an unregistered connection is not an agent').toBe(1);

    await client.register('metrics-peer');
    expect(await gauge()).toBe(2);
    expect((await listAgents()).length, 'gauge equals the admin list').toBe(2);
    expect(await metric(hub, 'farmlink_agent_registrations_total')).toBe(registrations + 1);

    client.ws.close(1000, 'done');
    await waitUntil('farmlink_agents_connected back to 1', async () => (await gauge()) === 1, 5000);
  });

  it('refuses the admin API without a token (401) and with an agent token (403)', async () => {
    const agentToken = await hub.agentToken(agentId);
    const cases: Array<{ token: string | undefined; status: number; code: string }> = [
      { token: undefined, status: 401, code: 'UNAUTHORIZED' },
      { token: 'garbage', status: 401, code: 'UNAUTHORIZED' },
      { token: agentToken, status: 403, code: 'FORBIDDEN' },
    ];
    for (const { token, status, code } of cases) {
      const list = await hub.get('/api/v1/admin/agents', token);
      expect(list.status, `GET agents with ${token ? 'token' : 'no token'}: ${list.text}`).toBe(status);
      expect((list.body as ApiError).error.code).toBe(code);
      const command = await hub.post(`/api/v1/admin/agents/${agentId}/commands`, { name: 'system.info' }, token);
      expect(command.status, `POST command with ${token ? 'token' : 'no token'}: ${command.text}`).toBe(status);
    }
  });

  it('GET /api/v1/admin/agents lists the connected agent with its live figures', async () => {
    // last_heartbeat_at and the usage figures come with the first heartbeat.
    let entry: AgentSummary | undefined;
    await waitUntil(
      `the hub to list ${agentId} with a heartbeat (entry: ${JSON.stringify(entry)})`,
      async () => {
        entry = (await listAgents()).find((a) => a.agent_id === agentId);
        return entry?.last_heartbeat_at != null;
      },
      5000,
    );
    const state = harness.state();
    expect(state.phase).toBe('connected');
    expect(entry).toMatchObject({
      agent_id: agentId,
      name: `harness-${agentId}`,
      address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as string,
      session_id: state.phase === 'connected' ? state.session_id : '?',
    });
    const { connected_since, last_heartbeat_at, cpu_usage, ram_usage } = entry!;
    expect(connected_since).toBeLessThanOrEqual(Date.now());
    expect(last_heartbeat_at).toBeGreaterThanOrEqual(connected_since);
    for (const [name, usage] of Object.entries({ cpu_usage, ram_usage })) {
      expect(usage, name).toEqual(expect.any(Number));
      expect(usage, name).toBeGreaterThanOrEqual(0);
      expect(usage, name).toBeLessThanOrEqual(100);
    }
  });

  it('runs system.info on the agent', async () => {
    const res = await sendCommand(agentId, { name: 'system.info' });
    expect(res.status, res.text).toBe(200);
    const answer = res.body as CommandAnswer;
    expect(answer.ok, res.text).toBe(true);
    // Same machine: the agent's answer must match what this process sees.
    expect(answer.ok && answer.data).toMatchObject({
      hostname: os.hostname(),
      platform: process.platform,
      cpu_count: os.cpus().length,
    });
  });

  it('answers an unknown command with ok:false UNKNOWN_COMMAND, not a timeout', async () => {
    const res = await sendCommand(agentId, { name: 'coffee.brew', timeout_ms: 10_000 });
    expect(res.status, res.text).toBe(200);
    const answer = res.body as CommandAnswer;
    expect(answer).toMatchObject({ ok: false, error: { code: 'UNKNOWN_COMMAND' } });
    expect(!answer.ok && answer.error.message).toMatch(/coffee\.brew.*system\.info/);
  });

  it(`answers devices.list with ${onPath('adb') ? 'the device list (adb is on PATH)' : 'ADB_NOT_FOUND (adb is not on PATH)'}`, async () => {
    // Generous: the first `adb devices` starts the adb server.
    const res = await sendCommand(agentId, { name: 'devices.list', timeout_ms: 30_000 });
    expect(res.status, res.text).toBe(200);
    const answer = res.body as CommandAnswer;
    if (onPath('adb')) {
      expect(answer.ok, res.text).toBe(true);
      const data = answer.ok ? (answer.data as { count: number; devices: unknown[] }) : undefined;
      expect(Array.isArray(data?.devices), res.text).toBe(true);
      expect(data?.count).toBe(data?.devices.length);
    } else {
      expect(answer).toMatchObject({ ok: false, error: { code: 'ADB_NOT_FOUND' } });
      expect(!answer.ok && answer.error.message, 'the message says what to do').toMatch(/adb.*(PATH|adb\.path)/);
    }
  });

  it('answers a command to an agent that is not connected with 404 AGENT_NOT_CONNECTED', async () => {
    const before = await metric(hub, 'farmlink_commands_total', { outcome: 'not_connected' });
    const res = await sendCommand('nobody-here', { name: 'system.info' });
    expect(res.status, res.text).toBe(404);
    expect((res.body as ApiError).error.code).toBe('AGENT_NOT_CONNECTED');
    expect(await metric(hub, 'farmlink_commands_total', { outcome: 'not_connected' })).toBe(before + 1);
  });

  it('answers 504 COMMAND_TIMEOUT when the agent got the command and never answers', async () => {
    const mute = await rawAgent('never-answers');
    const before = await metric(hub, 'farmlink_commands_total', { outcome: 'timeout' });
    const res = await sendCommand('never-answers', { name: 'system.info', timeout_ms: 300 });
    expect(res.status, res.text).toBe(504);
    expect((res.body as ApiError).error.code).toBe('COMMAND_TIMEOUT');
    // It really was delivered (a timeout, not a lost command), and the agent is still connected.
    expect(
      mute.frames.find((f) => f.type === 'command'),
      'the command frame reached the peer',
    ).toMatchObject({ name: 'system.info' });
    expect(mute.isClosed).toBe(false);
    expect(await metric(hub, 'farmlink_commands_total', { outcome: 'timeout' })).toBe(before + 1);
  });

  it('answers 502 AGENT_DISCONNECTED when the agent leaves while a command is pending', async () => {
    const quitter = await rawAgent('quits-mid-command');
    // A long timeout: a 502 must come from the disconnect, not from waiting out the clock.
    const pending = sendCommand('quits-mid-command', { name: 'system.info', timeout_ms: 30_000 });
    await quitter.nextFrame('command');
    quitter.ws.terminate();
    const res = await pending;
    expect(res.status, res.text).toBe(502);
    expect((res.body as ApiError).error.code).toBe('AGENT_DISCONNECTED');
  });

  it('answers an invalid command body with 400', async () => {
    const bad: unknown[] = [
      {},
      { name: '' },
      { name: 'system.info', args: 'not-an-object' },
      { name: 'system.info', timeout_ms: -5 },
    ];
    for (const body of bad) {
      const res = await sendCommand(agentId, body);
      expect(res.status, `body ${JSON.stringify(body)}: ${res.text}`).toBe(400);
      expect((res.body as ApiError).error.code).toBe('BAD_REQUEST');
    }
    const notJson = await fetch(`${hub.url}/api/v1/admin/agents/${agentId}/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: '{"name": "system.info",',
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as ApiError).error.code).toBe('BAD_REQUEST');
  });

  it('answers malformed path encoding, bad agent ids and unreadable request targets with 400 and a stable code, and keeps serving', async () => {
    const cases: Array<{ method: 'GET' | 'POST'; path: string; code: string; message: RegExp }> = [
      {
        method: 'GET',
        path: '/api/v1/admin/agents/%E0%A4%A',
        code: 'BAD_PATH',
        message: /"%E0%A4%A", is not valid percent-encoding/,
      },
      {
        method: 'POST',
        path: '/api/v1/admin/agents/%E0%A4%A/commands',
        code: 'BAD_PATH',
        message: /not valid percent-encoding/,
      },
      { method: 'GET', path: '/api/v1/admin/agents/%FF', code: 'BAD_PATH', message: /not valid percent-encoding/ },
      {
        method: 'GET',
        path: '/api/v1/admin/agents/has%20space',
        code: 'BAD_AGENT_ID',
        message: /"has space" is not an agent id/,
      },
      {
        method: 'POST',
        path: '/api/v1/admin/agents/bad%00id/commands',
        code: 'BAD_AGENT_ID',
        message: /is not an agent id/,
      },
    ];
    for (const { method, path: p, code, message } of cases) {
      const res = method === 'GET' ? await hub.get(p, admin) : await hub.post(p, { name: 'system.info' }, admin);
      expect(res.status, `${method} ${p}: ${res.text}`).toBe(400);
      expect((res.body as ApiError).error).toMatchObject({ code, message: expect.stringMatching(message) as string });
    }
    // A request target the URL parser cannot read once threw outside the handler and ended the hub.
    for (const target of ['http://[', '//elsewhere/health']) {
      const answer = await rawHttp(hub.port, `GET ${target} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n`);
      expect(answer, `GET ${target}`).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toContain('"code":"BAD_REQUEST_TARGET"');
    }
    expect(
      hub.logs.filter((l) => l.level >= 50),
      'errors logged by the hub',
    ).toEqual([]);
    expect((await hub.get('/health')).status, 'the hub still serves').toBe(200);
  });

  it('refuses bodies nested too deep to pass on (400 BODY_TOO_DEEP) and bodies over the limit (413) before reading them', async () => {
    const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
    const bodies = [
      { path: `/api/v1/admin/agents/${agentId}/commands`, text: `{"name":"system.info","args":{"a":${deep(5000)}}}` },
      { path: '/api/v1/admin/broadcast', text: `{"data":{"a":${deep(5000)}}}` },
    ];
    for (const { path: p, text } of bodies) {
      const res = await fetch(`${hub.url}${p}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}` },
        body: text,
      });
      const body = (await res.json()) as ApiError;
      expect(res.status, `${p}: ${JSON.stringify(body)}`).toBe(400);
      expect(body.error).toMatchObject({
        code: 'BODY_TOO_DEEP',
        message: expect.stringMatching(/deeper than 100 levels/) as string,
      });
    }
    const huge = await fetch(`${hub.url}/api/v1/admin/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: JSON.stringify({ data: { a: 'x'.repeat(1 << 20) } }),
    });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as ApiError).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(
      hub.logs.filter((l) => l.level >= 50),
      'errors logged by the hub',
    ).toEqual([]);
    // Still one agent, still served.
    await waitForAgents([agentId]);
  });

  it('answers 502 RESULT_TOO_DEEP when an agent answers with a result nested too deep to pass on; the agent stays connected', async () => {
    const deepAgent = await rawAgent('deep-answers');
    const before = await metric(hub, 'farmlink_commands_total', { outcome: 'result_too_deep' });
    /** Answers the next command with `data` (JSON text, written by hand: JSON.stringify cannot write it either). */
    const answerNext = async (data: string) => {
      const from = deepAgent.frames.length;
      const pending = sendCommand('deep-answers', { name: 'system.info', timeout_ms: 10_000 });
      const command = await deepAgent.nextFrame('command', 5000, from);
      deepAgent.sendText(`{"type":"result","id":${JSON.stringify(command.id)},"ok":true,"data":${data}}`);
      return pending;
    };

    const tooDeep = await answerNext('{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}');
    expect(tooDeep.status, tooDeep.text).toBe(502);
    expect((tooDeep.body as ApiError).error).toMatchObject({
      code: 'RESULT_TOO_DEEP',
      message: expect.stringMatching(/deep-answers.*system\.info.*deeper than 100 levels/) as string,
    });
    expect(await metric(hub, 'farmlink_commands_total', { outcome: 'result_too_deep' })).toBe(before + 1);

    // Deep, but within the bound: passed on as it came.
    const fine = await answerNext('{"a":' + '['.repeat(50) + ']'.repeat(50) + '}');
    expect(fine.status, fine.text).toBe(200);
    expect(fine.text).toBe('{"ok":true,"data":{"a":' + '['.repeat(50) + ']'.repeat(50) + '}}');
    expect(deepAgent.isClosed, 'the agent that answered too deep is still connected').toBe(false);
    expect(
      hub.logs.filter((l) => l.level >= 50),
      'errors logged by the hub',
    ).toEqual([]);
    deepAgent.ws.close(1000, 'done');
  });

  it('delivers the periodic status broadcast (--broadcast-interval 0.1) to agents, as JSON text frames', async () => {
    // The wire format first: one JSON object per *text* frame, like every other hub message.
    const peer = await rawAgent('broadcast-watcher');
    await waitUntil('any frame after registered', () => peer.frames.length > 1 || peer.binaryFrames.length > 0, 5000);
    expect(peer.binaryFrames, 'binary frames from the hub (the protocol is JSON text)').toHaveLength(0);
    expect(await peer.nextFrame('broadcast')).toMatchObject({ data: { kind: 'status' } });

    // And a real agent takes them in.
    const first = await waitUntil('a broadcast to reach the agent', () => harness.agent.latestBroadcast(), 5000);
    expect(first.data).toMatchObject({ kind: 'status', agents_connected: expect.any(Number) as number });
    // Periodic: a newer one follows.
    await waitUntil(
      'a second, newer broadcast',
      () => (harness.agent.latestBroadcast()?.server_time ?? 0) > first.server_time,
      5000,
    );
  });

  it('POST /api/v1/admin/broadcast reaches every registered agent', async () => {
    await waitForAgents([agentId]);
    // Every broadcast the agent takes in, not only the latest: the periodic status (every 0.1 s
    // here) may follow the notice in the same batch and replace it as the latest before a poll.
    const notices: unknown[] = [];
    const off = harness.agent.connection.events.on('message', (message) => {
      if (message.type === 'broadcast' && message.data.kind === 'notice') notices.push(message.data);
    });
    try {
      const res = await hub.post(
        '/api/v1/admin/broadcast',
        { data: { kind: 'notice', text: 'maintenance at 22:00' } },
        admin,
      );
      expect(res.status, res.text).toBe(200);
      expect(res.body).toEqual({ recipients: 1 });
      await waitUntil('the agent to receive the notice', () => notices.length > 0, 10_000);
      expect(notices).toEqual([{ kind: 'notice', text: 'maintenance at 22:00' }]);
    } finally {
      off();
    }
  });
});

describe('hub admin API: drain', () => {
  let hub: HubProcess;
  let harness: AgentHarness;

  beforeAll(async () => {
    // A long drain timeout: the drain must still be under way while the test looks at it.
    hub = await startHub({ args: ['--drain-timeout', '60', '--broadcast-interval', '0'] });
    harness = await AgentHarness.create({ servers: [hub.url], id: 'drained-agent' });
    harness.start();
    await harness.registeredOn(0);
  });

  afterAll(async () => {
    // beforeAll may have failed before assigning these.
    await (harness as AgentHarness | undefined)?.stop();
    await (hub as HubProcess | undefined)?.kill();
  });

  it('POST /api/v1/admin/drain: /health turns 503 draining, agents are told, new connections get 1001', async () => {
    expect((await hub.get('/health')).status).toBe(200);
    const watcher = await RawClient.connect(hub.wsUrl, { token: await hub.agentToken('drain-watcher') });
    await watcher.register('drain-watcher');
    const refusedBefore = await errorCount(hub, 'refused_draining');
    const from = harness.events.length;

    const res = await hub.post('/api/v1/admin/drain', { reason: 'deploy 1.2.3' }, await hub.adminToken());
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ draining: true, started: true });

    const health = await hub.get('/health');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'draining' });

    // Registered agents are told, so they move to their next server at once (docs/failure-scenarios.md).
    expect(await watcher.nextFrame('draining')).toMatchObject({ reason: 'deploy 1.2.3' });
    await harness.transition(
      'agent leaves because the hub is draining',
      (e) => e.reason.code === 'drained',
      5000,
      from,
    );

    const late = RawClient.dial(hub.wsUrl);
    await expectClosedWith(late, CloseCode.GOING_AWAY, /draining/);
    await waitUntil(
      'farmlink_errors_total{kind="refused_draining"} to grow',
      async () => (await errorCount(hub, 'refused_draining')) > refusedBefore,
      5000,
    );
  });
});
