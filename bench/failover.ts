/**
 * Issue #2, failover: N real AgentConnections with a primary hub A and a fallback hub B.
 *   kill    — all registered on A, then SIGKILL A: time from the kill to each agent registered on B.
 *   drain   — all registered on A, then SIGTERM A (it sends `draining`): time from the signal to each on B.
 *   refused — A's port has nothing listening: time from each agent's start (and from its refused
 *             dial) to registered on B.
 *
 *   node dist/bench/failover.js --agents 1000,10000 --scenarios kill,drain,refused
 */
import { pathToFileURL } from 'node:url';
import { toAgentEndpoint } from '../protocol/server-url.js';
import { takeAddresses } from './lib/addresses.js';
import { Fleet, agentSpecs } from './lib/fleet.js';
import type { Timeline } from './lib/fleet-protocol.js';
import { closedPort, type HubProcess } from '../test/helpers/hub-process.js';
import { startBenchHub } from './lib/bench-hub.js';
import { counts, ms, num, table } from './lib/markdown.js';
import { benchTiming, hubArgs, parseBenchOptions, type BenchOptions, type FailoverScenario } from './lib/options.js';
import { CpuMeter, tcpCounters, tcpTrouble } from './lib/proc.js';
import { summarize, type Summary } from './lib/stats.js';
import { sleep, withTimeout } from './lib/time.js';

export interface FailoverResult {
  scenario: FailoverScenario;
  agents: number;
  clientProcesses: number;
  /** Agents registered on B by the end of the wait. */
  moved: number;
  /** Per agent: from the trigger (kill, signal, or the agent's own start) to registered on B. */
  fromTrigger: Summary;
  /** Per agent: from the agent noticing (connection lost / drain notice / refused dial) to registered on B. */
  fromDetection: Summary;
  /** Per agent: from the trigger to the agent noticing. */
  detection: Summary;
  /** How long the initial registration on A took (kill, drain), first dial to last. */
  setupSpanMs: number;
  hubBCpuPct: number;
  clientCpuPct: number;
  /** CPU spent from the trigger until all moved, divided by the agents: what one failover costs each side. */
  hubBCpuMsPerAgent: number;
  clientCpuMsPerAgent: number;
  /** Transitions after the trigger other than the expected ones. */
  reasons: Record<string, number>;
  tcp: Record<string, number>;
  hubProblems: Record<string, number>;
}

const TRIGGER_TEXT: Record<FailoverScenario, string> = {
  kill: 'SIGKILL of A',
  drain: 'SIGTERM of A (drain)',
  refused: "the agent's start",
};

async function runScenario(
  scenario: FailoverScenario,
  agents: number,
  options: BenchOptions,
  log: (line: string) => void,
): Promise<FailoverResult> {
  const specs = await agentSpecs(agents, takeAddresses(agents, options.perAddress), options.perAddress);
  // A's drain must end by itself once the agents have left, not after the 30-minute default.
  const hubA =
    scenario === 'refused'
      ? undefined
      : await startBenchHub({
          hubId: `A-${scenario}-${agents}`,
          args: hubArgs(agents, options, ['--drain-timeout', '60']),
          bin: options.hubBin,
        });
  let hubB: HubProcess | undefined;
  let fleet: Fleet | undefined;
  try {
    hubB = await startBenchHub({
      hubId: `B-${scenario}-${agents}`,
      args: hubArgs(agents, options),
      bin: options.hubBin,
    });
    const primary = hubA ? hubA.url : `http://127.0.0.1:${await closedPort()}`;
    fleet = await Fleet.spawn(specs, options.perProcess);
    const timing = benchTiming(options);
    const waitMs = 30_000 + agents * 6 + (agents / options.setupRate) * 1000;
    let setupSpanMs = Number.NaN;

    let trigger: number;
    let tcp0: Map<string, number>;
    let cpu: CpuMeter;
    if (hubA) {
      const t0 = Date.now();
      // A ramp the hub keeps up with: a start-up storm here would only slow the set-up down.
      fleet.start([toAgentEndpoint(primary), toAgentEndpoint(hubB.url)], timing, (agents / options.setupRate) * 1000);
      if (!(await fleet.allConnectedOn(0, waitMs))) {
        throw new Error(
          `${scenario} ${agents}: only ${fleet.connectedOn(0)}/${agents} registered on A (phases ${JSON.stringify(fleet.phases())})`,
        );
      }
      const setup = await fleet.timeline(t0, 0);
      setupSpanMs = Math.max(...setup.registeredAt) - Math.min(...setup.startedAt);
      // Let the registration storm's heartbeats and retransmits die down before the failure.
      await sleep(Math.max(3000, options.heartbeatS * 1000));
      log(`${scenario} ${agents}: all on A; ${scenario === 'kill' ? 'SIGKILL' : 'SIGTERM'} A`);
      tcp0 = tcpCounters();
      cpu = new CpuMeter([hubB.pid, ...fleet.pids]);
      trigger = Date.now();
      hubA.signal(scenario === 'kill' ? 'SIGKILL' : 'SIGTERM');
    } else {
      log(`${scenario} ${agents}: starting agents with A refusing`);
      tcp0 = tcpCounters();
      cpu = new CpuMeter([hubB.pid, ...fleet.pids]);
      trigger = Date.now();
      fleet.start([toAgentEndpoint(primary), toAgentEndpoint(hubB.url)], timing, 0);
    }
    const allMoved = await fleet.allConnectedOn(1, waitMs);
    const [hubBCpuPct = NaN, ...client] = cpu.percent();
    const [hubBCpuMs = NaN, ...clientMs] = cpu.used();
    const tcp = tcpTrouble(tcp0, tcpCounters());
    const t = await fleet.timeline(trigger, 1);
    const moved = t.registeredAt.filter(Number.isFinite).length;
    if (!allMoved)
      log(
        `${scenario} ${agents}: only ${moved}/${agents} registered on B in time (phases ${JSON.stringify(fleet.phases())})`,
      );
    return {
      scenario,
      agents,
      clientProcesses: fleet.pids.length,
      moved,
      ...latencies(scenario, trigger, t),
      setupSpanMs,
      hubBCpuPct,
      clientCpuPct: client.reduce((a, b) => a + b, 0),
      hubBCpuMsPerAgent: hubBCpuMs / agents,
      clientCpuMsPerAgent: clientMs.reduce((a, b) => a + b, 0) / agents,
      reasons: t.reasons,
      tcp,
      hubProblems: Object.fromEntries([...(hubA?.problemCounts ?? []), ...hubB.problemCounts]),
    };
  } finally {
    await fleet?.stop();
    if (hubA?.alive && scenario === 'drain') {
      // The drained hub exits by itself once empty; give it a bounded moment, then make sure.
      await withTimeout('drained hub A to exit', hubA.exited, 10_000).catch(() =>
        log(`${scenario} ${agents}: hub A did not exit after its drain`),
      );
    }
    await hubA?.kill();
    await hubB?.kill();
  }
}

function latencies(scenario: FailoverScenario, trigger: number, t: Timeline) {
  const n = t.registeredAt.length;
  const fromTrigger = new Float64Array(n);
  const fromDetection = new Float64Array(n);
  const detection = new Float64Array(n);
  for (let i = 0; i < n; i += 1) {
    const start = scenario === 'refused' ? t.startedAt[i]! : trigger;
    const noticed = scenario === 'refused' ? t.refusedAt[i]! : t.leftAt[i]!;
    fromTrigger[i] = t.registeredAt[i]! - start;
    fromDetection[i] = t.registeredAt[i]! - noticed;
    detection[i] = noticed - start;
  }
  return {
    fromTrigger: summarize(fromTrigger),
    fromDetection: summarize(fromDetection),
    detection: summarize(detection),
  };
}

export async function runFailover(options: BenchOptions, log: (line: string) => void): Promise<FailoverResult[]> {
  const results: FailoverResult[] = [];
  for (const scenario of options.scenarios) {
    for (const n of options.failoverAgents) results.push(await runScenario(scenario, n, options, log));
  }
  return results;
}

const span = (s: Summary) => `${ms(s.p50)} / ${ms(s.p99)} / ${ms(s.max)} ms`;

export function failoverTables(results: FailoverResult[]): string {
  const main = table(
    [
      'scenario',
      'agents',
      'client procs',
      'registered on B',
      'trigger',
      'trigger → on B p50 / p99 / max (= all moved)',
      'agent noticed → on B p50 / p99 / max',
      'trigger → agent noticed p50 / p99 / max',
    ],
    results.map((r) => [
      r.scenario,
      num(r.agents),
      String(r.clientProcesses),
      `${num(r.moved)}/${num(r.agents)}`,
      TRIGGER_TEXT[r.scenario],
      span(r.fromTrigger),
      span(r.fromDetection),
      span(r.detection),
    ]),
  );
  const detail = table(
    [
      'scenario',
      'agents',
      'initial registration on A (first dial → last)',
      'hub B CPU (% of a core / ms per agent)',
      'client CPU, all workers (% of a core / ms per agent)',
      'agent transitions after the trigger',
      'kernel TCP counters',
      'hub warnings/errors',
    ],
    results.map((r) => [
      r.scenario,
      num(r.agents),
      Number.isFinite(r.setupSpanMs) ? `${(r.setupSpanMs / 1000).toFixed(2)} s` : '—',
      `${num(r.hubBCpuPct)} % / ${num(r.hubBCpuMsPerAgent, 2)} ms`,
      `${num(r.clientCpuPct)} % / ${num(r.clientCpuMsPerAgent, 2)} ms`,
      counts(r.reasons),
      counts(r.tcp),
      counts(r.hubProblems),
    ]),
  );
  return `${main}\n\n#### Failover details\n\n${detail}`;
}

export function failoverTargets(results: FailoverResult[]): string[][] {
  return results.map((r) => {
    const limit = r.scenario === 'drain' ? 500 : 1000;
    const what =
      r.scenario === 'drain'
        ? `< 500 ms after a drain notice`
        : r.scenario === 'kill'
          ? '< 1 s after its hub was killed'
          : '< 1 s after its hub refused';
    const s = r.scenario === 'kill' ? r.fromTrigger : r.fromDetection;
    const verdict =
      r.moved < r.agents
        ? 'not met (not all moved)'
        : s.max < limit
          ? 'met (every agent)'
          : s.p99 < limit
            ? 'met at p99, not for every agent'
            : s.p50 < limit
              ? 'met at p50 only'
              : 'not met';
    const basis =
      r.scenario === 'kill'
        ? 'from the kill'
        : r.scenario === 'drain'
          ? 'from the agent receiving the notice'
          : 'from the refused dial';
    return [
      `on the fallback ${what} (${num(r.agents)} agents; ${basis})`,
      `p99 ${ms(s.p99)} ms, max ${ms(s.max)} ms`,
      verdict,
    ];
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const options = parseBenchOptions(process.argv.slice(2));
  const results = await runFailover(options, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(`${failoverTables(results)}\n`);
  process.exit(0);
}
