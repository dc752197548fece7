import fs from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  PANEL_WS_PATH,
  PanelClientMessageSchema,
  PanelCloseCode,
  type PanelServerMessage,
} from '../../protocol/panel-wire.js';
import { FarmlinkError } from '../../lib/errors.js';
import type { AgentHost } from '../host/agent-host.js';
import { routeCall } from '../host/call-router.js';
import { subscribeFeed } from '../host/snapshot-feed.js';
import { tokensEqual } from './panel-token.js';
import { contentType, resolveStatic } from './static-files.js';

export interface PanelServerOptions {
  host: string;
  port: number;
  /** Bind beyond loopback only when this is set (panel.allow_remote). */
  allowRemote: boolean;
  /** When the configured port is taken, take any free one instead of failing (the default port only). */
  fallbackToFreePort: boolean;
  token: string;
  /** The built renderer; undefined serves a page saying how to build it. */
  rendererDir: string | undefined;
  agentHost: AgentHost;
  logger: Logger;
  authTimeoutMs?: number;
}

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || (isIP(bare) === 4 && bare.startsWith('127.'));
}

/**
 * The headless mode's panel: the same renderer build the desktop app shows, served to a browser,
 * and the same AgentHost API over a WebSocket. Only the token opens the API; only loopback is
 * served unless remote access was asked for; and on loopback only requests naming a loopback host
 * are answered, so a web page cannot reach it through DNS rebinding.
 */
export class PanelServer {
  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024, perMessageDeflate: false });
  private readonly clients = new Set<WebSocket>();
  private boundPort = 0;

  constructor(private readonly options: PanelServerOptions) {
    if (!isLoopbackHost(options.host) && !options.allowRemote) {
      throw new FarmlinkError(
        'PANEL_REMOTE_REFUSED',
        `panel.host is ${options.host}, which is not loopback: anyone on that network could open the panel. ` +
          `Use 127.0.0.1, or set panel.allow_remote: true if you mean it`,
      );
    }
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  get port(): number {
    return this.boundPort;
  }

  /** The address to open, token included (in the fragment, which browsers never send to the server). */
  get url(): string {
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${this.boundPort}/#token=${this.options.token}`;
  }

  async listen(): Promise<string> {
    try {
      await this.listenOn(this.options.port);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || !this.options.fallbackToFreePort) throw error;
      this.options.logger.warn(`Panel port ${this.options.port} is in use: serving the panel on a free port instead`);
      await this.listenOn(0);
    }
    return this.url;
  }

  async close(): Promise<void> {
    for (const ws of this.clients) ws.close(PanelCloseCode.GOING_AWAY, 'agent stopping');
    this.wss.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private listenOn(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once('error', onError);
      this.server.listen(port, this.options.host, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        this.boundPort = typeof address === 'object' && address ? address.port : port;
        resolve();
      });
    });
  }

  /** On a loopback bind, a Host header naming anything but loopback is a rebinding attempt. */
  private hostAllowed(req: IncomingMessage): boolean {
    if (!isLoopbackHost(this.options.host)) return true;
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    return isLoopbackHost(host);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const headers = {
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'content-security-policy':
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    };
    if (!this.hostAllowed(req)) {
      res
        .writeHead(403, { ...headers, 'content-type': 'text/plain' })
        .end('Forbidden: the panel answers only to a loopback host name\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, allow: 'GET, HEAD' }).end();
      return;
    }
    const root = this.options.rendererDir;
    if (!root) {
      res
        .writeHead(503, { ...headers, 'content-type': 'text/plain; charset=utf-8' })
        .end('The panel is not built. Run `npm run build` and start the agent again.\n');
      return;
    }
    const urlPath = (req.url ?? '/').split(/[?#]/)[0] ?? '/';
    const file = resolveStatic(root, urlPath);
    if (!file) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('Not found\n');
      return;
    }
    // Vite names assets by content hash: they never change; index.html must always be fresh.
    const cache = file.endsWith('index.html') ? 'no-cache' : 'public, max-age=31536000, immutable';
    res.writeHead(200, { ...headers, 'content-type': contentType(file), 'cache-control': cache });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== PANEL_WS_PATH || !this.hostAllowed(req)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    const origin = req.headers.origin;
    const host = req.headers.host;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, origin, host));
  }

  private onConnection(ws: WebSocket, origin: string | undefined, host: string | undefined): void {
    // A browser always sends Origin; a page of another site must not drive the panel.
    if (origin !== undefined && origin !== `http://${host}`) {
      ws.close(PanelCloseCode.FORBIDDEN_ORIGIN, 'origin not allowed');
      return;
    }
    this.clients.add(ws);
    let unsubscribe: (() => void) | undefined;
    const send = (message: PanelServerMessage) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
    };
    const authTimer = setTimeout(
      () => ws.close(PanelCloseCode.AUTH_TIMEOUT, 'no auth in time'),
      this.options.authTimeoutMs ?? 5000,
    );
    const handlers = this.options.agentHost.handlers();
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      let parsed;
      try {
        parsed = isBinary ? undefined : PanelClientMessageSchema.safeParse(JSON.parse(data.toString('utf8')));
      } catch {
        parsed = undefined;
      }
      if (!parsed?.success) {
        ws.close(PanelCloseCode.INVALID_MESSAGE, 'not a panel message');
        return;
      }
      const message = parsed.data;
      if (!unsubscribe) {
        if (message.kind !== 'auth' || !tokensEqual(message.token, this.options.token)) {
          ws.close(PanelCloseCode.UNAUTHORIZED, 'wrong token: open the panel URL the agent printed');
          return;
        }
        clearTimeout(authTimer);
        send({ kind: 'ready' });
        unsubscribe = subscribeFeed(this.options.agentHost, (event, payload) =>
          send({ kind: 'event', event, payload }),
        );
        return;
      }
      if (message.kind === 'call') {
        void routeCall(handlers, message.method, message.input).then((result) =>
          send({ kind: 'result', id: message.id, result }),
        );
      }
    });
    ws.on('close', () => {
      clearTimeout(authTimer);
      unsubscribe?.();
      this.clients.delete(ws);
    });
    ws.on('error', () => undefined);
  }
}
