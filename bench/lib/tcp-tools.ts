import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';

/**
 * TCP tools that judge a pipe from outside: whatever sits between them (the tunnel, a chain of socat
 * relays, nothing) must deliver every byte, in order, both ways. The tunnel's tests and its benchmark
 * share them.
 */

export interface TcpServer {
  port: number;
  close(): Promise<void>;
}

async function listen(server: net.Server, host: string, port = 0): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address');
  return address.port;
}

function closer(server: net.Server, sockets: Set<net.Socket>): () => Promise<void> {
  return async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

function tracked(server: net.Server): Set<net.Socket> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  });
  return sockets;
}

/** Writes back everything it reads (for round trips and ping-pong). */
export async function startEchoServer(host = '127.0.0.1', port = 0): Promise<TcpServer> {
  const server = net.createServer({ noDelay: true }, (socket) => socket.pipe(socket));
  const sockets = tracked(server);
  return { port: await listen(server, host, port), close: closer(server, sockets) };
}

/**
 * The byte-for-byte judge. A connection either
 * - uploads: sends "PUT\n", then any bytes, then half-closes; the server answers the sha256 (hex) and
 *   the byte count of what it read, "HASH <hex> <bytes>\n"; or
 * - downloads: sends "GET <bytes>\n"; the server sends that many random bytes and then "<hex>\n",
 *   the sha256 of them, and ends.
 */
export async function startHashServer(host = '127.0.0.1', port = 0): Promise<TcpServer> {
  const server = net.createServer((socket) => {
    let head = Buffer.alloc(0);
    let hash: ReturnType<typeof createHash> | undefined;
    let bytes = 0;
    const onData = (chunk: Buffer) => {
      if (hash) {
        hash.update(chunk);
        bytes += chunk.length;
        return;
      }
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      const line = head.subarray(0, nl).toString('latin1');
      const rest = head.subarray(nl + 1);
      if (line === 'PUT') {
        hash = createHash('sha256');
        hash.update(rest);
        bytes = rest.length;
        socket.once('end', () => {
          socket.end(`HASH ${hash?.digest('hex') ?? ''} ${bytes}\n`);
        });
      } else if (line.startsWith('GET ')) {
        socket.off('data', onData);
        sendRandom(socket, Number(line.slice(4))).then(
          (digest) => socket.end(`${digest}\n`),
          () => socket.destroy(), // the reader went away mid-download: nothing left to answer
        );
      } else {
        socket.destroy();
      }
    };
    socket.on('data', onData);
  });
  const sockets = tracked(server);
  return { port: await listen(server, host, port), close: closer(server, sockets) };
}

/** Writes `total` random bytes with backpressure; resolves with their sha256 (hex). */
async function sendRandom(socket: net.Socket, total: number): Promise<string> {
  const hash = createHash('sha256');
  let left = total;
  while (left > 0) {
    const chunk = randomBytes(Math.min(left, 256 * 1024));
    hash.update(chunk);
    left -= chunk.length;
    if (!socket.write(chunk)) {
      await drainOrClose(socket);
      if (socket.destroyed) throw new Error('connection closed while sending');
    }
  }
  return hash.digest('hex');
}

/** Resolves at the socket's next 'drain' or 'close', leaving no listener behind (one per wait would pile up). */
function drainOrClose(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

async function connect(port: number, host: string): Promise<net.Socket> {
  const socket = net.connect({ port, host, noDelay: true });
  await once(socket, 'connect');
  return socket;
}

/** Reads a socket to its end. */
async function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'end');
  return Buffer.concat(chunks);
}

export interface TransferResult {
  bytes: number;
  /** True when the far side saw exactly the bytes sent (same count, same sha256). */
  intact: boolean;
  ms: number;
  sent: string;
  received: string;
}

/** Uploads `total` random bytes to a hash server through whatever listens on `port`. */
export async function upload(port: number, total: number, host = '127.0.0.1'): Promise<TransferResult> {
  const started = performance.now();
  const socket = await connect(port, host);
  socket.write('PUT\n');
  const answer = readAll(socket);
  const sent = await sendRandom(socket, total);
  socket.end();
  const line = (await answer).toString('latin1').trim();
  const match = /^HASH ([0-9a-f]{64}) (\d+)$/.exec(line);
  const received = match?.[1] ?? `(answer: ${JSON.stringify(line.slice(0, 80))})`;
  return {
    bytes: total,
    intact: match !== null && received === sent && Number(match[2]) === total,
    ms: performance.now() - started,
    sent,
    received,
  };
}

/** Downloads `total` random bytes from a hash server through whatever listens on `port`. */
export async function download(port: number, total: number, host = '127.0.0.1'): Promise<TransferResult> {
  const started = performance.now();
  const socket = await connect(port, host);
  socket.write(`GET ${total}\n`);
  const all = await readAll(socket);
  const data = all.subarray(0, Math.max(0, all.length - 65));
  const sent = all.subarray(all.length - 65, all.length - 1).toString('latin1');
  const received = createHash('sha256').update(data).digest('hex');
  return {
    bytes: total,
    intact: data.length === total && sent === received,
    ms: performance.now() - started,
    sent,
    received,
  };
}

/** Round trips of one byte through an echo server behind `port`: milliseconds each. */
export async function pingPong(port: number, count: number, host = '127.0.0.1'): Promise<number[]> {
  const socket = await connect(port, host);
  const times: number[] = [];
  const one = Buffer.from([0x2a]);
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const got = once(socket, 'data');
      socket.write(one);
      await got;
      times.push(performance.now() - started);
    }
  } finally {
    socket.destroy();
  }
  return times;
}

export interface ChildGroup {
  /** Where the first process of the group listens. */
  port: number;
  pids: number[];
  stop(): Promise<void>;
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }),
  );
}

/** Waits until something accepts connections on the port (a child process that is starting). */
export async function waitForPort(port: number, timeoutMs = 10_000, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await connect(port, host)).destroy();
      return;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

/**
 * `hops` relay processes in front of `targetPort`: hop 1 listens on the returned port and forwards to
 * hop 2 … the last forwards to the target. `spawnHop` starts one hop listening on `port` and
 * forwarding to `next`.
 */
async function relayChain(
  targetPort: number,
  hops: number,
  freePort: () => Promise<number>,
  spawnHop: (port: number, next: number) => ChildProcess,
): Promise<ChildGroup> {
  const ports: number[] = [];
  for (let i = 0; i < hops; i++) ports.push(await freePort());
  const children = ports.map((port, i) => spawnHop(port, ports[i + 1] ?? targetPort));
  // Not waitForPort: a probe connection would pass down the chain and be taken by a one-test iperf3 server.
  for (const port of ports) await waitForBind(port);
  return {
    port: ports[0] ?? targetPort,
    pids: children.map((child) => child.pid ?? 0),
    stop: () => stopAll(children),
  };
}

/**
 * A chain of `hops` socat relays in front of `targetPort` (socat -b 262144: 256 KiB copies), the floor
 * for copying bytes through user space.
 */
export function socatChain(targetPort: number, hops: number, freePort: () => Promise<number>): Promise<ChildGroup> {
  return relayChain(targetPort, hops, freePort, (port, next) =>
    spawn('socat', ['-b', '262144', `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `TCP:127.0.0.1:${next}`], {
      stdio: 'ignore',
    }),
  );
}

/** One Node hop: `socket.pipe(upstream).pipe(socket)` and nothing else. */
const NODE_PIPE_HOP = `
  const net = require('node:net');
  const [listenPort, nextPort] = process.argv.slice(1).map(Number);
  net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    const upstream = net.connect({ port: nextPort, host: '127.0.0.1', allowHalfOpen: true, noDelay: true });
    socket.pipe(upstream).pipe(socket);
    const end = () => { socket.destroy(); upstream.destroy(); };
    socket.on('error', end);
    upstream.on('error', end);
  }).listen(listenPort, '127.0.0.1');
  process.on('SIGTERM', () => process.exit(0));
`;

/**
 * The same chain with Node in each hop, doing nothing but pipe sockets: what any relay written for
 * Node pays per hop before it frames or routes a byte (its stream machinery, 64 KiB reads, a buffer
 * per read, the garbage collector).
 */
export function nodePipeChain(targetPort: number, hops: number, freePort: () => Promise<number>): Promise<ChildGroup> {
  return relayChain(targetPort, hops, freePort, (port, next) =>
    spawn(process.execPath, ['-e', NODE_PIPE_HOP, String(port), String(next)], { stdio: 'ignore' }),
  );
}

export interface IperfResult {
  /** What the receiving side counted, in bits per second. */
  bitsPerSecond: number;
  /** Bytes the receiving side counted (iperf3 may stop counting a little before the last bytes land). */
  bytes: number;
  /** Bytes the sending side wrote. */
  sentBytes: number;
  seconds: number;
}

/** An iperf3 server for exactly one test (`-1`), on `port`. */
export async function startIperfServer(port: number): Promise<ChildGroup> {
  const child = spawn('iperf3', ['-s', '-1', '-B', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  await waitForBind(port);
  return { port, pids: [child.pid ?? 0], stop: () => stopAll([child]) };
}

/** True when a socket listens on 127.0.0.1:`port` (or any address), read from /proc/net/tcp. */
function listening(port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // fields[1] is "ADDR:PORT" in hex, fields[3] the state: 0A is LISTEN.
      if (fields[3] === '0A' && fields[1]?.endsWith(`:${hexPort}`)) return true;
    }
  }
  return false;
}

/**
 * Waits until a child process listens on `port`, without touching it: a probe connection would pass
 * down a relay chain and be taken by a one-test iperf3 server as its test, and a probe bind could take
 * the port from under the child.
 */
async function waitForBind(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!listening(port)) {
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Runs the iperf3 client against `port` (where a server, or a pipe to one, listens) for `seconds`
 * (or `bytes`), and returns what the server received. `reverse`: the server sends.
 */
export async function runIperfClient(
  port: number,
  options: { seconds?: number; bytes?: number; reverse?: boolean; streams?: number } = {},
): Promise<IperfResult> {
  const args = ['-c', '127.0.0.1', '-p', String(port), '-J'];
  if (options.bytes !== undefined) args.push('-n', String(options.bytes));
  else args.push('-t', String(options.seconds ?? 5));
  if (options.reverse) args.push('-R');
  if (options.streams !== undefined) args.push('-P', String(options.streams));
  const child = spawn('iperf3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  type Sum = { bits_per_second: number; bytes: number; seconds: number };
  let report: { error?: string; end?: { sum_received?: Sum; sum_sent?: Sum } };
  try {
    report = JSON.parse(out) as typeof report;
  } catch {
    throw new Error(`iperf3 exited ${code} without a JSON report: ${err.trim() || out.slice(0, 200)}`);
  }
  const sum = report.end?.sum_received;
  const sent = report.end?.sum_sent;
  if (report.error !== undefined || !sum || !sent)
    throw new Error(`iperf3: ${report.error ?? 'no sum_received or sum_sent in its report'}`);
  return { bitsPerSecond: sum.bits_per_second, bytes: sum.bytes, sentBytes: sent.bytes, seconds: sum.seconds };
}
