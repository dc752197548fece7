import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIperfClient, waitForPort } from '../bench/lib/tcp-tools.js';
import { mintToken } from '../server/auth.js';
import { isolatedEnv, spawnCli, type CliProcess } from './helpers/cli-process.js';
import { startHeadlessAgent, type HeadlessAgent } from './helpers/headless-agent.js';
import { TEST_SECRET, startHub, type HubProcess } from './helpers/hub-process.js';
import { freePort } from './helpers/ports.js';
import { waitUntil } from './helpers/wait.js';
import { writeFarmConfig } from './helpers/farm-config.js';

/**
 * Programs that are not ours through the tunnel: Debian's adb and iperf3 speak their own protocols
 * over plain TCP, so they pass only if the tunnel is a plain TCP pipe. A real hub, a real agent (the
 * farm PC) exposing them in tunnel.services, and `farmlink connect` on the remote side, all processes.
 */

const AGENT_ID = 'pc-real-clients';

let hub: HubProcess | undefined;
let agent: HeadlessAgent | undefined;
let tmp: string;
let adbPort: number;
let iperfPort: number;
let iperfServer: ChildProcess | undefined;
const connects: CliProcess[] = [];

/** adb with a clean environment: no ADB_SERVER_SOCKET or ANDROID_ADB_SERVER_PORT of this machine's. */
function adb(args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: tmp };
  delete env.ADB_SERVER_SOCKET;
  delete env.ANDROID_ADB_SERVER_PORT;
  return spawnSync('adb', args, { encoding: 'utf8', env, timeout: 30_000 });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-real-clients-'));
  [adbPort, iperfPort] = [await freePort(), await freePort()];
  // The farm PC's own adb server on a port of this test's, and an iperf3 server that takes test after test.
  const started = adb(['-P', String(adbPort), 'start-server']);
  if (started.status !== 0) throw new Error(`adb -P ${adbPort} start-server: ${started.stderr || started.stdout}`);
  iperfServer = spawn('iperf3', ['-s', '-B', '127.0.0.1', '-p', String(iperfPort)], { stdio: 'ignore' });
  const h = await startHub({ hubId: 'tunnel-real-clients' });
  hub = h;
  await waitForPort(adbPort);

  const { env, dataDir } = isolatedEnv(tmp);
  const configFile = writeFarmConfig(tmp, {
    servers: [h.url],
    agentId: AGENT_ID,
    token: await h.agentToken(AGENT_ID),
    services: { adb: `127.0.0.1:${adbPort}`, iperf: `127.0.0.1:${iperfPort}` },
  });
  const farm = await startHeadlessAgent({ configFile, dataDir, env, timeoutMs: 30_000 });
  agent = farm;
  await waitUntil(
    'the farm tunnel connected',
    async () => (await farm.snapshot()).tunnel?.link.state === 'connected',
    30_000,
  );
});

afterAll(async () => {
  for (const cli of connects) {
    if (cli.proc.exitCode === null && cli.proc.signalCode === null) {
      cli.kill('SIGKILL');
      await cli.exited;
    }
  }
  if (agent?.alive) await agent.kill();
  await hub?.kill();
  if (iperfServer && iperfServer.exitCode === null && iperfServer.signalCode === null) {
    const exited = once(iperfServer, 'exit');
    iperfServer.kill('SIGTERM');
    await exited;
  }
  if (adbPort) adb(['-P', String(adbPort), 'kill-server']);
  fs.rmSync(tmp, { recursive: true, force: true });
});

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} did not start (see beforeAll)`);
  return value;
}

/** `farmlink connect AGENT_ID service` on a free port, once it says it is listening. */
async function connectTo(service: string): Promise<{ cli: CliProcess; port: number }> {
  const tokenFile = path.join(tmp, `client-${service}.jwt`);
  fs.writeFileSync(
    tokenFile,
    await mintToken(TEST_SECRET, { role: 'client', clientName: 'remote', agents: [AGENT_ID] }),
  );
  const port = await freePort();
  const cli = spawnCli(
    [
      'connect',
      AGENT_ID,
      service,
      '--hub',
      need(hub, 'the hub').url,
      '--listen',
      `127.0.0.1:${port}`,
      '--token-file',
      tokenFile,
    ],
    isolatedEnv(tmp).env,
  );
  connects.push(cli);
  await cli.waitForOutput(`listening 127.0.0.1:${port} → ${AGENT_ID}/${service} via relay`, 30_000);
  return { cli, port };
}

/** The pid of the process listening on 127.0.0.1:`port`, from `ss -ltnp`. */
function listenerPid(port: number): number | undefined {
  const ss = spawnSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
  const pid = /pid=(\d+)/.exec(ss.stdout)?.[1];
  return pid === undefined ? undefined : Number(pid);
}

async function sessionFor(service: string) {
  const snapshot = await need(agent, 'the farm agent').snapshot();
  return snapshot.tunnel?.sessions.find((s) => s.service === service);
}

describe('real clients through the tunnel', () => {
  it("Debian's adb on the remote side answers from the farm PC's adb server", async () => {
    const { cli, port } = await connectTo('adb');
    const before = await waitUntil('the adb session at the farm', () => sessionFor('adb'), 20_000);

    const devices = adb(['-P', String(port), 'devices']);
    expect(devices.status).toBe(0);
    expect(devices.stdout).toContain('List of devices attached');
    // adb found a server on the port and started none: what listens there is farmlink connect.
    expect(devices.stderr).not.toContain('daemon started');
    expect(listenerPid(port)).toBe(cli.proc.pid);

    // And it came through the tunnel: the farm dialled its adb server for it.
    const after = await waitUntil(
      'the farm to count the streams adb opened',
      async () => {
        const s = await sessionFor('adb');
        return s && s.streams_total > before.streams_total ? s : undefined;
      },
      20_000,
    );
    expect(after.session_id).toBe(before.session_id);
    expect(after.bytes_out).toBeGreaterThan(0);
  });

  it('iperf3 runs through the tunnel both ways', async () => {
    const { port } = await connectTo('iperf');
    const up = await runIperfClient(port, { bytes: 50 * 1024 * 1024 });
    expect(up.bytes).toBeGreaterThan(0);
    expect(up.sentBytes).toBeGreaterThanOrEqual(50 * 1024 * 1024);
    const down = await runIperfClient(port, { seconds: 3, reverse: true });
    expect(down.bytes).toBeGreaterThan(0);
    const session = await sessionFor('iperf');
    // Each iperf3 test is a control connection and a data connection: four streams for the two.
    expect(session?.streams_total).toBeGreaterThanOrEqual(4);
  });
});
