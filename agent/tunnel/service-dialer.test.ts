import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/manual-clock.fixture.js';
import { ServiceDialError, describeDialError, dialService } from './service-dialer.js';
import { parseService } from './service-allowlist.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanups.splice(0)) fn();
});

function listen(server: net.Server): Promise<number> {
  cleanups.push(() => server.close());
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  const port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve((server.address() as net.AddressInfo).port);
    });
  });
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('dialService', () => {
  it('connects to a listening service', async () => {
    const port = await listen(net.createServer((s) => s.end('hi')));
    const socket = await dialService(parseService('echo', `127.0.0.1:${port}`), { timeoutMs: 5000 });
    cleanups.push(() => socket.destroy());
    const data = await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString())));
    expect(data).toBe('hi');
  });

  it('says the service refused the connection when nothing listens', async () => {
    const port = await closedPort();
    const error = await dialService(parseService('adb', `127.0.0.1:${port}`), { timeoutMs: 5000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ServiceDialError);
    expect(error).toMatchObject({
      code: 'SERVICE_DIAL_FAILED',
      cause_code: 'ECONNREFUSED',
      message: `127.0.0.1:${port} refused the connection`,
    });
  });

  it('gives up after the timeout on a service that never answers', async () => {
    const clock = new ManualClock();
    // A socket that is never connected stands for a host that drops SYNs: no connect, no error.
    const silent = new net.Socket();
    const dial = dialService(parseService('adb', '10.1.2.3:5037'), {
      timeoutMs: 3000,
      clock,
      connect: () => silent,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await clock.advance(2999);
    expect(silent.destroyed).toBe(false);
    await clock.advance(1);
    const error = await dial;
    expect(error).toBeInstanceOf(ServiceDialError);
    expect(error).toMatchObject({ cause_code: 'ETIMEDOUT', message: '10.1.2.3:5037 did not answer within 3 s' });
    expect(silent.destroyed).toBe(true);
  });

  it('describes the usual socket errors in one sentence naming the target', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(describeDialError('127.0.0.1:5037', err('ECONNREFUSED')).message).toBe(
      '127.0.0.1:5037 refused the connection',
    );
    expect(describeDialError('adb.local:5037', err('ENOTFOUND')).message).toBe(
      'adb.local:5037 names a host that could not be resolved',
    );
    expect(describeDialError('10.0.0.1:5037', err('EHOSTUNREACH')).message).toContain('unreachable');
    expect(describeDialError('10.0.0.1:5037', err('EWEIRD')).message).toBe(
      '10.0.0.1:5037 could not be reached (EWEIRD: EWEIRD)',
    );
  });
});
