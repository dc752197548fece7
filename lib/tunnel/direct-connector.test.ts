import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameKind, encodeFrame, MAX_DATA_BYTES } from '../../protocol/tunnel-frame.js';
import { hostBindAddress } from './direct-connector.js';
import {
  linkedConnectors,
  nextPath,
  pathDown,
  receiveBytes,
  sendAll,
  type LinkedConnectors,
} from './direct-pair.fixture.js';

/** Real WebRTC (node-datachannel) on 127.0.0.1, both peers in this process, signals through memory. */

let pair: LinkedConnectors | undefined;
afterEach(() => {
  pair?.close();
  pair = undefined;
});

function frames(totalBytes: number): { frames: Buffer[]; hash: string } {
  const data = randomBytes(totalBytes);
  const out: Buffer[] = [];
  for (let offset = 0, seq = 1; offset < data.length; offset += MAX_DATA_BYTES, seq++) {
    out.push(encodeFrame(FrameKind.DATA, 0, seq, 1, data.subarray(offset, offset + MAX_DATA_BYTES)));
  }
  return { frames: out, hash: createHash('sha256').update(Buffer.concat(out)).digest('hex') };
}

function hashOf(received: Buffer[]): string {
  return createHash('sha256').update(Buffer.concat(received)).digest('hex');
}

async function openPair(p: LinkedConnectors) {
  const paths = Promise.all([nextPath(p.client), nextPath(p.farm)]);
  p.client.start();
  p.farm.start();
  return paths;
}

describe('DirectConnector', () => {
  it('opens a channel between the client (offering) and the farm (answering); DirectPaths move frames both ways byte for byte', async () => {
    pair = linkedConnectors();
    const [clientPath, farmPath] = await openPair(pair);
    expect(pair.client.state).toBe('open');
    expect(pair.farm.state).toBe('open');
    expect(clientPath.kind).toBe('direct');
    expect(clientPath.route).toBe(0);
    expect(pair.sent.client.map((p) => p.kind)).toContain('offer');
    expect(pair.sent.farm.map((p) => p.kind)).toContain('answer');
    expect(pair.sent.client.some((p) => p.kind === 'candidate' && p.candidate.includes('127.0.0.1'))).toBe(true);

    const up = frames(4 * 1024 * 1024);
    const down = frames(2 * 1024 * 1024);
    const upBytes = up.frames.reduce((n, f) => n + f.length, 0);
    const downBytes = down.frames.reduce((n, f) => n + f.length, 0);
    const atFarm = receiveBytes(farmPath, upBytes);
    const atClient = receiveBytes(clientPath, downBytes);
    await Promise.all([sendAll(clientPath, up.frames), sendAll(farmPath, down.frames)]);
    const [gotUp, gotDown] = await Promise.all([atFarm, atClient]);
    // One frame per message: boundaries are kept, not only the bytes.
    expect(gotUp.length).toBe(up.frames.length);
    expect(hashOf(gotUp)).toBe(up.hash);
    expect(hashOf(gotDown)).toBe(down.hash);
  });

  it('applies backpressure: send answers false above the high-water mark and drain follows', async () => {
    pair = linkedConnectors({ path: { highWaterBytes: 128 * 1024, lowWaterBytes: 32 * 1024 } });
    const [clientPath, farmPath] = await openPair(pair);
    const big = encodeFrame(FrameKind.DATA, 0, 1, 1, Buffer.alloc(MAX_DATA_BYTES));
    const drained = new Promise<void>((resolve) => clientPath.events.once('drain', () => resolve()));
    let refused = false;
    let sentFrames = 0;
    while (!refused && sentFrames < 1000) {
      refused = !clientPath.send(big);
      sentFrames++;
    }
    expect(refused).toBe(true);
    expect(clientPath.buffered).toBeGreaterThanOrEqual(128 * 1024);
    await receiveBytes(farmPath, sentFrames * big.length);
    await drained;
    expect(clientPath.buffered).toBeLessThanOrEqual(32 * 1024);
  });

  it('restart (addresses changed) drops the old connection and candidates and opens a new channel', async () => {
    pair = linkedConnectors();
    const [oldClient, oldFarm] = await openPair(pair);
    const reopened = Promise.all([nextPath(pair.client), nextPath(pair.farm)]);
    const oldDown = Promise.all([pathDown(oldClient), pathDown(oldFarm)]);
    pair.farm.restart('address changed');
    await oldDown;
    expect(pair.sent.farm.some((p) => p.kind === 'restart')).toBe(true);
    const [newClient, newFarm] = await reopened;
    expect(newClient).not.toBe(oldClient);
    expect(oldClient.send(Buffer.alloc(17))).toBe(false);
    const data = frames(256 * 1024);
    const bytes = data.frames.reduce((n, f) => n + f.length, 0);
    const got = receiveBytes(newFarm, bytes);
    await sendAll(newClient, data.frames);
    expect(hashOf(await got)).toBe(data.hash);
  });

  it('peerMoved on the client (the broker says the farm moved) re-offers at once', async () => {
    pair = linkedConnectors();
    const [oldClient] = await openPair(pair);
    const offersBefore = pair.sent.client.filter((p) => p.kind === 'offer').length;
    const reopened = nextPath(pair.client);
    pair.client.peerMoved('farm moved');
    expect(oldClient.isUp).toBe(false);
    const fresh = await reopened;
    expect(fresh.isUp).toBe(true);
    // At least the one re-offer; on a loaded machine an attempt that timed out adds its own retry.
    expect(pair.sent.client.filter((p) => p.kind === 'offer').length).toBeGreaterThanOrEqual(offersBefore + 1);
  });

  it('closing one side gives down on the other', async () => {
    pair = linkedConnectors();
    const [clientPath, farmPath] = await openPair(pair);
    const clientDown = pathDown(clientPath);
    pair.farm.close();
    expect(farmPath.isUp).toBe(false);
    expect(await clientDown).toMatch(/closed|disconnected|failed/);
    // The client gave the attempt up and waits to try again; the relay carries the session meanwhile.
    expect(pair.client.state).toBe('waiting');
  });

  it('a peer that never answers: the attempt times out quietly and is retried later with a growing wait', async () => {
    pair = linkedConnectors({ openTimeoutMs: 200, retryMs: 100, maxRetryMs: 1000 });
    pair.cut();
    const states: string[] = [];
    const waits: number[] = [];
    pair.client.events.on('change', ({ state, reason, retryInMs }) => {
      states.push(`${state}: ${reason}`);
      if (retryInMs !== undefined) waits.push(retryInMs);
    });
    const opened: unknown[] = [];
    pair.client.events.on('path', (p) => opened.push(p));
    pair.client.start();
    await new Promise<void>((resolve) => {
      const off = pair?.client.events.on('change', () => {
        if (states.filter((s) => s.startsWith('waiting')).length >= 3) {
          off?.();
          resolve();
        }
      });
    });
    expect(opened).toEqual([]);
    expect(states.filter((s) => s.startsWith('waiting'))[0]).toMatch(/no data channel within 200 ms/);
    expect(pair.sent.client.filter((p) => p.kind === 'offer').length).toBeGreaterThanOrEqual(3);
    // random() is 0.5: three quarters of 100, 200, 400 ms.
    expect(waits.slice(0, 3)).toEqual([75, 150, 300]);
    pair.client.close();
    expect(pair.client.state).toBe('closed');
    expect(pair.client.nextAttemptAt).toBeNull();
  });

  it('the farm gives up an offer whose channel never opens and waits for the next one', async () => {
    pair = linkedConnectors({ openTimeoutMs: 200, retryMs: 60_000 });
    pair.cut();
    pair.client.start();
    const offer = pair.sent.client.find((p) => p.kind === 'offer');
    expect(offer).toBeDefined();
    const gaveUp = new Promise<string>((resolve) => {
      pair?.farm.events.on('change', ({ state, reason }) => {
        if (state === 'idle') resolve(reason);
      });
    });
    // Only the offer reaches the farm: it answers, but no candidate of the client ever comes.
    if (offer) pair.farm.receive(offer);
    expect(pair.farm.state).toBe('connecting');
    expect(pair.sent.farm.map((p) => p.kind)).toContain('answer');
    expect(await gaveUp).toMatch(/no data channel within 200 ms/);
  });

  it('drops an answer and candidates that belong to an attempt that is over', async () => {
    pair = linkedConnectors();
    const [first] = await openPair(pair);
    const staleAnswer = pair.sent.farm.find((p) => p.kind === 'answer');
    const staleCandidates = pair.sent.farm.filter((p) => p.kind === 'candidate');
    const reopened = nextPath(pair.client);
    pair.client.peerMoved('farm moved');
    // The old answer and candidates arrive after the new offer went out: they must not break the new attempt.
    if (staleAnswer) pair.client.receive(staleAnswer);
    for (const c of staleCandidates) pair.client.receive(c);
    const second = await reopened;
    expect(first.isUp).toBe(false);
    expect(second.isUp).toBe(true);
  });
});

describe('hostBindAddress', () => {
  it('binds to loopback only on a machine whose only interface is loopback', () => {
    const lo = { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '', internal: true, cidr: null };
    const eth = { ...lo, address: '10.1.2.3', internal: false };
    expect(hostBindAddress({ lo: [lo] } as never)).toBe('127.0.0.1');
    expect(hostBindAddress({ lo: [lo], eth0: [eth] } as never)).toBeUndefined();
  });
});
