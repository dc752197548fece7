/**
 * Registration cost against the floor: the same fleet registers with a bare `ws` server doing the
 * least the job needs (bench/floor-server.ts: upgrade, HS256 check, hello, registered, heartbeat
 * acks) and with the hub, one after the other in one run. Per target: CPU per registration (from
 * the first dial to the last registration, /proc utime+stime) and RSS and JS heap per held
 * connection after a forced full GC; then the hub's ratio to the floor.
 *
 *   node dist/bench/registration.js --agents 5000 --setup-rate 1000
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { toAgentEndpoint } from '../protocol/server-url.js';
import type { ProtocolModeSetting } from '../protocol/config.js';
import { takeAddresses } from './lib/addresses.js';
import { BENCH_SECRET, memoryAfterGc, startBenchHub } from './lib/bench-hub.js';
import { stopChild, track } from './lib/children.js';
import { Fleet, agentSpecs } from './lib/fleet.js';
import { Inspector, type HeapReading } from './lib/inspector.js';
import { num, table } from './lib/markdown.js';
import { benchTiming, hubArgs, parseBenchOptions } from './lib/options.js';
import { CpuMeter } from './lib/proc.js';
import { sleep, waitFor } from './lib/time.js';

export interface RegistrationResult {
  target: string;
  agents: number;
  registered: number;
  cpuMsPerRegistration: number;
  rssKbPerConnection: number;
  heapKbPerConnection: number;
}

const log = (line: string) => process.stderr.write(`[registration] ${line}\n`);

interface Target {
  pid: number;
  url: string;
  gc(): Promise<HeapReading>;
  stop(): Promise<void>;
}

async function startFloor(): Promise<Target> {
  const script = path.join(import.meta.dirname, 'floor-server.js');
  const proc = track(
    spawn(process.execPath, ['--inspect=127.0.0.1:0', script, '--port', '0', '--secret', BENCH_SECRET], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  await waitFor('the floor server listening', () => stdout.includes('"event":"listening"'), 15_000, 20);
  const port = (JSON.parse(stdout.split('\n').find((l) => l.includes('listening'))!) as { port: number }).port;
  const inspectorUrl = /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1];
  if (!inspectorUrl) throw new Error(`no inspector address from the floor server: ${stderr}`);
  return {
    pid: proc.pid!,
    url: `http://127.0.0.1:${port}`,
    gc: async () => {
      const inspector = await Inspector.connect(inspectorUrl);
      try {
        return await inspector.memoryAfterGc();
      } finally {
        inspector.close();
      }
    },
    stop: () => stopChild(proc, 'SIGKILL', 3000),
  };
}

async function startHubTarget(agents: number, argv: string[]): Promise<Target> {
  const options = parseBenchOptions(argv);
  const hub = await startBenchHub({
    hubId: 'registration',
    args: hubArgs(agents, options),
    inspect: true,
    bin: options.hubBin,
  });
  return { pid: hub.pid, url: hub.url, gc: () => memoryAfterGc(hub), stop: () => hub.kill() };
}

export async function runRegistration(
  target: 'floor' | 'hub',
  mode: ProtocolModeSetting,
  agents: number,
  argv: string[] = [],
): Promise<RegistrationResult> {
  const options = parseBenchOptions(argv);
  const server = target === 'floor' ? await startFloor() : await startHubTarget(agents, argv);
  let fleet: Fleet | undefined;
  try {
    await sleep(1000);
    const baseline = await server.gc();
    const specs = await agentSpecs(agents, takeAddresses(agents, options.perAddress), options.perAddress);
    fleet = await Fleet.spawn(specs, options.perProcess);
    const cpu = new CpuMeter([server.pid]);
    fleet.start([toAgentEndpoint(server.url)], benchTiming(options), (agents / options.setupRate) * 1000, { mode });
    await fleet.allConnectedOn(0, 60_000 + agents * 6);
    const [cpuMs = Number.NaN] = cpu.used();
    const registered = fleet.connectedOn(0);
    await sleep(3000);
    const end = await server.gc();
    const label = target === 'floor' ? 'bare ws floor' : `hub (${mode} agents)`;
    log(`${label}: ${registered}/${agents} registered`);
    return {
      target: label,
      agents,
      registered,
      cpuMsPerRegistration: cpuMs / registered,
      rssKbPerConnection: (end.rssKb - baseline.rssKb) / registered,
      heapKbPerConnection: (end.heapUsedKb - baseline.heapUsedKb) / registered,
    };
  } finally {
    await fleet?.stop();
    await server.stop();
  }
}

export function registrationTable(results: RegistrationResult[]): string {
  const floor = results.find((r) => r.target === 'bare ws floor');
  const ratio = (value: number, base: number | undefined) => (base ? `${num(value / base, 2)}×` : '—');
  return table(
    [
      'server',
      'agents',
      'CPU ms per registration',
      '× floor',
      'RSS KB per connection',
      '× floor',
      'heap KB per connection',
      '× floor',
    ],
    results.map((r) => [
      r.target,
      num(r.agents),
      num(r.cpuMsPerRegistration, 3),
      ratio(r.cpuMsPerRegistration, floor?.cpuMsPerRegistration),
      num(r.rssKbPerConnection, 1),
      ratio(r.rssKbPerConnection, floor?.rssKbPerConnection),
      num(r.heapKbPerConnection, 1),
      ratio(r.heapKbPerConnection, floor?.heapKbPerConnection),
    ]),
  );
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const options = parseBenchOptions(argv);
  const results: RegistrationResult[] = [];
  for (const agents of options.agents) {
    results.push(await runRegistration('floor', 'legacy', agents, argv));
    results.push(await runRegistration('hub', 'legacy', agents, argv));
    results.push(await runRegistration('hub', 'auto', agents, argv));
  }
  process.stdout.write(`${registrationTable(results)}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
