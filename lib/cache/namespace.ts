import type { EntryOptions, LoadOptions, Loader } from './options.js';

/** What a namespace needs of the cache under it. */
export interface NamespacedCache {
  get<V>(key: string, options?: { allowStale?: boolean }): Promise<V | undefined>;
  set(key: string, value: unknown, options?: EntryOptions): Promise<void>;
  getOrSet<V>(key: string, loader: Loader<V>, options?: LoadOptions): Promise<V>;
  delete(key: string): Promise<void>;
  expire(key: string): Promise<void>;
  invalidateTags(tags: readonly string[]): Promise<void>;
}

/** The tag every entry of a namespace carries, so one tag invalidation drops them all. */
export const namespaceTag = (name: string): string => `ns:${name}`;

/** A cache view under a name: keys prefixed, entries tagged with the namespace, clear() drops them all. */
export class CacheNamespace {
  private readonly prefix: string;
  private readonly tag: string;

  constructor(
    private readonly cache: NamespacedCache,
    readonly name: string,
  ) {
    this.prefix = `${name}:`;
    this.tag = namespaceTag(name);
  }

  get<V>(key: string, options?: { allowStale?: boolean }): Promise<V | undefined> {
    return this.cache.get<V>(this.prefix + key, options);
  }

  set(key: string, value: unknown, options: EntryOptions = {}): Promise<void> {
    return this.cache.set(this.prefix + key, value, this.tagged(options));
  }

  getOrSet<V>(key: string, loader: Loader<V>, options: LoadOptions = {}): Promise<V> {
    return this.cache.getOrSet(this.prefix + key, loader, this.tagged(options));
  }

  delete(key: string): Promise<void> {
    return this.cache.delete(this.prefix + key);
  }

  expire(key: string): Promise<void> {
    return this.cache.expire(this.prefix + key);
  }

  /** Every value in this namespace, in every process, is never served again. */
  clear(): Promise<void> {
    return this.cache.invalidateTags([this.tag]);
  }

  private tagged<T extends EntryOptions>(options: T): T {
    return { ...options, tags: [...(options.tags ?? []), this.tag] };
  }
}
