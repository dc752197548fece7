import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbOutbox } from '../agent/outbox/lmdb-outbox.js';
import { systemClock } from '../lib/clock.js';
import { spawnOutboxChild, type OutboxChild } from './helpers/outbox-child.js';
import { waitUntil } from './helpers/wait.js';

const children: OutboxChild[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await c.exited;
  }
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the outbox when its process is SIGKILLed', () => {
  for (const sync of ['flush', 'os'] as const) {
    it(`keeps every message whose accept had resolved (sync ${sync})`, async () => {
      const base = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-outbox-kill-'));
      dirs.push(base);
      const dir = path.join(base, 'outbox');
      const run = spawnOutboxChild(['accept', dir, sync]);
      children.push(run);
      // Mid-stream: well after it started, at no particular message.
      await waitUntil('2,000 accepted messages', () => run.facts.filter((f) => 'seq' in f).length >= 2000, 60_000);
      run.child.kill('SIGKILL');
      expect((await run.exited).signal).toBe('SIGKILL');

      const printed = run.facts.filter((f): f is { seq: number; n: number } => typeof f.seq === 'number');
      const outbox = await LmdbOutbox.open({
        dir,
        maxMessages: 10_000_000,
        maxBytes: 1024 * 1024 * 1024,
        sync,
        clock: systemClock,
        logger: pino({ level: 'silent' }),
      });
      try {
        const stored = outbox.read(0, { messages: 10_000_000, bytes: Number.MAX_SAFE_INTEGER });
        const bySeq = new Map(stored.map((e) => [e.seq, e]));
        const missing = printed.filter((p) => bySeq.get(p.seq)?.body.data === undefined);
        expect(missing).toEqual([]);
        for (const p of printed) expect(bySeq.get(p.seq)?.body).toEqual({ name: 'tick', data: { n: p.n } });
        // Nothing was dropped, so what is stored runs 1, 2, 3, … without a hole (some accepted but not yet printed).
        expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1));
        expect(stored.length).toBeGreaterThanOrEqual(printed.length);
        const [next] = await outbox.accept([{ type: 'event', body: { name: 'after' }, priority: 'normal' }]);
        expect(next).toBe(stored.length + 1);
      } finally {
        await outbox.close();
      }
    });
  }
});
