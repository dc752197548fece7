import type { Clock, TimerHandle } from '../../lib/clock.js';
import type { ServerRef } from '../../protocol/connection-state.js';
import type { Heartbeat, TokenExpired } from '../../protocol/messages.js';
import type { UsageSample } from '../system/system-usage.js';
import { HeartbeatMonitor } from './heartbeat.js';
import type { HubLink } from './hub-link.js';
import type { WireMode } from './mode-figures.js';
import { PingMonitor } from './ping-monitor.js';

export type AttemptPhase = 'connecting' | 'registering' | 'connected';

export interface MonitorTiming {
  heartbeatIntervalMs: number;
  deadTimeoutMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
}

export interface MonitorOptions {
  clock: Clock;
  timing: MonitorTiming;
  usage: () => UsageSample;
  sendHeartbeat: (heartbeat: Heartbeat) => void;
  onHeartbeatRtt: (rttMs: number) => void;
  onHeartbeatLost: () => void;
  /** No heartbeat_ack for the dead timeout. */
  onHeartbeatDead: (silentForMs: number) => void;
  onPingRtt: (rttMs: number) => void;
  /** A ping went unanswered for the ping timeout. */
  onPingTimeout: (waitedMs: number) => void;
}

/**
 * One dial of one server, from the link's creation to its end: the link, how far it got, its
 * timers and, once registered, its heartbeat and ping. Events of an ended attempt are ignored.
 */
export class Attempt {
  phase: AttemptPhase = 'connecting';
  ended = false;
  /** An error seen on the link; the close that follows reports it. */
  socketError: Error | undefined;
  /** What the hub said when it refused or closed: the upgrade's HTTP status, the close frame's reason. */
  httpStatus: number | undefined;
  closeReason: string | undefined;
  connectTimer: TimerHandle | undefined;
  registrationTimer: TimerHandle | undefined;
  stableTimer: TimerHandle | undefined;
  heartbeat: HeartbeatMonitor | undefined;
  ping: PingMonitor | undefined;
  /** hello offered enhanced mode. */
  offeredEnhanced = false;
  /** What the frames carry: legacy until `registered` grants enhanced. */
  mode: WireMode = 'legacy';
  /** Why the hub last asked for another pace (`tune`), if it did on this connection. */
  tunedBecause: string | undefined;
  /** The hub said the token expired; its 4440 close follows. */
  tokenExpired: TokenExpired | undefined;
  /**
   * Frames of the handshake (hello, registered), counted once the mode is known: they belong to
   * the mode the connection ends up in, not to legacy because batching starts only after them.
   */
  handshakeFrames: Array<{ direction: 'out' | 'in'; messages: number; bytes: number }> = [];

  /** The mode to count this attempt's traffic under: agreed once registered, else the one offered. */
  get countedMode(): WireMode {
    return this.phase === 'connected' || !this.offeredEnhanced ? this.mode : 'enhanced';
  }

  constructor(
    readonly server: ServerRef,
    readonly link: HubLink,
  ) {}

  /** Heartbeats and pings for a registered attempt: `startMonitors` starts them, `quiet` stops them. */
  monitor(options: MonitorOptions): void {
    const { clock, timing } = options;
    this.heartbeat = new HeartbeatMonitor({
      intervalMs: timing.heartbeatIntervalMs,
      deadTimeoutMs: timing.deadTimeoutMs,
      clock,
      sample: options.usage,
      send: options.sendHeartbeat,
      onRtt: options.onHeartbeatRtt,
      onLost: options.onHeartbeatLost,
      onDead: options.onHeartbeatDead,
    });
    const ping = new PingMonitor({
      intervalMs: timing.pingIntervalMs,
      timeoutMs: timing.pingTimeoutMs,
      clock,
      ping: () => this.link.ping(),
      onRtt: options.onPingRtt,
      onTimeout: options.onPingTimeout,
    });
    this.ping = ping;
    this.link.events.on('pong', () => ping.handlePong());
  }

  startMonitors(): void {
    this.heartbeat?.start();
    this.ping?.start();
  }

  /** Clears every timer of this attempt; the heartbeat and ping too unless `keepMonitors`. */
  quiet(clock: Clock, keepMonitors = false): void {
    clock.clearTimeout(this.connectTimer);
    clock.clearTimeout(this.registrationTimer);
    clock.clearTimeout(this.stableTimer);
    if (keepMonitors) return;
    this.heartbeat?.stop();
    this.ping?.stop();
  }
}
