import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { AgentCache, cacheSummary } from './agent-cache.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-agent-cache-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const silent = pino({ level: 'silent' });
const open: AgentCache[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((cache) => cache.close()));
});

function openCache(dir = fs.mkdtempSync(path.join(tmp, 'data-'))): { cache: AgentCache; dir: string } {
  const cache = AgentCache.open(dir, silent);
  open.push(cache);
  return { cache, dir };
}

const context = () => ({ signal: new AbortController().signal });

describe('AgentCache: command results', () => {
  it('callers within the time share one run of the command', async () => {
    const { cache } = openCache();
    let runs = 0;
    const handler = cache.command('devices.list', 60_000, async () => {
      runs += 1;
      // A command that takes a while; the ten callers all arrive synchronously, so they join whatever this delay is.
      await new Promise((resolve) => setTimeout(resolve, 20));
      return { devices: [{ serial: 'emulator-5554' }], run: runs };
    });
    const answers = await Promise.all(Array.from({ length: 10 }, () => handler({}, context())));
    expect(runs).toBe(1);
    expect(answers.every((a) => JSON.stringify(a) === JSON.stringify(answers[0]))).toBe(true);
    await handler({}, context());
    expect(runs).toBe(1);
    const summary = cacheSummary(cache.metrics());
    expect(summary.loads).toBe(1);
    expect(summary.single_flight_joins).toBe(9);
    expect(summary.hits).toBeGreaterThanOrEqual(1);
  });

  it('runs again once the time is up, and always with fresh: true', async () => {
    const { cache } = openCache();
    let runs = 0;
    const handler = cache.command('system.info', 30, () => Promise.resolve({ run: ++runs }));
    expect(await handler({}, context())).toEqual({ run: 1 });
    expect(await handler({ fresh: true }, context())).toEqual({ run: 2 });
    // The fresh result replaced the cached one.
    expect(await handler({}, context())).toEqual({ run: 2 });
    // The 30 ms time-to-live has to pass on the real clock; waiting longer can only be later, never too early.
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await handler({}, context())).toEqual({ run: 3 });
  });

  it('keeps different arguments apart (whatever their key order) and does not cache failures', async () => {
    const { cache } = openCache();
    const seen: unknown[] = [];
    const handler = cache.command('devices.list', 60_000, (args) => {
      seen.push(args);
      return Promise.resolve(args);
    });
    await handler({ a: 1, b: 2 }, context());
    await handler({ b: 2, a: 1 }, context());
    await handler({ a: 2 }, context());
    expect(seen).toEqual([{ a: 1, b: 2 }, { a: 2 }]);

    let attempts = 0;
    const failing = cache.command('devices.list', 60_000, () => {
      attempts += 1;
      return Promise.reject(new Error('adb not found'));
    });
    await expect(failing({ x: 1 }, context())).rejects.toThrow('adb not found');
    await expect(failing({ x: 1 }, context())).rejects.toThrow('adb not found');
    expect(attempts).toBe(2);
  });
});

describe('AgentCache: the last server', () => {
  const servers = ['ws://primary/api/v1/pc/ws', 'ws://fallback-1/api/v1/pc/ws', 'ws://fallback-2/api/v1/pc/ws'];

  it('survives a restart (close, open the same directory), warming memory from disk', async () => {
    const first = openCache();
    expect(await first.cache.lastServer(servers)).toBeUndefined();
    first.cache.rememberServer({ url: servers[2]!, hub_id: 'hub-2', session_id: 's-9', registered_at: 1234 });
    await first.cache.settled();
    // The start-up found an empty disk; the entry written since is the disk tier's, not the warm start's.
    expect(cacheSummary(first.cache.metrics()).warm_start).toMatchObject({ entries: 0, found: 0 });
    // (Counted once LMDB has committed the write: waited for, not timed.)
    await vi.waitFor(
      () => expect(cacheSummary(first.cache.metrics()).tiers.find((t) => t.tier === 'disk')?.entries).toBe(1),
      { timeout: 10_000 },
    );
    expect(cacheSummary(first.cache.metrics()).warm_start).toMatchObject({ entries: 0, found: 0 });
    await first.cache.close();
    open.splice(open.indexOf(first.cache), 1);

    const second = openCache(first.dir);
    expect(cacheSummary(second.cache.metrics()).warm_start).toMatchObject({ entries: 1, found: 1 });
    const last = await second.cache.lastServer(servers);
    expect(last).toEqual({
      index: 2,
      entry: { url: servers[2], hub_id: 'hub-2', session_id: 's-9', registered_at: 1234 },
    });
  });

  it('is ignored when that server is no longer configured', async () => {
    const { cache } = openCache();
    cache.rememberServer({ url: 'ws://gone/api/v1/pc/ws', hub_id: 'old', session_id: 's', registered_at: 1 });
    await cache.settled();
    // Written (else this would pass for the wrong reason), yet not offered: the URL is not configured.
    expect(cacheSummary(cache.metrics()).tiers.find((t) => t.tier === 'memory')?.entries).toBe(1);
    expect(await cache.lastServer(servers)).toBeUndefined();
  });

  it('without a usable directory, caches in memory only and says so', async () => {
    const notADir = path.join(tmp, 'a-file');
    fs.writeFileSync(notADir, 'x');
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const cache = AgentCache.open(notADir, logger);
    open.push(cache);
    expect(lines.join('')).toMatch(/caching in memory only/);
    expect(cacheSummary(cache.metrics()).tiers.map((t) => t.tier)).toEqual(['memory']);
    cache.rememberServer({ url: servers[1]!, hub_id: 'h', session_id: 's', registered_at: 1 });
    await cache.settled();
    expect((await cache.lastServer(servers))?.index).toBe(1);
  });
});
