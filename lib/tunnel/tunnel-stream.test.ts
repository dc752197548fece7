import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FrameKind,
  MAX_DATA_BYTES,
  StreamResetCode,
  creditBody,
  decodeFrame,
  encodeFrame,
  readResetBody,
  resetBody,
  type TunnelFrame,
} from '../../protocol/tunnel-frame.js';
import { systemClock } from '../clock.js';
import { memoryPathPair } from './memory-path.fixture.js';
import {
  closingSessionPair,
  hashOf,
  nextStream,
  patternSource,
  quietStreamErrors,
  type sessionPair,
  until,
} from './session-harness.fixture.js';
import { TunnelSession } from './tunnel-session.js';
import { StreamResetError, type TunnelStream } from './tunnel-stream.js';

/** Streams over sessions on real timers: half-close, resets, credit, isolation, duplicates. */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const pair = (options: Parameters<typeof sessionPair>[0] = {}) => closingSessionPair(cleanups, options);

function errorOf(stream: TunnelStream): Promise<Error> {
  return new Promise((resolve) => stream.once('error', resolve));
}

/** Reads the stream's readable side to its end, leaving the writable side alone (no for-await: it destroys). */
async function readAll(stream: TunnelStream): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(stream, 'end');
  return Buffer.concat(chunks).toString();
}

/**
 * One session against a hand-driven peer on the other end of a memory path: the test writes raw frames
 * and reads what the session sends.
 */
function rawPeer(role: 'client' | 'farm', windowBytes = 64 * 1024) {
  const [mine, theirs] = memoryPathPair({ kind: 'relay', route: 7 });
  const session = new TunnelSession({
    role,
    sessionId: '0123456789abcdef0123456789abcdef',
    peer: 'raw',
    service: 'adb',
    clock: systemClock,
    windowBytes,
    pingIntervalMs: 1_000,
    pingTimeoutMs: 10_000,
  });
  cleanups.push(() => session.close('closed', 'test over'));
  quietStreamErrors(session);
  const received: TunnelFrame[] = [];
  theirs.events.on('frame', (buf) => {
    const decoded = decodeFrame(buf);
    if (decoded.ok) received.push(decoded.frame);
  });
  session.attach(mine);
  let seq = 1;
  const send = (kind: number, stream: number, body?: Uint8Array, atSeq?: number): void => {
    theirs.send(encodeFrame(kind, 7, atSeq ?? seq++, stream, body));
  };
  theirs.send(encodeFrame(FrameKind.RESUME, 7, 1, 0));
  return { session, received, send, theirs, setSeq: (n: number) => (seq = n) };
}

function windowBody(bytes: number): Buffer {
  const body = Buffer.alloc(4);
  body.writeUInt32BE(bytes, 0);
  return body;
}

describe('TunnelStream', () => {
  it('half-closes client → farm: the farm reads the end and still answers, then ends its side', async () => {
    const { client, farm } = pair();
    const offered = nextStream(farm);
    const stream = client.openStream();
    const farmStream = await offered;
    farmStream.accept();
    await once(stream, 'connect');
    stream.end('request');
    expect(await readAll(farmStream)).toBe('request');
    const answer = readAll(stream);
    farmStream.write('answer after the client ');
    farmStream.end('finished writing');
    expect(await answer).toBe('answer after the client finished writing');
    await until(() => client.info().streams_open === 0 && farm.info().streams_open === 0, 'both ends to forget it');
  });

  it('half-closes farm → client: the client reads the end and still sends', async () => {
    const { client, farm } = pair();
    const offered = nextStream(farm);
    const stream = client.openStream();
    const farmStream = await offered;
    farmStream.accept();
    farmStream.end('banner, then nothing more');
    expect(await readAll(stream)).toBe('banner, then nothing more');
    const got = readAll(farmStream);
    stream.end('the client goes on');
    expect(await got).toBe('the client goes on');
  });

  it('passes a reset from the farm to the client as a StreamResetError with code and reason', async () => {
    const { client, farm } = pair();
    farm.events.on('stream', (s) => s.reset(StreamResetCode.CONNECT_FAILED, 'connect ECONNREFUSED 127.0.0.1:5037'));
    const stream = client.openStream();
    const error = await errorOf(stream);
    expect(error).toBeInstanceOf(StreamResetError);
    expect(error).toMatchObject({
      code: 'STREAM_RESET',
      resetCode: StreamResetCode.CONNECT_FAILED,
      reason: 'connect ECONNREFUSED 127.0.0.1:5037',
    });
    await until(() => client.info().streams_open === 0 && farm.info().streams_open === 0, 'both ends to forget it');
  });

  it('passes a local socket failure on the client to the farm as ABORTED with its message', async () => {
    const { client, farm } = pair();
    const offered = nextStream(farm);
    const stream = client.openStream();
    const farmStream = await offered;
    farmStream.accept();
    const error = errorOf(farmStream);
    stream.on('error', () => {});
    stream.destroy(new Error('read ECONNRESET'));
    expect(await error).toMatchObject({ resetCode: StreamResetCode.ABORTED, reason: 'read ECONNRESET' });
  });

  it('refuses streams past maxStreams with TOO_MANY_STREAMS, and takes new ones once others end', async () => {
    const { client, farm } = pair({ maxStreams: 3 });
    const accepted: TunnelStream[] = [];
    farm.events.on('stream', (s) => {
      s.accept();
      accepted.push(s);
    });
    const streams = [client.openStream(), client.openStream(), client.openStream()];
    await Promise.all(streams.map((s) => once(s, 'connect')));
    const fourth = client.openStream();
    expect(await errorOf(fourth)).toMatchObject({ resetCode: StreamResetCode.TOO_MANY_STREAMS });
    accepted[0]!.reset(StreamResetCode.ABORTED, 'done with it');
    streams[0]!.on('error', () => {});
    await until(() => farm.info().streams_open === 2, 'the farm to forget the reset stream');
    const fifth = client.openStream();
    await once(fifth, 'connect');
    expect(farm.info().streams_total).toBe(4);
  });

  it('resets a stream whose peer sends past the credit (PROTOCOL_ERROR), and the session goes on', async () => {
    const { session, received, send } = rawPeer('farm', 64 * 1024);
    const offered = nextStream(session);
    send(FrameKind.OPEN, 1, windowBody(64 * 1024));
    const stream = await offered;
    stream.accept();
    const error = errorOf(stream);
    send(FrameKind.DATA, 1, Buffer.alloc(MAX_DATA_BYTES)); // exactly the window: allowed
    send(FrameKind.DATA, 1, Buffer.alloc(1)); // one byte past it, nothing consumed
    expect(await error).toMatchObject({ resetCode: StreamResetCode.PROTOCOL_ERROR });
    await until(() => received.some((f) => f.kind === FrameKind.RST), 'the RST to the peer');
    const rst = received.find((f) => f.kind === FrameKind.RST)!;
    expect(rst.stream).toBe(1);
    expect(readResetBody(rst.body)).toMatchObject({ code: StreamResetCode.PROTOCOL_ERROR });
    // Another stream on the same session works.
    const second = nextStream(session);
    send(FrameKind.OPEN, 2, windowBody(64 * 1024));
    (await second).accept();
    await until(() => received.some((f) => f.kind === FrameKind.OPEN_OK && f.stream === 2), 'OPEN_OK for stream 2');
  });

  it('never sends past the peer credit, and sends more as CREDIT arrives', async () => {
    const { session, received, send } = rawPeer('farm');
    const offered = nextStream(session);
    send(FrameKind.OPEN, 1, windowBody(100_000)); // the raw client's window
    const stream = await offered;
    stream.accept();
    stream.write(Buffer.alloc(300_000, 1));
    const dataBytes = (): number =>
      received.filter((f) => f.kind === FrameKind.DATA).reduce((sum, f) => sum + f.body.length, 0);
    await until(() => dataBytes() === 100_000, 'a window of data');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(dataBytes()).toBe(100_000);
    expect(received.filter((f) => f.kind === FrameKind.DATA).every((f) => f.body.length <= MAX_DATA_BYTES)).toBe(true);
    send(FrameKind.CREDIT, 1, creditBody(150_000), 0);
    await until(() => dataBytes() === 250_000, 'data up to the new credit');
    send(FrameKind.CREDIT, 1, creditBody(120_000), 0); // stale: harmless
    send(FrameKind.CREDIT, 1, creditBody(300_000), 0);
    await until(() => dataBytes() === 300_000, 'the rest');
  });

  it('sends writes that queued behind a full window as few large frames, in order, and takes a grown window', async () => {
    const { session, received, send } = rawPeer('farm');
    const offered = nextStream(session);
    send(FrameKind.OPEN, 1, windowBody(64 * 1024));
    const stream = await offered;
    stream.accept();
    const chunks = Array.from({ length: 10 }, (_, i) => Buffer.alloc(32 * 1024, i + 1));
    for (const chunk of chunks) stream.write(chunk); // two fit the window; one waits for credit, seven queue
    const data = (): TunnelFrame[] => received.filter((f) => f.kind === FrameKind.DATA);
    await until(() => data().length === 2, 'a window of data');
    // The window grows to 1 MiB with this CREDIT: the eight queued writes may all go.
    send(FrameKind.CREDIT, 1, creditBody(64 * 1024, 1024 * 1024), 0);
    await until(() => data().reduce((n, f) => n + f.body.length, 0) === 10 * 32 * 1024, 'all ten writes');
    // The write that waited for credit goes as it was; the seven queued behind it are gathered.
    expect(data().map((f) => f.body.length)).toEqual([
      32 * 1024,
      32 * 1024,
      32 * 1024,
      MAX_DATA_BYTES,
      7 * 32 * 1024 - MAX_DATA_BYTES,
    ]);
    expect(Buffer.concat(data().map((f) => f.body))).toEqual(Buffer.concat(chunks));
  });

  it('delivers frames in seq order only: duplicates and frames past a gap are dropped and counted', async () => {
    const { session, send, setSeq } = rawPeer('farm');
    const offered = nextStream(session);
    send(FrameKind.OPEN, 1, windowBody(64 * 1024)); // seq 1
    const stream = await offered;
    stream.accept();
    const text = readAll(stream);
    send(FrameKind.DATA, 1, Buffer.from('a'), 2);
    send(FrameKind.DATA, 1, Buffer.from('c'), 4); // past a gap: dropped, it comes again
    send(FrameKind.DATA, 1, Buffer.from('a'), 2); // duplicate
    send(FrameKind.DATA, 1, Buffer.from('b'), 3);
    send(FrameKind.DATA, 1, Buffer.from('c'), 4);
    send(FrameKind.DATA, 1, Buffer.from('b'), 3); // late duplicate
    send(FrameKind.FIN, 1, undefined, 5);
    setSeq(6);
    stream.end();
    expect(await text).toBe('abc');
    expect(session.droppedFrames).toBe(3);
  });

  it('acknowledges cumulatively and drops acknowledged frames from its retransmit memory', async () => {
    const { session, received, send } = rawPeer('farm');
    const offered = nextStream(session);
    send(FrameKind.OPEN, 1, windowBody(1024 * 1024));
    const stream = await offered;
    stream.accept();
    for (let i = 0; i < 40; i += 1) send(FrameKind.DATA, 1, Buffer.alloc(10));
    await until(() => received.some((f) => f.kind === FrameKind.ACK && f.seq === 42), 'an ACK for all 41');
    stream.write(Buffer.alloc(5 * MAX_DATA_BYTES));
    await until(() => received.filter((f) => f.kind === FrameKind.DATA).length === 5, 'five DATA frames');
    expect(session.unackedFrames).toBe(6); // OPEN_OK and five DATA
    send(FrameKind.ACK, 0, undefined, 5);
    await until(() => session.unackedFrames === 2, 'frames below 5 dropped');
    send(FrameKind.ACK, 0, undefined, 3); // stale: nothing changes
    send(FrameKind.ACK, 0, undefined, 7);
    await until(() => session.unackedFrames === 0, 'all dropped');
  });

  it('a slow reader stalls only its own stream: another stream and the pings go on', async () => {
    const { client, farm, relay } = pair({ windowBytes: 256 * 1024, pingIntervalMs: 20 });
    farm.events.on('stream', (s) => {
      s.accept();
      s.pipe(s);
    });
    const slow = client.openStream();
    await once(slow, 'connect');
    // The slow stream's reader never reads: its window fills, the farm's echo stops at its credit.
    slow.write(Buffer.alloc(2 * 1024 * 1024, 7));
    await until(() => farm.info().bytes_out >= 256 * 1024, 'the slow stream window to fill');
    // While it is stuck, the session's health pings keep being answered on the same path.
    let pongs = 0;
    relay.a.events.on('frame', (buf) => {
      if (buf[0] === FrameKind.PONG) pongs += 1;
    });
    await until(() => pongs >= 3, 'three pongs with the slow stream stuck');
    const fast = client.openStream();
    const { source, sha256 } = patternSource(8 * 1024 * 1024);
    const [back] = await Promise.all([hashOf(fast), pipeline(source, fast)]);
    expect(back).toEqual({ bytes: 8 * 1024 * 1024, sha256: sha256() });
    expect(client.info().state).toBe('active');
    expect(slow.readableLength + slow.unreadBytes).toBeLessThanOrEqual(256 * 1024 + 64 * 1024);
    // The slow stream was held at its window all along, not lost: reading it now drains it all.
    slow.end();
    const all = await hashOf(slow);
    expect(all.bytes).toBe(2 * 1024 * 1024);
  });

  it('closing the session resets every stream with SESSION_ENDED and the reason, once', async () => {
    const { client, farm } = pair();
    farm.events.on('stream', (s) => s.accept());
    const streams = [client.openStream(), client.openStream()];
    await Promise.all(streams.map((s) => once(s, 'connect')));
    const closed: string[] = [];
    client.events.on('closed', ({ code, reason }) => closed.push(`${code}: ${reason}`));
    const errors = Promise.all(streams.map(errorOf));
    client.close('replaced', 'the client opened this tunnel again');
    client.close('closed', 'again');
    for (const error of await errors)
      expect(error).toMatchObject({
        resetCode: StreamResetCode.SESSION_ENDED,
        reason: 'the client opened this tunnel again',
      });
    expect(closed).toEqual(['replaced: the client opened this tunnel again']);
    expect(client.info()).toMatchObject({ state: 'closed', path: null, streams_open: 0 });
    await until(() => farm.info().streams_open === 0, 'the farm to hear the resets');
  });

  it('rejects a RST body without a code as PROTOCOL_ERROR', () => {
    expect(readResetBody(resetBody(StreamResetCode.ABORTED, 'x'))).toEqual({
      code: StreamResetCode.ABORTED,
      reason: 'x',
    });
    expect(readResetBody(Buffer.alloc(1))).toMatchObject({ code: StreamResetCode.PROTOCOL_ERROR });
  });

  it('refuses to open a stream on the farm end with a typed error', () => {
    const { farm } = pair();
    expect(() => farm.openStream()).toThrow(expect.objectContaining({ code: 'TUNNEL_NOT_CLIENT' }));
  });
});
