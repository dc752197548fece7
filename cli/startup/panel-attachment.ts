import WebSocket from 'ws';
import type { HostEvents } from '../../agent/host/agent-host.js';
import { HostFailure, type AgentHostHandlers } from '../../agent/host/call-router.js';
import { FarmlinkError } from '../../lib/errors.js';
import { TypedEmitter } from '../../lib/events.js';
import {
  AgentHostMethods,
  type AgentHostClient,
  type AgentHostMethod,
  type BridgeTransport,
  type MethodInput,
  type MethodOutput,
  type Snapshot,
} from '../../protocol/agent-host.js';
import { createAgentHostClient } from '../../protocol/agent-host-client.js';
import {
  PANEL_WS_PATH,
  PanelCloseCode,
  PanelServerMessageSchema,
  type PanelClientMessage,
} from '../../protocol/panel-wire.js';

export interface AttachOptions {
  /** The running agent's panel address without its key (`http://127.0.0.1:PORT`), from its lock. */
  address: string;
  /** The panel's key, from the data dir. */
  token: string;
  /** How long to wait for the agent to let this process in and send its first snapshot [5 s]. */
  timeoutMs?: number;
}

/**
 * The desktop app's side of an agent another process runs: the same panel API the browser panel
 * uses (agent/panel/panel-server.ts, the key from the data dir), spoken from Node, and shown as
 * what the app's IPC and tray use from an AgentHost — a snapshot, its change events, the calls.
 * Snapshots say they are seen through an attachment (agent_process.attached), for the panel.
 */
export class PanelAttachment {
  readonly events = new TypedEmitter<HostEvents>();
  private last: Snapshot;
  private closedByUs = false;
  private readonly lostListeners = new Set<(reason: string) => void>();

  private constructor(
    private readonly transport: NodeWsTransport,
    private readonly client: AgentHostClient,
    first: Snapshot,
  ) {
    this.last = attached(first);
    client.on('snapshot', (snapshot) => {
      this.last = attached(snapshot);
      this.events.emit('changed', undefined);
    });
    client.on('logs', (entries) => {
      for (const entry of entries) this.events.emit('log', entry);
    });
    transport.onClose((reason) => {
      if (this.closedByUs) return;
      for (const listener of this.lostListeners) listener(reason);
    });
  }

  /** Signs in to the running agent's panel API and takes its first snapshot; throws a FarmlinkError if it cannot. */
  static async open(options: AttachOptions): Promise<PanelAttachment> {
    const url = `${options.address.replace(/^http/, 'ws').replace(/\/$/, '')}${PANEL_WS_PATH}`;
    const transport = await NodeWsTransport.connect(url, options.token, options.timeoutMs ?? 5000);
    const client = createAgentHostClient(transport);
    const first = await client.call('getSnapshot', {});
    if (!first.ok) {
      transport.close();
      throw new FarmlinkError(
        'ATTACH_FAILED',
        `The agent at ${options.address} did not give its state: ${first.error.message}`,
      );
    }
    return new PanelAttachment(transport, client, first.value);
  }

  /** The running agent's pid, as its snapshots say. */
  get pid(): number {
    return this.last.agent_process.pid;
  }

  snapshot(): Snapshot {
    return this.last;
  }

  /** Once, when the running agent goes away (it stopped, or the socket broke); not after close(). */
  onLost(listener: (reason: string) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** Every call goes to the running agent; its refusals come back as the same HostFailure codes. */
  handlers(): AgentHostHandlers {
    const forward =
      <M extends AgentHostMethod>(method: M) =>
      async (input: unknown): Promise<MethodOutput<M>> => {
        const result = await this.client.call(method, input as MethodInput<M>);
        if (!result.ok) throw new HostFailure(result.error.code, result.error.message, result.error.problems);
        return result.value;
      };
    const methods = Object.keys(AgentHostMethods) as AgentHostMethod[];
    return Object.fromEntries(methods.map((method) => [method, forward(method)])) as unknown as AgentHostHandlers;
  }

  close(): void {
    this.closedByUs = true;
    this.transport.close();
  }
}

function attached(snapshot: Snapshot): Snapshot {
  return { ...snapshot, agent_process: { ...snapshot.agent_process, attached: true } };
}

/** The panel socket from Node: like the browser panel's WsTransport, but it never reconnects by itself. */
class NodeWsTransport implements BridgeTransport {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly listeners = new Set<(event: string, payload: unknown) => void>();
  private readonly closeListeners = new Set<(reason: string) => void>();
  private closed = false;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.onMessage(data));
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = true;
      for (const [id, pending] of this.pending) {
        this.pending.delete(id);
        pending.reject(new Error('Lost the connection to the agent'));
      }
      const why =
        code === PanelCloseCode.GOING_AWAY
          ? 'the agent is stopping'
          : `the panel socket closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`;
      for (const listener of this.closeListeners) listener(why);
    });
  }

  static connect(url: string, token: string, timeoutMs: number): Promise<NodeWsTransport> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { handshakeTimeout: timeoutMs, perMessageDeflate: false });
      const fail = (message: string) => {
        clearTimeout(timer);
        ws.terminate();
        reject(new FarmlinkError('ATTACH_FAILED', message));
      };
      const timer = setTimeout(
        () => fail(`No answer from the agent's panel at ${url} within ${timeoutMs} ms`),
        timeoutMs,
      );
      ws.once('error', (error) => fail(`Cannot reach the agent's panel at ${url}: ${error.message}`));
      ws.once('open', () => ws.send(JSON.stringify({ kind: 'auth', token } satisfies PanelClientMessage)));
      ws.once('close', (code) => {
        fail(
          code === PanelCloseCode.UNAUTHORIZED
            ? `The agent's panel at ${url} refused the key in the data dir's panel-token (does it run from another data dir?)`
            : `The agent's panel at ${url} closed the socket (${code})`,
        );
      });
      ws.once('message', (data: Buffer) => {
        if (!isReady(data)) return;
        clearTimeout(timer);
        ws.removeAllListeners();
        ws.on('error', () => undefined);
        resolve(new NodeWsTransport(ws));
      });
    });
  }

  call(method: string, input: unknown): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('Lost the connection to the agent'));
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ kind: 'call', id, method, input } satisfies PanelClientMessage));
    });
  }

  subscribe(listener: (event: string, payload: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onClose(listener: (reason: string) => void): void {
    this.closeListeners.add(listener);
  }

  close(): void {
    this.ws.close();
  }

  private onMessage(data: Buffer): void {
    let parsed;
    try {
      parsed = PanelServerMessageSchema.safeParse(JSON.parse(data.toString('utf8')));
    } catch {
      return;
    }
    if (!parsed.success) return;
    const message = parsed.data;
    if (message.kind === 'result') {
      const pending = this.pending.get(message.id);
      this.pending.delete(message.id);
      pending?.resolve(message.result);
    } else if (message.kind === 'event') {
      for (const listener of this.listeners) listener(message.event, message.payload);
    }
  }
}

function isReady(data: Buffer): boolean {
  try {
    const parsed = PanelServerMessageSchema.safeParse(JSON.parse(data.toString('utf8')));
    return parsed.success && parsed.data.kind === 'ready';
  } catch {
    return false;
  }
}
