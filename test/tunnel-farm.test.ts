import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startEchoServer } from '../bench/lib/tcp-tools.js';
import { systemClock, systemRandom } from '../lib/clock.js';
import { BrokerLink } from '../lib/tunnel/broker-link.js';
import { hashOf, patternSource } from '../lib/tunnel/session-harness.fixture.js';
import { TunnelSession } from '../lib/tunnel/tunnel-session.js';
import type { TunnelStream } from '../lib/tunnel/tunnel-stream.js';
import { TUNNEL_PROTOCOL_VERSION, type BrokerToClient } from '../protocol/tunnel.js';
import { StreamResetCode } from '../protocol/tunnel-frame.js';
import { mintToken } from '../server/auth.js';
import { isolatedEnv } from './helpers/cli-process.js';
import { startHeadlessAgent, type HeadlessAgent } from './helpers/headless-agent.js';
import { TEST_SECRET, closedPort, startHub, type HubProcess } from './helpers/hub-process.js';
import { waitUntil } from './helpers/wait.js';
import { writeFarmConfig } from './helpers/farm-config.js';

const AGENT_ID = 'pc-tunnel-farm';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A local TCP service on the farm PC: echoes what it reads. */
async function echoService(): Promise<number> {
  const echo = await startEchoServer();
  cleanups.push(() => echo.close());
  return echo.port;
}

/** A remote client made of the shared parts: the client's tunnel socket and a client session. */
async function remoteClient(hub: HubProcess) {
  const token = await mintToken(TEST_SECRET, { role: 'client', clientName: 'alice', agents: [AGENT_ID] });
  const messages: BrokerToClient[] = [];
  const link = new BrokerLink({
    role: 'client',
    servers: [hub.url],
    token,
    hello: () => ({
      type: 'client_hello',
      protocol: TUNNEL_PROTOCOL_VERSION,
      boot_id: 'c0ffee00c0ffee00c0ffee00c0ffee00',
      version: 'test',
    }),
    clock: systemClock,
    random: systemRandom,
    logger: pino({ level: 'silent' }),
  });
  link.events.on('message', (m) => messages.push(m));
  cleanups.push(() => link.stop('test over'));
  link.start();
  await waitUntil('the client welcomed by the broker', () => link.isConnected, 20_000);
  let requestId = 0;
  return {
    messages,
    async open(service: string): Promise<BrokerToClient> {
      const id = ++requestId;
      link.send({ type: 'open', request_id: id, agent_id: AGENT_ID, service, client_key: `test-${service}-${id}` });
      return waitUntil(
        `an answer to open ${service}`,
        () => messages.find((m) => (m.type === 'opened' || m.type === 'open_failed') && m.request_id === id),
        20_000,
      );
    },
    session(opened: Extract<BrokerToClient, { type: 'opened' }>): TunnelSession {
      const session = new TunnelSession({
        role: 'client',
        sessionId: opened.session_id,
        peer: AGENT_ID,
        service: opened.service,
        clock: systemClock,
        pingIntervalMs: 1000,
        pingTimeoutMs: 5000,
      });
      cleanups.push(() => session.close('closed', 'test over'));
      const relay = link.relayPath(opened.route);
      if (!relay) throw new Error('the client link is not connected');
      session.attach(relay);
      return session;
    },
  };
}

async function farmAgent(hub: HubProcess, services: Record<string, string>): Promise<HeadlessAgent> {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-tunnel-farm-'));
  cleanups.push(() => fs.promises.rm(parent, { recursive: true, force: true }));
  const { env, dataDir } = isolatedEnv(parent);
  const configFile = writeFarmConfig(parent, {
    servers: [hub.url],
    agentId: AGENT_ID,
    token: await hub.agentToken(AGENT_ID),
    services,
  });
  const agent = await startHeadlessAgent({ configFile, dataDir, env, timeoutMs: 30_000 });
  cleanups.push(() => (agent.alive ? agent.kill() : undefined));
  return agent;
}

describe('the farm end of the tunnel (real hub, real agent process)', () => {
  it('carries bytes to a local service and back, refuses what is not exposed, and shows it in the snapshot', async () => {
    const hub = await startHub({ hubId: 'tunnel-farm-hub' });
    cleanups.push(() => hub.kill());
    const echoPort = await echoService();
    const downPort = await closedPort();
    const agent = await farmAgent(hub, { echo: `127.0.0.1:${echoPort}`, down: `127.0.0.1:${downPort}` });
    await waitUntil(
      'the tunnel link connected',
      async () => (await agent.snapshot()).tunnel?.link.state === 'connected',
      30_000,
    );

    const client = await remoteClient(hub);
    const refused = await client.open('ssh');
    expect(refused).toMatchObject({ type: 'open_failed', code: 'unknown_service' });

    const opened = await client.open('echo');
    expect(opened).toMatchObject({ type: 'opened', agent_id: AGENT_ID, service: 'echo', resumed: false });
    if (opened.type !== 'opened') throw new Error('not opened');
    const session = client.session(opened);

    // 4 MB out and back, byte for byte, on three streams at once.
    const results = await Promise.all(
      [1, 2, 3].map(async (salt) => {
        const stream: TunnelStream = session.openStream();
        const { source, sha256 } = patternSource(4 * 1024 * 1024, 64 * 1024, salt);
        source.pipe(stream);
        const got = await hashOf(stream);
        return { got, sha256: sha256() };
      }),
    );
    for (const { got, sha256 } of results) expect(got).toEqual({ bytes: 4 * 1024 * 1024, sha256 });

    const snapshot = await waitUntil(
      'the snapshot to count the bytes',
      async () => {
        const s = await agent.snapshot();
        return (s.tunnel?.sessions[0]?.bytes_in ?? 0) >= 12 * 1024 * 1024 ? s : undefined;
      },
      20_000,
    );
    expect(snapshot.tunnel).toMatchObject({
      services: [
        { name: 'down', target: `127.0.0.1:${downPort}` },
        { name: 'echo', target: `127.0.0.1:${echoPort}` },
      ],
      link: { state: 'connected', observed_address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as string },
      sessions: [{ session_id: opened.session_id, peer: 'alice', service: 'echo', path: 'relay', streams_total: 3 }],
      closed_total: 0,
    });

    // A service that is exposed but not running: the stream is reset with the dial error, the session stays.
    const openedDown = await client.open('down');
    if (openedDown.type !== 'opened') throw new Error(`down: ${JSON.stringify(openedDown)}`);
    const downStream = client.session(openedDown).openStream();
    const error = await new Promise<Error>((resolve) => downStream.once('error', resolve));
    expect(error).toMatchObject({
      resetCode: StreamResetCode.CONNECT_FAILED,
      reason: `127.0.0.1:${downPort} refused the connection`,
    });
    // The agent logs it too; its log line may reach our pipe a little after the RST reached the client.
    await agent.cli.waitForOutput(`Could not reach down (127.0.0.1:${downPort} refused the connection)`);

    // The agent stops gracefully: the client hears its session end on purpose.
    await agent.stop();
    const closed = await waitUntil(
      'session_closed for the echo session',
      () => client.messages.find((m) => m.type === 'session_closed' && m.session_id === opened.session_id),
      20_000,
    );
    expect(closed).toMatchObject({ type: 'session_closed', code: 'closed' });
  });

  it('stays off with no services, and says so in the snapshot', async () => {
    const hub = await startHub({ hubId: 'tunnel-farm-off' });
    cleanups.push(() => hub.kill());
    const agent = await farmAgent(hub, {});
    const snapshot = await agent.snapshot();
    expect(snapshot.tunnel).toEqual({
      services: [],
      link: { state: 'off', broker_url: null, observed_address: null, detail: null, next_attempt_at: null },
      sessions: [],
      closed_total: 0,
    });
  });
});
