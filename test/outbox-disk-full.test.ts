import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnOutboxChild, type OutboxChild } from './helpers/outbox-child.js';

const children: OutboxChild[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await c.exited;
  }
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A full disk, really: the outbox runs in a child whose files may not grow past 2 MB (RLIMIT_FSIZE
 * via prlimit), so the kernel refuses lmdb's writes as a full disk would. lmdb grows its memory map
 * by itself, so a small map size would not do.
 */
describe('the outbox on a full disk', () => {
  for (const sync of ['flush', 'os'] as const) {
    it(`refuses new messages with OUTBOX_UNAVAILABLE, stays up, and recovers once space is freed (sync ${sync})`, async () => {
      const base = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-outbox-full-'));
      dirs.push(base);
      const dir = path.join(base, 'outbox');
      const run = spawnOutboxChild(['fill', dir, sync], ['prlimit', `--fsize=${2 * 1024 * 1024}`]);
      children.push(run);
      const exit = await run.exited;
      expect(exit, run.stderr.join('\n')).toEqual({ code: 0, signal: null });

      const fact = (event: string) => run.facts.find((f) => f.event === event) as Record<string, unknown>;
      const refused = fact('refused') as {
        accepted: number;
        code: string;
        message: string;
        summary: { state: string; error: string; depth: number };
      };
      expect(refused.accepted).toBeGreaterThan(10);
      expect(refused.code).toBe('OUTBOX_UNAVAILABLE');
      expect(refused.message).toContain(`The outbox at ${dir} cannot be written`);
      expect(refused.summary).toMatchObject({ state: 'error', error: refused.message, depth: refused.accepted });
      expect(fact('again')).toMatchObject({ code: 'OUTBOX_UNAVAILABLE', state: 'error' });
      expect(fact('accepted-again')).toMatchObject({
        seq: refused.accepted + 1,
        summary: { state: 'ok', error: null },
      });
      expect(fact('closed')).toBeDefined();
      // One line for the error state however many writes failed, one for the recovery.
      const logs = run.stderr
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string });
      expect(logs.filter((l) => l.msg.includes('New messages are refused (OUTBOX_UNAVAILABLE)'))).toHaveLength(1);
      expect(
        logs.filter((l) => l.msg === `The outbox at ${dir} can be written again: accepting new messages`),
      ).toHaveLength(1);
      expect(run.facts.filter((f) => f.event === 'state').map((f) => f.state)).toEqual(['error', 'ok']);
    });
  }

  it('undoes what a failed write would have dropped: nothing counted, nothing lost', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-outbox-full-'));
    dirs.push(base);
    const run = spawnOutboxChild(['evict', path.join(base, 'outbox'), 'os'], ['prlimit', `--fsize=${2 * 1024 * 1024}`]);
    children.push(run);
    const exit = await run.exited;
    expect(exit, run.stderr.join('\n')).toEqual({ code: 0, signal: null });
    const filled = run.facts.find((f) => f.event === 'filled') as { summary: Record<string, unknown> };
    const refused = run.facts.find((f) => f.event === 'refused') as {
      code: string;
      dropped: number[];
      summary: Record<string, unknown>;
      read: number[];
    };
    expect(refused.code).toBe('OUTBOX_UNAVAILABLE');
    expect(refused.dropped).toEqual([]);
    expect(refused.summary).toMatchObject({
      state: 'error',
      depth: 100,
      bytes: filled.summary.bytes,
      by_priority: { high: 0, normal: 0, low: 100 },
      dropped: { high: 0, normal: 0, low: 0 },
      next_seq: 101,
    });
    expect(refused.read).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });
});
