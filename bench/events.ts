/**
 * Enhanced vs legacy: N real AgentConnections (with the agent's Delivery over an in-memory outbox)
 * each sending events at a steady rate to one hub whose event sink is a real Redis stream.
 * Measured per mode and fleet size: hub CPU, frames and bytes on the wire both ways, messages per
 * frame, and the end-to-end latency from an event's acceptance to its entry in the Redis stream
 * (the stream id carries Redis's clock; the event carries the agent's acceptance time, same machine).
 *
 *   node dist/bench/events.js --agents 1000,5000 --rates 1 --window 20
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { toAgentEndpoint } from '../protocol/server-url.js';
import { addModeFigures, emptyModeFigures, type ModeFigures } from '../protocol/agent-host.js';
import { takeAddresses } from './lib/addresses.js';
import { startRedis } from './cache/redis-server.js';
import { Fleet, agentSpecs } from './lib/fleet.js';
import { startBenchHub } from './lib/bench-hub.js';
import { ms, num, table } from './lib/markdown.js';
import { benchTiming, hubArgs, parseBenchOptions } from './lib/options.js';
import { CpuMeter } from './lib/proc.js';
import { summarize, type Summary } from './lib/stats.js';

type Mode = 'legacy' | 'enhanced';

export interface EventsResult {
  mode: Mode;
  agents: number;
  perAgentPerSecond: number;
  windowS: number;
  accepted: number;
  /** Entries of the window in the stream (each accepted event once, if nothing was lost). */
  inStream: number;
  undelivered: number;
  hubCpuPct: number;
  /** Agent → hub and hub → agent, per second of the window. */
  framesOutPerS: number;
  framesInPerS: number;
  messagesPerFrame: number;
  bytesOutPerS: number;
  bytesInPerS: number;
  /** Accepted → in the stream. */
  endToEnd: Summary;
  /** Enhanced: accepted → acknowledged at the agent. */
  ack: Summary | null;
  /** Events accepted per CPU second of the client processes' accept calls. */
  acceptPerCpuS: number;
}

const log = (line: string) => process.stderr.write(`[events] ${line}\n`);

export async function runEvents(
  mode: Mode,
  agents: number,
  perAgentPerSecond: number,
  windowS: number,
  argv: string[] = [],
): Promise<EventsResult> {
  const options = parseBenchOptions(argv);
  const redis = await startRedis();
  const prefix = `bench${mode}${agents}:`;
  const hub = await startBenchHub({
    hubId: `events-${mode}-${agents}`,
    // The hub's per-connection message limit well above the asked rate, so legacy is not held back by it.
    args: hubArgs(agents, options, [
      '--redis-url',
      redis.url,
      '--redis-prefix',
      prefix,
      '--rate',
      String(Math.max(50, Math.ceil(perAgentPerSecond * 4))),
      '--burst',
      String(Math.max(200, Math.ceil(perAgentPerSecond * 8))),
    ]),
    bin: options.hubBin,
  });
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  let fleet: Fleet | undefined;
  try {
    const specs = await agentSpecs(agents, takeAddresses(agents, options.perAddress), options.perAddress);
    fleet = await Fleet.spawn(specs, options.perProcess);
    fleet.start([toAgentEndpoint(hub.url)], benchTiming(options), (agents / options.setupRate) * 1000, {
      mode,
      outbox: true,
    });
    if (!(await fleet.allConnectedOn(0, 60_000 + agents * 6)))
      throw new Error(`${mode} ${agents}: only ${fleet.connectedOn(0)}/${agents} registered`);
    // Registration traffic is not what is measured: figures are taken as a difference over the window.
    const before = await fleet.emit(0, 1, 0);
    log(`${mode} ${agents}: all registered; ${perAgentPerSecond} event/s each for ${windowS} s`);
    const cpu = new CpuMeter([hub.pid]);
    const t0 = Date.now();
    const replies = await fleet.emit(perAgentPerSecond, windowS * 1000, 15_000);
    const [hubCpuPct = Number.NaN] = cpu.percent();
    const total = (list: ReadonlyArray<{ figures: Record<Mode, ModeFigures> }>) =>
      list.map((r) => r.figures[mode]).reduce((a, b) => addModeFigures(a, b), emptyModeFigures());
    // The window's traffic: what the workers counted by its end less what they had counted before it.
    const w = addModeFigures(total(replies), total(before), -1);
    const accepted = replies.reduce((n, r) => n + r.accepted, 0);
    const undelivered = replies.reduce((n, r) => n + r.undelivered, 0);
    const latencies: number[] = [];
    let cursor = `${t0 - 1000}-0`;
    for (;;) {
      const page = await client.xrange(`${prefix}events`, `(${cursor}`, '+', 'COUNT', 10_000);
      if (page.length === 0) break;
      for (const [id, fields] of page) {
        const ts = Number(fields[fields.indexOf('ts') + 1]);
        latencies.push(Number(id.split('-')[0]) - ts);
      }
      cursor = page[page.length - 1]![0];
    }
    const ack = replies.flatMap((r) => Array.from(r.ackLatency));
    const acceptCpuMs = replies.reduce((n, r) => n + r.acceptCpuMs, 0);
    return {
      mode,
      agents,
      perAgentPerSecond,
      windowS,
      accepted,
      inStream: latencies.length,
      undelivered,
      hubCpuPct,
      framesOutPerS: w.frames_sent / windowS,
      framesInPerS: w.frames_received / windowS,
      messagesPerFrame: w.frames_sent > 0 ? w.messages_sent / w.frames_sent : 0,
      bytesOutPerS: w.bytes_sent / windowS,
      bytesInPerS: w.bytes_received / windowS,
      endToEnd: summarize(latencies),
      ack: ack.length > 0 ? summarize(ack) : null,
      acceptPerCpuS: acceptCpuMs > 0 ? accepted / (acceptCpuMs / 1000) : Number.NaN,
    };
  } finally {
    await fleet?.stop();
    await hub.kill();
    client.disconnect();
    await redis.stop();
  }
}

export function eventsTable(results: EventsResult[]): string {
  return table(
    [
      'mode',
      'agents',
      'events/s asked',
      'accepted/s',
      'in stream / accepted',
      'hub CPU %',
      'frames/s agent→hub',
      'msgs per frame',
      'frames/s hub→agent',
      'KB/s agent→hub',
      'KB/s hub→agent',
      'accept→stream p50',
      'p99',
      'accept→ack p50',
      'p99',
    ],
    results.map((r) => [
      r.mode,
      num(r.agents),
      num(r.agents * r.perAgentPerSecond),
      num(r.accepted / r.windowS),
      `${num(r.inStream)} / ${num(r.accepted)}`,
      num(r.hubCpuPct, 1),
      num(r.framesOutPerS),
      num(r.messagesPerFrame, 1),
      num(r.framesInPerS),
      num(r.bytesOutPerS / 1024, 1),
      num(r.bytesInPerS / 1024, 1),
      ms(r.endToEnd.p50),
      ms(r.endToEnd.p99),
      r.ack ? ms(r.ack.p50) : '—',
      r.ack ? ms(r.ack.p99) : '—',
    ]),
  );
}

const USAGE = `Enhanced vs legacy: agents sending events at a steady rate to one hub with a Redis stream sink.

  node dist/bench/events.js [--agents LIST] [--rates LIST] [--window S] [--modes LIST]

  --agents LIST   fleet sizes                                   [1000,5000]
  --rates LIST    events per second per agent, one run each     [1]
  --window S      measurement window in seconds                 [20]
  --modes LIST    legacy, enhanced or both                      [legacy,enhanced]
  -h, --help      this text
`;

function numbers(flag: string, value: string, min: number): number[] {
  const out = value.split(',').map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isFinite(n) || n < min))
    throw new Error(`--${flag}: expected numbers ≥ ${min} like 1000,5000, got "${value}"`);
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      agents: { type: 'string' },
      rates: { type: 'string' },
      window: { type: 'string' },
      modes: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const agents = numbers('agents', values.agents ?? '1000,5000', 1).map(Math.round);
  const rates = numbers('rates', values.rates ?? '1', 0.01);
  const [windowS = 20] = numbers('window', values.window ?? '20', 1);
  const modes = (values.modes ?? 'legacy,enhanced').split(',').map((m) => m.trim());
  for (const m of modes)
    if (m !== 'legacy' && m !== 'enhanced') throw new Error(`--modes: unknown "${m}" (expected legacy, enhanced)`);
  const results: EventsResult[] = [];
  for (const rate of rates)
    for (const n of agents) for (const mode of modes as Mode[]) results.push(await runEvents(mode, n, rate, windowS));
  process.stdout.write(`${eventsTable(results)}\n`);
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
