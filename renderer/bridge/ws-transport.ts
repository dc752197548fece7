import type { BridgeTransport } from '../../protocol/agent-host.js';
import {
  PANEL_WS_PATH,
  PanelCloseCode,
  PanelServerMessageSchema,
  type PanelClientMessage,
} from '../../protocol/panel-wire.js';

import type { LinkStatus } from './link-status.js';

export type { LinkStatus };

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * The headless panel's transport: the AgentHost API over the agent's local WebSocket. It signs in
 * with the token from the page URL's fragment, and if the agent restarts it reconnects by itself
 * (the agent re-sends a full snapshot on every new sign-in).
 */
export class WsTransport implements BridgeTransport {
  private ws: WebSocket | undefined;
  private ready = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly queue: PanelClientMessage[] = [];
  private readonly listeners = new Set<(event: string, payload: unknown) => void>();
  private retryMs = 500;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly onStatus: (status: LinkStatus) => void,
  ) {
    this.open();
  }

  call(method: string, input: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.send({ kind: 'call', id, method, input });
    });
  }

  subscribe(listener: (event: string, payload: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  close(): void {
    this.stopped = true;
    this.ws?.close();
  }

  private send(message: PanelClientMessage): void {
    if (this.ready && this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
    else this.queue.push(message);
  }

  private open(): void {
    this.onStatus('connecting');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ kind: 'auth', token: this.token } satisfies PanelClientMessage));
    ws.onmessage = (event: MessageEvent<string>) => {
      let parsed;
      try {
        parsed = PanelServerMessageSchema.safeParse(JSON.parse(event.data));
      } catch {
        return;
      }
      if (!parsed.success) return;
      const message = parsed.data;
      if (message.kind === 'ready') {
        this.ready = true;
        this.retryMs = 500;
        this.onStatus('open');
        for (const queued of this.queue.splice(0)) ws.send(JSON.stringify(queued));
      } else if (message.kind === 'result') {
        const pending = this.pending.get(message.id);
        this.pending.delete(message.id);
        pending?.resolve(message.result);
      } else {
        for (const listener of this.listeners) listener(message.event, message.payload);
      }
    };
    ws.onclose = (event) => {
      this.ready = false;
      for (const [id, pending] of this.pending) {
        this.pending.delete(id);
        pending.reject(new Error('Lost the connection to the agent'));
      }
      if (event.code === PanelCloseCode.UNAUTHORIZED) {
        this.onStatus('unauthorized');
        return;
      }
      this.onStatus('closed');
      if (this.stopped) return;
      setTimeout(() => this.open(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    };
  }
}

/** The panel socket's URL for the page's own origin, and the token from its `#token=` fragment. */
export function panelEndpoint(location: Location): { url: string; token: string | null } {
  const token = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return { url: `${scheme}//${location.host}${PANEL_WS_PATH}`, token };
}
