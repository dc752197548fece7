import type { Duplex } from 'node:stream';
import type { TypedEmitter } from '../../lib/events.js';
import type { DirectConnector } from '../../lib/tunnel/direct-connector.js';
import type { TunnelPath } from '../../lib/tunnel/tunnel-path.js';
import type {
  BrokerTimings,
  BrokerToFarm,
  FarmToBroker,
  RecoveryEvent,
  SessionEndCode,
  SignalPayload,
  TunnelSessionInfo,
  TunnelSummary,
} from '../../protocol/tunnel.js';
import type { StreamResetCodeValue } from '../../protocol/tunnel-frame.js';

/**
 * The parts of the shared tunnel code (lib/tunnel/) the farm end relies on, as it relies on them:
 * the real BrokerLink and TunnelSession fit these shapes, and unit tests give fakes or memory paths.
 */

type Welcome = Extract<BrokerToFarm, { type: 'welcome' }>;
export type RecoveryKind = RecoveryEvent['kind'];

export interface FarmLinkEvents extends Record<string, unknown> {
  connecting: { url: string; index: number };
  connected: { url: string; index: number; welcome: Welcome };
  dialFailed: { url: string; index: number; reason: string; status: number | null };
  disconnected: { url: string; reason: string; kind: RecoveryKind | 'stopped'; upMs: number };
  waiting: { delayMs: number; nextAttemptAt: number; reason: string };
  message: BrokerToFarm;
}

/** The farm's one reconnecting tunnel socket to its brokers (lib/tunnel/broker-link.ts, role farm). */
export interface FarmLink {
  readonly events: Pick<TypedEmitter<FarmLinkEvents>, 'on'>;
  readonly timings: BrokerTimings | undefined;
  start(): void;
  stop(reason?: string): void;
  reconnectNow(reason: string, kind: RecoveryKind): void;
  /** False when no broker is connected (the message is dropped). */
  send(message: FarmToBroker): boolean;
  /** The relay path of a route on the current socket; undefined while not connected. */
  relayPath(route: number): TunnelPath | undefined;
  status(): TunnelSummary['link'];
}

/** A stream the client opened: the farm dials, then accepts or resets it. */
export interface FarmStream extends Duplex {
  readonly id: number;
  accept(): void;
  reset(code: StreamResetCodeValue, reason: string): void;
}

export interface FarmSessionEvents extends Record<string, unknown> {
  stream: FarmStream;
  pathDead: { path: TunnelPath; reason: string };
  pathAlive: { path: TunnelPath };
  change: undefined;
  closed: { code: SessionEndCode; reason: string };
}

/** One session's reliable stream carrier (lib/tunnel/tunnel-session.ts, role farm). */
export interface FarmSession {
  readonly events: Pick<TypedEmitter<FarmSessionEvents>, 'on'>;
  attach(path: TunnelPath): void;
  detach(path: TunnelPath, reason: string): void;
  close(code: SessionEndCode, reason: string): void;
  recordRecovery(event: Omit<RecoveryEvent, 'at'>): void;
  info(): TunnelSessionInfo;
  idleMs(): number | null;
}

export interface FarmSessionOptions {
  sessionId: string;
  /** The client's name. */
  peer: string;
  service: string;
  pingIntervalMs: number;
  pingTimeoutMs: number;
}

/**
 * One session's direct-path connector (lib/tunnel/direct-connector.ts, role farm): it answers the
 * client's offers; its channel, once open, is attached to the session.
 */
export type FarmDirect = Pick<DirectConnector, 'events' | 'receive' | 'restart' | 'close'>;

/**
 * Makes a session's connector; `signal` sends a payload to the client through the broker. Undefined
 * when the direct path is off (tunnel.direct false, or WebRTC did not load): the relay is all there is.
 */
export type CreateFarmDirect = (sessionId: string, signal: (payload: SignalPayload) => void) => FarmDirect | undefined;
