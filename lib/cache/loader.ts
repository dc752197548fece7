import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.js';
import { FarmlinkError } from '../errors.js';
import type { CacheTotals, LoadDefaults, LoadOptions, Loader } from './options.js';

export interface LoadCoordinatorOptions {
  name: string;
  clock: Clock;
  defaults: LoadDefaults;
  totals: CacheTotals;
  log: Logger;
  /** The value in memory if a load finished while a caller was still looking the key up. */
  landed(key: string): { value: unknown } | undefined;
  /** The tag versions to write a loaded value under, taken before the loader runs. */
  tagVersions(tags: readonly string[]): Promise<number[]>;
  /** Stores a loaded value in the tiers and announces it; resolves once memory and disk have it. */
  commit(key: string, value: unknown, options: LoadOptions, tagVersions: number[]): Promise<void>;
}

/** What a lookup found for a key: fresh (answered at once), within grace (stale), or nothing. */
export interface Lookup<V> {
  value: V;
  fresh: boolean;
}

/**
 * Calling the loader on a miss: one loader call per key at a time in this process, however many
 * callers wait (single-flight); a hard time bound that aborts it; and the stale value's part —
 * answered at once while a refresh runs (stale-while-revalidate), after a soft time bound, or in
 * place of a failed load (stale-if-error). A failed load is never cached: the next caller loads again.
 */
export class LoadCoordinator {
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(private readonly options: LoadCoordinatorOptions) {}

  /** The answer to getOrSet once the tiers were asked: `found` is a fresh or stale value, if any. */
  answer<V>(key: string, found: Lookup<V> | undefined, loader: Loader<V>, options: LoadOptions): Promise<V> {
    if (found?.fresh === true) return Promise.resolve(found.value);
    const stale = found ? { value: found.value } : undefined;
    const swr = options.staleWhileRevalidate ?? this.options.defaults.staleWhileRevalidate;
    if (stale && swr) {
      this.options.totals.staleServed += 1;
      this.load(key, loader, options, stale).catch((error: unknown) => {
        this.options.log.warn(
          { err: error, cache: this.options.name, key },
          'Cache: background refresh failed; the stale value stays until its grace ends',
        );
      });
      return Promise.resolve(stale.value);
    }
    return this.awaitLoad(key, loader, options, stale);
  }

  /** Keys whose loader is running now. */
  get running(): number {
    return this.inflight.size;
  }

  private load<V>(key: string, loader: Loader<V>, options: LoadOptions, stale: { value: V } | undefined): Promise<V> {
    const { totals } = this.options;
    const running = this.inflight.get(key) as Promise<V> | undefined;
    if (running) {
      totals.singleFlightJoins += 1;
      return running;
    }
    // The load may have finished while this caller was still looking the key up (in Redis, say):
    // then its value is in memory, and loading again would break single-flight.
    // Its value is the one this key's loader produced, a V.
    const landed = this.options.landed(key) as { value: V } | undefined;
    if (landed) {
      totals.singleFlightJoins += 1;
      return Promise.resolve(landed.value);
    }
    const flight = this.run(key, loader, options, stale);
    this.inflight.set(key, flight);
    const done = (): void => {
      this.inflight.delete(key);
    };
    flight.then(done, done);
    return flight;
  }

  private async run<V>(
    key: string,
    loader: Loader<V>,
    options: LoadOptions,
    stale: { value: V } | undefined,
  ): Promise<V> {
    const { clock, totals } = this.options;
    totals.loads += 1;
    const hardTimeout = options.hardTimeoutMs ?? this.options.defaults.hardTimeoutMs;
    const controller = new AbortController();
    let timer: TimerHandle | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(() => {
        totals.hardTimeouts += 1;
        reject(new FarmlinkError('CACHE_LOADER_TIMEOUT', `Loading ${key} took longer than ${hardTimeout} ms`));
        controller.abort();
      }, hardTimeout);
    });
    try {
      // Taken before the loader runs: if the tags are invalidated while it runs, what it read may
      // predate the invalidation, and the record must be dead on arrival rather than live under the new version.
      const tagVersions = await this.options.tagVersions(options.tags ?? []);
      const value = await Promise.race([
        Promise.resolve(loader({ signal: controller.signal, stale: stale?.value })),
        expired,
      ]);
      await this.options.commit(key, value, options, tagVersions);
      return value;
    } catch (error) {
      totals.loadErrors += 1;
      throw error;
    } finally {
      clock.clearTimeout(timer);
    }
  }

  /** The caller's side of a load: the shared flight, the soft timeout and the stale fallback. */
  private async awaitLoad<V>(
    key: string,
    loader: Loader<V>,
    options: LoadOptions,
    stale: { value: V } | undefined,
  ): Promise<V> {
    const { clock, totals } = this.options;
    const flight = this.load(key, loader, options, stale);
    const softTimeout = options.softTimeoutMs ?? this.options.defaults.softTimeoutMs;
    const racers: Array<Promise<V>> = [flight];
    let timer: TimerHandle | undefined;
    if (stale && softTimeout > 0) {
      racers.push(
        new Promise<V>((resolve) => {
          timer = clock.setTimeout(() => {
            totals.softTimeouts += 1;
            totals.staleServed += 1;
            resolve(stale.value);
          }, softTimeout);
        }),
      );
    }
    try {
      return await Promise.race(racers);
    } catch (error) {
      if (!stale) throw error;
      // Fail-safe: the loader failed, the stale value is still within its grace.
      totals.staleServed += 1;
      this.options.log.warn(
        { err: error, cache: this.options.name, key },
        'Cache: loader failed; serving the stale value',
      );
      return stale.value;
    } finally {
      clock.clearTimeout(timer);
    }
  }
}
