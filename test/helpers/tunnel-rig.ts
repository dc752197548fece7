import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHashServer, type TcpServer } from '../../bench/lib/tcp-tools.js';
import type { TunnelSessionListing } from '../../server/tunnel/tunnel-broker.js';
import { mintToken } from '../../server/auth.js';
import { isolatedEnv, spawnCli, type CliProcess } from './cli-process.js';
import { startHeadlessAgent, type HeadlessAgent } from './headless-agent.js';
import { TEST_SECRET, startHub, type HubProcess } from './hub-process.js';
import { freePort } from './ports.js';
import { waitUntil } from './wait.js';
import { writeFarmConfig } from './farm-config.js';

/**
 * The whole tunnel as real processes, for failure tests: hubs (`farmlink hub` with tunnel timings in
 * milliseconds), a farm PC (`farmlink agent` exposing a byte-for-byte hash service as `hash`), and a remote
 * user (`farmlink connect` with its stdout lines). Each part can be killed and started again as it was
 * (same port, same data dir, same arguments), which is what the failures need.
 */

export const SERVICE = 'hash';

/** Tunnel timings short enough for tests, long enough that a busy two-core machine does not trip them. */
// A session's health pings cross both sockets and the hub: at a load of 14 on two cores a 1.5 s deadline
// was seen to pass with nothing broken, so 3 s.
export const RIG_TIMINGS = { pingIntervalMs: 200, pingTimeoutMs: 3000, resumeWindowMs: 8000 };

export interface RigHubOptions {
  port?: number;
  hubId?: string;
  /** Extra hub flags (e.g. --tunnel-idle-timeout-ms). */
  args?: string[];
  resumeWindowMs?: number;
}

export function rigHub(options: RigHubOptions = {}): Promise<HubProcess> {
  return startHub({
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.hubId !== undefined ? { hubId: options.hubId } : {}),
    args: [
      '--tunnel-ping-interval-ms',
      String(RIG_TIMINGS.pingIntervalMs),
      '--tunnel-ping-timeout-ms',
      String(RIG_TIMINGS.pingTimeoutMs),
      '--tunnel-resume-window-ms',
      String(options.resumeWindowMs ?? RIG_TIMINGS.resumeWindowMs),
      ...(options.args ?? []),
    ],
  });
}

export interface AdminListing {
  hub_id: string;
  draining: boolean;
  sessions: TunnelSessionListing[];
}

/** The broker's own view: GET /api/v1/admin/tunnel/sessions. */
export async function adminSessions(hub: HubProcess): Promise<AdminListing> {
  const res = await hub.get('/api/v1/admin/tunnel/sessions', await hub.adminToken());
  if (res.status !== 200) throw new Error(`admin tunnel listing: HTTP ${res.status} ${res.text}`);
  return res.body as AdminListing;
}

export interface RigFarm {
  readonly agent: HeadlessAgent;
  /** Starts the agent process (again) with the same config, data dir and id. */
  start(): Promise<HeadlessAgent>;
  /** Waits until the agent's tunnel link says connected. */
  linked(timeoutMs?: number): Promise<void>;
}

export interface RigConnect {
  readonly cli: CliProcess;
  port: number;
  /** Starts `farmlink connect` (again) with the same arguments. */
  start(): Promise<CliProcess>;
  /** stdout lines so far, of every run. */
  lines(): string[];
}

export class TunnelRig {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-tunnel-rig-'));
  private readonly cleanups: Array<() => unknown> = [];
  private serial = 0;

  private constructor(readonly hash: TcpServer) {}

  static async create(): Promise<TunnelRig> {
    return new TunnelRig(await startHashServer());
  }

  /** Registers something to undo at dispose(), in reverse order. */
  defer(fn: () => unknown): void {
    this.cleanups.push(fn);
  }

  async hub(options: RigHubOptions = {}): Promise<HubProcess> {
    const hub = await rigHub(options);
    this.defer(() => hub.kill());
    return hub;
  }

  /**
   * A farm PC whose agent's server list is `hubUrls` (primary first) and which exposes the hash service;
   * `tunnel` adds keys to its config's `tunnel:` (`direct: false`, say).
   */
  async farm(
    agentId: string,
    hubUrls: string[],
    tokenFrom: HubProcess,
    options: { tunnel?: Record<string, string | number | boolean> } = {},
  ): Promise<RigFarm> {
    const parent = fs.mkdtempSync(path.join(this.dir, 'farm-'));
    const { env, dataDir } = isolatedEnv(parent);
    const configFile = writeFarmConfig(parent, {
      servers: hubUrls,
      agentId,
      token: await tokenFrom.agentToken(agentId),
      services: { [SERVICE]: `127.0.0.1:${this.hash.port}` },
      ...(options.tunnel ? { tunnel: options.tunnel } : {}),
    });
    let agent: HeadlessAgent | undefined;
    const farm: RigFarm = {
      get agent() {
        if (!agent) throw new Error('the farm agent was never started');
        return agent;
      },
      start: async () => {
        if (agent?.alive === true) throw new Error('the farm agent is still running');
        agent = await startHeadlessAgent({ configFile, dataDir, env, timeoutMs: 30_000 });
        return agent;
      },
      linked: async (timeoutMs = 30_000) => {
        await waitUntil(
          'the farm tunnel link connected',
          async () => (await farm.agent.snapshot()).tunnel?.link.state === 'connected',
          timeoutMs,
          50,
        );
      },
    };
    this.defer(() => (agent?.alive === true ? agent.kill() : undefined));
    await farm.start();
    return farm;
  }

  /** `farmlink connect AGENT hash --hub … --listen 127.0.0.1:PORT` (`--no-direct` with `noDirect`), waiting for its listener. */
  async connect(
    agentId: string,
    hubUrls: string[],
    options: { clientName?: string; noDirect?: boolean } = {},
  ): Promise<RigConnect> {
    const port = await freePort();
    const tokenFile = path.join(this.dir, `client-${++this.serial}.jwt`);
    fs.writeFileSync(
      tokenFile,
      await mintToken(TEST_SECRET, { role: 'client', clientName: options.clientName ?? 'tester', agents: [agentId] }),
    );
    // One HOME for every run: the same host, the same arguments, so the same client key.
    const { env } = isolatedEnv(this.dir);
    const args = [
      'connect',
      agentId,
      SERVICE,
      ...hubUrls.flatMap((u) => ['--hub', u]),
      '--listen',
      `127.0.0.1:${port}`,
      '--token-file',
      tokenFile,
      ...(options.noDirect === true ? ['--no-direct'] : []),
    ];
    let cli: CliProcess | undefined;
    const earlier: string[] = [];
    const connect: RigConnect = {
      get cli() {
        if (!cli) throw new Error('farmlink connect was never started');
        return cli;
      },
      port,
      start: async () => {
        if (cli) earlier.push(...cli.stdout.split('\n').filter((l) => l !== ''));
        const started = spawnCli(args, env);
        cli = started;
        await started.waitForOutput(`listening 127.0.0.1:${port} → ${agentId}/${SERVICE}`, 30_000);
        return started;
      },
      lines: () => [...earlier, ...(cli?.stdout.split('\n').filter((l) => l !== '') ?? [])],
    };
    this.defer(async () => {
      if (cli && cli.proc.exitCode === null && cli.proc.signalCode === null) {
        cli.kill('SIGKILL');
        await cli.exited;
      }
    });
    await connect.start();
    return connect;
  }

  async dispose(): Promise<void> {
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // Teardown goes on: one part failing to stop must not leave the others running.
      }
    }
    await this.hash.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs `fn` and the time it took, in seconds with one decimal, for the labelled timing lines. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
