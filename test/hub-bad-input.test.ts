import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../protocol/close-codes.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { mintToken } from '../server/auth.js';
import type { AgentSummary } from '../server/hub.js';
import { AgentHarness } from './helpers/agent-harness.js';
import { TEST_SECRET, startHub, type HubProcess, type LogLine } from './helpers/hub-process.js';
import { RawClient, errorCount, expectClosedWith, metric, withTimeout } from './helpers/raw-client.js';
import { waitUntil } from './helpers/wait.js';

/**
 * Every kind of bad input a peer can send the hub (docs/protocol.md: its messages, limits and close codes) must
 * end that one connection with its documented close code and a reason a person can act on, be
 * counted in farmlink_errors_total{kind}, and cost nobody else anything: a real agent registered
 * on the same hub all along (the "bystander") keeps its session and its heartbeats keep being
 * answered.
 */

// ---- the well-behaved agent beside every bad peer ----------------------------------------

interface Mark {
  acks: number;
  rttSamples: number;
}

class Bystander {
  /** heartbeat_acks received over the bystander's whole life (the RTT history is bounded; this is not). */
  private acks = 0;
  private adminToken: string | undefined;

  private constructor(
    readonly harness: AgentHarness,
    private readonly hub: HubProcess,
  ) {
    harness.agent.connection.events.on('heartbeatRtt', () => {
      this.acks += 1;
    });
  }

  static async join(hub: HubProcess): Promise<Bystander> {
    const harness = await AgentHarness.create({
      servers: [hub.url],
      id: 'bystander',
      // Generous dead/ping timeouts: a scheduling hiccup on a loaded 2-core machine must not pass
      // for the hub dropping the bystander. A hub that closes it is still seen at once (close event).
      timing: { deadTimeoutMs: 5000, pingTimeoutMs: 3000 },
    });
    const bystander = new Bystander(harness, hub);
    harness.start();
    await harness.registeredOn(0);
    return bystander;
  }

  get sessionId(): string {
    const first = this.harness.events.find((e) => e.to.phase === 'connected');
    if (first?.to.phase !== 'connected') throw new Error('the bystander never registered');
    return first.to.session_id;
  }

  /** Where the bystander stands before a bad input; `expectUndisturbed` compares against it. */
  mark(): Mark {
    return { acks: this.acks, rttSamples: this.harness.agent.stats().heartbeat_rtt.length };
  }

  /** Still on its first session, and the hub still answers its heartbeats after the bad input. */
  async expectUndisturbed(mark: Mark): Promise<void> {
    await waitUntil(
      `3 more heartbeat_acks for the bystander (had ${mark.acks}, now ${this.acks}; state ${JSON.stringify(this.harness.state())})`,
      () => this.acks >= mark.acks + 3,
      10_000,
    );
    expect(this.harness.agent.stats().heartbeat_rtt.length, 'bystander heartbeat round trips recorded').toBeGreaterThan(
      mark.rttSamples,
    );
    const state = this.harness.state();
    expect(state.phase, `bystander state ${JSON.stringify(state)}`).toBe('connected');
    expect(state.phase === 'connected' && state.session_id, 'bystander still on its first session').toBe(
      this.sessionId,
    );
    const registrations = this.harness.events.filter((e) => e.to.phase === 'connected');
    expect(registrations, 'bystander registered exactly once (no reconnect)').toHaveLength(1);
    // The hub's view agrees: same session, not a re-registration.
    const listed = (await this.hubAgents()).find((a) => a.agent_id === 'bystander');
    expect(listed?.session_id, 'hub lists the bystander on its original session').toBe(this.sessionId);
  }

  async hubAgents(): Promise<AgentSummary[]> {
    this.adminToken ??= await this.hub.adminToken();
    const res = await this.hub.get('/api/v1/admin/agents', this.adminToken);
    expect(res.status, 'GET /api/v1/admin/agents').toBe(200);
    return (res.body as { agents: AgentSummary[] }).agents;
  }

  stop(): Promise<void> {
    return this.harness.stop();
  }
}

/** A hub started with `args` for the enclosing describe block, with a bystander registered on it. */
function hubWithBystander(args: string[]): { hub: HubProcess; bystander: Bystander } {
  const ctx = {} as { hub: HubProcess; bystander: Bystander };
  beforeAll(async () => {
    ctx.hub = await startHub({ args });
    ctx.bystander = await Bystander.join(ctx.hub);
  });
  afterAll(async () => {
    // beforeAll may have failed before assigning these.
    await (ctx.bystander as Bystander | undefined)?.stop();
    await (ctx.hub as HubProcess | undefined)?.kill();
  });
  return ctx;
}

afterEach(() => {
  RawClient.terminateAll();
});

// ---- small named steps -------------------------------------------------------------------

/** The hub counted exactly one more error of this kind than `before`. */
async function expectErrorCounted(hub: HubProcess, kind: string, before: number): Promise<void> {
  await waitUntil(
    `farmlink_errors_total{kind="${kind}"} to reach ${before + 1}`,
    async () => (await errorCount(hub, kind)) >= before + 1,
    5000,
  );
  expect(await errorCount(hub, kind), `farmlink_errors_total{kind="${kind}"}`).toBe(before + 1);
}

/** A raw client registered as `agentId` with a valid agent token. */
async function registeredClient(hub: HubProcess, agentId: string): Promise<RawClient> {
  const client = await RawClient.connect(hub.wsUrl, { token: await hub.agentToken(agentId) });
  await client.register(agentId);
  return client;
}

/**
 * Runs one bad input and checks the whole contract: close code + meaningful reason, the error
 * counted under `kind`, and the bystander untouched.
 */
async function expectRejected(
  ctx: { hub: HubProcess; bystander: Bystander },
  expected: { code: number; reason: RegExp | 'no reason'; kind: string },
  badPeer: () => Promise<RawClient>,
): Promise<void> {
  const mark = ctx.bystander.mark();
  const before = await errorCount(ctx.hub, expected.kind);
  const client = await badPeer();
  await expectClosedWith(client, expected.code, expected.reason);
  await expectErrorCounted(ctx.hub, expected.kind, before);
  await ctx.bystander.expectUndisturbed(mark);
}

// ---- the cases ---------------------------------------------------------------------------

describe('hub: malformed frames and protocol misuse', () => {
  const ctx = hubWithBystander([
    '--max-payload',
    '4096',
    '--rate',
    '20',
    '--burst',
    '40',
    '--hello-timeout',
    '1',
    '--broadcast-interval',
    '0',
  ]);

  it('closes a text frame that is not JSON with 4400', async () => {
    await expectRejected(
      ctx,
      { code: CloseCode.INVALID_JSON, reason: /not valid JSON/i, kind: 'invalid_json' },
      async () => {
        const client = await RawClient.connect(ctx.hub.wsUrl);
        client.sendText('{"type": "hello", "protocol": 1,');
        return client;
      },
    );
  });

  it('closes a hello without agent_id with 4422 naming the field', async () => {
    await expectRejected(
      ctx,
      { code: CloseCode.INVALID_MESSAGE, reason: /agent_id/, kind: 'invalid_message' },
      async () => {
        const client = await RawClient.connect(ctx.hub.wsUrl, { token: await ctx.hub.agentToken('nameless') });
        client.sendHello('nameless', { agent_id: undefined });
        return client;
      },
    );
  });

  it('closes a message of an unknown type with 4422', async () => {
    await expectRejected(
      ctx,
      {
        code: CloseCode.INVALID_MESSAGE,
        reason: /invalid message: type: invalid discriminator/i,
        kind: 'invalid_message',
      },
      async () => {
        const client = await RawClient.connect(ctx.hub.wsUrl);
        client.sendJson({ type: 'teleport', to: 'mars' });
        return client;
      },
    );
  });

  it('closes a valid message sent before hello with 4422', async () => {
    await expectRejected(
      ctx,
      { code: CloseCode.INVALID_MESSAGE, reason: /hello first.*heartbeat/i, kind: 'invalid_message' },
      async () => {
        const client = await RawClient.connect(ctx.hub.wsUrl, { token: await ctx.hub.agentToken('eager') });
        client.sendHeartbeat(1);
        return client;
      },
    );
  });

  it('closes a second hello after registration with 4422', async () => {
    await expectRejected(
      ctx,
      { code: CloseCode.INVALID_MESSAGE, reason: /hello after registration/i, kind: 'invalid_message' },
      async () => {
        const client = await registeredClient(ctx.hub, 'double-hello');
        client.sendHello('double-hello');
        return client;
      },
    );
  });

  it('closes a binary frame with 1003', async () => {
    await expectRejected(
      ctx,
      { code: CloseCode.UNSUPPORTED_DATA, reason: /binary/i, kind: 'unsupported_data' },
      async () => {
        const client = await registeredClient(ctx.hub, 'binary-talker');
        client.ws.send(
          Buffer.from(JSON.stringify({ type: 'heartbeat', cpu_usage: 1, ram_usage: 1, timestamp: Date.now() })),
        );
        return client;
      },
    );
  });

  it('closes a frame larger than --max-payload with 1009, and counts the agent as dropped for an error', async () => {
    const droppedBefore = await metric(ctx.hub, 'farmlink_agent_disconnects_total', { kind: 'error' });
    await expectRejected(
      ctx,
      { code: CloseCode.MESSAGE_TOO_BIG, reason: 'no reason', kind: 'message_too_big' },
      async () => {
        const client = await registeredClient(ctx.hub, 'big-talker');
        // Valid JSON of a valid type: only its size is wrong.
        client.sendJson({ type: 'event', name: 'log_dump', data: 'x'.repeat(5000), timestamp: Date.now() });
        return client;
      },
    );
    await waitUntil(
      'the 1009 counted as an error disconnect',
      async () => (await metric(ctx.hub, 'farmlink_agent_disconnects_total', { kind: 'error' })) === droppedBefore + 1,
    );
  });

  it('closes a flood beyond --rate/--burst with 4429', async () => {
    await expectRejected(
      ctx,
      { code: CloseCode.RATE_LIMITED, reason: /rate limit.*20.*40/i, kind: 'rate_limited' },
      async () => {
        const client = await registeredClient(ctx.hub, 'flooder');
        // Well-formed heartbeats, far more than the burst of 40 at once: only their number is wrong.
        for (let seq = 0; seq < 200; seq += 1) client.sendHeartbeat(seq);
        return client;
      },
    );
  });

  it('closes a connection that sends no hello within --hello-timeout with 4408', async () => {
    await expectRejected(
      ctx,
      { code: CloseCode.HELLO_TIMEOUT, reason: /no hello within 1000 ms/i, kind: 'hello_timeout' },
      async () => {
        const client = await RawClient.connect(ctx.hub.wsUrl, { token: await ctx.hub.agentToken('silent') });
        // It sends nothing at all; the hub must not keep the socket forever.
        return client;
      },
    );
  });

  it('answers an upgrade on a wrong path with HTTP 404 and never upgrades it', async () => {
    const mark = ctx.bystander.mark();
    const before = await errorCount(ctx.hub, 'wrong_path');
    for (const path of ['/ws', '/api/v1/pc/wrong']) {
      const client = RawClient.dial(`ws://127.0.0.1:${ctx.hub.port}${path}`);
      await withTimeout(client.closed, 5000, `the upgrade to ${path} to be refused`);
      expect(client.rejection?.status, `HTTP status for an upgrade to ${path}`).toBe(404);
      expect(client.rejection?.body, 'the 404 says where agents connect').toContain('/api/v1/pc/ws');
      expect(client.frames).toEqual([]);
    }
    expect(await errorCount(ctx.hub, 'wrong_path')).toBe(before + 2);
    await ctx.bystander.expectUndisturbed(mark);
  });

  it(
    'an older connection that already sent disconnect is logged as a graceful leave (not replaced) when its ' +
      'successor registers before its close arrives',
    async () => {
      const mark = ctx.bystander.mark();
      const replacedBefore = await metric(ctx.hub, 'farmlink_agent_disconnects_total', { kind: 'replaced' });
      const older = await registeredClient(ctx.hub, 'hasty');
      // What a reconnect does: say goodbye, then dial again at once. Here the older socket's close
      // is held back, so the newer connection registers while the older is still open.
      older.sendJson({ type: 'disconnect', reason: 'reconnect_requested' });
      // Frames of one connection are handled in order: the ack proves the hub has read the goodbye.
      const fromFrame = older.frames.length;
      older.sendHeartbeat(1);
      await older.nextFrame('heartbeat_ack', 5000, fromFrame);
      const fromLog = ctx.hub.logs.length;
      const newer = await RawClient.connect(ctx.hub.wsUrl, { token: await ctx.hub.agentToken('hasty') });
      await newer.register('hasty');

      const leave = await ctx.hub.waitForLog(
        'the older connection left gracefully',
        (l) => l.agent_id === 'hasty' && l.kind === 'graceful',
      );
      expect(leave.reason).toBe('reconnect_requested');
      const closed = await withTimeout(older.closed, 5000, 'the older connection to be closed');
      expect(closed.code, 'closed normally, not 4409').toBe(CloseCode.NORMAL);
      expect(
        ctx.hub.logs
          .slice(fromLog)
          .filter((l) => l.agent_id === 'hasty' && (l.kind === 'replaced' || /connected again/.test(l.msg))),
      ).toEqual([]);
      expect(await metric(ctx.hub, 'farmlink_agent_disconnects_total', { kind: 'replaced' })).toBe(replacedBefore);
      expect(newer.isClosed).toBe(false);
      await ctx.bystander.expectUndisturbed(mark);
    },
  );

  it('closes the OLDER connection of an agent id that connects twice with 4409; the newer stays registered', async () => {
    const mark = ctx.bystander.mark();
    const replacedBefore = await metric(ctx.hub, 'farmlink_agent_disconnects_total', { kind: 'replaced' });
    const older = await registeredClient(ctx.hub, 'twin');
    const newer = await RawClient.connect(ctx.hub.wsUrl, { token: await ctx.hub.agentToken('twin') });
    const registered = await newer.register('twin');

    await expectClosedWith(older, CloseCode.REPLACED, /replaced by a newer connection/i);
    await waitUntil(
      'farmlink_agent_disconnects_total{kind="replaced"} to count the older twin',
      async () =>
        (await metric(ctx.hub, 'farmlink_agent_disconnects_total', { kind: 'replaced' })) === replacedBefore + 1,
      5000,
    );
    // The newer connection is the registered one: listed on its own session, and answered.
    const twin = (await ctx.bystander.hubAgents()).find((a) => a.agent_id === 'twin');
    expect(twin?.session_id, 'the hub lists the newer twin').toBe(registered.session_id);
    const from = newer.frames.length;
    newer.sendHeartbeat(1);
    await newer.nextFrame('heartbeat_ack', 5000, from);
    expect(newer.isClosed).toBe(false);
    await ctx.bystander.expectUndisturbed(mark);
  });
});

describe('hub: authentication and version', () => {
  const ctx = hubWithBystander(['--broadcast-interval', '0']);

  /** A raw client that says hello as `agentId`, with the token in the header or in hello.token. */
  async function helloWith(
    agentId: string,
    token: { header?: string; hello?: string },
    overrides: Record<string, unknown> = {},
  ): Promise<RawClient> {
    const client = await RawClient.connect(ctx.hub.wsUrl, token.header ? { token: token.header } : {});
    client.sendHello(agentId, { ...(token.hello ? { token: token.hello } : {}), ...overrides });
    return client;
  }

  it('closes a hello with no token at all with 4401', async () => {
    await expectRejected(ctx, { code: CloseCode.UNAUTHORIZED, reason: /no token/i, kind: 'unauthorized' }, () =>
      helloWith('tokenless', {}),
    );
  });

  it('closes a token signed with another secret with 4401', async () => {
    const forged = await mintToken('some-other-secret-0123456789-abcdefghij', { role: 'agent', agentId: 'forged' });
    await expectRejected(ctx, { code: CloseCode.UNAUTHORIZED, reason: /signature/i, kind: 'unauthorized' }, () =>
      helloWith('forged', { header: forged }),
    );
  });

  it('closes a garbage token with 4401', async () => {
    await expectRejected(ctx, { code: CloseCode.UNAUTHORIZED, reason: /token rejected/i, kind: 'unauthorized' }, () =>
      helloWith('garbage', { hello: 'not-a-jwt-at-all' }),
    );
  });

  it('closes an expired token with 4401', async () => {
    // jose accepts a negative duration: exp is ten minutes in the past, no waiting needed.
    const expired = await mintToken(TEST_SECRET, { role: 'agent', agentId: 'expired', expiresIn: '-10m' });
    await expectRejected(ctx, { code: CloseCode.UNAUTHORIZED, reason: /expired/i, kind: 'unauthorized' }, () =>
      helloWith('expired', { header: expired }),
    );
  });

  it('closes a valid token for another agent id with 4403', async () => {
    const othersToken = await ctx.hub.agentToken('somebody-else');
    await expectRejected(
      ctx,
      { code: CloseCode.FORBIDDEN, reason: /somebody-else.*impostor/i, kind: 'forbidden' },
      () => helloWith('impostor', { hello: othersToken }),
    );
  });

  it('closes an admin token used as an agent token with 4403', async () => {
    const admin = await ctx.hub.adminToken();
    await expectRejected(
      ctx,
      { code: CloseCode.FORBIDDEN, reason: /admin token cannot register/i, kind: 'forbidden' },
      () => helloWith('admin-as-agent', { header: admin }),
    );
  });

  it('closes a hello of another protocol version with 4426', async () => {
    const token = await ctx.hub.agentToken('time-traveller');
    const version = PROTOCOL_VERSION + 1;
    await expectRejected(
      ctx,
      {
        code: CloseCode.UNSUPPORTED_PROTOCOL,
        reason: new RegExp(`protocol ${version} unsupported`),
        kind: 'unsupported_protocol',
      },
      () => helloWith('time-traveller', { header: token }, { protocol: version }),
    );
  });
});

describe('hub: --max-connections', () => {
  const ctx = hubWithBystander(['--max-connections', '3', '--broadcast-interval', '0']);

  async function openConnections(): Promise<number> {
    const res = await ctx.hub.get('/health');
    return (res.body as { connections_open: number }).connections_open;
  }

  it('closes connections beyond the limit with 1013, and accepts again once one leaves', async () => {
    const mark = ctx.bystander.mark();
    // The bystander is connection 1 of 3.
    const first = await registeredClient(ctx.hub, 'seat-2');
    await registeredClient(ctx.hub, 'seat-3');
    // The limit counts connections with a valid agent token; those without have a budget of their own (hub-floods.test.ts).
    const token = await ctx.hub.agentToken('seat-4');
    await expectRejected(ctx, { code: CloseCode.TRY_AGAIN_LATER, reason: /capacity.*3/i, kind: 'at_capacity' }, () =>
      Promise.resolve(RawClient.dial(ctx.hub.wsUrl, { token })),
    );

    first.ws.close(1000, 'leaving');
    await withTimeout(first.closed, 5000, 'seat-2 to close');
    await waitUntil('the hub to count 2 open connections', async () => (await openConnections()) === 2, 5000);
    const late = await registeredClient(ctx.hub, 'seat-2-again');
    expect(late.isClosed).toBe(false);
    await ctx.bystander.expectUndisturbed(mark);
  });
});

describe('hub: slow consumer (--max-buffered)', () => {
  const ctx = hubWithBystander(['--max-buffered', '65536', '--broadcast-interval', '0']);

  it('closes a peer that stops reading while the hub sends to it (4508), and keeps serving the one that reads', async () => {
    const { hub, bystander } = ctx;
    const mark = bystander.mark();
    const bytesBefore = bystander.harness.agent.stats().bytes_received;
    const before = await errorCount(hub, 'slow_consumer');
    const slow = await registeredClient(hub, 'slow-reader');
    slow.pauseReading();

    // Broadcast ~48 KB at a time to everyone until the hub gives up on the reader that does not read.
    // Its kernel buffers absorb the first few MB, so this takes dozens of rounds; 1000 rounds (48 MB) bound it.
    const admin = await hub.adminToken();
    const blob = 'x'.repeat(48 * 1024);
    const isSlowConsumerClose = (l: LogLine) => l.kind === 'slow_consumer' && l.agent_id === 'slow-reader';
    let rounds = 0;
    while (!hub.logs.some(isSlowConsumerClose) && rounds < 1000) {
      const res = await hub.post('/api/v1/admin/broadcast', { data: { round: rounds, blob } }, admin);
      expect(res.status, `broadcast round ${rounds}: ${res.text}`).toBe(200);
      rounds += 1;
    }
    const line = await hub.waitForLog('the slow reader closed as a slow consumer', isSlowConsumerClose, 5000);
    expect(line.close_code).toBe(CloseCode.SLOW_CONSUMER);
    expect(line.msg).toMatch(/slow consumer/);
    await expectErrorCounted(hub, 'slow_consumer', before);
    await waitUntil(
      'the hub to stop listing slow-reader',
      async () => !(await bystander.hubAgents()).some((a) => a.agent_id === 'slow-reader'),
      5000,
    );

    // The connection really ended: once the peer reads again it finds the end of it.
    slow.resumeReading();
    await withTimeout(slow.closed, 10_000, 'the slow reader to see its connection end');

    // The bystander was sent the same broadcasts, read them all and is still served. (Bytes, not
    // latestBroadcast(): whether the agent understands broadcasts is hub-admin-api.test.ts's business.)
    await waitUntil(
      `the bystander to receive all ${rounds} broadcasts (${rounds * blob.length} bytes)`,
      () => bystander.harness.agent.stats().bytes_received - bytesBefore >= rounds * blob.length,
      10_000,
    );
    await bystander.expectUndisturbed(mark);
  });
});

describe('hub: unanswered pings (--ping-interval)', () => {
  const ctx = hubWithBystander(['--ping-interval', '1', '--broadcast-interval', '0']);

  it('drops a registered peer that stops answering pings, counts ping_timeout and unlists it', async () => {
    const { hub, bystander } = ctx;
    const mark = bystander.mark();
    const before = await errorCount(hub, 'ping_timeout');
    const mute = await registeredClient(hub, 'mute');
    expect(
      (await bystander.hubAgents()).some((a) => a.agent_id === 'mute'),
      'mute listed while it answers',
    ).toBe(true);
    // Not reading means ws never sees the pings, so it never answers them.
    mute.pauseReading();

    await hub.waitForLog(
      'mute dropped for not answering a ping',
      (l) => l.agent_id === 'mute' && /did not answer a ping/.test(l.msg),
      10_000,
    );
    await expectErrorCounted(hub, 'ping_timeout', before);
    await waitUntil(
      'the hub to stop listing mute',
      async () => !(await bystander.hubAgents()).some((a) => a.agent_id === 'mute'),
      5000,
    );

    mute.resumeReading();
    await withTimeout(mute.closed, 5000, 'mute to see its connection end');
    await bystander.expectUndisturbed(mark);
  });
});
