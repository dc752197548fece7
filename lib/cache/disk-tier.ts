import { open, type Database, type RootDatabase } from 'lmdb';
import { decodeRecord, encodeRecord, type CacheRecord } from './record.js';
import { makeDirSync } from '../make-dir.js';

export interface DiskTierOptions {
  /** Directory of the LMDB environment (created if missing). */
  path: string;
  /** Most records kept; beyond it, the sweep drops the ones that expire first. */
  maxEntries?: number;
  /** Keys longer than this (in UTF-8 bytes) are not stored on disk; LMDB's key limit is 511 bytes by default. */
  maxKeyBytes?: number;
}

export interface DiskTierStats {
  entries: number;
  /** Keys too long for the disk tier (stored elsewhere only). */
  keysTooLong: number;
  /** Records found in another format or corrupted, and dropped. */
  unreadable: number;
  /** Background writes (removals of expired records, tag versions) that failed. */
  writeErrors: number;
}

const TAGS_KEY = '\u0000tag-versions';

/**
 * The disk tier (L3): memory-mapped LMDB, so reads are a lookup in the page cache (no system call
 * once warm) and the cache survives restarts. Holds the records that are too large for memory and
 * everything needed to warm the memory tier at start-up. Writes are asynchronous and batched by
 * LMDB; reads are synchronous and see this tier's own writes at once, committed or not.
 */
export class DiskTier {
  private readonly root: RootDatabase;
  private readonly db: Database<Buffer, string>;
  private readonly maxKeyBytes: number;
  private keysTooLong = 0;
  private unreadable = 0;
  private writeErrors = 0;
  /**
   * Writes LMDB has not committed yet, the latest per key (bytes undefined: a delete). LMDB shows a
   * write to readers only once its batch commits, an event-loop turn later; without this, a read
   * right after delete() would find the deleted record, and one right after set() the previous one.
   */
  private readonly pending = new Map<string, { bytes: Buffer | undefined }>();
  /** A clear() not committed yet: until it is, only writes made since count. */
  private clearing: object | undefined;

  private constructor(private readonly options: DiskTierOptions) {
    makeDirSync(options.path);
    this.root = open({ path: options.path, compression: false, maxDbs: 4 });
    this.db = this.root.openDB<Buffer, string>({ name: 'records', encoding: 'binary' });
    this.maxKeyBytes = options.maxKeyBytes ?? 500;
  }

  static open(options: DiskTierOptions): DiskTier {
    return new DiskTier(options);
  }

  /** The record and its encoded size in bytes. */
  get(key: string): { record: CacheRecord; bytes: number } | undefined {
    if (!this.keyFits(key)) return undefined;
    const pending = this.pending.get(key);
    const bytes = pending ? pending.bytes : this.clearing ? undefined : this.db.get(key);
    if (!bytes) return undefined;
    const record = decodeRecord(bytes);
    if (!record) {
      this.unreadable += 1;
      this.background(this.db.remove(key));
      return undefined;
    }
    return { record, bytes: bytes.length };
  }

  /** Stores an already encoded record (encoded once for Redis and disk alike). */
  put(key: string, encoded: Buffer): Promise<void> | undefined {
    if (!this.keyFits(key)) {
      this.keysTooLong += 1;
      return undefined;
    }
    return this.track(key, encoded, this.db.put(key, encoded));
  }

  set(key: string, record: CacheRecord): Promise<void> | undefined {
    return this.put(key, encodeRecord(record));
  }

  delete(key: string): Promise<void> | undefined {
    if (!this.keyFits(key)) return undefined;
    return this.track(key, undefined, this.db.remove(key));
  }

  /** Every live record with its encoded size, for warming the memory tier; expired ones are skipped (and removed). */
  *records(now: number): Generator<[string, CacheRecord, number]> {
    for (const { key, value } of this.db.getRange({})) {
      const record = decodeRecord(value);
      if (!record || record.staleUntil <= now) {
        this.background(this.db.remove(key));
        continue;
      }
      yield [key, record, value.length];
    }
  }

  /** Drops expired records and, over maxEntries, those that expire soonest. */
  async sweep(now: number): Promise<number> {
    let removed = 0;
    const live: Array<[string, number]> = [];
    for (const { key, value } of this.db.getRange({})) {
      const record = decodeRecord(value);
      if (!record || record.staleUntil <= now) {
        this.background(this.db.remove(key));
        removed += 1;
      } else {
        live.push([key, record.staleUntil]);
      }
    }
    const max = this.options.maxEntries;
    if (max !== undefined && live.length > max) {
      live.sort((a, b) => a[1] - b[1]);
      for (const [key] of live.slice(0, live.length - max)) {
        this.background(this.db.remove(key));
        removed += 1;
      }
    }
    await this.db.committed;
    return removed;
  }

  tagVersions(): Record<string, number> {
    const bytes = this.root.get(TAGS_KEY) as Buffer | undefined;
    if (!bytes) return {};
    try {
      return JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, number>;
    } catch {
      return {};
    }
  }

  saveTagVersions(versions: Record<string, number>): void {
    this.background(this.root.put(TAGS_KEY, Buffer.from(JSON.stringify(versions))));
  }

  /** A write nobody waits for: a failure is counted (stats().writeErrors), never an unhandled rejection. */
  private background(write: Promise<unknown>): void {
    write.catch(() => {
      this.writeErrors += 1;
    });
  }

  clear(): Promise<void> {
    this.pending.clear();
    const clearing = {};
    this.clearing = clearing;
    const done = () => {
      if (this.clearing === clearing) this.clearing = undefined;
    };
    return this.db.clearAsync().then(done, (error: unknown) => {
      done();
      throw error;
    });
  }

  stats(): DiskTierStats {
    return {
      entries: this.db.getCount(),
      keysTooLong: this.keysTooLong,
      unreadable: this.unreadable,
      writeErrors: this.writeErrors,
    };
  }

  /** Resolves when every write so far is on disk. */
  flushed(): Promise<unknown> {
    return this.db.flushed;
  }

  async close(): Promise<void> {
    await this.db.flushed;
    await this.root.close();
  }

  /** Keeps a write visible to get() until LMDB has committed it (or failed to). */
  private track(key: string, bytes: Buffer | undefined, write: Promise<unknown>): Promise<void> {
    const entry = { bytes };
    this.pending.set(key, entry);
    const settle = () => {
      if (this.pending.get(key) === entry) this.pending.delete(key);
    };
    return write.then(settle, (error: unknown) => {
      settle();
      throw error;
    });
  }

  private keyFits(key: string): boolean {
    return Buffer.byteLength(key) <= this.maxKeyBytes;
  }
}
