import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskTier, type DiskTierOptions } from './disk-tier.js';
import { encodeRecord, RECORD_FORMAT, type CacheRecord } from './record.js';

const NOW = 1_700_000_000_000;

function recordOf<V>(value: V, staleUntil = NOW + 60_000, createdAt = NOW): CacheRecord<V> {
  return {
    value,
    createdAt,
    freshUntil: Math.min(staleUntil, createdAt + 30_000),
    staleUntil,
    tags: [],
    tagVersions: [],
  };
}

const dirs: string[] = [];
const open: DiskTier[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-disk-tier-'));
  dirs.push(dir);
  return dir;
}

function openTier(options: Partial<DiskTierOptions> & { path: string }): DiskTier {
  const tier = DiskTier.open(options);
  open.push(tier);
  return tier;
}

async function close(tier: DiskTier): Promise<void> {
  open.splice(open.indexOf(tier), 1);
  await tier.close();
}

afterEach(async () => {
  for (const tier of open.splice(0)) await tier.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('DiskTier', () => {
  it('stores, reads, deletes and clears records', async () => {
    const tier = openTier({ path: tempDir() });
    expect(tier.get('a')).toBeUndefined();
    const record = recordOf({ name: 'farm-1', at: new Date(NOW), bytes: Buffer.from('xyz') });
    await tier.set('a', record);
    await tier.put('b', encodeRecord(recordOf('B')));
    const found = tier.get('a');
    expect(found?.record).toEqual(record);
    expect(found?.bytes).toBe(encodeRecord(record).length);
    expect(tier.get('b')?.record.value).toBe('B');
    expect(tier.stats().entries).toBe(2);

    await tier.delete('a');
    expect(tier.get('a')).toBeUndefined();
    expect(tier.stats().entries).toBe(1);

    await tier.clear();
    expect(tier.get('b')).toBeUndefined();
    expect(tier.stats().entries).toBe(0);
  });

  it('reads its own writes at once, before LMDB has committed them', async () => {
    const tier = openTier({ path: tempDir() });
    await tier.set('k', recordOf('old'));
    const writes = [tier.set('k', recordOf('new')), tier.set('fresh', recordOf('F'))];
    expect(tier.get('k')?.record.value).toBe('new');
    expect(tier.get('fresh')?.record.value).toBe('F');
    const deleted = tier.delete('k');
    expect(tier.get('k')).toBeUndefined();
    const rewritten = tier.set('k', recordOf('newest'));
    expect(tier.get('k')?.record.value).toBe('newest');
    await Promise.all([...writes, deleted, rewritten]);
    expect(tier.get('k')?.record.value).toBe('newest');
    expect(tier.get('fresh')?.record.value).toBe('F');
    const cleared = tier.clear();
    expect(tier.get('fresh')).toBeUndefined();
    const afterClear = tier.set('after', recordOf('A'));
    expect(tier.get('after')?.record.value).toBe('A');
    await Promise.all([cleared, afterClear]);
    expect(tier.get('fresh')).toBeUndefined();
    expect(tier.get('after')?.record.value).toBe('A');
    expect(tier.stats().entries).toBe(1);
  });

  it('hands out records that do not share memory between reads', async () => {
    const tier = openTier({ path: tempDir() });
    await tier.set('b', recordOf(Buffer.from('payload')));
    const first = tier.get('b')!.record.value as Buffer;
    const second = tier.get('b')!.record.value as Buffer;
    first.fill(0);
    expect(second.toString()).toBe('payload');
    expect((tier.get('b')!.record.value as Buffer).toString()).toBe('payload');
  });

  it('keeps its records across close and reopen', async () => {
    const dir = tempDir();
    const first = openTier({ path: dir });
    const record = recordOf({ list: [1, 2, 3], big: 2n ** 80n, map: new Map([[1, 'one']]) });
    // Not awaited: close() must still get them onto disk.
    void first.set('kept', record);
    void first.set('gone', recordOf('G'));
    void first.delete('gone');
    await close(first);

    const second = openTier({ path: dir });
    expect(second.get('kept')?.record).toEqual(record);
    expect(second.get('gone')).toBeUndefined();
    expect(second.stats().entries).toBe(1);
  });

  it('sweeps out expired records (staleUntil reached) and keeps the live ones', async () => {
    const tier = openTier({ path: tempDir() });
    await tier.set('expired', recordOf('x', NOW - 1));
    await tier.set('at-the-edge', recordOf('e', NOW));
    await tier.set('live', recordOf('l', NOW + 1));
    expect(await tier.sweep(NOW)).toBe(2);
    expect(tier.get('expired')).toBeUndefined();
    expect(tier.get('at-the-edge')).toBeUndefined();
    expect(tier.get('live')?.record.value).toBe('l');
    expect(tier.stats().entries).toBe(1);
    expect(await tier.sweep(NOW)).toBe(0);
  });

  it('over maxEntries, the sweep drops the records that expire first', async () => {
    const tier = openTier({ path: tempDir(), maxEntries: 3 });
    // Nothing bounds the writes themselves; the bound is the sweep's.
    for (let i = 0; i < 6; i += 1) void tier.set(`k${i}`, recordOf(i, NOW + 1000 * (6 - i)));
    await tier.flushed();
    expect(tier.stats().entries).toBe(6);
    expect(await tier.sweep(NOW)).toBe(3);
    expect(tier.stats().entries).toBe(3);
    expect(['k0', 'k1', 'k2'].map((k) => tier.get(k)?.record.value)).toEqual([0, 1, 2]);
    expect(['k3', 'k4', 'k5'].map((k) => tier.get(k))).toEqual([undefined, undefined, undefined]);
  });

  it('lists live records for warming and drops the expired ones it meets', async () => {
    const tier = openTier({ path: tempDir() });
    await Promise.all([
      tier.set('a', recordOf('A')),
      tier.set('b', recordOf('B', NOW + 5)),
      tier.set('old', recordOf('O', NOW - 5)),
    ]);
    const listed = [...tier.records(NOW)];
    expect(listed.map(([key]) => key).sort()).toEqual(['a', 'b']);
    for (const [key, record, bytes] of listed) {
      expect(record).toEqual(tier.get(key)!.record);
      expect(bytes).toBe(tier.get(key)!.bytes);
    }
    await tier.flushed();
    expect(tier.stats().entries).toBe(2);
  });

  it('keeps tag versions, across close and reopen', async () => {
    const dir = tempDir();
    const first = openTier({ path: dir });
    expect(first.tagVersions()).toEqual({});
    first.saveTagVersions({ 'ns:users': 3, 'device:7': 1 });
    await first.flushed();
    expect(first.tagVersions()).toEqual({ 'ns:users': 3, 'device:7': 1 });
    // Not awaited: close() must still get it onto disk.
    first.saveTagVersions({ 'ns:users': 4 });
    // Tag versions live beside the records, not among them.
    await first.set('r', recordOf('R'));
    expect(first.stats().entries).toBe(1);
    expect([...first.records(NOW)].map(([key]) => key)).toEqual(['r']);
    await close(first);

    const second = openTier({ path: dir });
    expect(second.tagVersions()).toEqual({ 'ns:users': 4 });
    await second.clear();
    expect(second.tagVersions()).toEqual({ 'ns:users': 4 });
  });

  it('does not store keys longer than maxKeyBytes, and counts them', async () => {
    const tier = openTier({ path: tempDir(), maxKeyBytes: 10 });
    expect(tier.set('k'.repeat(11), recordOf('v'))).toBeUndefined();
    expect(tier.set('é'.repeat(6), recordOf('v'))).toBeUndefined(); // 12 bytes in UTF-8
    expect(tier.get('k'.repeat(11))).toBeUndefined();
    expect(tier.delete('k'.repeat(11))).toBeUndefined();
    await tier.set('k'.repeat(10), recordOf('fits'));
    expect(tier.get('k'.repeat(10))?.record.value).toBe('fits');
    expect(tier.stats()).toMatchObject({ entries: 1, keysTooLong: 2 });
  });

  it('the default key bound stays below what LMDB accepts', async () => {
    const tier = openTier({ path: tempDir() });
    await tier.set('x'.repeat(500), recordOf('long'));
    expect(tier.get('x'.repeat(500))?.record.value).toBe('long');
    expect(tier.set('x'.repeat(501), recordOf('too long'))).toBeUndefined();
  });

  it('treats a record of another format, or corrupted bytes, as a miss and drops it', async () => {
    const tier = openTier({ path: tempDir() });
    const otherFormat = encodeRecord(recordOf('v'));
    otherFormat[0] = RECORD_FORMAT + 1;
    await tier.put('other-format', otherFormat);
    await tier.put('garbage', Buffer.from([RECORD_FORMAT, 0xff, 0x00, 0x13]));
    expect(tier.get('other-format')).toBeUndefined();
    expect(tier.get('garbage')).toBeUndefined();
    expect(tier.stats().unreadable).toBe(2);
    await tier.flushed();
    expect(tier.stats().entries).toBe(0);
  });
});
