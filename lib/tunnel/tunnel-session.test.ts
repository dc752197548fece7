import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { hashOf, patternSource, sessionPair, until } from './session-harness.fixture.js';
import type { TunnelSession } from './tunnel-session.js';
import type { TunnelStream } from './tunnel-stream.js';

const open: TunnelSession[] = [];
afterEach(() => {
  for (const session of open.splice(0)) session.close('closed', 'test over');
});

function pair(options: Parameters<typeof sessionPair>[0] = {}) {
  const p = sessionPair(options);
  open.push(p.client, p.farm);
  return p;
}

/** The farm end echoes every stream back. */
function echo(farm: TunnelSession): void {
  farm.events.on('stream', (stream: TunnelStream) => {
    stream.accept();
    stream.pipe(stream);
  });
}

describe('TunnelSession', () => {
  it('carries a stream both ways and goes active', async () => {
    const { client, farm } = pair();
    echo(farm);
    const stream = client.openStream();
    const connected = new Promise((resolve) => stream.once('connect', resolve));
    const { source, sha256 } = patternSource(1_000_000);
    const [result] = await Promise.all([hashOf(stream), pipeline(source, stream), connected]);
    expect(result).toEqual({ bytes: 1_000_000, sha256 });
    await until(() => client.info().streams_open === 0 && farm.info().streams_open === 0, 'streams to close');
    expect(client.info()).toMatchObject({ state: 'active', path: 'relay', bytes_out: 1_000_000, streams_total: 1 });
    expect(farm.info()).toMatchObject({ state: 'active', bytes_in: 1_000_000, bytes_out: 1_000_000 });
  });
});
