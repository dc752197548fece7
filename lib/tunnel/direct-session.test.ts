import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { linkedConnectors, type LinkedConnectors } from './direct-pair.fixture.js';
import { linkDirect } from './direct-link.js';
import type { DirectPath } from './direct-path.js';
import { hashOf, sessionPair, until } from './session-harness.fixture.js';
import type { TunnelSession } from './tunnel-session.js';
import type { TunnelStream } from './tunnel-stream.js';

/**
 * A TunnelSession pair over an in-memory relay plus a real WebRTC data channel (node-datachannel on
 * 127.0.0.1) brought up by the DirectConnectors: a stream that started on the relay goes on over the
 * direct path, and back on the relay when the direct path goes, byte for byte.
 */

const MB = 1024 * 1024;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function setup() {
  const sessions = sessionPair({ directHoldMs: 200, pingIntervalMs: 50, pingTimeoutMs: 3_000 });
  const direct: LinkedConnectors = linkedConnectors();
  linkDirect(sessions.client, direct.client);
  linkDirect(sessions.farm, direct.farm);
  cleanups.push(() => {
    sessions.client.close('closed', 'test over');
    sessions.farm.close('closed', 'test over');
    direct.close();
  });
  // Frames that arrived on a direct path, per end: proof the bytes really went over the data channel.
  const directFrames = { client: 0, farm: 0 };
  direct.client.events.on('path', (p) =>
    p.events.on('frame', () => {
      directFrames.client++;
    }),
  );
  direct.farm.events.on('path', (p) =>
    p.events.on('frame', () => {
      directFrames.farm++;
    }),
  );
  sessions.farm.events.on('stream', (stream: TunnelStream) => {
    stream.accept();
    stream.pipe(stream);
  });
  return { ...sessions, direct, directFrames };
}

/** Writes `bytes` of random data on the stream (waiting for 'drain'), and returns them for the hash. */
async function write(stream: TunnelStream, bytes: number): Promise<Buffer> {
  const data = randomBytes(bytes);
  for (let offset = 0; offset < bytes; offset += 64 * 1024) {
    if (!stream.write(data.subarray(offset, offset + 64 * 1024))) {
      await new Promise((resolve) => stream.once('drain', resolve));
    }
  }
  return data;
}

const onDirect = (s: TunnelSession) => s.pathInUse === 'direct';

describe('TunnelSession over relay + direct (real data channel)', () => {
  it('a stream begun on the relay goes on over the direct path once it is up, byte for byte', async () => {
    const { client, farm, direct, directFrames } = setup();
    const stream = client.openStream();
    stream.on('error', () => {});
    const back = hashOf(stream);
    const first = await write(stream, 1 * MB);
    await until(() => farm.info().bytes_in >= 1 * MB, '1 MB over the relay');
    expect(client.pathInUse).toBe('relay');

    direct.client.start();
    await until(() => onDirect(client) && onDirect(farm), 'both ends on the direct path', 30_000);
    const framesBefore = directFrames.farm;
    const second = await write(stream, 8 * MB);
    stream.end();
    const expected = Buffer.concat([first, second]);
    expect(await back).toEqual({
      bytes: expected.length,
      sha256: createHash('sha256').update(expected).digest('hex'),
    });
    // 8 MB in 64 KiB DATA frames went over the data channel, not the relay.
    expect(directFrames.farm - framesBefore).toBeGreaterThanOrEqual(128);
    expect(client.info().recoveries.map((r) => r.kind)).toContain('direct_up');
    expect(farm.info().path).toBe('direct');
    // linkDirect: the session's end closes its connector (and so the channel and connection).
    client.close('closed', 'test over');
    expect(direct.client.state).toBe('closed');
  });

  it('falls back to the relay when the farm side of the direct path closes, and the stream goes on intact', async () => {
    const { client, farm, direct } = setup();
    const paths: DirectPath[] = [];
    direct.client.events.on('path', (p) => paths.push(p));
    direct.client.start();
    await until(() => onDirect(client) && onDirect(farm), 'both ends on the direct path', 30_000);
    const stream = client.openStream();
    stream.on('error', () => {});
    const back = hashOf(stream);
    const first = await write(stream, 2 * MB);
    direct.farm.close('farm stopping its direct path');
    await until(() => client.pathInUse === 'relay' && farm.pathInUse === 'relay', 'both ends back on the relay');
    expect(paths[0]?.isUp).toBe(false);
    const second = await write(stream, 2 * MB);
    stream.end();
    const expected = Buffer.concat([first, second]);
    expect(await back).toEqual({
      bytes: expected.length,
      sha256: createHash('sha256').update(expected).digest('hex'),
    });
    expect(client.info().recoveries.map((r) => r.kind)).toEqual(['direct_up', 'direct_lost']);
    // The client gave the attempt up and will try again later; the relay carries the session meanwhile.
    expect(direct.client.state).toBe('waiting');
  });
});
