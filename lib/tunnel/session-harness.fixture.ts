import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Readable, type Duplex } from 'node:stream';
import { systemClock, type Clock } from '../clock.js';
import { memoryPathPair, type MemoryPathOptions } from './memory-path.fixture.js';
import { TunnelSession, type TunnelSessionOptions } from './tunnel-session.js';
import type { TunnelStream } from './tunnel-stream.js';

export type SessionPairOptions = Partial<Omit<TunnelSessionOptions, 'role' | 'clock'>> & {
  clock?: Clock;
  relay?: MemoryPathOptions | false;
};

/** A client and a farm session over an in-memory relay path pair (attached unless `relay: false`). */
export function sessionPair(options: SessionPairOptions = {}) {
  const { relay: relayOptions, clock = systemClock, ...rest } = options;
  const common = {
    sessionId: '0123456789abcdef0123456789abcdef',
    service: 'adb',
    clock,
    pingIntervalMs: 50,
    pingTimeoutMs: 5_000,
    directHoldMs: 100,
    ...rest,
  };
  const client = new TunnelSession({ ...common, role: 'client', peer: 'pc-017' });
  const farm = new TunnelSession({ ...common, role: 'farm', peer: 'alice' });
  quietStreamErrors(client);
  quietStreamErrors(farm);
  const relay = memoryPathPair({ kind: 'relay', ...(relayOptions === false ? {} : relayOptions) });
  if (relayOptions !== false) {
    client.attach(relay.a);
    farm.attach(relay.b);
  }
  return { client, farm, relay };
}

/** sessionPair, with both sessions closed after the test (`cleanups` is the test file's afterEach list). */
export function closingSessionPair(cleanups: (() => void)[], options: SessionPairOptions = {}) {
  const p = sessionPair(options);
  cleanups.push(() => {
    p.client.close('closed', 'test over');
    p.farm.close('closed', 'test over');
  });
  return p;
}

/** The next stream the farm is offered. */
export function nextStream(farm: TunnelSession): Promise<TunnelStream> {
  return new Promise((resolve) => farm.events.once('stream', resolve));
}

/** A stream opened by the client and accepted by the farm: both ends, once the client heard OPEN_OK. */
export async function openedStream(
  client: TunnelSession,
  farm: TunnelSession,
): Promise<{ stream: TunnelStream; farmEnd: TunnelStream }> {
  const accepted = nextStream(farm);
  const stream = client.openStream();
  const farmEnd = await accepted;
  farmEnd.accept();
  await once(stream, 'connect');
  return { stream, farmEnd };
}

/**
 * Every stream of the session gets an error listener that ignores the error: tests close sessions with
 * streams open, and a stream error with no listener would be thrown. Tests that expect an error still
 * listen for it themselves.
 */
export function quietStreamErrors(session: TunnelSession): void {
  const ignore = (): void => {};
  session.events.on('stream', (stream) => stream.on('error', ignore));
  const openStream = session.openStream.bind(session);
  session.openStream = () => openStream().on('error', ignore);
}

/**
 * `bytes` of deterministic noise in chunks of `chunk`, made as they are read (no 50 MB held, no long
 * synchronous hashing that would hold up the event loop and the sessions' pings), hashed as they go:
 * `sha256()` is the digest of everything the source gave.
 */
export function patternSource(bytes: number, chunk = 64 * 1024, salt = 1): { source: Readable; sha256: () => string } {
  let state = (salt * 2654435761) >>> 0;
  const block = Buffer.allocUnsafe(chunk);
  for (let i = 0; i + 4 <= chunk; i += 4) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    block.writeUInt32LE(state, i);
  }
  const hash = createHash('sha256');
  let digest: string | undefined;
  // Each chunk is the block rotated by a different amount, so a chunk out of place or twice changes the hash.
  function* pieces(): Generator<Buffer> {
    let sent = 0;
    let n = 0;
    while (sent < bytes) {
      const size = Math.min(chunk, bytes - sent);
      const shift = (n * 7919 + salt) % chunk;
      const piece = Buffer.allocUnsafe(chunk);
      block.copy(piece, 0, shift);
      block.copy(piece, chunk - shift, 0, shift);
      const out = size === chunk ? piece : piece.subarray(0, size);
      hash.update(out);
      yield out;
      sent += size;
      n += 1;
    }
    digest = hash.digest('hex');
  }
  return {
    source: Readable.from(pieces(), { objectMode: false }),
    sha256: () => {
      if (digest === undefined) throw new Error('the source has not been read to its end');
      return digest;
    },
  };
}

/** Reads a stream to its end: its byte count and sha256. */
export async function hashOf(stream: Duplex | Readable): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    bytes += buf.length;
    hash.update(buf);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Waits for a condition, polling on real timers. */
export async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
