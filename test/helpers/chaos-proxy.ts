import net from 'node:net';

export type ProxyMode = 'pass' | 'blackhole';

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Chunks held while blackholed, per direction. */
  toUpstream: Buffer[];
  toClient: Buffer[];
}

/**
 * A TCP proxy for fault injection between agent and hub, on loopback.
 * - blackhole: nothing moves in either direction and nothing is closed (no RST, no FIN): reading
 *   stops, so the sender's kernel buffers fill as on a dead path. Back to pass, held bytes flow on.
 *   New connections are accepted but not forwarded (the handshake never completes).
 * - delay: every chunk is forwarded after a fixed delay (order kept).
 * - resetAll: every open connection is destroyed with a TCP RST.
 * - refuse / accept: stop and start listening (connection refused meanwhile).
 */
export class ChaosProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<Pair>();
  private mode: ProxyMode = 'pass';
  private delayMs = 0;
  /** Connections accepted over the proxy's life. */
  accepted = 0;

  private constructor(
    private listenPort: number,
    private readonly target: { host: string; port: number },
  ) {}

  get port(): number {
    return this.listenPort;
  }

  static async start(target: { host?: string; port: number }, port = 0): Promise<ChaosProxy> {
    const proxy = new ChaosProxy(port, { host: target.host ?? '127.0.0.1', port: target.port });
    await proxy.accept();
    return proxy;
  }

  /** http://127.0.0.1:PORT, for an agent's server list. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get connections(): number {
    return this.pairs.size;
  }

  setMode(mode: ProxyMode): void {
    this.mode = mode;
    if (mode === 'pass') {
      for (const pair of this.pairs) {
        if (!pair.upstream) this.connectUpstream(pair);
        this.flush(pair);
      }
    }
  }

  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  /** Every open connection gets a TCP RST. */
  resetAll(): void {
    for (const pair of this.pairs) {
      pair.client.resetAndDestroy();
      pair.upstream?.resetAndDestroy();
    }
    this.pairs.clear();
  }

  /** Stop listening: new connections are refused. Open ones are left alone. */
  async refuse(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listen (again) on the same port. */
  async accept(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => this.onClient(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (typeof address === 'object' && address) this.listenPort = address.port;
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.pairs.clear();
    await this.refuse();
  }

  private onClient(client: net.Socket): void {
    this.accepted += 1;
    const pair: Pair = { client, upstream: undefined, toUpstream: [], toClient: [] };
    this.pairs.add(pair);
    client.on('data', (chunk: Buffer) => this.forward(pair, 'toUpstream', chunk));
    client.on('end', () => pair.upstream?.end());
    client.on('error', () => this.drop(pair));
    client.on('close', () => this.drop(pair));
    if (this.mode === 'pass') this.connectUpstream(pair);
    else client.pause();
  }

  private connectUpstream(pair: Pair): void {
    const upstream = net.connect(this.target.port, this.target.host);
    pair.upstream = upstream;
    upstream.on('data', (chunk: Buffer) => this.forward(pair, 'toClient', chunk));
    upstream.on('end', () => pair.client.end());
    upstream.on('error', () => this.drop(pair));
    upstream.on('close', () => this.drop(pair));
  }

  private forward(pair: Pair, direction: 'toUpstream' | 'toClient', chunk: Buffer): void {
    const source = direction === 'toUpstream' ? pair.client : pair.upstream;
    if (this.mode === 'blackhole' || (direction === 'toUpstream' && !pair.upstream)) {
      pair[direction].push(chunk);
      source?.pause();
      return;
    }
    const sink = direction === 'toUpstream' ? pair.upstream : pair.client;
    if (this.delayMs > 0) {
      setTimeout(() => {
        if (!sink?.destroyed) sink?.write(chunk);
      }, this.delayMs);
    } else {
      sink?.write(chunk);
    }
  }

  private flush(pair: Pair): void {
    for (const chunk of pair.toUpstream.splice(0)) pair.upstream?.write(chunk);
    for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
    pair.client.resume();
    pair.upstream?.resume();
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}
