import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Cluster, Redis } from 'ioredis';
import pino from 'pino';
import { afterEach } from 'vitest';
import { MultiTierCache, type CacheOptions } from '../../lib/cache/cache.js';
import { startRedis, startRedisCluster, type RedisCluster, type RedisProcess } from './redis-server.js';
import { waitUntil } from './wait.js';

/**
 * What the cache integration tests share: everything they start (Redis servers, caches, raw
 * clients, peer processes, temp directories) is registered here and torn down after each test,
 * last started first.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const PEER_SCRIPT = path.join(ROOT, 'test/fixtures/cache-peer.js');

const cleanups: Array<() => Promise<unknown>> = [];

/** Registers the teardown; call once at the top of a test file. */
export function cleanUpAfterEach(): void {
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });
}

export function defer(cleanup: () => Promise<unknown>): void {
  cleanups.push(cleanup);
}

export async function redisServer(): Promise<RedisProcess> {
  const server = await startRedis();
  defer(() => server.stop());
  return server;
}

/** Restarts a killed server on its port; the new process is stopped after the test too. */
export async function restartRedis(server: RedisProcess): Promise<RedisProcess> {
  const again = await server.restart();
  defer(() => again.stop());
  return again;
}

export async function redisCluster(options: { replicas?: 0 | 1 } = {}): Promise<RedisCluster> {
  const cluster = await startRedisCluster(options);
  defer(() => cluster.stop());
  return cluster;
}

export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-cache-test-'));
  defer(() => fs.promises.rm(dir, { recursive: true, force: true }));
  return dir;
}

export const silent = pino({ level: 'silent' });

/** A cache closed after the test (once: closing it in the test is fine). */
export function openCache(options: Omit<CacheOptions, 'logger'> & { logger?: CacheOptions['logger'] }): MultiTierCache {
  const cache = MultiTierCache.create({ logger: silent, ...options });
  let closed: Promise<void> | undefined;
  const close = cache.close.bind(cache);
  cache.close = () => (closed ??= close());
  defer(() => cache.close());
  return cache;
}

export function rawClient(url: string): Redis {
  const client = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  defer(() => {
    client.disconnect();
    return Promise.resolve();
  });
  return client;
}

export function rawCluster(cluster: RedisCluster): Cluster {
  const client = new Cluster(cluster.seeds, { redisOptions: { maxRetriesPerRequest: 1 } });
  client.on('error', () => undefined);
  defer(() => {
    client.disconnect();
    return Promise.resolve();
  });
  return client;
}

/** Waits until `count` clients are subscribed to the cache bus (so no invalidation is published into the void). */
export async function busSubscribers(client: Redis | Cluster, prefix: string, count: number): Promise<void> {
  const channel = `${prefix}bus`;
  await waitUntil(
    `${count} subscribers on ${channel}`,
    async () => {
      const nodes = client instanceof Cluster ? client.nodes('master') : [client];
      // In a Cluster a subscriber sits on one node; PUBLISH reaches every node.
      let total = 0;
      for (const node of nodes) {
        const reply = (await node.pubsub('NUMSUB', channel)) as [string, number];
        total += reply[1];
      }
      return total >= count;
    },
    15_000,
    20,
  );
}

/** The promise's outcome, or a rejection naming `what` if it has not settled within `ms`: "never hangs". */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface PeerMetrics {
  memoryHits: number;
  memoryEntries: number;
  redisHits: number;
  messagesIn: number;
}

/** A MultiTierCache in another Node process (test/fixtures/cache-peer.js, on the built dist/). */
export class PeerProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private stderr = '';

  private constructor(readonly proc: ChildProcessWithoutNullStreams) {}

  static async start(options: Omit<CacheOptions, 'logger'>): Promise<PeerProcess> {
    const proc = spawn(process.execPath, [PEER_SCRIPT, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const peer = new PeerProcess(proc);
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    defer(async () => {
      proc.stdin.end();
      await within(5000, 'the peer to exit', exited).catch(() => proc.kill('SIGKILL'));
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      peer.stderr = (peer.stderr + chunk.toString('utf8')).slice(-4000);
    });
    const started = new Promise((resolve, reject) => peer.waiting.set(0, { resolve, reject }));
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      const message = JSON.parse(line) as { id: number; ok: boolean; result?: unknown; error?: string };
      const waiter = peer.waiting.get(message.id);
      peer.waiting.delete(message.id);
      if (message.ok) waiter?.resolve(message.result);
      else waiter?.reject(new Error(`peer: ${message.error}`));
    });
    proc.once('exit', (code, signal) => {
      for (const waiter of peer.waiting.values())
        waiter.reject(new Error(`peer exited (${code ?? signal}): ${peer.stderr}`));
      peer.waiting.clear();
    });
    await within(15_000, 'the peer to start', started);
    return peer;
  }

  call<T>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    const reply = new Promise<T>((resolve, reject) =>
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject }),
    );
    this.proc.stdin.write(`${JSON.stringify({ id, op, args })}\n`);
    return within(10_000, `peer ${op}`, reply);
  }

  async get<V>(key: string): Promise<V | undefined> {
    const reply = await this.call<{ found: boolean; value?: V }>('get', key);
    return reply.found ? reply.value : undefined;
  }

  async nsGet<V>(ns: string, key: string): Promise<V | undefined> {
    const reply = await this.call<{ found: boolean; value?: V }>('nsGet', ns, key);
    return reply.found ? reply.value : undefined;
  }

  metrics(): Promise<PeerMetrics> {
    return this.call<PeerMetrics>('metrics');
  }
}
