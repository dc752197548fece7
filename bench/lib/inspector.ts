import WebSocket from 'ws';
import { withTimeout } from './time.js';

export interface HeapReading {
  rssKb: number;
  heapUsedKb: number;
  heapTotalKb: number;
  externalKb: number;
}

/**
 * A minimal Chrome DevTools Protocol client for the hub's --inspect port: the only way to make
 * another process collect its garbage, so memory per connection can be read with garbage out of
 * the way. Used only between measurements, never during the RTT/CPU window.
 */
export class Inspector {
  private nextId = 0;
  private readonly pending = new Map<number, (result: unknown) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { id?: number; result?: unknown };
      if (message.id === undefined) return;
      this.pending.get(message.id)?.(message.result);
      this.pending.delete(message.id);
    });
  }

  static async connect(url: string): Promise<Inspector> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await withTimeout(
      'inspector connection',
      new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      }),
      5000,
    );
    ws.on('error', () => undefined);
    return new Inspector(ws);
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.nextId;
    const reply = new Promise<unknown>((resolve) => this.pending.set(id, resolve));
    this.ws.send(JSON.stringify({ id, method, params }));
    return withTimeout(`inspector ${method}`, reply, 60_000);
  }

  /** Full GC (twice: the first can leave weakly held objects for the second), then the process's own memory figures. */
  async memoryAfterGc(): Promise<HeapReading> {
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.collectGarbage');
    const reply = (await this.call('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    })) as { result?: { value?: string } };
    const m = JSON.parse(reply.result?.value ?? '{}') as {
      rss?: number;
      heapUsed?: number;
      heapTotal?: number;
      external?: number;
    };
    const kb = (n: number | undefined) => (n ?? Number.NaN) / 1024;
    return { rssKb: kb(m.rss), heapUsedKb: kb(m.heapUsed), heapTotalKb: kb(m.heapTotal), externalKb: kb(m.external) };
  }

  close(): void {
    this.ws.terminate();
  }
}
