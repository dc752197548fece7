/**
 * The outbox's own costs: how many messages per second `accept` takes durably, per sync policy,
 * accept size and number of producers at once; and how long opening takes with 100,000 messages
 * stored (the index is rebuilt from the records' headers).
 *
 *   npm run build && node dist/bench/outbox.js [--seconds 3] [--stored 100000]
 *
 * Each run is bounded by time (default 3 s per row). Prints a Markdown table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { LmdbOutbox } from '../agent/outbox/lmdb-outbox.js';
import type { OutboxInput } from '../agent/outbox/outbox-store.js';
import { systemClock } from '../lib/clock.js';
import { ms, num, table } from './lib/markdown.js';
import { percentile } from './lib/stats.js';

const args = process.argv.slice(2);
const FLAGS = ['--seconds', '--stored'];
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(
    'node dist/bench/outbox.js [--seconds S per row, 3] [--stored N messages for the open test, 100000]\n',
  );
  process.exit(0);
}
for (const [i, a] of args.entries())
  if (i % 2 === 0 && !FLAGS.includes(a)) {
    process.stderr.write(`unknown flag ${a} (expected ${FLAGS.join(', ')}, --help)\n`);
    process.exit(2);
  }
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  const value = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) {
    process.stderr.write(`--${name}: expected a positive number, got ${args[i + 1] ?? 'nothing'}\n`);
    process.exit(2);
  }
  return value;
};
const seconds = option('seconds', 3);
const stored = Math.round(option('stored', 100_000));
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-bench-outbox-'));
const logger = pino({ level: 'silent' });
const log = (line: string) => process.stderr.write(`${line}\n`);

/** An event as `farmlink event` makes one: a name, a little JSON data, a timestamp (about 120 bytes stored). */
function event(n: number): OutboxInput {
  return {
    type: 'event',
    body: { name: 'device.state', data: { serial: `R58M${n}`, state: 'device' }, ts: Date.now() },
    priority: 'normal',
  };
}

async function openAt(dir: string, sync: 'flush' | 'os'): Promise<LmdbOutbox> {
  return LmdbOutbox.open({
    dir,
    maxMessages: 10_000_000,
    maxBytes: 4 * 1024 * 1024 * 1024,
    sync,
    clock: systemClock,
    logger,
  });
}

interface Row {
  sync: 'flush' | 'os';
  size: number;
  producers: number;
  messages: number;
  accepts: number;
  seconds: number;
  p50: number;
  p99: number;
}

async function throughput(sync: 'flush' | 'os', size: number, producers: number): Promise<Row> {
  const dir = path.join(base, `${sync}-${size}-${producers}`);
  const outbox = await openAt(dir, sync);
  let n = 0;
  let accepts = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const until = started + seconds * 1000;
  const producer = async (): Promise<void> => {
    while (performance.now() < until) {
      const inputs = Array.from({ length: size }, () => event(n++));
      const t0 = performance.now();
      const seqs = await outbox.accept(inputs);
      latencies.push(performance.now() - t0);
      // Keep the store near empty, as a connected agent does: acknowledge what was accepted.
      if (accepts % 50 === 0) void outbox.acknowledge(seqs[seqs.length - 1] as number);
      accepts += 1;
    }
  };
  await Promise.all(Array.from({ length: producers }, () => producer()));
  const elapsed = (performance.now() - started) / 1000;
  await outbox.close();
  fs.rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    sync,
    size,
    producers,
    messages: accepts * size,
    accepts,
    seconds: elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

async function openTime(): Promise<{ fill: number; opens: number[]; bytes: number }> {
  const dir = path.join(base, 'open');
  let outbox = await openAt(dir, 'os');
  const t0 = performance.now();
  for (let i = 0; i < stored; i += 1000) {
    await outbox.accept(Array.from({ length: Math.min(1000, stored - i) }, (_, k) => event(i + k)));
  }
  const fill = (performance.now() - t0) / 1000;
  const bytes = outbox.summary(0).bytes;
  await outbox.close();
  const opens: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    const start = performance.now();
    outbox = await openAt(dir, 'flush');
    opens.push(performance.now() - start);
    if (outbox.summary(0).depth !== stored)
      throw new Error(`expected ${stored} messages, found ${outbox.summary(0).depth}`);
    await outbox.close();
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return { fill, opens, bytes };
}

const rows: Row[] = [];
for (const sync of ['flush', 'os'] as const) {
  for (const size of [1, 100]) {
    for (const producers of [1, 32]) {
      log(`accept: sync ${sync}, ${size} per accept, ${producers} producers, ${seconds} s`);
      rows.push(await throughput(sync, size, producers));
    }
  }
}
log(`open: ${stored} messages stored`);
const open = await openTime();
fs.rmSync(base, { recursive: true, force: true });

const out = [
  `Outbox accept throughput (${seconds} s per row; each accept resolves once durable per the sync policy; ` +
    `events of about 120 bytes; acknowledged as they go, as when connected)`,
  '',
  table(
    ['sync', 'messages per accept', 'producers at once', 'messages/s', 'accepts/s', 'accept p50 ms', 'accept p99 ms'],
    rows.map((r) => [
      r.sync,
      String(r.size),
      String(r.producers),
      num(r.messages / r.seconds),
      num(r.accepts / r.seconds),
      ms(r.p50),
      ms(r.p99),
    ]),
  ),
  '',
  table(
    ['stored messages', 'stored MB', 'fill time s (os, 1,000 per accept)', 'open ms (3 runs)'],
    [
      [
        num(stored),
        (open.bytes / 1024 / 1024).toFixed(1),
        open.fill.toFixed(1),
        open.opens.map((v) => ms(v)).join(', '),
      ],
    ],
  ),
].join('\n');
process.stdout.write(`${out}\n`);
