import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../lib/clock.js';
import { BrokerLink } from '../lib/tunnel/broker-link.js';
import { TunnelSession } from '../lib/tunnel/tunnel-session.js';
import { StreamResetCode } from '../protocol/tunnel-frame.js';
import { TUNNEL_PROTOCOL_VERSION } from '../protocol/tunnel.js';
import { mintToken } from '../server/auth.js';
import { isolatedEnv, runCli, spawnCli, type CliProcess } from './helpers/cli-process.js';
import { TEST_SECRET, startHub, type HubProcess } from './helpers/hub-process.js';
import { freePort } from './helpers/ports.js';
import { waitUntil } from './helpers/wait.js';

/**
 * `farmlink connect` as a process, through a real hub's broker, to a farm end built here from the
 * shared parts (BrokerLink + TunnelSession, as the agent's farm end is), in front of a TCP service
 * that echoes what it gets, or answers the sha256 of everything it got once the sender half-closes.
 */

const SERVICE = 'svc';

/** The farm end: sessions from the broker, each stream dialled to the service. */
class MiniFarm {
  readonly link: BrokerLink<'farm'>;
  readonly sessions = new Map<string, TunnelSession>();
  private readonly bootId = randomBytes(16).toString('hex');

  constructor(hubUrl: string, agentId: string, token: string, servicePort: number) {
    this.link = new BrokerLink({
      role: 'farm',
      servers: [hubUrl],
      token,
      hello: () => ({
        type: 'farm_hello',
        protocol: TUNNEL_PROTOCOL_VERSION,
        agent_id: agentId,
        boot_id: this.bootId,
        services: [SERVICE],
        local_addresses: [],
        version: 'test',
      }),
      clock: systemClock,
      random: Math.random,
      logger: pino({ level: 'silent' }),
      backoff: { initialMs: 50, maxMs: 500 },
    });
    this.link.events.on('message', (message) => {
      if (message.type === 'session_open') {
        let session = this.sessions.get(message.session_id);
        if (message.resume && !session) {
          this.link.send({
            type: 'session_refuse',
            session_id: message.session_id,
            route: message.route,
            code: 'unknown_session',
            reason: 'not here',
          });
          return;
        }
        if (!session) {
          const timings = this.link.timings!;
          session = new TunnelSession({
            role: 'farm',
            sessionId: message.session_id,
            peer: message.client.name,
            service: message.service,
            clock: systemClock,
            pingIntervalMs: timings.ping_interval_ms,
            pingTimeoutMs: timings.ping_timeout_ms,
          });
          session.events.on('stream', (stream) => {
            const socket = net.connect(servicePort, '127.0.0.1');
            socket.once('connect', () => {
              stream.accept();
              socket.pipe(stream).pipe(socket);
            });
            socket.on('error', (error) => stream.reset(StreamResetCode.CONNECT_FAILED, error.message));
            stream.on('error', () => socket.destroy());
          });
          this.sessions.set(message.session_id, session);
        }
        // Accepted first: the broker relays the route's frames (the session's RESUME among them) from then on.
        this.link.send({ type: 'session_accept', session_id: message.session_id, route: message.route });
        const relay = this.link.relayPath(message.route);
        if (relay) session.attach(relay);
      } else if (message.type === 'session_closed') {
        this.sessions.get(message.session_id)?.close(message.code, message.reason);
        this.sessions.delete(message.session_id);
      } else if (message.type === 'peer_state' && message.state === 'up' && message.route !== undefined) {
        const relay = this.link.relayPath(message.route);
        const session = this.sessions.get(message.session_id);
        if (relay && session) session.attach(relay);
      }
    });
  }

  async start(): Promise<void> {
    const connected = new Promise<void>((resolve) => this.link.events.once('connected', () => resolve()));
    this.link.start();
    await connected;
  }

  /**
   * Gone at once, its sessions with it, and no session_close for them: what the client sees of a power
   * loss once the broker's ping deadline has passed (the broker tests cover the deadline itself).
   */
  powerOff(): void {
    for (const session of this.sessions.values()) session.close('closed', 'power off');
    this.link.stop('power off');
  }
}

/** echo: every byte back. hash: the sha256 (hex) of everything received, after the sender's FIN. */
async function startService(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    let mode: 'echo' | 'hash' | undefined;
    const hash = createHash('sha256');
    socket.on('data', (chunk: Buffer) => {
      if (mode === undefined) {
        mode = chunk[0] === 0x68 ? 'hash' : 'echo'; // 'h'
      }
      if (mode === 'echo') socket.write(chunk);
      else hash.update(chunk);
    });
    socket.on('end', () => {
      if (mode === 'hash') socket.end(hash.digest('hex'));
      else socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function exchange(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.end(data);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let hub: HubProcess;
let hubUrl: string;
let service: { port: number; close(): Promise<void> };
let tmp: string;
let serial = 0;

beforeAll(async () => {
  [hub, service] = await Promise.all([
    // The hub's own ping timings (5 s / 10 s): a shorter deadline can pass on a loaded machine in the
    // middle of the 50 MB, and the farm's power-off here closes its socket, which the broker sees at once.
    startHub({ args: ['--tunnel-resume-window-ms', '5000'] }),
    startService(),
  ]);
  hubUrl = `http://127.0.0.1:${hub.port}`;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-connect-'));
});

afterAll(async () => {
  await Promise.all([hub.kill(), service.close()]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function clientTokenFile(agents: string[]): Promise<string> {
  const file = path.join(tmp, `client-${++serial}.jwt`);
  fs.writeFileSync(file, await mintToken(TEST_SECRET, { role: 'client', clientName: 'tester', agents }));
  return file;
}

async function farmFor(agentId: string): Promise<MiniFarm> {
  const farm = new MiniFarm(hubUrl, agentId, await mintToken(TEST_SECRET, { role: 'agent', agentId }), service.port);
  await farm.start();
  return farm;
}

async function connect(agentId: string): Promise<{ cli: CliProcess; port: number }> {
  const port = await freePort();
  const { env } = isolatedEnv(tmp);
  const cli = spawnCli(
    [
      'connect',
      agentId,
      SERVICE,
      '--hub',
      hubUrl,
      '--listen',
      `127.0.0.1:${port}`,
      '--token-file',
      await clientTokenFile([agentId]),
    ],
    env,
  );
  await cli.waitForOutput(`listening 127.0.0.1:${port} → ${agentId}/${SERVICE} via relay`);
  return { cli, port };
}

describe('farmlink connect through a real hub', () => {
  it('carries 50 MB byte for byte and 60 concurrent streams, and stops with exit 0 on SIGTERM', async () => {
    const agentId = `pc-bulk-${++serial}`;
    const farm = await farmFor(agentId);
    const { cli, port } = await connect(agentId);

    const big = Buffer.concat([Buffer.from('h'), randomBytes(50 * 1024 * 1024)]);
    const digest = (await exchange(port, big)).toString();
    expect(digest).toBe(sha(big));

    const payloads = Array.from({ length: 60 }, () => Buffer.concat([Buffer.from('e'), randomBytes(64 * 1024)]));
    const echoes = await Promise.all(payloads.map((p) => exchange(port, p)));
    echoes.forEach((echo, i) => expect(sha(echo)).toBe(sha(payloads[i]!)));

    cli.kill('SIGTERM');
    const run = await cli.exited;
    expect(run.code).toBe(0);
    // One line per change: the session never left the relay, so nothing but the first line.
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^listening 127\\.0\\.0\\.1:${port} → ${agentId}/${SERVICE} via relay( \\(rtt [\\d.]+ ms\\))?$`),
    );
    // The session was closed at the hub: the farm hears of it.
    await waitUntil('the farm told the session closed', () => farm.sessions.size === 0);
    farm.link.stop();
  });

  it('says when the farm is gone, keeps the port, and carries new connections once a restarted farm is back', async () => {
    const agentId = `pc-restart-${++serial}`;
    const farm = await farmFor(agentId);
    const { cli, port } = await connect(agentId);

    farm.powerOff();
    await cli.waitForOutput(`${agentId}/${SERVICE} farm unavailable, reconnecting`);
    // A connection made while the farm is away waits for it.
    const data = Buffer.concat([Buffer.from('e'), randomBytes(100_000)]);
    const waiting = exchange(port, data);

    const again = await farmFor(agentId);
    await cli.waitForOutput(new RegExp(`${agentId}/${SERVICE} back via relay after \\d+\\.\\d s`));
    expect(sha(await waiting)).toBe(sha(data));
    expect(sha(await exchange(port, data))).toBe(sha(data));
    cli.kill('SIGTERM');
    expect((await cli.exited).code).toBe(0);
    again.link.stop();
  });

  it('goes on when its stdout is closed (| head -1)', async () => {
    const agentId = `pc-head-${++serial}`;
    const farm = await farmFor(agentId);
    const { cli, port } = await connect(agentId);
    cli.proc.stdout?.destroy();
    farm.powerOff();
    const again = await farmFor(agentId);
    // It printed (or tried to) two more lines into a closed pipe and still carries connections.
    const data = Buffer.concat([Buffer.from('e'), randomBytes(10_000)]);
    expect(sha(await exchange(port, data))).toBe(sha(data));
    expect(cli.proc.exitCode).toBeNull();
    cli.kill('SIGTERM');
    expect((await cli.exited).code).toBe(0);
    again.link.stop();
  });
});

describe('farmlink connect: bad inputs', () => {
  const base = (extra: string[]) => ['connect', 'pc-1', SERVICE, '--hub', 'http://127.0.0.1:9', ...extra];

  it('answers bad arguments with 64 and what was expected', async () => {
    const { env } = isolatedEnv(tmp);
    const missing = await runCli(['connect', 'pc-1', '--hub', 'http://x', '--listen', '1'], env);
    expect(missing.code).toBe(64);
    expect(missing.stderr).toContain('expected AGENT_ID and SERVICE');
    const noListen = await runCli(['connect', 'pc-1', SERVICE, '--hub', 'http://x'], env);
    expect(noListen.code).toBe(64);
    expect(noListen.stderr).toContain('--listen [HOST:]PORT is required');
    const badPort = await runCli(base(['--listen', '127.0.0.1:99999']), env);
    expect(badPort.code).toBe(64);
    expect(badPort.stderr).toContain('--listen "127.0.0.1:99999"');
    const badHub = await runCli(['connect', 'pc-1', SERVICE, '--hub', 'ftp://x', '--listen', '1'], env);
    expect(badHub.code).toBe(64);
    expect(badHub.stderr).toContain('--hub "ftp://x"');
  });

  it('answers configuration problems with 78 naming the file, flag or variable', async () => {
    const { env } = isolatedEnv(tmp);
    const missingFile = path.join(tmp, 'nope.jwt');
    const unreadable = await runCli(base(['--listen', '15037', '--token-file', missingFile]), env);
    expect(unreadable.code).toBe(78);
    expect(unreadable.stderr).toContain(`--token-file ${missingFile}: cannot read it`);

    const agentFile = path.join(tmp, 'agent.jwt');
    fs.writeFileSync(agentFile, await mintToken(TEST_SECRET, { role: 'agent', agentId: 'pc-1' }));
    const agentToken = await runCli(base(['--listen', '15037', '--token-file', agentFile]), env);
    expect(agentToken.code).toBe(78);
    expect(agentToken.stderr).toContain('an agent token for "pc-1"; farmlink connect needs a client token');

    const noToken = await runCli(base(['--listen', '15037']), { ...env, FARMLINK_CLIENT_TOKEN: '' });
    expect(noToken.code).toBe(78);
    expect(noToken.stderr).toContain('FARMLINK_CLIENT_TOKEN');

    const token = await clientTokenFile(['pc-1']);
    const remote = await runCli(base(['--listen', '0.0.0.0:15037', '--token-file', token]), env);
    expect(remote.code).toBe(78);
    expect(remote.stderr).toContain('--listen 0.0.0.0:15037: not a loopback address');
    expect(remote.stderr).toContain('--allow-remote');

    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as net.AddressInfo).port;
    const inUse = await runCli(base(['--listen', String(taken), '--token-file', token]), env);
    blocker.close();
    expect(inUse.code).toBe(78);
    expect(inUse.stderr).toContain(`--listen 127.0.0.1:${taken}: address in use`);
  });

  it('a client token that expires while connected: the hub closes the socket 4440 and connect stops with 78', async () => {
    const agentId = `pc-expiry-${++serial}`;
    const farm = await farmFor(agentId);
    const tokenFile = path.join(tmp, `client-${++serial}.jwt`);
    fs.writeFileSync(
      tokenFile,
      await mintToken(TEST_SECRET, { role: 'client', clientName: 'tester', agents: [agentId], expiresIn: '3s' }),
    );
    const port = await freePort();
    const { env } = isolatedEnv(tmp);
    const cli = spawnCli(
      ['connect', agentId, SERVICE, '--hub', hubUrl, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile],
      env,
    );
    await cli.waitForOutput(`listening 127.0.0.1:${port} → ${agentId}/${SERVICE} via relay`);
    const data = Buffer.concat([Buffer.from('e'), randomBytes(10_000)]);
    expect(sha(await exchange(port, data))).toBe(sha(data)); // usable until it expires

    const run = await cli.exited; // the expiry ends the socket; the reconnect with the same token is refused
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('--token-file/FARMLINK_CLIENT_TOKEN');
    expect(run.stderr).toContain('HTTP 401');
    await waitUntil(
      'the hub to count the expiry',
      async () => (await hub.metric('farmlink_tunnel_socket_faults_total{kind="token_expired"}')) >= 1,
    );
    farm.link.stop();
  });

  it('stops with 77 when the token does not allow the farm PC', async () => {
    const { env } = isolatedEnv(tmp);
    const agentId = `pc-denied-${++serial}`;
    const farm = await farmFor(agentId);
    const port = await freePort();
    const run = await runCli(
      [
        'connect',
        agentId,
        SERVICE,
        '--hub',
        hubUrl,
        '--listen',
        String(port),
        '--token-file',
        await clientTokenFile(['pc-someone-else']),
      ],
      env,
    );
    expect(run.code).toBe(77);
    expect(run.stderr).toContain('not_authorized');
    farm.link.stop();
  });
});
