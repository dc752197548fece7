import { TypedEmitter } from '../../lib/events.js';
import { memoryPathPair, type MemoryPath } from '../../lib/tunnel/memory-path.fixture.js';
import type { BrokerTimings, BrokerToFarm, FarmToBroker, TunnelSummary } from '../../protocol/tunnel.js';
import type { FarmLink, FarmLinkEvents, RecoveryKind } from './farm-ports.js';

type FarmHello = Extract<FarmToBroker, { type: 'farm_hello' }>;

export const TEST_TIMINGS: BrokerTimings = {
  ping_interval_ms: 50,
  ping_timeout_ms: 200,
  resume_window_ms: 10_000,
  idle_timeout_ms: 60_000,
  max_frame_bytes: 1024 * 1024,
};

/**
 * The broker as the farm's tunnel sees it, in memory: the test plays the broker (`deliver`,
 * `connect`, `drop`) and reads what the farm sent (`sent`). Each route's relay path is one end of a
 * memory path pair; the test holds the other end (`clientEnd`) for a client session.
 */
export class FakeFarmLink implements FarmLink {
  readonly events = new TypedEmitter<FarmLinkEvents>((error) => {
    throw error;
  });
  readonly sent: FarmToBroker[] = [];
  readonly hellos: FarmHello[] = [];
  readonly reconnects: Array<{ reason: string; kind: RecoveryKind }> = [];
  timings: BrokerTimings | undefined;
  started = false;
  stoppedWith: string | undefined;
  private connected = false;
  private paths = new Map<number, { farm: MemoryPath; client: MemoryPath }>();

  constructor(private readonly hello: () => FarmHello) {}

  start(): void {
    this.started = true;
  }

  stop(reason = 'stopped'): void {
    this.stoppedWith = reason;
    this.connected = false;
  }

  reconnectNow(reason: string, kind: RecoveryKind): void {
    this.reconnects.push({ reason, kind });
  }

  send(message: FarmToBroker): boolean {
    if (!this.connected) return false;
    this.sent.push(message);
    return true;
  }

  relayPath(route: number): MemoryPath | undefined {
    if (!this.connected) return undefined;
    let pair = this.paths.get(route);
    if (!pair?.farm.isUp) {
      const [client, farm] = memoryPathPair({ kind: 'relay', route });
      pair = { farm, client };
      this.paths.set(route, pair);
    }
    return pair.farm;
  }

  /** The client's end of a route's relay path (made with the farm's). */
  clientEnd(route: number): MemoryPath {
    const pair = this.paths.get(route);
    if (!pair) throw new Error(`no relay path for route ${route} yet`);
    return pair.client;
  }

  /**
   * A route's relay goes silent both ways while the socket stays up (pongs stuck behind data, say):
   * frames are dropped, the paths stay up, the link stays connected.
   */
  blackhole(route: number): void {
    this.setSilent(route, true);
  }

  /** Frames flow again on a route after blackhole() (what was dropped stays lost). */
  restore(route: number): void {
    this.setSilent(route, false);
  }

  private setSilent(route: number, silent: boolean): void {
    const pair = this.paths.get(route);
    if (!pair) throw new Error(`no relay path for route ${route} yet`);
    pair.farm.silent = silent;
    pair.client.silent = silent;
  }

  status(): TunnelSummary['link'] {
    return {
      state: this.connected ? 'connected' : 'connecting',
      broker_url: 'ws://broker.test/api/v1/tunnel',
      observed_address: this.connected ? '127.0.0.1:50000' : null,
      detail: null,
      next_attempt_at: null,
    };
  }

  /** The broker welcomes the farm (after it said hello). */
  connect(brokerId = 'broker-1', timings: BrokerTimings = TEST_TIMINGS): void {
    this.hellos.push(this.hello());
    this.connected = true;
    this.timings = timings;
    this.events.emit('connected', {
      url: 'ws://broker.test/api/v1/tunnel',
      index: 0,
      welcome: {
        type: 'welcome',
        protocol: 1,
        broker_id: brokerId,
        role: 'farm',
        observed_address: '127.0.0.1:50000',
        timings,
      },
    });
  }

  /** The socket is lost: every relay path goes down, as the real link's do. */
  drop(reason = 'socket closed (1006)', kind: RecoveryKind = 'network_timeout'): void {
    this.connected = false;
    for (const { farm, client } of this.paths.values()) {
      farm.goDown(reason);
      client.goDown(reason);
    }
    this.paths.clear();
    this.events.emit('disconnected', { url: 'ws://broker.test/api/v1/tunnel', reason, kind, upMs: 1000 });
  }

  deliver(message: BrokerToFarm): void {
    this.events.emit('message', message);
  }

  /** What the farm sent of one type, in order. */
  sentOf<T extends FarmToBroker['type']>(type: T): Array<Extract<FarmToBroker, { type: T }>> {
    return this.sent.filter((m): m is Extract<FarmToBroker, { type: T }> => m.type === type);
  }
}
