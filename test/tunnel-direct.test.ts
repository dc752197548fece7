import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { download, startHashServer, upload, type TcpServer } from '../bench/lib/tcp-tools.js';
import { mintToken } from '../server/auth.js';
import { isolatedEnv, spawnCli, type CliProcess } from './helpers/cli-process.js';
import { FARMLINK_BIN, TEST_SECRET, startHub, type HubProcess } from './helpers/hub-process.js';
import { freePort } from './helpers/ports.js';
import { waitUntil } from './helpers/wait.js';
import { writeFarmConfig } from './helpers/farm-config.js';

/**
 * The direct path end to end: a real hub, a real agent process in a network namespace of its own
 * (a veth pair to this host, 10.214.N.0/24, nothing leaves the machine), `farmlink connect` as a
 * process on the host. The session moves to the direct WebRTC path over the veth; the direct path is
 * then broken for real from outside every process (tc drops UDP arriving in the namespace; the hub's
 * TCP is untouched), traffic falls back to the relay with the transfer intact, and once the filter is
 * gone the session returns to direct after the hold.
 */

const MB = 1024 * 1024;
const AGENT_ID = 'pc-direct';
const NAME = `${AGENT_ID}/hash`;
const N = 1 + (process.pid % 250);
const NS = `fl-d2-${process.pid}`;
const VETH_HOST = `fd2h${process.pid % 100000}`;
const VETH_NS = `fd2n${process.pid % 100000}`;
const HOST_IP = `10.214.${N}.1`;
const NS_IP = `10.214.${N}.2`;

const cleanups: Array<() => unknown> = [];
const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-tunnel-direct-'));

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function inNs(...args: string[]): void {
  execFileSync('ip', ['netns', 'exec', NS, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Drops every UDP packet the farm sends: the data channel goes silent both ways (nothing the client
 * sends is answered), while TCP — the tunnel socket to the hub, the relay — flows on. A routing rule
 * in the namespace (iproute2): tc's drop action (act_gact) cannot be loaded on this kernel, and the
 * classful qdiscs that could steer UDP into a dropping class (prio, netem) are missing too.
 */
function dropUdp(): void {
  inNs('ip', 'rule', 'add', 'ipproto', 'udp', 'blackhole');
}

function allowUdp(): void {
  inNs('ip', 'rule', 'del', 'ipproto', 'udp', 'blackhole');
}

let hub: HubProcess;
let hash: TcpServer;
let agent: { proc: ReturnType<typeof spawn>; stdout: () => string; exited: Promise<number | null> };
let adminToken: string;

async function sessionsAtHub(): Promise<Array<{ session_id: string; path: string | null; client_key: string }>> {
  const { body } = await hub.get('/api/v1/admin/tunnel/sessions', adminToken);
  return (body as { sessions: Array<{ session_id: string; path: string | null; client_key: string }> }).sessions;
}

async function clientToken(): Promise<string> {
  const file = path.join(parent, 'client-token');
  fs.writeFileSync(file, await mintToken(TEST_SECRET, { role: 'client', clientName: 'alice', agents: [AGENT_ID] }));
  return file;
}

async function connect(port: number, extra: string[] = []): Promise<CliProcess> {
  const { env } = isolatedEnv(parent);
  const cli = spawnCli(
    [
      'connect',
      AGENT_ID,
      'hash',
      '--hub',
      hub.url,
      '--listen',
      String(port),
      '--token-file',
      await clientToken(),
      '--log-level',
      'info',
      ...extra,
    ],
    env,
  );
  cleanups.push(() => cli.kill('SIGKILL'));
  await cli.waitForOutput(`listening 127.0.0.1:${port} → ${NAME} via relay`, 30_000);
  return cli;
}

const count = (text: string, what: string) => text.split(what).length - 1;

beforeAll(async () => {
  // The namespace stands in for a farm PC on the same LAN as the remote user: the direct path can come up.
  try {
    ip('netns', 'add', NS);
  } catch (error) {
    throw new Error(
      `cannot create a network namespace (ip netns add; needs CAP_NET_ADMIN): ${(error as Error).message}`,
    );
  }
  cleanups.push(() => ip('netns', 'del', NS));
  ip('link', 'add', VETH_HOST, 'type', 'veth', 'peer', 'name', VETH_NS);
  cleanups.push(() => {
    try {
      ip('link', 'del', VETH_HOST);
    } catch {
      // Gone with the namespace.
    }
  });
  ip('link', 'set', VETH_NS, 'netns', NS);
  ip('addr', 'add', `${HOST_IP}/24`, 'dev', VETH_HOST);
  ip('link', 'set', VETH_HOST, 'up');
  inNs('ip', 'addr', 'add', `${NS_IP}/24`, 'dev', VETH_NS);
  inNs('ip', 'link', 'set', VETH_NS, 'up');
  inNs('ip', 'link', 'set', 'lo', 'up');

  // Tunnel timings in ms: a dead direct path is found within 1.5 s.
  hub = await startHub({
    hubId: 'tunnel-direct-hub',
    args: [
      '--host',
      '0.0.0.0',
      '--tunnel-ping-interval-ms',
      '250',
      '--tunnel-ping-timeout-ms',
      '1500',
      '--tunnel-resume-window-ms',
      '20000',
    ],
  });
  cleanups.push(() => hub.kill());
  adminToken = await hub.adminToken();
  hash = await startHashServer(HOST_IP, 0);
  cleanups.push(() => hash.close());

  const { env, dataDir } = isolatedEnv(parent);
  const configFile = writeFarmConfig(parent, {
    servers: [`http://${HOST_IP}:${hub.port}`],
    agentId: AGENT_ID,
    token: await hub.agentToken(AGENT_ID),
    services: { hash: `${HOST_IP}:${hash.port}` },
  });
  // `ip netns exec` execs the command: the pid is the agent's own, so SIGTERM reaches it.
  const proc = spawn(
    'ip',
    [
      'netns',
      'exec',
      NS,
      process.execPath,
      FARMLINK_BIN,
      'agent',
      '--config',
      configFile,
      '--data-dir',
      dataDir,
      '--panel-port',
      '0',
      '--no-log-file',
      '--log-format',
      'json',
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  agent = { proc, stdout: () => out, exited };
  cleanups.push(() => proc.kill('SIGKILL'));
  await waitUntil(
    'the agent in the namespace to connect its tunnel',
    async () => {
      const { body } = await hub.get('/api/v1/admin/tunnel/sessions', adminToken);
      return (body as { farms: Array<{ agent_id: string }> }).farms.some((f) => f.agent_id === AGENT_ID);
    },
    30_000,
    100,
  );
}, 60_000);

afterAll(async () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      // Keep cleaning up.
    }
  }
  fs.rmSync(parent, { recursive: true, force: true });
});

describe('the direct path between a real agent and farmlink connect', () => {
  it('goes direct, falls back to the relay when UDP is dropped (transfer intact), and returns after the hold', async () => {
    const port = await freePort();
    const cli = await connect(port);
    cleanups.push(() => cli.kill('SIGTERM'));
    await cli.waitForOutput(`${NAME} now direct`, 60_000);
    await waitUntil(
      'the hub to list the session on the direct path',
      async () => (await sessionsAtHub()).some((s) => s.path === 'direct'),
      10_000,
      100,
    );

    const up = await upload(port, 20 * MB);
    const down = await download(port, 20 * MB);
    expect(up).toMatchObject({ intact: true });
    expect(down).toMatchObject({ intact: true });
    console.log(`[tunnel-direct] direct: 20 MB up in ${Math.round(up.ms)} ms, 20 MB down in ${Math.round(down.ms)} ms`);
    // Still direct: nothing fell back during the transfer.
    expect(cli.stdout).not.toContain('back on relay');

    // Break the direct path from outside: the farm's UDP is dropped; the hub's TCP still flows.
    dropUdp();
    let dropped = true;
    cleanups.push(() => (dropped ? allowUdp() : undefined));
    const during = upload(port, 20 * MB);
    await cli.waitForOutput(`${NAME} back on relay (direct path lost: `, 30_000);
    expect(await during).toMatchObject({ intact: true });
    expect(await download(port, 20 * MB)).toMatchObject({ intact: true });
    expect((await sessionsAtHub()).map((s) => s.path)).toEqual(['relay']);
    expect(cli.stdout).toMatch(/back on relay \(direct path lost: .*no answer to health pings for 1500 ms/);

    // The filter goes: the client offers again, and after the (doubled) hold the session is direct again.
    allowUdp();
    dropped = false;
    await waitUntil(
      'the session back on the direct path',
      () => count(cli.stdout, `${NAME} now direct`) >= 2,
      120_000,
      100,
    );
    await waitUntil(
      'the hub to list it direct again',
      async () => (await sessionsAtHub()).some((s) => s.path === 'direct'),
      10_000,
      100,
    );
    expect(await upload(port, 20 * MB)).toMatchObject({ intact: true });

    // Stopping: both processes exit by themselves (no native handle of the direct path left behind).
    cli.kill('SIGTERM');
    expect((await cli.exited).code).toBe(0);
  }, 240_000);

  it('--no-direct keeps the session on the relay', async () => {
    const port = await freePort();
    const cli = await connect(port, ['--no-direct']);
    // Logged on stderr, which may reach us after the listening line on stdout.
    await waitUntil('the log line saying the direct path is off', () => cli.stderr.includes('direct path off'));
    const started = Date.now();
    expect(await upload(port, 5 * MB)).toMatchObject({ intact: true });
    // Longer than the hold a direct path needs (10 s), with the session busy: still the relay.
    await waitUntil(
      'twelve seconds of the session on the relay',
      async () => {
        expect((await sessionsAtHub()).map((s) => s.path)).toEqual(['relay']);
        return Date.now() - started > 12_000;
      },
      30_000,
      500,
    );
    expect(await download(port, 5 * MB)).toMatchObject({ intact: true });
    expect(cli.stdout).not.toContain('now direct');
    cli.kill('SIGTERM');
    expect((await cli.exited).code).toBe(0);
  }, 60_000);

  it('the agent exits by itself on SIGTERM after its sessions had direct paths', async () => {
    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(agent.stdout()).toContain('direct path open');
  }, 30_000);
});
