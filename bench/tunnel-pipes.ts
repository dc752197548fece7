import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mintToken } from '../server/auth.js';
import { isolatedEnv, spawnCli, type CliProcess } from '../test/helpers/cli-process.js';
import { startHeadlessAgent, type HeadlessAgent } from '../test/helpers/headless-agent.js';
import type { HubProcess } from '../test/helpers/hub-process.js';
import { BENCH_SECRET, startBenchHub } from './lib/bench-hub.js';
import { freeLoopbackPort } from './lib/free-port.js';
import type { ChildGroup } from './lib/tcp-tools.js';
import { writeFarmConfig } from '../test/helpers/farm-config.js';

/** One way for bytes to get from a client to a TCP service on `targetPort`, for bench/tunnel.ts. */
export interface PipeSetup {
  /** For --pipes. */
  name: string;
  label: string;
  /** Processes the bytes pass through between client and service (the socat chain of the same length is the floor). */
  hops: number;
  /** Starts the pipe in front of the service; `port` is where a client connects, `pids` the processes it runs. */
  start(targetPort: number): Promise<ChildGroup>;
}

export const BENCH_AGENT_ID = 'pc-bench';
const SERVICE = 'svc';
/** The relay rig keeps its session off the direct path from both ends (tunnel.direct false on the farm too). */
const NO_DIRECT: string[] = ['--no-direct'];

export interface TunnelRig extends ChildGroup {
  hub: HubProcess;
  agent: HeadlessAgent;
  connect: CliProcess;
  /** Where the rig's files live (removed by stop()). */
  dir: string;
}

/**
 * FarmLink's tunnel in front of a service: a hub (the broker), a headless agent exposing the service
 * as `svc`, and `farmlink connect` listening on a free port. Resolves once connect says it listens and
 * (for `direct`) once the session has moved to the direct path.
 */
export async function startTunnelRig(
  targetPort: number,
  options: { direct: boolean; hubArgs?: string[]; inspect?: boolean },
): Promise<TunnelRig> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-bench-tunnel-'));
  const hub = await startBenchHub({
    args: options.hubArgs ?? [],
    hubId: 'bench-tunnel',
    ...(options.inspect ? { inspect: true } : {}),
  });
  const { env, dataDir } = isolatedEnv(dir);
  // The agent's inspector lets the memory bench force a GC in it (its address is on the agent's stderr).
  const agentEnv = options.inspect ? { ...env, NODE_OPTIONS: '--inspect=127.0.0.1:0' } : env;
  const configFile = writeFarmConfig(dir, {
    servers: [hub.url],
    agentId: BENCH_AGENT_ID,
    token: await hub.agentToken(BENCH_AGENT_ID),
    services: { [SERVICE]: `127.0.0.1:${targetPort}` },
    tunnel: { direct: options.direct },
  });
  const agent = await startHeadlessAgent({ configFile, dataDir, env: agentEnv, timeoutMs: 60_000 });
  const clientTokenFile = path.join(dir, 'client-token');
  fs.writeFileSync(
    clientTokenFile,
    await mintToken(BENCH_SECRET, { role: 'client', clientName: 'bench', agents: [BENCH_AGENT_ID] }),
  );
  const port = await freeLoopbackPort();
  const connect = spawnCli(
    [
      'connect',
      BENCH_AGENT_ID,
      SERVICE,
      '--hub',
      hub.url,
      '--listen',
      String(port),
      '--token-file',
      clientTokenFile,
      ...(options.direct ? [] : NO_DIRECT),
    ],
    env,
  );
  const stop = async () => {
    connect.kill('SIGTERM');
    await connect.exited;
    await agent.stop();
    await hub.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await connect.waitForOutput(/listening .* via relay/, 60_000);
    if (options.direct) await connect.waitForOutput(/now direct/, 60_000);
  } catch (error) {
    await stop();
    throw new Error(`the tunnel did not come up: ${(error as Error).message}\n${connect.stdout}${connect.stderr}`);
  }
  return { port, pids: [connect.proc.pid ?? 0, hub.pid, agent.pid], hub, agent, connect, dir, stop };
}

/** The agent's inspector address, when the rig was started with `inspect`. */
export function agentInspectorUrl(rig: TunnelRig): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(rig.agent.cli.stderr)?.[1];
}

/** FarmLink's tunnel, by path. The relay passes three processes (connect, hub, agent); direct two. */
export const TUNNEL_PIPES: PipeSetup[] = [
  {
    name: 'relay',
    label: 'FarmLink tunnel, relay',
    hops: 3,
    start: (port) => startTunnelRig(port, { direct: false }),
  },
  {
    name: 'direct',
    label: 'FarmLink tunnel, direct (WebRTC)',
    hops: 2,
    start: (port) => startTunnelRig(port, { direct: true }),
  },
];
