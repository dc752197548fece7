import net from 'node:net';

/**
 * A loopback port nothing listens on now, for a child process that must be told its port before it
 * starts (socat, iperf3). Bind-0-and-close can race another process taking the same port; a bench
 * runs alone, and a child that loses the race fails loudly rather than measuring something else.
 */
export async function freeLoopbackPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}
