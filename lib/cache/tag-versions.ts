import type { CacheRecord } from './record.js';

/** Where tag versions are shared (Redis): asked for the tags this process has not seen yet. */
export interface TagVersionSource {
  tagVersions(tags: readonly string[]): Promise<number[]>;
}

/** Where this process keeps them across restarts (the disk tier). */
export interface TagVersionStore {
  tagVersions(): Record<string, number>;
  saveTagVersions(versions: Record<string, number>): void;
}

/**
 * The tag versions this process knows. Each tag has a version; a record carries the versions it
 * was written under, and one written under an older version than the current is dead. Versions
 * only go up here: a lower one heard late (an old bus message, a slow Redis answer) changes nothing.
 */
export class TagVersions {
  private readonly versions = new Map<string, number>();

  constructor(
    private readonly source: TagVersionSource | undefined,
    private readonly store: TagVersionStore | undefined,
  ) {}

  /** The record's tags all current (true), one invalidated (false), or a tag not known yet (undefined). */
  knownAlive(record: CacheRecord): boolean | undefined {
    for (const [i, tag] of record.tags.entries()) {
      const current = this.versions.get(tag);
      if (current === undefined) return undefined;
      if ((record.tagVersions[i] ?? 0) < current) return false;
    }
    return true;
  }

  /** No tag of the record invalidated since it was written; unknown tags are asked of the source. */
  async alive(record: CacheRecord): Promise<boolean> {
    if (record.tags.length === 0) return true;
    const current = await this.current(record.tags);
    return record.tags.every((_, i) => (record.tagVersions[i] ?? 0) >= (current[i] ?? 0));
  }

  /** Tag versions known here; unknown ones are asked of the source (bounded by it), else taken as 0. */
  async current(tags: readonly string[]): Promise<number[]> {
    const unknown = tags.filter((tag) => !this.versions.has(tag));
    if (unknown.length > 0 && this.source) {
      try {
        const versions = await this.source.tagVersions(unknown);
        unknown.forEach((tag, i) => {
          this.raise(tag, versions[i] ?? 0);
        });
      } catch {
        // The shared tier counts its own failures; unknown tags count as version 0 meanwhile.
      }
    }
    return tags.map((tag) => this.versions.get(tag) ?? 0);
  }

  /** The versions an invalidation made here, without the shared tier: one above what is known. */
  nextLocal(tags: readonly string[]): Record<string, number> {
    return Object.fromEntries(tags.map((tag) => [tag, (this.versions.get(tag) ?? 0) + 1]));
  }

  /** Takes in versions made elsewhere (an invalidation here or in another process) and keeps them on disk. */
  merge(versions: Record<string, number>): void {
    for (const [tag, version] of Object.entries(versions)) this.raise(tag, version);
    this.store?.saveTagVersions(Object.fromEntries(this.versions));
  }

  /** The versions kept on disk, at start-up. */
  loadStored(): void {
    if (!this.store) return;
    for (const [tag, version] of Object.entries(this.store.tagVersions())) this.versions.set(tag, version);
  }

  /** Forgets every version (after missed invalidations): the next use of each tag asks the source. */
  clear(): void {
    this.versions.clear();
  }

  private raise(tag: string, version: number): void {
    this.versions.set(tag, Math.max(version, this.versions.get(tag) ?? 0));
  }
}
