import { parseArgs } from 'node:util';
import type { ConnectionTiming } from '../../agent/connection/connection.js';

export interface BenchOptions {
  /** Fleet sizes for the hub load test. */
  agents: number[];
  /** Fleet sizes for the failover test. */
  failoverAgents: number[];
  scenarios: FailoverScenario[];
  windowS: number;
  warmupS: number;
  heartbeatS: number;
  pingS: number;
  /** Load-test start modes: agents started per second, 0 = every agent at once. */
  rampRates: number[];
  /** Failover: agents started per second while registering them on A (not measured). */
  setupRate: number;
  perProcess: number;
  perAddress: number;
  /** Extra `farmlink hub` flags, appended last so they win. */
  hubArgs: string[];
  /** The farmlink CLI the hubs run: the build by default; another path compares a changed hub. */
  hubBin: string | undefined;
  readme: boolean;
}

export const SCENARIOS = ['kill', 'drain', 'refused'] as const;
export type FailoverScenario = (typeof SCENARIOS)[number];

export const USAGE = `Options (times in seconds):
  --agents LIST           fleet sizes for the load test            [1000,5000,10000]
  --failover-agents LIST  fleet sizes for the failover test        [10 and the --agents sizes]
  --scenarios LIST        failover scenarios: kill,drain,refused   [all]
  --window S              heartbeat RTT / CPU measurement window   [20]
  --warmup S              wait after all registered, before the window [10]
  --heartbeat S           agents' heartbeat interval               [5]
  --ping S                agents' WebSocket ping interval          [5]
  --ramp-rates LIST       load test start modes, agents started per second;
                          0 = all at once; one load run per value [0,500]
  --setup-rate N          failover: agents started per second to register them on A [1000]
  --per-proc N            agents per client worker process         [5000]
  --per-address N         agents per 127.0.x.y source address      [2000]
  --hub-arg FLAG          extra farmlink hub flag, repeatable (e.g. --hub-arg=--broadcast-interval=0)
  --hub-bin PATH          farmlink CLI to run hubs from (A/B a changed hub) [dist/bin/farmlink.js]
  --no-readme             run-all: do not rewrite bench/README.md
`;

function list(flag: string, value: string, min = 1): number[] {
  const out = value.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < min))
    throw new Error(`--${flag}: expected whole numbers like 1000,5000, got "${value}"`);
  return out;
}

function positive(flag: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${flag}: expected a number ≥ ${min}, got "${value}"`);
  return n;
}

export function parseBenchOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowNegative: true,
    options: {
      agents: { type: 'string' },
      'failover-agents': { type: 'string' },
      scenarios: { type: 'string' },
      window: { type: 'string' },
      warmup: { type: 'string' },
      heartbeat: { type: 'string' },
      ping: { type: 'string' },
      'ramp-rates': { type: 'string' },
      'setup-rate': { type: 'string' },
      'per-proc': { type: 'string' },
      'per-address': { type: 'string' },
      'hub-arg': { type: 'string', multiple: true },
      'hub-bin': { type: 'string' },
      readme: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const agents = values.agents ? list('agents', values.agents) : [1000, 5000, 10_000];
  const scenarios = (values.scenarios ?? SCENARIOS.join(',')).split(',').map((s) => s.trim());
  for (const s of scenarios)
    if (!(SCENARIOS as readonly string[]).includes(s))
      throw new Error(`--scenarios: unknown "${s}" (expected ${SCENARIOS.join(', ')})`);
  return {
    agents,
    // 10 agents: what one agent's failover costs when the client process is not the bottleneck.
    failoverAgents: values['failover-agents']
      ? list('failover-agents', values['failover-agents'])
      : [...new Set([10, ...agents])],
    setupRate: positive('setup-rate', values['setup-rate'], 1000, 1),
    scenarios: scenarios as FailoverScenario[],
    windowS: positive('window', values.window, 20, 1),
    warmupS: positive('warmup', values.warmup, 10),
    heartbeatS: positive('heartbeat', values.heartbeat, 5, 0.1),
    pingS: positive('ping', values.ping, 5, 0.1),
    rampRates: values['ramp-rates'] ? list('ramp-rates', values['ramp-rates'], 0) : [0, 500],
    perProcess: positive('per-proc', values['per-proc'], 5000, 1),
    perAddress: positive('per-address', values['per-address'], 2000, 1),
    hubArgs: values['hub-arg'] ?? [],
    hubBin: values['hub-bin'],
    readme: values.readme ?? true,
  };
}

/**
 * The agent's default timings, with heartbeat and ping brought down so a bounded run sees thousands
 * of round trips; the dead and ping timeouts keep the defaults' ratios (3× and 1× the interval).
 */
export function benchTiming(options: BenchOptions): ConnectionTiming {
  const heartbeat = options.heartbeatS * 1000;
  const ping = options.pingS * 1000;
  return {
    connectTimeoutMs: 30_000,
    registrationTimeoutMs: 15_000,
    heartbeatIntervalMs: heartbeat,
    deadTimeoutMs: 3 * heartbeat,
    pingIntervalMs: ping,
    pingTimeoutMs: ping,
    stableAfterMs: 60_000,
    initialReconnectDelayMs: 1000,
    maxReconnectDelayMs: 60_000,
    reconnectJitter: 0.2,
    closeTimeoutMs: 2000,
  };
}

/** Hub flags for a bench hub: room for the fleet, limits well above what the bench sends. */
export function hubArgs(agents: number, options: BenchOptions, extra: string[] = []): string[] {
  return [
    '--max-connections',
    String(Math.max(20_000, agents * 2)),
    '--rate',
    '50',
    '--burst',
    '200',
    ...extra,
    ...options.hubArgs,
  ];
}
