import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { download, upload } from '../bench/lib/tcp-tools.js';
import { PanelAttachment } from '../cli/startup/panel-attachment.js';
import type { Snapshot } from '../protocol/agent-host.js';
import { mintToken } from '../server/auth.js';
import { isolatedEnv, spawnCli, type CliProcess } from './helpers/cli-process.js';
import { ROOT, TEST_SECRET, startHub, type HubProcess } from './helpers/hub-process.js';
import { createFarmNetns, type FarmNetns } from './helpers/netns.js';
import { freePort } from './helpers/ports.js';
import { waitUntil } from './helpers/wait.js';
import { writeFarmConfig } from './helpers/farm-config.js';

/**
 * A farm PC whose address changes, for real: the agent runs in a network namespace joined to this
 * machine by a veth pair, the hub and the hash service listen on this machine's side of it, and
 * `farmlink connect` runs here. The farm's address is then changed under the running agent.
 */

const AGENT_ID = 'pc-netns';
const SERVICE = 'hash';

let netns: FarmNetns | undefined;
let hub: HubProcess | undefined;
let service: ChildProcess | undefined;
let agent: CliProcess | undefined;
let connect: CliProcess | undefined;
let tmp: string | undefined;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-netns-'));
});

afterAll(async () => {
  // Everything, whatever failed: no namespace, veth pair or process outlives the test.
  for (const proc of [connect, agent]) {
    if (proc && proc.proc.exitCode === null && proc.proc.signalCode === null) {
      proc.kill('SIGKILL');
      await proc.exited;
    }
  }
  // Destroying the namespace kills what still runs in it (the hash service).
  netns?.destroy();
  if (service && service.exitCode === null && service.signalCode === null) await once(service, 'exit');
  await hub?.kill();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/**
 * The byte-for-byte judge (bench/lib/tcp-tools.ts) on the farm PC's own loopback, as adb would be: a
 * service the farm reaches at a non-loopback address would lose its connections with the old address,
 * which no tunnel can save.
 */
async function hashServiceIn(ns: FarmNetns): Promise<{ child: ChildProcess; port: number }> {
  const tools = path.join(ROOT, 'dist/bench/lib/tcp-tools.js');
  const script = `import(${JSON.stringify(tools)}).then(async (t) => { const s = await t.startHashServer('127.0.0.1'); console.log(s.port); })`;
  const child = spawn(ns.via[0] ?? 'ip', [...ns.via.slice(1), process.execPath, '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  if (!Number.isInteger(port) || port <= 0) throw new Error(`the hash service said ${line.toString()}`);
  return { child, port };
}

interface SessionListing {
  session_id: string;
  farm_address: string | null;
  farm_connected: boolean;
  state: string;
}

async function hubSessions(h: HubProcess): Promise<SessionListing[]> {
  const { status, body } = await h.get('/api/v1/admin/tunnel/sessions', await h.adminToken());
  if (status !== 200) throw new Error(`admin listing answered ${status}`);
  return (body as { sessions: SessionListing[] }).sessions;
}

/** The agent's snapshot through its panel, at the farm's current address (a new attachment each time). */
async function farmSnapshot(ns: FarmNetns, panelPort: number, token: string): Promise<Snapshot> {
  const panel = await PanelAttachment.open({ address: `http://${ns.address}:${panelPort}`, token });
  try {
    return await panel.handlers().getSnapshot({});
  } finally {
    panel.close();
  }
}

/**
 * An upload that keeps going until told to stop: random chunks every few milliseconds through
 * `port` to the hash server, so it is in flight while the farm changes address.
 */
async function pacedUpload(port: number) {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  // once() rejects on 'error': a reset connection fails finish() instead of going unhandled.
  const ended = once(socket, 'end');
  ended.catch(() => undefined);
  socket.write('PUT\n');
  const hash = createHash('sha256');
  let sent = 0;
  const state = { stopping: false };
  const pump = (async (): Promise<void> => {
    while (!state.stopping) {
      const chunk = randomBytes(32 * 1024);
      hash.update(chunk);
      sent += chunk.length;
      if (socket.destroyed) throw new Error('the connection closed during the upload');
      if (!socket.write(chunk)) await Promise.race([once(socket, 'drain'), ended]);
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  pump.catch(() => undefined); // finish() awaits it and says what went wrong
  return {
    get sent() {
      return sent;
    },
    async finish(): Promise<{ intact: boolean; bytes: number; answer: string }> {
      state.stopping = true;
      await pump;
      socket.end();
      await ended;
      const answer = Buffer.concat(chunks).toString('latin1').trim();
      return { intact: answer === `HASH ${hash.digest('hex')} ${sent}`, bytes: sent, answer };
    },
  };
}

describe('the tunnel when the farm PC changes address (a network namespace)', () => {
  it('reconnects from the new address at once, the hub records it and tells the client, and data moves byte for byte', async () => {
    if (!tmp) throw new Error('no temporary directory');
    netns = createFarmNetns();
    const ns = netns;
    const hash = await hashServiceIn(ns);
    service = hash.child;
    hub = await startHub({ host: ns.hostAddress });

    const { env, dataDir } = isolatedEnv(tmp);
    const configFile = writeFarmConfig(tmp, {
      servers: [hub.url],
      agentId: AGENT_ID,
      token: await hub.agentToken(AGENT_ID),
      services: { [SERVICE]: `127.0.0.1:${hash.port}` },
      // Noticed at once, not at the next heartbeat.
      tunnel: { address_check_interval: 0.2 },
    });
    // The panel listens on every address of the namespace, so this side reaches it at whichever the farm has.
    agent = spawnCli(
      [
        'agent',
        '--config',
        configFile,
        '--data-dir',
        dataDir,
        '--panel-host',
        '0.0.0.0',
        '--panel-allow-remote',
        '--panel-port',
        '0',
        '--no-log-file',
        '--log-format',
        'json',
      ],
      env,
      { via: ns.via },
    );
    await agent.waitForOutput('"event":"panel"', 30_000);
    const panelLine = agent.stdout.split('\n').find((l) => l.includes('"event":"panel"'))!;
    const panelInfo = JSON.parse(panelLine) as { url: string; token_file: string };
    const panelPort = Number(new URL(panelInfo.url).port);
    const panelToken = fs.readFileSync(panelInfo.token_file, 'utf8').trim();
    const before = await waitUntil(
      'the farm tunnel connected from the namespace',
      async () => {
        const s = await farmSnapshot(ns, panelPort, panelToken);
        return s.tunnel?.link.state === 'connected' ? s : undefined;
      },
      30_000,
    );
    expect(before.tunnel?.link.observed_address).toMatch(new RegExp(`^${ns.address.replace(/\./g, '\\.')}:\\d+$`));

    const clientToken = path.join(tmp, 'client-token');
    fs.writeFileSync(
      clientToken,
      await mintToken(TEST_SECRET, { role: 'client', clientName: 'remote', agents: [AGENT_ID] }),
    );
    const listen = await freePort();
    connect = spawnCli(
      ['connect', AGENT_ID, SERVICE, '--hub', hub.url, '--listen', `127.0.0.1:${listen}`, '--token-file', clientToken],
      isolatedEnv(tmp).env,
    );
    const name = `${AGENT_ID}/${SERVICE}`;
    await connect.waitForOutput(`listening 127.0.0.1:${listen} → ${name} via relay`, 30_000);

    // Before the change: both ways, byte for byte.
    expect(await upload(listen, 4 * 1024 * 1024)).toMatchObject({ intact: true });
    expect(await download(listen, 4 * 1024 * 1024)).toMatchObject({ intact: true });
    const [session] = await hubSessions(hub);
    expect(session?.farm_address).toMatch(new RegExp(`^${ns.address.replace(/\./g, '\\.')}:\\d+$`));
    const oldAddress = ns.address;

    // An upload in flight while the address changes.
    const spanning = await pacedUpload(listen);
    await waitUntil('the spanning upload under way', () => spanning.sent >= 1024 * 1024, 20_000);
    const newAddress = ns.moveTo(3);
    const sentAtMove = spanning.sent;

    const h = hub;
    const moved = await waitUntil(
      'the hub to record the farm at its new address',
      async () => {
        const [s] = await hubSessions(h);
        return s?.farm_address?.startsWith(`${newAddress}:`) === true && s.farm_connected ? s : undefined;
      },
      30_000,
    );
    expect(moved.session_id).toBe(session?.session_id);
    await connect.waitForOutput(`${name} farm moved to ${newAddress}`, 30_000);

    // The farm's own view: connected from the new address, its session recovered as an address change.
    const after = await waitUntil(
      'the farm to record the recovery',
      async () => {
        const s = await farmSnapshot(ns, panelPort, panelToken);
        const recoveries = s.tunnel?.sessions[0]?.recoveries ?? [];
        return s.tunnel?.link.state === 'connected' && recoveries.some((r) => r.kind === 'address_change')
          ? s
          : undefined;
      },
      30_000,
    );
    expect(after.tunnel?.link.observed_address).toMatch(new RegExp(`^${newAddress.replace(/\./g, '\\.')}:\\d+$`));
    expect(after.tunnel?.sessions[0]?.session_id).toBe(session?.session_id);
    await agent.waitForOutput(`This PC's addresses changed (now ${newAddress}):`);

    // The upload that spanned the change: every byte, in order, once.
    const sentBeforeFinish = spanning.sent;
    const spanned = await spanning.finish();
    expect(spanned).toMatchObject({ intact: true });
    expect(spanned.bytes).toBeGreaterThanOrEqual(sentBeforeFinish);
    // It carried bytes written after the move too, not only what was in flight before it.
    expect(spanned.bytes).toBeGreaterThan(sentAtMove);

    // After the change: both ways again, on the same session, and the client never lost its listener.
    expect(await upload(listen, 4 * 1024 * 1024)).toMatchObject({ intact: true });
    expect(await download(listen, 4 * 1024 * 1024)).toMatchObject({ intact: true });
    const [last] = await hubSessions(hub);
    expect(last).toMatchObject({ session_id: session?.session_id, state: 'active' });
    expect(connect.stdout).not.toContain('new session');
    expect(oldAddress).not.toBe(newAddress);
  });
});
