import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FarmlinkError } from '../../lib/errors.js';
import { ManualClock } from '../../lib/manual-clock.fixture.js';
import type { Priority } from '../../protocol/messages.js';
import { LmdbOutbox, type LmdbOutboxOptions } from './lmdb-outbox.js';
import { size } from './outbox-notices.js';
import type { OutboxEvents, OutboxInput } from './outbox-store.js';

interface LogLine {
  level: number;
  msg: string;
}

const dirs: string[] = [];
const open: LmdbOutbox[] = [];

afterEach(async () => {
  for (const outbox of open.splice(0)) await outbox.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-outbox-'));
  dirs.push(dir);
  return path.join(dir, 'outbox');
}

async function openOutbox(
  overrides: Partial<LmdbOutboxOptions> & { dir: string },
): Promise<{ outbox: LmdbOutbox; lines: LogLine[]; clock: ManualClock; dropped: OutboxEvents['dropped'][] }> {
  const lines: LogLine[] = [];
  const clock = (overrides.clock as ManualClock | undefined) ?? new ManualClock();
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  const outbox = await LmdbOutbox.open({
    maxMessages: 1000,
    maxBytes: 1024 * 1024,
    sync: 'os',
    logger,
    ...overrides,
    clock,
  });
  open.push(outbox);
  const dropped: OutboxEvents['dropped'][] = [];
  outbox.events.on('dropped', (d) => dropped.push(d));
  return { outbox, lines, clock, dropped };
}

async function closeOutbox(outbox: LmdbOutbox): Promise<void> {
  open.splice(open.indexOf(outbox), 1);
  await outbox.close();
}

function ev(n: number, priority: Priority = 'normal', extra: Partial<OutboxInput> = {}): OutboxInput {
  return { type: 'event', body: { name: `e${n}`, data: { n } }, priority, ...extra };
}

function evs(from: number, to: number, priority: Priority = 'normal'): OutboxInput[] {
  const out: OutboxInput[] = [];
  for (let n = from; n <= to; n += 1) out.push(ev(n, priority));
  return out;
}

/** What a log line says of the outbox's fill: its bytes now (the drop lines are written after each round). */
function fill(outbox: LmdbOutbox): string {
  return `${size(outbox.summary(0).bytes)} of 1.0 MB`;
}

function heldSeqs(outbox: LmdbOutbox): number[] {
  return outbox.read(0, { messages: 1_000_000, bytes: Number.MAX_SAFE_INTEGER }).map((e) => e.seq);
}

async function rejection(promise: Promise<unknown>): Promise<FarmlinkError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FarmlinkError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('LmdbOutbox', () => {
  it('numbers messages in order, stores their bodies, and goes on numbering after a reopen', async () => {
    const dir = tempDir();
    const { outbox, clock } = await openOutbox({ dir });
    expect(await outbox.accept(evs(1, 3))).toEqual([1, 2, 3]);
    expect(await outbox.accept([{ type: 'result', body: { id: 'c1', ok: true }, priority: 'high' }])).toEqual([4]);
    const entries = outbox.read(0, { messages: 10, bytes: 1e9 });
    expect(entries.map((e) => [e.seq, e.type, e.priority, e.body])).toEqual([
      [1, 'event', 'normal', { name: 'e1', data: { n: 1 } }],
      [2, 'event', 'normal', { name: 'e2', data: { n: 2 } }],
      [3, 'event', 'normal', { name: 'e3', data: { n: 3 } }],
      [4, 'result', 'high', { id: 'c1', ok: true }],
    ]);
    expect(entries[0]?.acceptedAt).toBe(clock.now());
    expect(entries[0]?.expiresAt).toBeNull();
    await closeOutbox(outbox);

    const reopened = (await openOutbox({ dir })).outbox;
    expect(reopened.read(2, { messages: 10, bytes: 1e9 }).map((e) => [e.seq, e.body])).toEqual([
      [3, { name: 'e3', data: { n: 3 } }],
      [4, { id: 'c1', ok: true }],
    ]);
    expect(await reopened.accept([ev(5)])).toEqual([5]);
    expect(reopened.summary(0)).toMatchObject({ depth: 5, next_seq: 6, acked_seq: 0, state: 'ok' });
  });

  it('never reuses a number, also once everything is acknowledged and the outbox reopened', async () => {
    const dir = tempDir();
    const { outbox } = await openOutbox({ dir });
    await outbox.accept(evs(1, 4));
    await outbox.acknowledge(4);
    expect(outbox.summary(0)).toMatchObject({ depth: 0, bytes: 0, next_seq: 5, acked_seq: 4, delivered: 4 });
    await closeOutbox(outbox);

    const reopened = (await openOutbox({ dir })).outbox;
    expect(reopened.ackedSeq).toBe(4);
    expect(heldSeqs(reopened)).toEqual([]);
    expect(await reopened.accept([ev(5)])).toEqual([5]);
  });

  it('gives the messages of concurrent accepts numbers in the order accept was called', async () => {
    const { outbox } = await openOutbox({ dir: tempDir(), sync: 'flush' });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => outbox.accept(evs(2 * i, 2 * i + 1))));
    expect(results.flat()).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(heldSeqs(outbox)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it('reads in seq order after a given seq, bounded by count and bytes but at least one message', async () => {
    const { outbox } = await openOutbox({ dir: tempDir() });
    await outbox.accept(evs(1, 10));
    expect(outbox.read(3, { messages: 4, bytes: 1e9 }).map((e) => e.seq)).toEqual([4, 5, 6, 7]);
    const one = outbox.read(0, { messages: 10, bytes: 1 });
    expect(one.map((e) => e.seq)).toEqual([1]);
    const size = one[0]?.bytes ?? 0;
    expect(outbox.read(0, { messages: 10, bytes: size * 3 }).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(outbox.read(10, { messages: 10, bytes: 1e9 })).toEqual([]);
  });

  it('forgets what a hub acknowledged, on disk too', async () => {
    const dir = tempDir();
    const { outbox } = await openOutbox({ dir });
    await outbox.accept(evs(1, 5));
    await outbox.acknowledge(3);
    expect(heldSeqs(outbox)).toEqual([4, 5]);
    expect(outbox.read(1, { messages: 10, bytes: 1e9 }).map((e) => e.seq)).toEqual([4, 5]);
    expect(outbox.summary(2)).toMatchObject({ depth: 2, unacked: 2, acked_seq: 3, delivered: 3, accepted: 5 });
    await outbox.acknowledge(2); // an older acknowledgement changes nothing
    expect(outbox.summary(0)).toMatchObject({ acked_seq: 3, delivered: 3 });
    await closeOutbox(outbox);

    const reopened = (await openOutbox({ dir })).outbox;
    expect(reopened.ackedSeq).toBe(3);
    expect(heldSeqs(reopened)).toEqual([4, 5]);
    expect(reopened.summary(0)).toMatchObject({ depth: 2, next_seq: 6 });
  });

  it('bounds the count: the oldest lowest-priority message goes to make room', async () => {
    const { outbox, dropped, lines } = await openOutbox({ dir: tempDir(), maxMessages: 10 });
    await outbox.accept(evs(1, 10, 'low'));
    expect(await outbox.accept([ev(11, 'normal')])).toEqual([11]);
    expect(dropped).toEqual([{ seq: 1, priority: 'low', why: 'full' }]);
    expect(heldSeqs(outbox)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(outbox.summary(0)).toMatchObject({ depth: 10, dropped: { high: 0, normal: 0, low: 1 } });
    await Promise.resolve();
    expect(lines.map((l) => l.msg)).toContain(
      `Outbox full (10 of 10 messages, ${fill(outbox)}): dropped 1 low priority message (seq 1) to accept 1 normal ones`,
    );
  });

  it('bounds the bytes: as many of the oldest lowest-priority messages go as the new ones need', async () => {
    const { outbox, dropped } = await openOutbox({ dir: tempDir(), maxBytes: 2000 });
    const body = (n: number): OutboxInput => ({
      type: 'event',
      body: { name: 'x', data: 'y'.repeat(170), n },
      priority: 'low',
    });
    const seqs: number[] = [];
    for (let i = 0; i < 10; i += 1) seqs.push(...(await outbox.accept([body(i)])));
    const size = outbox.read(0, { messages: 1, bytes: 1 })[0]?.bytes ?? 0;
    expect(size).toBeGreaterThan(190);
    const fit = Math.floor(2000 / size);
    expect(seqs).toHaveLength(10);
    expect(outbox.summary(0).depth).toBe(fit);
    expect(outbox.summary(0).bytes).toBeLessThanOrEqual(2000);
    expect(dropped.map((d) => d.seq)).toEqual(Array.from({ length: 10 - fit }, (_, i) => i + 1));
    const big: OutboxInput = { type: 'event', body: { name: 'big', data: 'z'.repeat(3 * size) }, priority: 'high' };
    await outbox.accept([big]);
    expect(outbox.summary(0).bytes).toBeLessThanOrEqual(2000);
    expect(outbox.summary(0).by_priority).toEqual({ high: 1, normal: 0, low: fit - 4 });
  });

  it('drops low, then normal, then high, oldest first, never above the priority being accepted', async () => {
    const { outbox, dropped, lines } = await openOutbox({ dir: tempDir(), maxMessages: 10 });
    await outbox.accept(evs(1, 3, 'low')); // 1–3
    await outbox.accept(evs(4, 6, 'normal')); // 4–6
    await outbox.accept(evs(7, 10, 'high')); // 7–10
    expect(await outbox.accept(evs(11, 12, 'high'))).toEqual([11, 12]);
    const fillThen = fill(outbox);
    expect(dropped.map((d) => d.seq)).toEqual([1, 2]);
    expect(await outbox.accept(evs(13, 14, 'normal'))).toEqual([13, 14]);
    expect(dropped.map((d) => d.seq)).toEqual([1, 2, 3, 4]);
    // Nothing low is left, and low may not push out normal or high.
    const full = await rejection(outbox.accept([ev(15, 'low')]));
    expect(full.code).toBe('OUTBOX_FULL');
    expect(full.message).toContain('10 of 10 messages');
    expect(await outbox.accept(evs(15, 17, 'high'))).toEqual([15, 16, 17]);
    expect(dropped).toEqual([
      { seq: 1, priority: 'low', why: 'full' },
      { seq: 2, priority: 'low', why: 'full' },
      { seq: 3, priority: 'low', why: 'full' },
      { seq: 4, priority: 'normal', why: 'full' },
      { seq: 5, priority: 'normal', why: 'full' },
      { seq: 6, priority: 'normal', why: 'full' },
      { seq: 13, priority: 'normal', why: 'full' },
    ]);
    expect(heldSeqs(outbox)).toEqual([7, 8, 9, 10, 11, 12, 14, 15, 16, 17]);
    expect(outbox.summary(0)).toMatchObject({
      depth: 10,
      by_priority: { high: 9, normal: 1, low: 0 },
      dropped: { high: 0, normal: 4, low: 3 },
      accepted: 17,
    });
    // High pushes out high when nothing else is left.
    await outbox.accept([ev(18, 'high')]);
    await outbox.accept([ev(19, 'high')]);
    expect(dropped.slice(7).map((d) => [d.seq, d.priority])).toEqual([
      [14, 'normal'],
      [7, 'high'],
    ]);
    await Promise.resolve();
    // The first line comes at once; the rest of the spell is summed up in one line a second later.
    const warn = lines.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warn[0]).toBe(
      `Outbox full (10 of 10 messages, ${fillThen}): dropped 2 low priority messages (seq 1–2) to accept 2 high ones`,
    );
    expect(warn).toHaveLength(1);
  });

  it('aggregates a flood of drops into one log line per second', async () => {
    const { outbox, lines, clock } = await openOutbox({ dir: tempDir(), maxMessages: 100 });
    await outbox.accept(evs(1, 100, 'low'));
    await outbox.accept([ev(101, 'normal')]);
    for (let i = 0; i < 50; i += 1) await outbox.accept(evs(200 + 5 * i, 204 + 5 * i, 'normal'));
    const warn = (): string[] => lines.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warn()).toHaveLength(1);
    await clock.advance(1000);
    expect(warn()).toHaveLength(2);
    expect(warn()[1]).toBe(
      `Outbox full (100 of 100 messages, ${fill(outbox)}): dropped 99 low priority messages (seq 2–100), ` +
        '151 normal priority messages (seq 101–251) to accept 250 normal ones',
    );
  });

  it('refuses with OUTBOX_FULL and stores nothing of an accept that does not fit', async () => {
    const dir = tempDir();
    const { outbox, dropped } = await openOutbox({ dir, maxMessages: 10 });
    await outbox.accept(evs(1, 2, 'low'));
    await outbox.accept(evs(3, 10, 'high'));
    const accepted: number[][] = [];
    outbox.events.on('accepted', (a) => accepted.push(a.seqs));
    // Three normal messages need three slots; only two low ones can go: all three are refused.
    const [full, ok] = await Promise.allSettled([
      outbox.accept(evs(11, 13, 'normal')),
      outbox.accept([ev(14, 'high')]),
    ]);
    expect(full.status === 'rejected' && (full.reason as FarmlinkError).code).toBe('OUTBOX_FULL');
    expect(ok.status === 'fulfilled' && ok.value).toEqual([11]);
    expect(dropped.map((d) => d.seq)).toEqual([1]);
    expect(accepted).toEqual([[11]]);
    expect(heldSeqs(outbox)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const tooBig = await rejection(
      outbox.accept([{ type: 'event', body: { data: 'x'.repeat(2 * 1024 * 1024) }, priority: 'high' }]),
    );
    expect(tooBig.code).toBe('OUTBOX_FULL');
    expect(tooBig.message).toContain('more than the whole outbox');
    await closeOutbox(outbox);
    const reopened = (await openOutbox({ dir, maxMessages: 10 })).outbox;
    expect(heldSeqs(reopened)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(reopened.summary(0).next_seq).toBe(12);
  });

  it('drops messages past their lifetime when read, counted and logged, and forgets them on disk', async () => {
    const dir = tempDir();
    const clock = new ManualClock();
    const { outbox, dropped, lines } = await openOutbox({ dir, clock, defaultTtlMs: 60_000 });
    await outbox.accept([ev(1), ev(2, 'normal', { ttlMs: 1000 }), ev(3), ev(4, 'normal', { ttlMs: 1000 })]);
    expect(outbox.read(0, { messages: 10, bytes: 1e9 }).map((e) => [e.seq, e.expiresAt])).toEqual([
      [1, clock.now() + 60_000],
      [2, clock.now() + 1000],
      [3, clock.now() + 60_000],
      [4, clock.now() + 1000],
    ]);
    await clock.advance(1000);
    // Seq 1, the oldest, is still alive: only a read finds 2 and 4 past their lifetime.
    expect(outbox.summary(0)).toMatchObject({ depth: 4, expired: 0 });
    expect(outbox.read(0, { messages: 10, bytes: 1e9 }).map((e) => e.seq)).toEqual([1, 3]);
    expect(dropped).toEqual([
      { seq: 2, priority: 'normal', why: 'expired' },
      { seq: 4, priority: 'normal', why: 'expired' },
    ]);
    expect(outbox.summary(0)).toMatchObject({ depth: 2, expired: 2 });
    expect(lines.map((l) => l.msg)).toContain(
      'Outbox: dropped 2 normal priority messages (seq 2–4) unsent, past their lifetime (ttl)',
    );
    await closeOutbox(outbox);
    const reopened = (await openOutbox({ dir, clock })).outbox;
    expect(heldSeqs(reopened)).toEqual([1, 3]);
    expect(reopened.summary(0)).toMatchObject({ depth: 2, expired: 0 });
  });

  it('drops expired messages at the front of the queue without a read, so they do not stay on disk', async () => {
    const dir = tempDir();
    const clock = new ManualClock();
    const { outbox } = await openOutbox({ dir, clock, sync: 'flush' });
    await outbox.accept([ev(1, 'normal', { ttlMs: 500 }), ev(2, 'normal', { ttlMs: 500 })]);
    await outbox.accept([ev(3, 'normal')]);
    await clock.advance(499);
    expect(outbox.summary(0)).toMatchObject({ depth: 3, expired: 0 });
    await clock.advance(1);
    await waitFor(() => outbox.summary(0).expired === 2);
    expect(outbox.summary(0).depth).toBe(1);
    await closeOutbox(outbox);
    const reopened = (await openOutbox({ dir, clock })).outbox;
    expect(heldSeqs(reopened)).toEqual([3]);
  });

  it('drops messages that expired while the agent was stopped when it opens again', async () => {
    const dir = tempDir();
    const clock = new ManualClock();
    const { outbox } = await openOutbox({ dir, clock });
    await outbox.accept([ev(1, 'high', { ttlMs: 1000 }), ev(2)]);
    await closeOutbox(outbox);
    await clock.advance(5000);
    const { outbox: reopened, lines } = await openOutbox({ dir, clock });
    expect(reopened.summary(0)).toMatchObject({ depth: 1, expired: 1, next_seq: 3 });
    expect(heldSeqs(reopened)).toEqual([2]);
    await Promise.resolve();
    expect(lines.some((l) => l.msg.includes('dropped 1 high priority message (seq 1) unsent'))).toBe(true);
  });

  it('opens with either sync policy what the other wrote', async () => {
    const dir = tempDir();
    let { outbox } = await openOutbox({ dir, sync: 'flush' });
    await outbox.accept([ev(1)]);
    await closeOutbox(outbox);
    ({ outbox } = await openOutbox({ dir, sync: 'os' }));
    await outbox.accept([ev(2)]);
    expect(outbox.summary(0).sync).toBe('os');
    await closeOutbox(outbox);
    ({ outbox } = await openOutbox({ dir, sync: 'flush' }));
    expect(heldSeqs(outbox)).toEqual([1, 2]);
  });

  it('refuses to open where a file stands instead of the directory, naming the path', async () => {
    const dir = tempDir();
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.writeFileSync(dir, 'not a directory');
    const error = await rejection(openOutbox({ dir }));
    expect(error.code).toBe('OUTBOX_UNAVAILABLE');
    expect(error.message).toContain(dir);
    expect(error.message).toContain('a file is where the directory should be');
    const below = await rejection(openOutbox({ dir: path.join(dir, 'outbox') }));
    expect(below.code).toBe('OUTBOX_UNAVAILABLE');
    expect(below.message).toContain(path.join(dir, 'outbox'));
  });

  it('refuses new messages once closed', async () => {
    const { outbox } = await openOutbox({ dir: tempDir() });
    await closeOutbox(outbox);
    expect((await rejection(outbox.accept([ev(1)]))).code).toBe('OUTBOX_UNAVAILABLE');
  });
});

/** Waits (on real time: the store's commit runs on its own thread) until `condition` holds, for at most 20 s. */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}
