/**
 * Registration cost against the floor: a bare `ws` server doing the least the job needs
 * (bench/floor-server.ts: upgrade, HS256 check, hello validated, registered, heartbeat acks) and
 * the hub, side by side in several rounds of one run: each round a fresh process of each and a
 * fleet of its own for each, the same size, started at the same moment, so outside load (the
 * machine is shared) falls on both. Per server: CPU per registration (utime+stime from /proc, from
 * the first dial to its last registration — CPU time, not wall time) and RSS and JS heap per held
 * connection after a forced full GC. Per round the hub's ratio to the floor; the summary gives the
 * median of those ratios.
 *
 *   node dist/bench/registration.js --agents 5000 --setup-rate 1000 --rounds 5
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { toAgentEndpoint } from '../protocol/server-url.js';
import type { ProtocolModeSetting } from '../protocol/config.js';
import { takeAddresses } from './lib/addresses.js';
import { BENCH_SECRET, startBenchHub } from './lib/bench-hub.js';
import { stopChild, track } from './lib/children.js';
import { Fleet, agentSpecs } from './lib/fleet.js';
import { Inspector, type HeapReading } from './lib/inspector.js';
import { num, table } from './lib/markdown.js';
import { USAGE, benchTiming, hubArgs, parseBenchOptions, type BenchOptions } from './lib/options.js';
import { CpuMeter } from './lib/proc.js';
import { profileBreakdown, type CpuProfile } from './lib/profile-breakdown.js';
import { sleep, waitFor } from './lib/time.js';

const HUB_ID = 'registration';
const MODES: readonly ProtocolModeSetting[] = ['auto', 'enhanced', 'legacy'];

export const REGISTRATION_USAGE = `Usage: node dist/bench/registration.js [--agents LIST] [--setup-rate N] [--rounds N]
       [--mode auto|enhanced|legacy] [--profile DIR] [--hub-arg FLAG]… [--hub-bin PATH]
  --rounds N              rounds of floor and hub side by side          [5]
  --mode M                the agents' protocol.mode                     [auto: enhanced with the hub]
  --profile DIR           write a CPU profile of each server's registration phase to DIR,
                          and print where the hub's CPU went (the profiler costs CPU: the
                          figures of a profiled run are not the ones to compare)
  --heap-snapshot DIR     write a heap snapshot of each server, fleet held, to DIR
  --agents LIST           fleet sizes (each server gets its own fleet)  [2000]
  --setup-rate N          agents started per second                     [1000]
Common bench options:
${USAGE}`;

export interface RegistrationResult {
  target: 'floor' | 'hub';
  round: number;
  agents: number;
  registered: number;
  cpuMsPerRegistration: number;
  rssKbPerConnection: number;
  heapKbPerConnection: number;
  profile?: CpuProfile;
}

interface RegistrationOptions {
  rounds: number;
  mode: ProtocolModeSetting;
  profileDir: string | undefined;
  heapDir: string | undefined;
  bench: BenchOptions;
}

const log = (line: string) => process.stderr.write(`[registration] ${line}\n`);

interface Target {
  pid: number;
  url: string;
  inspectorUrl: string;
  /** Warnings and errors the server logged, by kind (the hub's; none for the floor, which logs nothing). */
  problems(): Map<string, number>;
  stop(): Promise<void>;
}

async function startFloor(): Promise<Target> {
  const script = path.join(import.meta.dirname, 'floor-server.js');
  const args = ['--inspect=127.0.0.1:0', script, '--port', '0', '--secret', BENCH_SECRET, '--hub-id', HUB_ID];
  const proc = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
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
    inspectorUrl,
    problems: () => new Map(),
    stop: () => stopChild(proc, 'SIGKILL', 3000),
  };
}

async function startHubTarget(agents: number, options: BenchOptions): Promise<Target> {
  const hub = await startBenchHub({
    hubId: HUB_ID,
    args: hubArgs(agents, options),
    inspect: true,
    bin: options.hubBin,
  });
  const inspectorUrl = hub.inspectorUrl();
  if (!inspectorUrl) throw new Error('the hub has no inspector address');
  return { pid: hub.pid, url: hub.url, inspectorUrl, problems: () => hub.problemCounts, stop: () => hub.kill() };
}

async function withInspector<T>(url: string, use: (inspector: Inspector) => Promise<T>): Promise<T> {
  const inspector = await Inspector.connect(url);
  try {
    return await use(inspector);
  } finally {
    inspector.close();
  }
}

const memoryAfterGc = (url: string): Promise<HeapReading> => withInspector(url, (i) => i.memoryAfterGc());

interface Run {
  target: 'floor' | 'hub';
  server: Target;
  fleet?: Fleet;
  profiler?: Inspector | undefined;
  baseline?: HeapReading;
}

/**
 * One round: the floor and the hub each get a fresh process and a fleet of their own, started at
 * the same moment, so whatever else loads the machine meanwhile loads both. Each server's CPU is
 * counted from the start to its own last registration; memory after a forced full GC, once the
 * fleets are held.
 */
export async function runRound(
  round: number,
  agents: number,
  options: RegistrationOptions,
): Promise<RegistrationResult[]> {
  const { bench } = options;
  const runs: Run[] = [];
  try {
    runs.push({ target: 'floor', server: await startFloor() });
    runs.push({ target: 'hub', server: await startHubTarget(agents, bench) });
    // Neither always first where an order is unavoidable.
    if (round % 2 === 0) runs.reverse();
    await sleep(1000);
    for (const run of runs) {
      run.baseline = await memoryAfterGc(run.server.inspectorUrl);
      const specs = await agentSpecs(agents, takeAddresses(agents, bench.perAddress), bench.perAddress);
      run.fleet = await Fleet.spawn(specs, bench.perProcess);
      if (options.profileDir) {
        const profiler = await Inspector.connect(run.server.inspectorUrl);
        run.profiler = profiler;
        await profiler.call('Profiler.enable');
        await profiler.call('Profiler.setSamplingInterval', { interval: 200 });
        await profiler.call('Profiler.start');
      }
    }
    const rampMs = (agents / bench.setupRate) * 1000;
    const measured = runs.map(async (run) => {
      const cpu = new CpuMeter([run.server.pid]);
      run.fleet!.start([toAgentEndpoint(run.server.url)], benchTiming(bench), rampMs, { mode: options.mode });
      await run.fleet!.allConnectedOn(0, 60_000 + agents * 6);
      const [cpuMs = Number.NaN] = cpu.used();
      const registered = run.fleet!.connectedOn(0);
      if (registered < agents) {
        log(
          `round ${round}, ${run.target}: only ${registered}/${agents} registered in time; agents' phases ` +
            `${JSON.stringify(run.fleet!.phases())}, server problems ${JSON.stringify([...run.server.problems()])}`,
        );
      }
      return { cpuMs, registered };
    });
    const figures = await Promise.all(measured);
    const results: RegistrationResult[] = [];
    for (const [i, run] of runs.entries()) {
      let profile: CpuProfile | undefined;
      if (run.profiler) {
        profile = ((await run.profiler.call('Profiler.stop')) as { profile: CpuProfile }).profile;
        run.profiler.close();
        run.profiler = undefined;
        const file = path.join(options.profileDir!, `${run.target}-${agents}-round${round}.cpuprofile`);
        writeFileSync(file, JSON.stringify(profile));
        log(`CPU profile: ${file}`);
      }
      const { cpuMs, registered } = figures[i]!;
      results.push({
        target: run.target,
        round,
        agents,
        registered,
        cpuMsPerRegistration: cpuMs / registered,
        rssKbPerConnection: Number.NaN,
        heapKbPerConnection: Number.NaN,
        ...(profile ? { profile } : {}),
      });
    }
    await sleep(3000);
    for (const [i, run] of runs.entries()) {
      const end = await memoryAfterGc(run.server.inspectorUrl);
      if (options.heapDir) {
        const file = path.join(options.heapDir, `${run.target}-${agents}-round${round}.heapsnapshot`);
        await withInspector(run.server.inspectorUrl, (i) =>
          i.call('Runtime.evaluate', {
            expression: `process.getBuiltinModule('node:v8').writeHeapSnapshot(${JSON.stringify(file)})`,
          }),
        );
        log(`heap snapshot: ${file}`);
      }
      const result = results[i]!;
      result.rssKbPerConnection = (end.rssKb - run.baseline!.rssKb) / result.registered;
      result.heapKbPerConnection = (end.heapUsedKb - run.baseline!.heapUsedKb) / result.registered;
      log(
        `round ${round}, ${run.target}: ${result.registered}/${agents} registered, ` +
          `${num(result.cpuMsPerRegistration, 3)} ms CPU each, ${num(result.rssKbPerConnection, 1)} KB RSS each`,
      );
    }
    return results;
  } finally {
    for (const run of runs) run.profiler?.close();
    await Promise.all(runs.map((run) => run.fleet?.stop() ?? Promise.resolve()));
    await Promise.all(runs.map((run) => run.server.stop()));
  }
}

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const ratio = (value: number) => (Number.isFinite(value) ? `${num(value, 2)}×` : 'n/a');

/** Every run, with each round's hub ÷ floor. */
export function roundsTable(results: RegistrationResult[]): string {
  const rows: string[][] = [];
  for (const hub of results.filter((r) => r.target === 'hub')) {
    const floor = results.find((r) => r.target === 'floor' && r.round === hub.round && r.agents === hub.agents);
    if (!floor) continue;
    rows.push([
      num(hub.agents),
      String(hub.round),
      `${num(floor.registered)} / ${num(hub.registered)}`,
      `${num(floor.cpuMsPerRegistration, 3)} / ${num(hub.cpuMsPerRegistration, 3)}`,
      ratio(hub.cpuMsPerRegistration / floor.cpuMsPerRegistration),
      `${num(floor.rssKbPerConnection, 1)} / ${num(hub.rssKbPerConnection, 1)}`,
      ratio(hub.rssKbPerConnection / floor.rssKbPerConnection),
      `${num(floor.heapKbPerConnection, 1)} / ${num(hub.heapKbPerConnection, 1)}`,
      ratio(hub.heapKbPerConnection / floor.heapKbPerConnection),
    ]);
  }
  return table(
    [
      'agents',
      'round',
      'registered, floor / hub',
      'CPU ms per registration, floor / hub',
      '× floor',
      'RSS KB per connection, floor / hub',
      '× floor',
      'heap KB per connection, floor / hub',
      '× floor',
    ],
    rows,
  );
}

/** Per fleet size: the median of each figure and the median of the per-round ratios. */
export function summaryTable(results: RegistrationResult[]): string {
  const rows: string[][] = [];
  for (const agents of [...new Set(results.map((r) => r.agents))]) {
    const of = (target: 'floor' | 'hub') => results.filter((r) => r.agents === agents && r.target === target);
    // A round where either fleet did not all register measured a stalled machine, not the servers.
    const complete = (r: RegistrationResult) =>
      results.filter((x) => x.round === r.round && x.agents === agents).every((x) => x.registered === x.agents);
    const floors = of('floor').filter(complete);
    const hubs = of('hub').filter(complete);
    const ratios = (pick: (r: RegistrationResult) => number) =>
      median(
        hubs.map((hub) => {
          const floor = floors.find((f) => f.round === hub.round);
          return floor ? pick(hub) / pick(floor) : Number.NaN;
        }),
      );
    const figure = (pick: (r: RegistrationResult) => number, digits: number) =>
      `${num(median(floors.map(pick)), digits)} / ${num(median(hubs.map(pick)), digits)}`;
    const cpu = (r: RegistrationResult) => r.cpuMsPerRegistration;
    const rss = (r: RegistrationResult) => r.rssKbPerConnection;
    const heap = (r: RegistrationResult) => r.heapKbPerConnection;
    rows.push([
      num(agents),
      String(hubs.length),
      figure(cpu, 3),
      ratio(ratios(cpu)),
      figure(rss, 1),
      ratio(ratios(rss)),
      figure(heap, 1),
      ratio(ratios(heap)),
    ]);
  }
  return table(
    [
      'agents',
      'complete rounds',
      'CPU ms per registration, floor / hub (median)',
      'CPU × floor (median of rounds)',
      'RSS KB per connection, floor / hub',
      'RSS × floor',
      'heap KB per connection, floor / hub',
      'heap × floor',
    ],
    rows,
  );
}

export function parseRegistrationOptions(argv: string[]): RegistrationOptions {
  const own = parseArgs({
    args: argv,
    strict: false,
    options: {
      rounds: { type: 'string' },
      mode: { type: 'string' },
      profile: { type: 'string' },
      'heap-snapshot': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
  if (own.help) {
    process.stdout.write(REGISTRATION_USAGE);
    process.exit(0);
  }
  // What is left is the common bench options (strictly parsed there).
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const name = /^--(rounds|mode|profile|heap-snapshot)(=|$)/.exec(arg);
    if (!name) rest.push(arg);
    else if (name[2] !== '=') i += 1;
  }
  const bench = parseBenchOptions(rest);
  if (!rest.some((a) => a.startsWith('--agents'))) bench.agents = [2000];
  const rounds = Number(own.rounds ?? 5);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds: expected a whole number ≥ 1, got "${String(own.rounds)}"`);
  const mode = (own.mode ?? 'auto') as ProtocolModeSetting;
  if (!MODES.includes(mode)) throw new Error(`--mode: expected one of ${MODES.join(', ')}, got "${String(own.mode)}"`);
  const profileDir = typeof own.profile === 'string' ? path.resolve(own.profile) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const heapDir = typeof own['heap-snapshot'] === 'string' ? path.resolve(own['heap-snapshot']) : undefined;
  if (heapDir) mkdirSync(heapDir, { recursive: true });
  return { rounds, mode, profileDir, heapDir, bench };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const options = parseRegistrationOptions(argv);
  const results: RegistrationResult[] = [];
  const startedAt = new Date();
  for (const agents of options.bench.agents) {
    for (let round = 1; round <= options.rounds; round += 1) results.push(...(await runRound(round, agents, options)));
  }
  const out = [
    `Registration cost, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC: ` +
      `\`node dist/bench/registration.js ${argv.join(' ')}\` (agents in ${options.mode} mode)`,
    '',
    summaryTable(results),
    '',
    roundsTable(results),
  ];
  if (options.profileDir) {
    for (const target of ['floor', 'hub'] as const) {
      const profiles = results.filter((r) => r.target === target && r.profile).map((r) => r.profile!);
      const registered = results.filter((r) => r.target === target && r.profile).reduce((n, r) => n + r.registered, 0);
      out.push('', `Where the ${target}'s CPU went (profiled runs; ms of CPU samples per registration):`, '');
      out.push(profileBreakdown(profiles, registered));
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
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
