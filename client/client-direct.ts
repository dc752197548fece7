import type { Logger } from 'pino';
import type { Clock, Random } from '../lib/clock.js';
import { DirectConnector } from '../lib/tunnel/direct-connector.js';
import { linkDirect } from '../lib/tunnel/direct-link.js';
import type { TunnelSession } from '../lib/tunnel/tunnel-session.js';
import { loadWebRtc, type WebRtc, type WebRtcLoad } from '../lib/tunnel/webrtc.js';
import type { SignalPayload } from '../protocol/tunnel.js';

export interface ClientDirectOptions {
  /** False: no connector at all, the session stays on the relay. */
  enabled: boolean;
  clock: Clock;
  random: Random;
  logger: Logger;
  /** Sends a signalling payload for the session to the farm (the link's `signal`). */
  signal: (sessionId: string, payload: SignalPayload) => void;
  /** Loads node-datachannel (default loadWebRtc). */
  load?: () => Promise<WebRtcLoad>;
}

/**
 * The client's direct path: one DirectConnector for the current session, made when the session is up
 * (opened, resumed, or the farm back), closed when the farm goes away or the session ends. The client
 * offers as soon as its connector is made. node-datachannel loads once, in the background; when it
 * does not, the reason is logged once and the session stays on the relay.
 */
export class ClientDirect {
  private webrtc: WebRtc | undefined;
  private current: { session: TunnelSession; connector: DirectConnector; unlink: () => void } | undefined;
  /** The session waiting for the library to load. */
  private waiting: TunnelSession | undefined;
  private stopped = false;

  constructor(private readonly options: ClientDirectOptions) {
    if (!options.enabled) {
      options.logger.info('direct path off: the session stays on the relay');
      return;
    }
    void (options.load ?? loadWebRtc)().then((load) => {
      if (!load.ok) {
        options.logger.warn({ reason: load.reason }, load.reason);
        this.waiting = undefined;
        return;
      }
      this.webrtc = load.webrtc;
      const session = this.waiting;
      this.waiting = undefined;
      if (session && !this.stopped) this.start(session);
    });
  }

  /** The connector's state, for diagnostics (null without one). */
  get state(): DirectConnector['state'] | null {
    return this.current?.connector.state ?? null;
  }

  /** A fresh connector for the session (any old one closed), which offers at once. */
  start(session: TunnelSession): void {
    if (!this.options.enabled || this.stopped) return;
    this.stop('a new direct attempt for the session');
    if (!this.webrtc) {
      this.waiting = session;
      return;
    }
    const connector = new DirectConnector({
      role: 'client',
      webrtc: this.webrtc,
      sessionId: session.id,
      signal: {
        send: (payload) => {
          this.options.signal(session.id, payload);
        },
      },
      clock: this.options.clock,
      random: this.options.random,
      logger: this.options.logger,
    });
    this.current = { session, connector, unlink: linkDirect(session, connector) };
    connector.start();
  }

  /** A signalling payload from the farm for this session. */
  receive(sessionId: string, payload: SignalPayload): void {
    if (this.current?.session.id === sessionId) this.current.connector.receive(payload);
  }

  /** The farm changed address: its candidates are stale, offer again. */
  peerMoved(reason: string): void {
    this.current?.connector.peerMoved(reason);
  }

  /** Closes the connector (the farm is away, the session ended); the relay carries on. */
  stop(reason: string): void {
    this.waiting = undefined;
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    current.unlink();
    current.connector.close(reason);
  }

  /** For good: the client stopped. */
  close(reason: string): void {
    this.stop(reason);
    this.stopped = true;
  }
}
