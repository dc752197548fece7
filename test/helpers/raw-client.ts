import type { Socket } from 'node:net';
import { expect } from 'vitest';
import WebSocket from 'ws';
import { PROTOCOL_VERSION } from '../../protocol/version.js';
import type { HubProcess } from './hub-process.js';
import { waitUntil } from './wait.js';

/**
 * A hand-driven WebSocket peer for hub tests: it sends exactly what a test tells it to (bad JSON,
 * binary frames, floods, no hello at all) and records everything the hub sends back, so tests can
 * check the hub's answer to input a real agent would never produce.
 */

export interface CloseInfo {
  code: number;
  reason: string;
}

export type HubFrame = { type: string } & Record<string, unknown>;

export interface RawClientOptions {
  /** Sent as "Authorization: Bearer …" on the upgrade request. */
  token?: string;
  /** The local address to connect from (Linux routes all of 127/8 to lo: 127.0.0.5 is another "host"). */
  localAddress?: string;
}

/** Every client opened by a test, so that `RawClient.terminateAll()` in afterEach leaves nothing behind. */
const open = new Set<RawClient>();

export class RawClient {
  readonly ws: WebSocket;
  /** JSON text frames received from the hub, oldest first (text that is not JSON is kept as { type: '<not json>' }). */
  readonly frames: HubFrame[] = [];
  /** Binary frames received from the hub (the protocol has none: any here is a hub bug). */
  readonly binaryFrames: Buffer[] = [];
  /** Resolves once, when the socket has closed (whoever closed it), with the code and reason this side saw. */
  readonly closed: Promise<CloseInfo>;
  /** Set when the hub answered the upgrade with a plain HTTP response instead of 101. */
  rejection: { status: number; body: string } | undefined;
  private closeInfo: CloseInfo | undefined;

  private constructor(url: string, options: RawClientOptions) {
    this.ws = new WebSocket(url, {
      headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
      perMessageDeflate: false,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    open.add(this);
    // Without a listener an 'error' event would crash the test worker; the close that follows tells the story.
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        this.binaryFrames.push(data);
        return;
      }
      try {
        this.frames.push(JSON.parse(data.toString('utf8')) as HubFrame);
      } catch {
        this.frames.push({ type: '<not json>' });
      }
    });
    this.ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        this.rejection = { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') };
        this.ws.terminate();
      });
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code: number, reason: Buffer) => {
        open.delete(this);
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
      });
    });
  }

  /** Opens a WebSocket and waits until the upgrade succeeded (throws if the hub refused the upgrade). */
  static async connect(url: string, options: RawClientOptions = {}, timeoutMs = 5000): Promise<RawClient> {
    const client = RawClient.dial(url, options);
    await waitUntil(
      `WebSocket open to ${url}`,
      () => {
        if (client.ws.readyState === WebSocket.OPEN) return true;
        if (client.closeInfo)
          throw new Error(
            `closed before opening: ${JSON.stringify(client.closeInfo)} ${JSON.stringify(client.rejection)}`,
          );
        return false;
      },
      timeoutMs,
    );
    return client;
  }

  /** Starts a WebSocket without waiting for anything (for upgrades the hub is expected to refuse). */
  static dial(url: string, options: RawClientOptions = {}): RawClient {
    return new RawClient(url, options);
  }

  /** Terminates every client still open (afterEach). */
  static terminateAll(): void {
    for (const client of open) client.ws.terminate();
    open.clear();
  }

  get isClosed(): boolean {
    return this.closeInfo !== undefined;
  }

  sendJson(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  sendText(text: string): void {
    this.ws.send(text);
  }

  /** Sends a hello (with these fields replaced or, when set to undefined, removed). */
  sendHello(agentId: string, overrides: Record<string, unknown> = {}): void {
    this.sendJson(helloMessage(agentId, overrides));
  }

  /** Sends hello and waits for `registered`; the client is then a registered agent on the hub. */
  async register(agentId: string, overrides: Record<string, unknown> = {}, timeoutMs = 5000): Promise<HubFrame> {
    this.sendHello(agentId, overrides);
    return this.nextFrame('registered', timeoutMs);
  }

  /** A valid heartbeat, as a real agent sends it. */
  sendHeartbeat(seq: number): void {
    this.sendJson({ type: 'heartbeat', seq, cpu_usage: 12.5, ram_usage: 40, timestamp: Date.now() });
  }

  /** Waits for a frame of this type received from `fromIndex` on (default: any received so far). */
  nextFrame(type: string, timeoutMs = 5000, fromIndex = 0): Promise<HubFrame> {
    return waitUntil(
      `a "${type}" frame from the hub (got: ${this.frames.map((f) => f.type).join(', ') || 'nothing'}, and ` +
        `${this.binaryFrames.length} binary frame(s); closed: ${JSON.stringify(this.closeInfo)})`,
      () => {
        const frame = this.frames.slice(fromIndex).find((f) => f.type === type);
        if (!frame && this.closeInfo)
          throw new Error(`closed with ${JSON.stringify(this.closeInfo)} before a "${type}" frame`);
        return frame;
      },
      timeoutMs,
    );
  }

  /**
   * Stops reading from the TCP socket: the kernel buffers fill and the hub's writes back up, as
   * with a peer that hangs. Pings go unanswered too (ws answers them only when it reads them).
   */
  pauseReading(): void {
    this.socket().pause();
  }

  resumeReading(): void {
    this.socket().resume();
  }

  private socket(): Socket {
    // ws keeps the net.Socket in a private field; there is no public way to stop reading.
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    if (!socket) throw new Error('the WebSocket has no socket (not open, or already closed)');
    return socket;
  }
}

/** A hello that the hub accepts (given a token for `agentId`), with fields overridden or removed. */
export function helloMessage(agentId: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const hello: Record<string, unknown> = {
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    agent_id: agentId,
    name: `raw-${agentId}`,
    version: '0.0.0-test',
    hostname: 'raw-client',
    platform: 'test',
    ...overrides,
  };
  // The base fields are all defined: an undefined one was overridden to remove it.
  return Object.fromEntries(Object.entries(hello).filter(([, value]) => value !== undefined));
}

/**
 * Waits for the hub to close `client`, then checks the close code and that the reason tells a person
 * what went wrong (non-empty, and matching `reason`).
 */
export async function expectClosedWith(
  client: RawClient,
  code: number,
  reason: RegExp | 'no reason',
  timeoutMs = 5000,
): Promise<CloseInfo> {
  const info = await withTimeout(client.closed, timeoutMs, `the hub to close the connection with ${code}`);
  expect(info, `close code and reason (${JSON.stringify(info)})`).toMatchObject({ code });
  if (reason === 'no reason') {
    // Documented exception (protocol/close-codes.ts): 1009 comes from the frame header, before any reason could be known.
    expect(info.reason, `close ${code} carries no reason by design`).toBe('');
    return info;
  }
  // Soft: a missing reason fails the test but lets the caller's other checks (metrics, bystander) still run.
  expect.soft(info.reason.trim(), `close ${code} should carry a reason for people`).not.toBe('');
  expect.soft(info.reason, `reason of close ${code}`).toMatch(reason);
  return info;
}

export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One sample from the hub's Prometheus text, e.g. metric(hub, 'farmlink_errors_total', { kind: 'invalid_json' }).
 * A labelled counter that was never incremented has no line at all: that reads as 0.
 */
export async function metric(hub: HubProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await hub.get('/metrics');
  expect(res.status, 'GET /metrics').toBe(200);
  return metricFromText(res.text, name, labels);
}

export function metricFromText(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels);
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = new Map(
      [...(match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    if (wanted.every(([key, value]) => have.get(key) === value)) return Number(match[3]);
  }
  return 0;
}

/** farmlink_errors_total{kind=…}: how many connections the hub closed or refused for this kind of error. */
export function errorCount(hub: HubProcess, kind: string): Promise<number> {
  return metric(hub, 'farmlink_errors_total', { kind });
}
