/**
 * Issue #2, load: N real AgentConnections (in worker processes) against one `farmlink hub`
 * process. Measures connect rate, heartbeat round trips, hub RSS per connection and hub CPU.
 *
 *   node dist/bench/hub-load.js --agents 1000,5000,10000 --window 20
 */
import { pathToFileURL } from 'node:url';
import { toAgentEndpoint } from '../protocol/server-url.js';
import { takeAddresses } from './lib/addresses.js';
import { Fleet, agentSpecs } from './lib/fleet.js';
import { memoryAfterGc, startBenchHub } from './lib/bench-hub.js';
import type { HeapReading } from './lib/inspector.js';
import { counts, ms, num, table } from './lib/markdown.js';
import { benchTiming, hubArgs, parseBenchOptions, type BenchOptions } from './lib/options.js';
import { CpuMeter, rssKb, tcpCounters, tcpTrouble } from './lib/proc.js';
import { summarize, type Summary } from './lib/stats.js';
import { sleep } from './lib/time.js';

export interface LoadResult {
  agents: number;
  /** Agents started per second; 0 = all at once. */
  rampRate: number;
  clientProcesses: number;
  registered: number;
  /** First dial to last registration. */
  connectSpanMs: number;
  connectLatency: Summary;
  hubCpuConnectPct: number;
  clientCpuConnectPct: number;
  /** CPU from first dial to all registered, per agent. */
  hubCpuMsPerConnect: number;
  clientCpuMsPerConnect: number;
  rtt: Summary;
  /** Round trips over SLOW_RTT_MS, by whole second since the hub started (its timers' phase). */
  slowBySecond: Map<number, number>;
  rssBaselineKb: number;
  rssSettledKb: number;
  rssEndKb: number;
  /** After a forced full GC in the hub, before the agents connect and after the window. */
  gcBaseline: HeapReading;
  gcEnd: HeapReading;
  hubCpuWindowPct: number;
  /** Sum over the client workers, % of one core. */
  clientCpuWindowPct: number;
  clientLoopDelayP99Ms: number;
  clientLoopDelayMaxMs: number;
  clientRssKb: number;
  hubAgentsGauge: number;
  /** Transitions other than the expected connecting → registering → connected, from start to the end of the window. */
  unexpected: Record<string, number>;
  hubProblems: Record<string, number>;
  /** Growth of the kernel's TCP trouble counters while connecting and during the window. */
  tcpConnect: Record<string, number>;
  tcpWindow: Record<string, number>;
  hubCommand: string;
}

const EXPECTED = new Set(['start', 'socket_open', 'registered']);

export const startMode = (rate: number) => (rate > 0 ? `ramp ${num(rate)}/s` : 'all at once');

export async function runLoad(
  agents: number,
  rampRate: number,
  options: BenchOptions,
  log: (line: string) => void,
): Promise<LoadResult> {
  const rampMs = rampRate > 0 ? (agents / rampRate) * 1000 : 0;
  const addresses = takeAddresses(agents, options.perAddress);
  const specs = await agentSpecs(agents, addresses, options.perAddress);
  const hub = await startBenchHub({
    hubId: `load-${agents}`,
    args: hubArgs(agents, options),
    inspect: true,
    bin: options.hubBin,
  });
  let fleet: Fleet | undefined;
  try {
    fleet = await Fleet.spawn(specs, options.perProcess);
    // Baseline after start-up has settled: modules loaded, listening, nothing connected, and the
    // start-up garbage collected (else it would make every later reading look smaller).
    await sleep(1000);
    const gcBaseline = await memoryAfterGc(hub);
    const rssBaselineKb = rssKb(hub.pid);

    log(`load ${agents}: starting ${agents} agents in ${fleet.pids.length} worker(s), ${startMode(rampRate)}`);
    const connectCpu = new CpuMeter([hub.pid, ...fleet.pids]);
    const tcp0 = tcpCounters();
    const t0 = Date.now();
    fleet.start([toAgentEndpoint(hub.url)], benchTiming(options), rampMs);
    const complete = await fleet.allConnectedOn(0, 30_000 + agents * 6 + rampMs);
    const [hubCpuConnectPct = NaN, ...clientConnect] = connectCpu.percent();
    const [hubConnectMs = NaN, ...clientConnectMs] = connectCpu.used();
    const tcpConnect = tcpTrouble(tcp0, tcpCounters());
    const connected = await fleet.timeline(t0, 0);
    const registered = connected.registeredAt.filter(Number.isFinite).length;
    if (!complete)
      log(
        `load ${agents}: only ${registered}/${agents} registered in time (phases ${JSON.stringify(fleet.phases())}); measuring those`,
      );
    const firstDial = Math.min(...connected.startedAt);
    const lastRegistered = Math.max(...connected.registeredAt.filter(Number.isFinite));
    const latency = connected.registeredAt.map((t, i) => t - connected.startedAt[i]!);

    const warmupMs = Math.max(options.warmupS * 1000, options.heartbeatS * 1000);
    log(
      `load ${agents}: ${registered} registered in ${((lastRegistered - firstDial) / 1000).toFixed(2)} s; ` +
        `warm-up ${warmupMs / 1000} s, then a ${options.windowS} s window`,
    );
    await sleep(warmupMs);
    const rssSettledKb = rssKb(hub.pid);

    const windowCpu = new CpuMeter([hub.pid, ...fleet.pids]);
    const tcp1 = tcpCounters();
    fleet.openWindow();
    await sleep(options.windowS * 1000);
    const window = await fleet.closeWindow();
    const [hubCpuWindowPct = NaN, ...clientWindow] = windowCpu.percent();
    const tcpWindow = tcpTrouble(tcp1, tcpCounters());
    const rssEndKb = rssKb(hub.pid);
    const hubAgentsGauge = await hub.metric('farmlink_agents_connected');
    // Last: the forced GC pauses the hub, so it comes after everything timed.
    const gcEnd = await memoryAfterGc(hub);
    const after = await fleet.timeline(t0, 0);
    const unexpected = Object.fromEntries(Object.entries(after.reasons).filter(([k]) => !EXPECTED.has(k)));

    return {
      agents,
      rampRate,
      clientProcesses: fleet.pids.length,
      registered,
      connectSpanMs: lastRegistered - firstDial,
      connectLatency: summarize(latency),
      hubCpuConnectPct,
      clientCpuConnectPct: clientConnect.reduce((a, b) => a + b, 0),
      hubCpuMsPerConnect: hubConnectMs / agents,
      clientCpuMsPerConnect: clientConnectMs.reduce((a, b) => a + b, 0) / agents,
      rtt: summarize(window.rtt),
      slowBySecond: slowSeconds(window.rtt, window.rttAt, hub.readyAt),
      rssBaselineKb,
      rssSettledKb,
      rssEndKb,
      gcBaseline,
      gcEnd,
      hubCpuWindowPct,
      clientCpuWindowPct: clientWindow.reduce((a, b) => a + b, 0),
      clientLoopDelayP99Ms: Math.max(...window.loopDelay.map((d) => d.p99)),
      clientLoopDelayMaxMs: Math.max(...window.loopDelay.map((d) => d.max)),
      clientRssKb: fleet.pids.map(rssKb).reduce((a, b) => a + b, 0),
      hubAgentsGauge,
      unexpected,
      hubProblems: Object.fromEntries(hub.problemCounts),
      tcpConnect,
      tcpWindow,
      hubCommand: hub.commandLine,
    };
  } finally {
    await fleet?.stop();
    await hub.kill();
  }
}

export async function runHubLoad(options: BenchOptions, log: (line: string) => void): Promise<LoadResult[]> {
  const results: LoadResult[] = [];
  for (const rate of options.rampRates)
    for (const n of options.agents) results.push(await runLoad(n, rate, options, log));
  return results;
}

const SLOW_RTT_MS = 50;

function slowSeconds(rtt: Float64Array, at: Float64Array, hubStart: number): Map<number, number> {
  const out = new Map<number, number>();
  for (let i = 0; i < rtt.length; i += 1) {
    if (rtt[i]! <= SLOW_RTT_MS) continue;
    const second = Math.floor((at[i]! - hubStart) / 1000);
    out.set(second, (out.get(second) ?? 0) + 1);
  }
  return out;
}

/** "412 in 3 s: 30 s (380), 40 s (20), 41 s (12)" — seconds since the hub started, busiest first. */
function describeSlow(r: LoadResult): string {
  const total = [...r.slowBySecond.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return 'none';
  const top = [...r.slowBySecond.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6);
  return `${num(total)} in ${r.slowBySecond.size} s: ${top.map(([s, n]) => `${s} s (${num(n)})`).join(', ')}${r.slowBySecond.size > top.length ? ', …' : ''}`;
}

const perConnKb = (r: LoadResult, after: number) => (after - r.rssBaselineKb) / r.registered;

export function loadTables(results: LoadResult[]): string {
  const connect = table(
    [
      'agents',
      'start',
      'client procs',
      'registered',
      'first dial → all registered',
      'connect rate',
      'per-agent dial → registered p50 / p99 / max',
      'hub CPU while connecting (% of a core / ms per agent)',
      'client CPU while connecting (% / ms per agent)',
    ],
    results.map((r) => [
      num(r.agents),
      startMode(r.rampRate),
      String(r.clientProcesses),
      num(r.registered),
      `${(r.connectSpanMs / 1000).toFixed(2)} s`,
      `${num(r.registered / (r.connectSpanMs / 1000))} /s`,
      `${ms(r.connectLatency.p50)} / ${ms(r.connectLatency.p99)} / ${ms(r.connectLatency.max)} ms`,
      `${num(r.hubCpuConnectPct)} % / ${num(r.hubCpuMsPerConnect, 2)} ms`,
      `${num(r.clientCpuConnectPct)} % / ${num(r.clientCpuMsPerConnect, 2)} ms`,
    ]),
  );
  const steady = table(
    [
      'agents',
      'start',
      'heartbeat RTT p50 / p90 / p99 / max',
      'RTT samples',
      'hub RSS baseline → settled → end',
      'hub RSS per connection (settled / end)',
      'after a forced GC: hub RSS per connection / JS heap per connection',
      'hub CPU',
      'client CPU (all workers)',
      'client event-loop delay p99 / max',
      'client RSS per agent',
    ],
    results.map((r) => [
      num(r.agents),
      startMode(r.rampRate),
      `${ms(r.rtt.p50)} / ${ms(r.rtt.p90)} / ${ms(r.rtt.p99)} / ${ms(r.rtt.max)} ms`,
      num(r.rtt.count),
      `${num(r.rssBaselineKb / 1024, 1)} → ${num(r.rssSettledKb / 1024, 1)} → ${num(r.rssEndKb / 1024, 1)} MiB`,
      `${num(perConnKb(r, r.rssSettledKb), 1)} / ${num(perConnKb(r, r.rssEndKb), 1)} KiB`,
      `${num((r.gcEnd.rssKb - r.gcBaseline.rssKb) / r.registered, 1)} / ${num((r.gcEnd.heapUsedKb - r.gcBaseline.heapUsedKb) / r.registered, 1)} KiB`,
      `${num(r.hubCpuWindowPct)} %`,
      `${num(r.clientCpuWindowPct)} %`,
      `${ms(r.clientLoopDelayP99Ms)} / ${ms(r.clientLoopDelayMaxMs)} ms`,
      `${num(r.clientRssKb / r.registered, 1)} KiB`,
    ]),
  );
  const health = table(
    [
      'agents',
      'start',
      `RTTs over ${SLOW_RTT_MS} ms, by second since the hub started (the hub broadcasts every 10 s from its ` +
        `start; its ping sweep is spread evenly over each 20 s)`,
      'hub gauge farmlink_agents_connected at end',
      'unexpected agent transitions',
      'hub warnings/errors',
      'kernel TCP counters while connecting',
      'kernel TCP counters in the window',
    ],
    results.map((r) => [
      num(r.agents),
      startMode(r.rampRate),
      describeSlow(r),
      num(r.hubAgentsGauge),
      counts(r.unexpected),
      counts(r.hubProblems),
      counts(r.tcpConnect),
      counts(r.tcpWindow),
    ]),
  );
  return `#### Connecting\n\n${connect}\n\n#### Steady state (measurement window)\n\n${steady}\n\n#### Sanity\n\n${health}`;
}

export function loadTargets(results: LoadResult[]): string[][] {
  const rows: string[][] = [];
  for (const r of results) {
    const perConn = perConnKb(r, r.rssEndKb);
    const what = `${num(r.agents)} agents, ${startMode(r.rampRate)}`;
    rows.push([`heartbeat RTT p99 < 50 ms (${what})`, `${ms(r.rtt.p99)} ms`, r.rtt.p99 < 50 ? 'met' : 'not met']);
    rows.push([
      `hub RSS < 10 KB per connection (${what}, end of window)`,
      `${num(perConn, 1)} KiB`,
      perConn < 10 ? 'met' : 'not met',
    ]);
    const afterGc = (r.gcEnd.rssKb - r.gcBaseline.rssKb) / r.registered;
    rows.push([
      `hub RSS < 10 KB per connection (${what}, after a forced full GC)`,
      `${num(afterGc, 1)} KiB`,
      afterGc < 10 ? 'met' : 'not met',
    ]);
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const options = parseBenchOptions(process.argv.slice(2));
  const results = await runHubLoad(options, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(`${loadTables(results)}\n`);
  process.exit(0);
}
