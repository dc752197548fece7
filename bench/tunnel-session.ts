/**
 * The tunnel session's own cost, without sockets or a broker: bytes through a client and a farm session
 * joined by an in-memory path pair (DATA frames as a stream makes them), and the heap an open idle stream takes.
 *
 *   npm run build && node --expose-gc dist/bench/tunnel-session.js [--mb 512] [--streams 2000]
 *
 * Prints Markdown tables. The figures bound what the relay and direct paths can add on top: every byte
 * here is framed, numbered, kept until acknowledged, credited and delivered as on a real path.
 */
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { systemClock } from '../lib/clock.js';
import { TypedEmitter } from '../lib/events.js';
import { TunnelSession } from '../lib/tunnel/tunnel-session.js';
import type { TunnelPath, TunnelPathEvents } from '../lib/tunnel/tunnel-path.js';
import type { TunnelStream } from '../lib/tunnel/tunnel-stream.js';
import { num, table } from './lib/markdown.js';

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '512' },
    streams: { type: 'string', default: '2000' },
  },
});
const MB = 1024 * 1024;
/** Closing the sessions resets the streams still open: expected here. */
const ignore = (): void => {};
const totalMb = Number(values.mb);
const idleStreams = Number(values.streams);

/** Two paths joined in memory: what one sends the other receives a turn of the event loop later. */
function pathPair(): [TunnelPath, TunnelPath] {
  const make = () => {
    const events = new TypedEmitter<TunnelPathEvents>();
    let queue: Buffer[] = [];
    let queued = 0;
    let full = false;
    let scheduled = false;
    const HIGH = 1 * MB;
    const path = {
      kind: 'relay' as const,
      route: 1,
      events,
      isUp: true,
      get buffered() {
        return queued;
      },
      peer: undefined as { events: TypedEmitter<TunnelPathEvents> } | undefined,
      send(frame: Buffer): boolean {
        queue.push(frame);
        queued += frame.length;
        if (!scheduled) {
          scheduled = true;
          setImmediate(() => {
            scheduled = false;
            const batch = queue;
            queue = [];
            queued = 0;
            for (const f of batch) path.peer?.events.emit('frame', f);
            if (full) {
              full = false;
              events.emit('drain', undefined);
            }
          });
        }
        if (queued >= HIGH) full = true;
        return !full;
      },
    };
    return path;
  };
  const a = make();
  const b = make();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

function sessions(maxStreams = 1024) {
  const common = {
    sessionId: '0123456789abcdef0123456789abcdef',
    service: 'bench',
    clock: systemClock,
    pingIntervalMs: 1_000,
    pingTimeoutMs: 30_000,
    maxStreams,
  };
  const client = new TunnelSession({ ...common, role: 'client', peer: 'farm' });
  const farm = new TunnelSession({ ...common, role: 'farm', peer: 'client' });
  const [a, b] = pathPair();
  client.attach(a);
  farm.attach(b);
  return { client, farm };
}

/** `streams` streams client → farm sharing `bytes`, 64 KiB writes; MB/s of payload. */
async function throughput(bytes: number, streams: number): Promise<number> {
  const { client, farm } = sessions();
  let received = 0;
  farm.events.on('stream', (s: TunnelStream) => {
    s.accept();
    s.on('data', (chunk: Buffer) => (received += chunk.length));
    s.on('error', ignore);
  });
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const per = Math.floor(bytes / streams / chunk.length);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: streams }, async () => {
      const stream = client.openStream().on('error', ignore);
      await once(stream, 'connect');
      for (let i = 0; i < per; i += 1) if (!stream.write(chunk)) await once(stream, 'drain');
      stream.end();
    }),
  );
  const expected = per * chunk.length * streams;
  while (received < expected) await new Promise((resolve) => setImmediate(resolve));
  const seconds = (performance.now() - start) / 1000;
  client.close('closed', 'bench over');
  farm.close('closed', 'bench over');
  return expected / MB / seconds;
}

function heap(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Heap per open idle stream (both ends' objects, in one process), after OPEN/OPEN_OK. */
async function streamMemory(count: number): Promise<{ perPair: number }> {
  const { client, farm } = sessions(count + 1);
  const held: TunnelStream[] = [];
  farm.events.on('stream', (s: TunnelStream) => {
    s.accept();
    s.on('error', ignore);
    held.push(s);
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  const before = heap();
  const opened: TunnelStream[] = [];
  for (let i = 0; i < count; i += 1) opened.push(client.openStream().on('error', ignore));
  await Promise.all(opened.map((s) => once(s, 'connect')));
  await new Promise((resolve) => setTimeout(resolve, 50)); // ACKs in, retransmit memory empty
  const after = heap();
  const perPair = (after - before) / count;
  client.close('closed', 'bench over');
  farm.close('closed', 'bench over');
  return { perPair };
}

const rows: string[][] = [];
for (const streams of [1, 8, 64]) {
  await throughput(32 * MB, streams); // warm-up
  const runs = [];
  for (let i = 0; i < 3; i += 1) runs.push(await throughput(totalMb * MB, streams));
  runs.sort((a, b) => a - b);
  rows.push([String(streams), num(totalMb), num(runs[1]!), `${num(runs[0]!)}–${num(runs[2]!)}`]);
}
process.stdout.write(
  `### Session throughput (in-memory path pair, 64 KiB writes, client → farm, median of 3)\n\n` +
    `${table(['streams', 'MB moved', 'MB/s', 'range'], rows)}\n\n`,
);
const memory = await streamMemory(idleStreams);
process.stdout.write(
  `### Memory per open idle stream (${num(idleStreams)} streams, heap after gc)\n\n` +
    `${table(
      ['streams', 'heap per stream, both ends', 'per end (half)'],
      [[num(idleStreams), `${num(memory.perPair / 1024, 1)} KiB`, `${num(memory.perPair / 2048, 1)} KiB`]],
    )}\n`,
);
process.exit(0);
