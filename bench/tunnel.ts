/**
 * The tunnel against the floor: iperf3 throughput and 1-byte ping-pong latency through each pipe, side
 * by side with direct loopback TCP and with chains of socat relays (`-b 262144`) of as many hops as the
 * tunnel has — the cost of copying bytes through user space on this machine, measured in the same run —
 * and with three Node processes that only pipe sockets (`node3`), the floor for any relay written in Node.
 *
 *   npm run build && node dist/bench/tunnel.js [--seconds 5] [--pings 2000] [--pipes loopback,socat1,…]
 *
 * Every run is bounded: iperf3 runs `--seconds` per pipe and direction, the ping-pong `--pings` round trips.
 * Prints Markdown tables.
 */
import { parseArgs } from 'node:util';
import { num, table } from './lib/markdown.js';
import { percentile } from './lib/stats.js';
import {
  nodePipeChain,
  pingPong,
  runIperfClient,
  socatChain,
  startEchoServer,
  startIperfServer,
  type ChildGroup,
} from './lib/tcp-tools.js';
import { cpuMsWithReaped, rssKb } from './lib/proc.js';
import { TUNNEL_PIPES, type PipeSetup } from './tunnel-pipes.js';
import { freeLoopbackPort } from './lib/free-port.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    pings: { type: 'string', default: '2000' },
    pipes: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(
    'node dist/bench/tunnel.js [--seconds S per iperf3 run, 5] [--pings N round trips, 2000] [--pipes NAME,…]\n',
  );
  process.exit(0);
}
const seconds = Number(values.seconds);
const pings = Number(values.pings);
if (!(seconds > 0 && seconds <= 60) || !(Number.isInteger(pings) && pings > 0 && pings <= 100_000)) {
  process.stderr.write('--seconds: expected 0 < S ≤ 60; --pings: expected a whole number 1–100000\n');
  process.exit(2);
}

/** Direct loopback and socat chains: the floor every tunnel row is compared with. */
const FLOOR_PIPES: PipeSetup[] = [
  { name: 'loopback', label: 'direct loopback TCP', hops: 0, start: (port) => Promise.resolve(passThrough(port)) },
  ...[1, 2, 3].map((hops): PipeSetup => ({
    name: `socat${hops}`,
    label: `socat chain, ${hops} hop${hops > 1 ? 's' : ''}`,
    hops,
    start: (port) => socatChain(port, hops, freeLoopbackPort),
  })),
  {
    name: 'node3',
    label: 'Node pipe chain, 3 hops',
    hops: 3,
    start: (port) => nodePipeChain(port, 3, freeLoopbackPort),
  },
];

function passThrough(port: number): ChildGroup {
  return { port, pids: [], stop: () => Promise.resolve() };
}

const ALL = [...FLOOR_PIPES, ...TUNNEL_PIPES];
const wanted = values.pipes?.split(',').map((s) => s.trim());
const unknown = wanted?.filter((name) => !ALL.some((pipe) => pipe.name === name)) ?? [];
if (unknown.length > 0) {
  process.stderr.write(`--pipes: unknown ${unknown.join(', ')} (known: ${ALL.map((p) => p.name).join(', ')})\n`);
  process.exit(2);
}
const pipes = wanted ? ALL.filter((pipe) => wanted.includes(pipe.name)) : ALL;
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Row {
  pipe: PipeSetup;
  upMbps: number;
  downMbps: number;
  p50: number;
  p99: number;
  rssKb: number;
  /** CPU time of the pipe's own processes per GB carried, both iperf3 runs together (NaN: no processes). */
  cpuMsPerGb: number;
}

const rows: Row[] = [];
for (const pipe of pipes) {
  log(`${pipe.label}: iperf3 ${seconds} s each way, ${pings} pings`);
  let cpuMsTotal = 0;
  let bytesTotal = 0;
  const mbps = async (reverse: boolean): Promise<number> => {
    const server = await startIperfServer(await freeLoopbackPort());
    const path = await pipe.start(server.port);
    try {
      const cpuBefore = path.pids.reduce((sum, pid) => sum + cpuMsWithReaped(pid), 0);
      const result = await runIperfClient(path.port, { seconds, reverse });
      // iperf3 has ended, so a socat hop's per-connection child has exited and been reaped into its parent.
      await new Promise((resolve) => setTimeout(resolve, 200));
      cpuMsTotal += path.pids.reduce((sum, pid) => sum + cpuMsWithReaped(pid), 0) - cpuBefore;
      bytesTotal += result.bytes;
      return result.bitsPerSecond / 1e6;
    } finally {
      await path.stop();
      await server.stop();
    }
  };
  const upMbps = await mbps(false);
  const downMbps = await mbps(true);
  const cpuMsPerGb = cpuMsTotal > 0 && bytesTotal > 0 ? cpuMsTotal / (bytesTotal / 1e9) : Number.NaN;
  const echo = await startEchoServer();
  const path = await pipe.start(echo.port);
  let times: number[];
  let rss = 0;
  try {
    await pingPong(path.port, Math.min(100, pings)); // warm-up
    times = (await pingPong(path.port, pings)).sort((a, b) => a - b);
    rss = path.pids.reduce((sum, pid) => sum + rssKb(pid), 0);
  } finally {
    await path.stop();
    await echo.close();
  }
  rows.push({
    pipe,
    upMbps,
    downMbps,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    rssKb: rss,
    cpuMsPerGb,
  });
}

const loopback = rows.find((row) => row.pipe.name === 'loopback');
const socatOf = (hops: number) => rows.find((row) => row.pipe.name === `socat${hops}`);
/** Sub-millisecond round trips need three decimals. */
const fine = (value: number) => (Number.isFinite(value) ? value.toFixed(3) : 'n/a');
const pct = (a: number, b: number | undefined) => (b === undefined || !(b > 0) ? 'n/a' : `${num((a / b) * 100)} %`);

process.stdout.write(
  `\n### Throughput (iperf3, ${seconds} s per direction) and 1-byte round trips (${pings})\n\n` +
    table(
      [
        'pipe',
        'hops',
        'up MB/s',
        'down MB/s',
        'vs loopback',
        'vs socat, same hops',
        'round trip p50 ms',
        'p99 ms',
        'RSS of the pipe MB',
        'CPU of the pipe, s per GB',
      ],
      rows.map((row) => {
        const mean = (row.upMbps + row.downMbps) / 2;
        const floor = socatOf(row.pipe.hops);
        return [
          row.pipe.label,
          String(row.pipe.hops),
          num(row.upMbps / 8),
          num(row.downMbps / 8),
          pct(mean, loopback ? (loopback.upMbps + loopback.downMbps) / 2 : undefined),
          row.pipe.hops === 0 || row.pipe.name.startsWith('socat') || row.pipe.name === 'node3'
            ? '—'
            : pct(mean, floor ? (floor.upMbps + floor.downMbps) / 2 : undefined),
          fine(row.p50),
          fine(row.p99),
          row.rssKb > 0 ? num(row.rssKb / 1024, 1) : '—',
          Number.isFinite(row.cpuMsPerGb) ? num(row.cpuMsPerGb / 1000, 2) : '—',
        ];
      }),
    ) +
    '\n',
);
