import { defer, every, type Clock, type TimerHandle } from '../clock.js';
import { FarmlinkError } from '../errors.js';
import { TypedEmitter } from '../events.js';
import type { RecoveryEvent, SessionEndCode, TunnelPathKind, TunnelSessionInfo } from '../../protocol/tunnel.js';
import {
  FRAME_HEADER_BYTES,
  FrameKind,
  StreamResetCode,
  creditBody,
  decodeFrame,
  encodeFrame,
  encodeFrameInto,
  isReliableKind,
  pingBody,
  readCreditBody,
  readPingBody,
  readResetBody,
  resetBody,
  withRoute,
  type FrameBody,
  type TunnelFrame,
} from '../../protocol/tunnel-frame.js';
import { sharedFramePool, type FramePool } from './frame-pool.js';
import { PATH_SELECTOR_DEFAULTS, PathSelector, type PathChange } from './path-selector.js';
import type { TunnelPath } from './tunnel-path.js';
import { TunnelStream, type StreamHost } from './tunnel-stream.js';

export interface TunnelSessionOptions {
  /** The client opens streams; the farm accepts them. */
  role: 'client' | 'farm';
  sessionId: string;
  /** Farm: the client's name; client: the farm's agent id. */
  peer: string;
  service: string;
  clock: Clock;
  /** Per-stream receive window to start with (default 1 MiB). */
  windowBytes?: number;
  /** A stream whose reader keeps up grows its window up to this (default 16 MiB; tunnel-stream.ts). */
  maxWindowBytes?: number;
  /** Where DATA frames' buffers come from and go back to once acknowledged (default: the process's). */
  framePool?: FramePool;
  /** Streams open at once (default 1024); more → RST TOO_MANY_STREAMS. */
  maxStreams?: number;
  /** Health PING on each attached path this often. */
  pingIntervalMs: number;
  /** A path with no PONG for this long → 'pathDead'. */
  pingTimeoutMs: number;
  /** Direct path preferred only after it answered pings for this long (hysteresis), default 10 s. */
  directHoldMs?: number;
  /** Cap of the doubled hold after repeated fallbacks (default 160 s). */
  maxDirectHoldMs?: number;
  /** An ACK goes at the latest this long after the first unacknowledged delivery (default 10 ms). */
  ackDelayMs?: number;
}

export interface TunnelSessionEvents extends Record<string, unknown> {
  /** Farm: the client opened a stream. Dial the service, then stream.accept() or stream.reset(code, reason). */
  stream: TunnelStream;
  /**
   * A path missed its ping deadline; the session stopped sending on it but keeps pinging it while it is
   * attached, and takes it back when it answers (`pathAlive`). The owner decides whether to wait for that.
   */
  pathDead: { path: TunnelPath; reason: string };
  /** A path declared dead answered a health ping again: it carries traffic again (direct after its hold). */
  pathAlive: { path: TunnelPath };
  /** State, path, rtt, streams or byte counts changed (throttled to ≤ 4/s for byte counts). */
  change: undefined;
  /** Once: the session is over (close() was called, or a protocol error). */
  closed: { code: SessionEndCode; reason: string };
}

export const TUNNEL_SESSION_DEFAULTS = {
  windowBytes: 1024 * 1024,
  maxWindowBytes: 16 * 1024 * 1024,
  maxStreams: 1024,
  directHoldMs: PATH_SELECTOR_DEFAULTS.directHoldMs,
  ackDelayMs: 10,
  /** ACK after this many delivered frames or bytes, whichever comes first, without waiting for the timer. */
  ackEveryFrames: 32,
  ackEveryBytes: 256 * 1024,
} as const;

const MAX_RECOVERIES = 20;
const CHANGE_THROTTLE_MS = 250;

/** A reliable frame kept until the peer acknowledges it. */
interface Unacked {
  seq: number;
  /** Encoded for `route`; re-encoded (withRoute) when it goes on a path with another route. */
  frame: Buffer;
  route: number;
  /** The pooled buffer `frame` lives in, if it does: back to the pool once acked and no path holds it. */
  pooled: Buffer | undefined;
  /** Sends of the pooled frame a path has not yet let go of. */
  writes: number;
  acked: boolean;
}

/** DATA bodies at least this big go in pooled buffers; smaller frames are cheap to allocate. */
const POOL_MIN_BODY_BYTES = 8 * 1024;

/** One attached path and its health. */
interface PathState {
  path: TunnelPath;
  /** Missed its ping deadline: nothing but pings (and pongs) goes on it until it answers again. */
  dead: boolean;
  /** send() returned false: no reliable frame goes on it until 'drain'. */
  paused: boolean;
  /** The peer sent RESUME on this path (it has attached it too). */
  peerResumed: boolean;
  rttMs: number | null;
  deadline: TimerHandle | undefined;
  off: (() => void)[];
}

/**
 * One tunnel session (docs/tunnel.md, "Frames, the session and streams"): numbered reliable frames,
 * acknowledged cumulatively and replayed after any path change, carrying streams with credit flow
 * control, over whichever attached path the selector picks.
 *
 * Memory held for retransmission is bounded by the stream windows: a DATA frame is made only within the
 * peer's credit (at most its window past what it consumed), and the peer consumes only what it received,
 * so the unacknowledged DATA of a stream never exceeds its window, and a session's never exceeds
 * streams × the largest window (plus small control frames, one or two per stream). A window grows past
 * its start only for a stream whose reader keeps up (tunnel-stream.ts).
 */
export class TunnelSession implements StreamHost {
  readonly events = new TypedEmitter<TunnelSessionEvents>();
  readonly id: string;

  private readonly role: 'client' | 'farm';
  private readonly peer: string;
  private readonly service: string;
  private readonly clock: Clock;
  private readonly windowBytes: number;
  private readonly maxWindowBytes: number;
  private readonly framePool: FramePool;
  private readonly maxStreams: number;
  private readonly pingIntervalMs: number;
  private readonly pingTimeoutMs: number;
  private readonly ackDelayMs: number;
  private readonly selector: PathSelector;

  private relay: PathState | undefined;
  private direct: PathState | undefined;
  /** The path reliable frames went on last: when another takes its place, the unacknowledged go again. */
  private current: PathState | undefined;

  // Sending: seq of the next new reliable frame; unacknowledged frames in seq order; the next to (re)send.
  private nextSeq = 1;
  private unacked: Unacked[] = [];
  private unackedHead = 0;
  private sendCursor = 1;
  private flushScheduled = false;

  // Receiving: the next seq to deliver, and what is delivered but not yet acknowledged.
  private expectedSeq = 1;
  private ackPendingFrames = 0;
  private ackPendingBytes = 0;
  private ackTimer: TimerHandle | undefined;

  private readonly streams = new Map<number, TunnelStream>();
  private nextStreamId = 1;
  /** The highest stream id ever opened: frames for a lower id not in `streams` are late, not errors. */
  private highestStreamId = 0;
  private streamsTotal = 0;

  private state: TunnelSessionInfo['state'] = 'establishing';
  private rttMs: number | null = null;
  private bytesIn = 0;
  private bytesOut = 0;
  private readonly createdAt: number;
  private lastActivityAt: number;
  private lastActivityMono: number;
  private readonly recoveries: RecoveryEvent[] = [];
  private pathlessSince: number | undefined;
  private nextPingId = 1;
  private readonly pinger: { stop(): void };
  private changeTimer: TimerHandle | undefined;
  private closed = false;

  private dropped = 0;

  constructor(options: TunnelSessionOptions) {
    this.id = options.sessionId;
    this.role = options.role;
    this.peer = options.peer;
    this.service = options.service;
    this.clock = options.clock;
    this.windowBytes = options.windowBytes ?? TUNNEL_SESSION_DEFAULTS.windowBytes;
    this.maxWindowBytes = options.maxWindowBytes ?? TUNNEL_SESSION_DEFAULTS.maxWindowBytes;
    this.framePool = options.framePool ?? sharedFramePool;
    this.maxStreams = options.maxStreams ?? TUNNEL_SESSION_DEFAULTS.maxStreams;
    this.pingIntervalMs = options.pingIntervalMs;
    this.pingTimeoutMs = options.pingTimeoutMs;
    this.ackDelayMs = options.ackDelayMs ?? TUNNEL_SESSION_DEFAULTS.ackDelayMs;
    this.selector = new PathSelector({
      clock: this.clock,
      directHoldMs: options.directHoldMs ?? TUNNEL_SESSION_DEFAULTS.directHoldMs,
      ...(options.maxDirectHoldMs !== undefined ? { maxHoldMs: options.maxDirectHoldMs } : {}),
      onChange: (change) => {
        this.onPathChange(change);
      },
    });
    this.createdAt = this.clock.now();
    this.lastActivityAt = this.createdAt;
    this.lastActivityMono = this.clock.monotonic();
    this.pinger = every(this.clock, this.pingIntervalMs, () => {
      this.pingAll();
    });
  }

  // ---- paths ---------------------------------------------------------------------------------------

  /**
   * Adds a path (relay after open/resume, direct when its channel opens) and sends RESUME on it. A second
   * relay replaces the first (a reconnect to the broker); likewise for direct.
   */
  attach(path: TunnelPath): void {
    if (this.closed || !path.isUp) return;
    const old = path.kind === 'relay' ? this.relay : this.direct;
    if (old?.path === path) return;
    if (old) {
      this.dropPath(old);
      // A new data channel (an ICE restart, say) is unproven: it serves the hold like any other.
      if (old.path.kind === 'direct') this.selector.directLost('direct path replaced by a new one');
    }
    const state: PathState = {
      path,
      dead: false,
      paused: false,
      peerResumed: false,
      rttMs: null,
      deadline: undefined,
      off: [],
    };
    state.off.push(
      path.events.on('frame', (buf) => {
        this.onFrame(state, buf);
      }),
      path.events.on('drain', () => {
        state.paused = false;
        this.scheduleFlush();
      }),
      path.events.on('down', ({ reason }) => {
        this.detach(path, reason);
      }),
    );
    if (path.kind === 'relay') this.relay = state;
    else this.direct = state;
    this.armDeadline(state);
    this.ping(state); // with RESUME before it
    if (path.kind === 'relay') this.selector.setRelay(true, 'relay path attached');
    else this.selector.directAttached('direct path attached');
    this.refreshInUse();
  }

  /** The path is gone: stop using it; the session goes 'degraded' if no path is left. */
  detach(path: TunnelPath, reason: string): void {
    const state = this.relay?.path === path ? this.relay : this.direct?.path === path ? this.direct : undefined;
    if (!state) return;
    this.dropPath(state);
    if (path.kind === 'relay') this.selector.setRelay(false, `relay path detached: ${reason}`);
    else this.selector.directLost(`direct path detached: ${reason}`);
    this.refreshInUse();
  }

  private dropPath(state: PathState): void {
    for (const off of state.off) off();
    state.off = [];
    this.clock.clearTimeout(state.deadline);
    if (this.relay === state) this.relay = undefined;
    if (this.direct === state) this.direct = undefined;
  }

  /** The path frames go on now, or undefined. */
  private inUse(): PathState | undefined {
    const kind = this.selector.current;
    const state = kind === 'relay' ? this.relay : kind === 'direct' ? this.direct : undefined;
    return state && !state.dead && state.path.isUp ? state : undefined;
  }

  private onPathChange(change: PathChange): void {
    if (change.fallback) {
      const took = this.pathlessSince !== undefined ? this.clock.monotonic() - this.pathlessSince : null;
      this.recordRecovery({ kind: 'direct_lost', reason: change.reason, took_ms: took });
    } else if (change.to === 'direct' && change.from === 'relay') {
      this.recordRecovery({ kind: 'direct_up', reason: change.reason, took_ms: null });
    }
    this.refreshInUse();
  }

  /** Called after anything that may change the path in use: a new one gets everything unacknowledged again. */
  private refreshInUse(): void {
    const state = this.inUse();
    if (state !== this.current) {
      this.current = state;
      if (state === undefined) this.pathlessSince ??= this.clock.monotonic();
      else this.pathlessSince = undefined;
      this.rttMs = state?.rttMs ?? null;
      // What was in flight on the old path may be lost: everything unacknowledged goes again on the new one
      // (the peer drops what it already has). Our ACK and credits may have been lost with it: send them again.
      this.sendCursor = this.firstUnackedSeq();
      if (state) this.resendAckAndCredits(state);
      this.scheduleFlush();
      this.events.emit('change', undefined);
    }
    this.updateState();
  }

  private resendAckAndCredits(state: PathState): void {
    this.sendControl(state, FrameKind.ACK, this.expectedSeq, 0);
    for (const stream of this.streams.values()) {
      if (stream.consumed > 0) {
        this.sendControl(state, FrameKind.CREDIT, 0, stream.id, creditBody(stream.consumed, stream.receiveWindow));
      }
    }
  }

  // ---- health ----------------------------------------------------------------------------------------

  private pingAll(): void {
    if (this.relay) this.ping(this.relay);
    if (this.direct) this.ping(this.direct);
  }

  private ping(state: PathState): void {
    // Until the peer's RESUME came on this path, ours may have gone nowhere (the peer had not attached it, or
    // the path dropped it): say it again with each ping; the peer answers the first it gets with its own.
    if (!state.peerResumed) this.sendControl(state, FrameKind.RESUME, this.expectedSeq, 0, undefined, true);
    const id = this.nextPingId;
    this.nextPingId = (this.nextPingId + 1) >>> 0;
    this.sendControl(state, FrameKind.PING, 0, 0, pingBody(id, this.clock.monotonic()), true);
  }

  private armDeadline(state: PathState): void {
    this.clock.clearTimeout(state.deadline);
    state.deadline = this.clock.setTimeout(() => {
      state.deadline = undefined;
      this.onPathSilent(state);
    }, this.pingTimeoutMs);
  }

  private onPathSilent(state: PathState): void {
    if (state.dead || this.closed) return;
    state.dead = true;
    const reason = `${state.path.kind} path: no answer to health pings for ${this.pingTimeoutMs} ms`;
    if (state.path.kind === 'relay') this.selector.setRelay(false, reason);
    else this.selector.directLost(reason);
    this.refreshInUse();
    this.events.emit('pathDead', { path: state.path, reason });
  }

  private onPong(state: PathState, body: Buffer): void {
    const ping = readPingBody(body);
    if (!ping) return;
    state.rttMs = Math.max(0, this.clock.monotonic() - ping.sentAtMs);
    this.armDeadline(state);
    if (state.dead) {
      // It answers again: usable, but direct must serve its hold once more before traffic returns.
      state.dead = false;
      if (state.path.kind === 'relay') this.selector.setRelay(true, 'relay path answers again');
      else this.selector.directAttached('direct path answers again');
      this.refreshInUse();
      this.events.emit('pathAlive', { path: state.path });
    }
    if (state.path.kind === 'direct') this.selector.directAnswered();
    if (state === this.inUse() && state.rttMs !== this.rttMs) {
      this.rttMs = state.rttMs;
      this.events.emit('change', undefined);
    }
  }

  // ---- streams -------------------------------------------------------------------------------------

  /** Client: a new stream (sends OPEN). 'connect' once the farm answers OPEN_OK; error on RST. */
  openStream(): TunnelStream {
    if (this.role !== 'client') {
      throw new FarmlinkError('TUNNEL_NOT_CLIENT', `session ${this.id}: only the client end opens streams`);
    }
    const id = this.nextStreamId++;
    this.highestStreamId = id;
    const stream = new TunnelStream({
      id,
      host: this,
      windowBytes: this.windowBytes,
      maxWindowBytes: this.maxWindowBytes,
    });
    if (this.closed) {
      defer(this.clock, () => stream.onReset(StreamResetCode.SESSION_ENDED, 'the session is closed'));
      return stream;
    }
    this.addStream(stream);
    this.sendReliable(FrameKind.OPEN, id, windowBody(this.windowBytes));
    return stream;
  }

  private addStream(stream: TunnelStream): void {
    this.streams.set(stream.id, stream);
    this.streamsTotal += 1;
    this.touch();
    this.events.emit('change', undefined);
  }

  /** @internal */
  sendOpenOk(stream: TunnelStream, windowBytes: number): void {
    this.sendReliable(FrameKind.OPEN_OK, stream.id, windowBody(windowBytes));
  }

  /** @internal */
  sendData(stream: TunnelStream, pieces: readonly Buffer[], bytes: number): void {
    this.bytesOut += bytes;
    this.touch();
    this.sendReliable(FrameKind.DATA, stream.id, pieces.length === 1 ? pieces[0] : pieces, bytes);
    this.bytesChanged();
  }

  /** @internal */
  sendFin(stream: TunnelStream): void {
    this.sendReliable(FrameKind.FIN, stream.id);
  }

  /** @internal */
  sendReset(stream: TunnelStream, code: number, reason: string): void {
    this.sendReliable(FrameKind.RST, stream.id, resetBody(code, reason));
  }

  /** @internal */
  sendCredit(stream: TunnelStream, consumed: number, windowBytes: number): void {
    const state = this.inUse();
    if (state) this.sendControl(state, FrameKind.CREDIT, 0, stream.id, creditBody(consumed, windowBytes));
  }

  /** @internal */
  now(): number {
    return this.clock.monotonic();
  }

  /** @internal */
  streamDone(stream: TunnelStream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    this.touch();
    this.events.emit('change', undefined);
  }

  // ---- sending -------------------------------------------------------------------------------------

  private sendReliable(kind: number, stream: number, body?: FrameBody, bodyBytes = 0): void {
    if (this.closed) return;
    const seq = this.nextSeq++;
    const route = this.inUse()?.path.route ?? 0;
    const pooled =
      kind === FrameKind.DATA && bodyBytes >= POOL_MIN_BODY_BYTES
        ? this.framePool.acquire(FRAME_HEADER_BYTES + bodyBytes)
        : undefined;
    const frame = pooled
      ? encodeFrameInto(pooled, kind, route, seq, stream, body)
      : encodeFrame(kind, route, seq, stream, body);
    this.unacked.push({ seq, frame, route, pooled, writes: 0, acked: false });
    this.flush();
  }

  /** Idempotent frames (ACK, CREDIT, RESUME, PING, PONG): straight onto one path, never held back. */
  private sendControl(
    state: PathState,
    kind: number,
    seq: number,
    stream: number,
    body?: Uint8Array,
    evenIfDead = false,
  ): void {
    if ((state.dead && !evenIfDead) || !state.path.isUp || this.closed) return;
    state.path.send(encodeFrame(kind, state.path.route, seq, stream, body));
  }

  private firstUnackedSeq(): number {
    return this.unacked[this.unackedHead]?.seq ?? this.nextSeq;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    defer(this.clock, () => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Sends what is due on the path in use, from the cursor on, until the path pushes back. */
  private flush(): void {
    const state = this.inUse();
    // Nothing reliable goes on a path before the peer's RESUME on it: it may not be listening there yet.
    if (!state || state.paused || !state.peerResumed || this.closed) return;
    const path = state.path;
    let index = this.unackedHead + (this.sendCursor - this.firstUnackedSeq());
    while (index < this.unacked.length) {
      const entry = this.unacked[index];
      if (entry === undefined) break;
      if (entry.route !== path.route) {
        entry.frame = withRoute(entry.frame, path.route);
        entry.route = path.route;
        // The copy is the frame now; the pooled buffer goes to the GC whenever the old path lets go of it.
        entry.pooled = undefined;
      }
      index += 1;
      this.sendCursor = entry.seq + 1;
      let sent: boolean;
      if (entry.pooled) {
        entry.writes += 1;
        sent = path.send(entry.frame, () => {
          entry.writes -= 1;
          this.maybeRecycle(entry);
        });
      } else {
        sent = path.send(entry.frame);
      }
      if (!sent) {
        state.paused = true;
        return;
      }
    }
  }

  /** An acknowledged frame's pooled buffer goes back once no path holds it (a socket may still be writing it). */
  private maybeRecycle(entry: Unacked): void {
    if (!entry.acked || entry.writes > 0 || !entry.pooled) return;
    this.framePool.release(entry.pooled);
    entry.pooled = undefined;
  }

  private onAck(seq: number): void {
    let head = this.unackedHead;
    while (head < this.unacked.length) {
      const entry = this.unacked[head];
      if (entry === undefined || entry.seq >= seq) break;
      entry.acked = true;
      this.maybeRecycle(entry);
      head += 1;
    }
    if (head === this.unackedHead) return;
    this.unackedHead = head;
    // Compact now and then rather than shift() per frame.
    if (this.unackedHead > 1024 && this.unackedHead * 2 > this.unacked.length) {
      this.unacked = this.unacked.slice(this.unackedHead);
      this.unackedHead = 0;
    }
    if (this.sendCursor < this.firstUnackedSeq()) this.sendCursor = this.firstUnackedSeq();
  }

  // ---- receiving -----------------------------------------------------------------------------------

  private onFrame(state: PathState, buf: Buffer): void {
    if (this.closed) return;
    const decoded = decodeFrame(buf);
    if (!decoded.ok) {
      this.close('protocol_error', `bad frame on the ${state.path.kind} path: ${decoded.error}`);
      return;
    }
    const frame = decoded.frame;
    if (isReliableKind(frame.kind)) {
      this.onReliable(frame);
      return;
    }
    switch (frame.kind) {
      case FrameKind.ACK:
        this.onAck(frame.seq);
        this.flush();
        return;
      case FrameKind.CREDIT: {
        const credit = readCreditBody(frame.body);
        if (credit) this.streams.get(frame.stream)?.onCredit(credit.consumed, credit.windowBytes);
        return;
      }
      case FrameKind.RESUME:
        this.onResume(state, frame.seq);
        return;
      case FrameKind.PING:
        this.sendControl(state, FrameKind.PONG, 0, 0, frame.body, true);
        return;
      case FrameKind.PONG:
        this.onPong(state, frame.body);
        return;
      default:
        return;
    }
  }

  private onResume(state: PathState, seq: number): void {
    this.onAck(seq);
    if (!state.peerResumed) {
      state.peerResumed = true;
      // The peer attached this path, perhaps after our RESUME went nowhere: answer its first RESUME with ours.
      this.sendControl(state, FrameKind.RESUME, this.expectedSeq, 0, undefined, true);
      // Whatever went on this path before the peer listened there is lost: send from what it expects.
      if (state === this.current) {
        this.sendCursor = this.firstUnackedSeq();
        this.resendAckAndCredits(state);
      }
    }
    this.updateState();
    this.flush();
  }

  private onReliable(frame: TunnelFrame): void {
    if (frame.seq !== this.expectedSeq) {
      // A duplicate (already delivered, replayed after a path change) or one past a gap (it comes again).
      this.dropped += 1;
      return;
    }
    this.expectedSeq += 1;
    this.ackPendingFrames += 1;
    this.ackPendingBytes += frame.body.length;
    this.deliver(frame);
    this.maybeAck();
  }

  private maybeAck(): void {
    if (this.closed) return; // a stream's reader may have closed the session while a frame was delivered
    if (
      this.ackPendingFrames >= TUNNEL_SESSION_DEFAULTS.ackEveryFrames ||
      this.ackPendingBytes >= TUNNEL_SESSION_DEFAULTS.ackEveryBytes
    ) {
      this.sendAck();
      return;
    }
    this.ackTimer ??= this.clock.setTimeout(() => {
      this.ackTimer = undefined;
      this.sendAck();
    }, this.ackDelayMs);
  }

  private sendAck(): void {
    this.clock.clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.ackPendingFrames = 0;
    this.ackPendingBytes = 0;
    const state = this.inUse();
    if (state) this.sendControl(state, FrameKind.ACK, this.expectedSeq, 0);
  }

  private deliver(frame: TunnelFrame): void {
    const stream = this.streams.get(frame.stream);
    switch (frame.kind) {
      case FrameKind.OPEN:
        this.onOpen(frame);
        return;
      case FrameKind.OPEN_OK:
        stream?.onOpenOk(readWindowBody(frame.body) ?? TUNNEL_SESSION_DEFAULTS.windowBytes);
        if (!stream) this.unknownStream(frame.stream);
        return;
      case FrameKind.DATA:
        if (!stream) {
          this.unknownStream(frame.stream);
          return;
        }
        this.bytesIn += frame.body.length;
        this.touch();
        this.bytesChanged();
        // No copy: a path hands over each frame's buffer for good (tunnel-path.ts).
        if (!stream.onData(frame.body))
          stream.fail(StreamResetCode.PROTOCOL_ERROR, 'data past the stream window (credit)');
        return;
      case FrameKind.FIN:
        if (stream) stream.onFin();
        else this.unknownStream(frame.stream);
        return;
      case FrameKind.RST: {
        const { code, reason } = readResetBody(frame.body);
        stream?.onReset(code, reason);
        return;
      }
      default:
        return;
    }
  }

  private onOpen(frame: TunnelFrame): void {
    if (this.role !== 'farm' || frame.stream === 0 || frame.stream <= this.highestStreamId) {
      this.sendReliable(FrameKind.RST, frame.stream, resetBody(StreamResetCode.PROTOCOL_ERROR, 'unexpected OPEN'));
      return;
    }
    this.highestStreamId = frame.stream;
    if (this.streams.size >= this.maxStreams) {
      const reason = `this session allows ${this.maxStreams} streams at once`;
      this.sendReliable(FrameKind.RST, frame.stream, resetBody(StreamResetCode.TOO_MANY_STREAMS, reason));
      return;
    }
    const stream = new TunnelStream({
      id: frame.stream,
      host: this,
      windowBytes: this.windowBytes,
      maxWindowBytes: this.maxWindowBytes,
      peerWindowBytes: readWindowBody(frame.body) ?? TUNNEL_SESSION_DEFAULTS.windowBytes,
    });
    this.addStream(stream);
    this.events.emit('stream', stream);
  }

  /** A frame for a stream not open here: late (it was reset or ended) and harmless, or a protocol error. */
  private unknownStream(id: number): void {
    if (id !== 0 && id <= this.highestStreamId) return;
    this.sendReliable(FrameKind.RST, id, resetBody(StreamResetCode.PROTOCOL_ERROR, `no stream ${id}`));
  }

  // ---- session -------------------------------------------------------------------------------------

  /** Ends every stream (RST SESSION_ENDED with the reason), stops timers, emits 'closed' once. Idempotent. */
  close(code: SessionEndCode, reason: string): void {
    if (this.closed) return;
    for (const stream of [...this.streams.values()]) {
      // Best effort: the peer hears of the end from the broker too (session_closed) and ends its streams.
      this.sendReliable(FrameKind.RST, stream.id, resetBody(StreamResetCode.SESSION_ENDED, reason));
      stream.onReset(StreamResetCode.SESSION_ENDED, reason);
    }
    this.closed = true;
    this.state = 'closed';
    this.streams.clear();
    this.pinger.stop();
    this.selector.dispose();
    this.clock.clearTimeout(this.ackTimer);
    this.clock.clearTimeout(this.changeTimer);
    if (this.relay) this.dropPath(this.relay);
    if (this.direct) this.dropPath(this.direct);
    for (let i = this.unackedHead; i < this.unacked.length; i++) {
      const entry = this.unacked[i];
      if (!entry) continue;
      entry.acked = true; // nothing will send it again: its buffer is free once no path holds it
      this.maybeRecycle(entry);
    }
    this.unacked = [];
    this.unackedHead = 0;
    this.events.emit('change', undefined);
    this.events.emit('closed', { code, reason });
  }

  /** Adds to the recoveries that info() reports (the last 20). */
  recordRecovery(event: Omit<RecoveryEvent, 'at'>): void {
    this.recoveries.push({ ...event, at: this.clock.now() });
    if (this.recoveries.length > MAX_RECOVERIES) this.recoveries.splice(0, this.recoveries.length - MAX_RECOVERIES);
    this.events.emit('change', undefined);
  }

  info(): TunnelSessionInfo {
    return {
      session_id: this.id,
      peer: this.peer,
      service: this.service,
      state: this.state,
      path: this.closed ? null : (this.inUse()?.path.kind ?? null),
      rtt_ms: this.rttMs,
      bytes_in: this.bytesIn,
      bytes_out: this.bytesOut,
      streams_open: this.streams.size,
      streams_total: this.streamsTotal,
      created_at: this.createdAt,
      last_activity_at: this.lastActivityAt,
      recoveries: [...this.recoveries],
    };
  }

  /** Milliseconds since the last stream frame either way and no stream open; null while a stream is open. */
  idleMs(): number | null {
    if (this.streams.size > 0) return null;
    return this.clock.monotonic() - this.lastActivityMono;
  }

  /** The kind of the path in use (tests, diagnostics). */
  get pathInUse(): TunnelPathKind | null {
    return this.inUse()?.path.kind ?? null;
  }

  /** Reliable frames dropped because their seq was not the next expected (duplicates, or past a gap). */
  get droppedFrames(): number {
    return this.dropped;
  }

  /** Reliable frames kept for retransmission (tests: bounded by the windows). */
  get unackedFrames(): number {
    return this.unacked.length - this.unackedHead;
  }

  private touch(): void {
    this.lastActivityAt = this.clock.now();
    this.lastActivityMono = this.clock.monotonic();
  }

  private bytesChanged(): void {
    this.changeTimer ??= this.clock.setTimeout(() => {
      this.changeTimer = undefined;
      this.events.emit('change', undefined);
    }, CHANGE_THROTTLE_MS);
  }

  private updateState(): void {
    if (this.closed) return;
    let next: TunnelSessionInfo['state'];
    if (this.current) next = this.current.peerResumed || this.state !== 'establishing' ? 'active' : 'establishing';
    else next = this.state === 'establishing' ? 'establishing' : 'degraded';
    if (next === this.state) return;
    this.state = next;
    this.events.emit('change', undefined);
  }
}

function windowBody(windowBytes: number): Buffer {
  const body = Buffer.allocUnsafe(4);
  body.writeUInt32BE(Math.min(windowBytes, 0xffff_ffff), 0);
  return body;
}

function readWindowBody(body: Buffer): number | undefined {
  return body.length >= 4 ? body.readUInt32BE(0) : undefined;
}
