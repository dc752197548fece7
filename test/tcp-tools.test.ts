import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  download,
  nodePipeChain,
  pingPong,
  runIperfClient,
  socatChain,
  startEchoServer,
  startHashServer,
  startIperfServer,
  upload,
  type ChildGroup,
  type TcpServer,
} from '../bench/lib/tcp-tools.js';
import { freePort } from './helpers/ports.js';

// The judges the tunnel's tests rely on must themselves tell a faithful pipe from a faulty one.
describe('tcp tools (the byte-for-byte judge, socat chains, iperf3)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const keep = <T extends TcpServer | ChildGroup>(thing: T): T => {
    cleanups.push(() => ('stop' in thing ? thing.stop() : thing.close()));
    return thing;
  };

  it('sees 5 MB arrive intact both ways, directly and through two socat hops', async () => {
    const hashes = keep(await startHashServer());
    expect(await upload(hashes.port, 5_000_000)).toMatchObject({ intact: true, bytes: 5_000_000 });
    expect((await download(hashes.port, 5_000_000)).intact).toBe(true);
    const chain = keep(await socatChain(hashes.port, 2, freePort));
    expect(chain.pids).toHaveLength(2);
    expect((await upload(chain.port, 5_000_000)).intact).toBe(true);
    expect((await download(chain.port, 5_000_000)).intact).toBe(true);
  });

  it('carries 5 MB intact both ways through a chain of Node pipe hops', async () => {
    const hashes = keep(await startHashServer());
    const chain = keep(await nodePipeChain(hashes.port, 3, freePort));
    expect(chain.pids).toHaveLength(3);
    expect((await upload(chain.port, 5_000_000)).intact).toBe(true);
    expect((await download(chain.port, 5_000_000)).intact).toBe(true);
  });

  it('catches a pipe that flips one byte', async () => {
    const hashes = keep(await startHashServer());
    // A relay that corrupts the 1000th byte it forwards towards the server.
    let seen = 0;
    const corrupter = net.createServer((inbound) => {
      const outbound = net.connect(hashes.port, '127.0.0.1');
      inbound.on('data', (chunk: Buffer) => {
        if (seen <= 1000 && seen + chunk.length > 1000)
          chunk.writeUInt8(chunk.readUInt8(1000 - seen) ^ 0xff, 1000 - seen);
        seen += chunk.length;
        outbound.write(chunk);
      });
      inbound.on('end', () => outbound.end());
      outbound.pipe(inbound);
    });
    corrupter.listen(0, '127.0.0.1');
    await new Promise((resolve) => corrupter.once('listening', resolve));
    cleanups.push(() => new Promise((resolve) => corrupter.close(() => resolve())));
    const { port } = corrupter.address() as net.AddressInfo;
    const result = await upload(port, 100_000);
    expect(result.intact).toBe(false);
    expect(result.received).not.toBe(result.sent);
  });

  it('times 1-byte round trips through an echo server', async () => {
    const echo = keep(await startEchoServer());
    const times = await pingPong(echo.port, 50);
    expect(times).toHaveLength(50);
    expect(times.every((t) => t > 0)).toBe(true);
  });

  it('runs iperf3 directly and through one socat hop', async () => {
    const direct = keep(await startIperfServer(await freePort()));
    // The receiver's count can stop short of the last blocks (iperf3 ends its test when the sender is done).
    const result = await runIperfClient(direct.port, { bytes: 20_000_000 });
    expect(result.sentBytes).toBeGreaterThanOrEqual(20_000_000);
    expect(result.bytes).toBeGreaterThan(0);
    expect(result.bitsPerSecond).toBeGreaterThan(0);
    const server = keep(await startIperfServer(await freePort()));
    const chain = keep(await socatChain(server.port, 1, freePort));
    const relayed = await runIperfClient(chain.port, { bytes: 20_000_000, reverse: true });
    expect(relayed.sentBytes).toBeGreaterThanOrEqual(20_000_000);
    expect(relayed.bytes).toBeGreaterThan(0);
  });
});
