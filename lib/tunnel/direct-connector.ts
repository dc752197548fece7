import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { DataChannel, PeerConnection } from 'node-datachannel';
import type { Logger } from 'pino';
import type { Clock, Random, TimerHandle } from '../clock.js';
import { TypedEmitter } from '../events.js';
import type { SignalPayload } from '../../protocol/tunnel.js';
import { DirectPath, type DirectPathOptions } from './direct-path.js';
import type { WebRtc } from './webrtc.js';

/** Where the connector's offers, answers and candidates go: the tunnel link's `signal` for this session. */
export interface SignalSink {
  send(payload: SignalPayload): void;
}

export type DirectConnectorState =
  /** Farm: waiting for an offer. */
  | 'idle'
  /** An offer or answer is out; candidates are trickling; the channel is not open yet. */
  | 'connecting'
  /** The channel is open: its DirectPath was emitted. */
  | 'open'
  /** Client: the last attempt failed; the next one is due at `nextAttemptAt` (monotonic ms). */
  | 'waiting'
  | 'closed';

export interface DirectConnectorEvents extends Record<string, unknown> {
  /** The data channel opened: attach this path to the session. It says `down` itself when it goes. */
  path: DirectPath;
  /** State changed (diagnostics); `retryInMs` when it is `waiting`. */
  change: { state: DirectConnectorState; reason: string; retryInMs?: number };
}

export interface DirectConnectorOptions {
  /** The client offers (and retries); the farm answers whatever offer comes. */
  role: 'client' | 'farm';
  /** The loaded library (loadWebRtc()); when it does not load, make no connector: the relay is all there is. */
  webrtc: WebRtc;
  /** For logs and the native peer's name: the session id. */
  sessionId: string;
  signal: SignalSink;
  clock: Clock;
  random: Random;
  logger: Logger;
  /** How long an attempt may take to open the channel before it is given up (default 15 s). */
  openTimeoutMs?: number;
  /** Client: the wait before the next attempt after a failed one, doubled each time up to maxRetryMs (default 5 s). */
  retryMs?: number;
  /** Default 2 min. */
  maxRetryMs?: number;
  /**
   * The local address to gather host candidates on. Unset: every interface (libdatachannel leaves out
   * loopback), except on a machine with no other address, where it is 127.0.0.1 (see hostBindAddress).
   */
  bindAddress?: string;
  /** STUN/TURN servers in libdatachannel's form ("stun:host:port"); default none (host candidates only). */
  iceServers?: string[];
  path?: DirectPathOptions;
}

export const DIRECT_OPEN_TIMEOUT_MS = 15_000;
export const DIRECT_RETRY_MS = 5_000;
export const DIRECT_MAX_RETRY_MS = 120_000;

/**
 * The address to gather host candidates on, for a machine's interfaces: libdatachannel never offers a
 * loopback address unless bound to it, so a machine whose only interface is loopback would have no
 * candidate at all. Anywhere else, undefined: every interface.
 */
export function hostBindAddress(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>): string | undefined {
  const external = Object.values(interfaces)
    .flat()
    .some((info) => info !== undefined && !info.internal);
  return external ? undefined : '127.0.0.1';
}

/** One offer/answer exchange and the native objects it made; replaced whole on every retry or restart. */
interface Attempt {
  /** Our ICE username fragment for this attempt: tags what we send, and what the peer sends back. */
  ufrag: string;
  /** The peer's, once known: candidates carrying another are from an attempt that is over. */
  remoteUfrag: string | null;
  pc: PeerConnection;
  channels: DataChannel[];
  path: DirectPath | null;
  timer: TimerHandle | undefined;
  over: boolean;
}

const ICE_CHARS = /^[A-Za-z0-9+/]{4,256}$/;

function sdpUfrag(sdp: string): string | null {
  const match = /^a=ice-ufrag:(\S+)\s*$/m.exec(sdp);
  return match?.[1] ?? null;
}

/** Candidates travel with the sender's ufrag as a trailing "ufrag X" (RFC 8839's extension form). */
function tagCandidate(candidate: string, ufrag: string): string {
  return `${candidate} ufrag ${ufrag}`;
}

function untagCandidate(tagged: string): { candidate: string; ufrag: string | null } {
  const match = / ufrag (\S+)$/.exec(tagged);
  if (!match) return { candidate: tagged, ufrag: null };
  return { candidate: tagged.slice(0, match.index), ufrag: match[1] ?? null };
}

/**
 * Brings up a session's direct path: a WebRTC data channel between the client and the farm, signalled
 * through the broker (`signal` messages it passes on unread). The client offers, the farm answers,
 * candidates trickle both ways. An attempt that has not opened the channel within the open timeout is
 * given up quietly (the relay carries on) and the client tries again later, each wait twice the last.
 * `restart` (this side's addresses changed) or a `restart` from the peer drops the connection and every
 * candidate and starts over at once.
 *
 * Offers are tagged by their ICE ufrag, answers by a ufrag derived from the offer's, and candidates by
 * their sender's ufrag, so an answer or candidate from an attempt that is over (signals cross on the
 * way) is dropped instead of breaking the current one.
 *
 * Native handles: every peer connection and channel gets its state/close callback registered, which is
 * what lets node-datachannel release them when they close; close() closes them all and stops every
 * timer, after which nothing of the connector keeps the process alive.
 */
export class DirectConnector {
  readonly events = new TypedEmitter<DirectConnectorEvents>();
  private attempt: Attempt | null = null;
  private retryTimer: TimerHandle | undefined;
  private failures = 0;
  private stateNow: DirectConnectorState;
  private nextAttemptAtMs: number | null = null;
  private readonly openTimeoutMs: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly bindAddress: string | undefined;
  private readonly log: Logger;

  constructor(private readonly options: DirectConnectorOptions) {
    this.openTimeoutMs = options.openTimeoutMs ?? DIRECT_OPEN_TIMEOUT_MS;
    this.retryMs = options.retryMs ?? DIRECT_RETRY_MS;
    this.maxRetryMs = options.maxRetryMs ?? DIRECT_MAX_RETRY_MS;
    this.bindAddress = options.bindAddress ?? hostBindAddress(os.networkInterfaces());
    this.log = options.logger.child({ session: options.sessionId, direct: options.role });
    this.stateNow = 'idle';
  }

  get state(): DirectConnectorState {
    return this.stateNow;
  }

  /** Client: when the next attempt is due (monotonic ms), while waiting. */
  get nextAttemptAt(): number | null {
    return this.nextAttemptAtMs;
  }

  /** Client: the first offer. Farm: nothing to do (it answers offers as they come). */
  start(): void {
    if (this.stateNow === 'closed') return;
    if (this.options.role === 'client' && this.attempt === null && this.retryTimer === undefined) this.offer();
  }

  /** A signalling payload from the peer (the broker's `signal` for this session). */
  receive(payload: SignalPayload): void {
    if (this.stateNow === 'closed') return;
    switch (payload.kind) {
      case 'offer':
        this.onOffer(payload.sdp);
        return;
      case 'answer':
        this.onAnswer(payload.sdp);
        return;
      case 'candidate':
        this.onCandidate(payload.candidate, payload.mid);
        return;
      case 'restart':
        this.startOver('the peer restarted its direct path (its addresses changed)');
        return;
    }
  }

  /**
   * This side's addresses changed: every candidate it sent is stale. Tells the peer, drops the
   * connection, and (client) offers again at once.
   */
  restart(reason: string): void {
    if (this.stateNow === 'closed') return;
    this.options.signal.send({ kind: 'restart' });
    this.startOver(reason);
  }

  /**
   * The peer's address changed (the broker's `peer_state moved`): drops the connection and (client)
   * offers again at once. The peer is not told: it knows.
   */
  peerMoved(reason: string): void {
    if (this.stateNow === 'closed') return;
    this.startOver(reason);
  }

  /** Frees everything: the connection, its channels, every timer. Idempotent. */
  close(reason = 'closed'): void {
    if (this.stateNow === 'closed') return;
    this.options.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.nextAttemptAtMs = null;
    this.endAttempt(reason);
    this.setState('closed', reason);
  }

  // ---- attempts ------------------------------------------------------------------------------------

  private startOver(reason: string): void {
    this.log.info({ reason }, 'direct path starting over: old connection and candidates dropped');
    this.options.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.nextAttemptAtMs = null;
    this.failures = 0;
    this.endAttempt(reason);
    if (this.options.role === 'client') this.offer();
    else this.setState('idle', reason);
  }

  private newPeer(ufrag: string): Attempt {
    const pc = new this.options.webrtc.PeerConnection(`${this.options.role}-${this.options.sessionId.slice(0, 8)}`, {
      iceServers: this.options.iceServers ?? [],
      ...(this.bindAddress !== undefined ? { bindAddress: this.bindAddress } : {}),
      // Descriptions are made by hand, so each carries the ufrag that tags its attempt.
      disableAutoNegotiation: true,
    });
    const attempt: Attempt = {
      ufrag,
      remoteUfrag: null,
      pc,
      channels: [],
      path: null,
      timer: undefined,
      over: false,
    };
    pc.onLocalCandidate((candidate, mid) => {
      if (attempt.over) return;
      this.options.signal.send({ kind: 'candidate', candidate: tagCandidate(candidate, ufrag), mid });
    });
    // Registered on every connection: node-datachannel frees its native callbacks on the 'closed' state.
    pc.onStateChange((state) => {
      if (attempt.over) return;
      if (state === 'failed' || state === 'disconnected' || state === 'closed') {
        this.attemptFailed(attempt, `peer connection ${state}`);
      }
    });
    attempt.timer = this.options.clock.setTimeout(
      () => {
        this.attemptFailed(attempt, `no data channel within ${String(this.openTimeoutMs)} ms`);
      },
      this.openTimeoutMs,
      { unref: true },
    );
    this.attempt = attempt;
    this.setState('connecting', 'attempt started');
    return attempt;
  }

  private offer(): void {
    this.nextAttemptAtMs = null;
    const attempt = this.newPeer(randomUfrag());
    const channel = attempt.pc.createDataChannel('tunnel');
    this.adopt(attempt, channel);
    attempt.pc.setLocalDescription('offer', { iceUfrag: attempt.ufrag, icePwd: randomPwd() });
    const sdp = attempt.pc.localDescription()?.sdp;
    if (sdp === undefined) {
      this.attemptFailed(attempt, 'no local offer');
      return;
    }
    this.log.debug({ ufrag: attempt.ufrag }, 'direct path: offer sent');
    this.options.signal.send({ kind: 'offer', sdp });
  }

  private onOffer(sdp: string): void {
    if (this.options.role !== 'farm') {
      this.log.warn('direct path: an offer reached the client side; ignored (only the client offers)');
      return;
    }
    const offerUfrag = sdpUfrag(sdp);
    if (offerUfrag === null || !ICE_CHARS.test(offerUfrag)) {
      this.log.warn('direct path: offer without a usable ice-ufrag; ignored');
      return;
    }
    // A new offer supersedes whatever the last one started: the client gave that attempt up.
    this.endAttempt('a new offer came');
    const attempt = this.newPeer(answerUfrag(offerUfrag));
    attempt.remoteUfrag = offerUfrag;
    attempt.pc.onDataChannel((channel) => {
      this.adopt(attempt, channel);
    });
    try {
      attempt.pc.setRemoteDescription(sdp, 'offer');
      attempt.pc.setLocalDescription('answer', { iceUfrag: attempt.ufrag, icePwd: randomPwd() });
    } catch (error) {
      this.attemptFailed(attempt, `offer refused: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    const answer = attempt.pc.localDescription()?.sdp;
    if (answer === undefined) {
      this.attemptFailed(attempt, 'no local answer');
      return;
    }
    this.log.debug({ ufrag: attempt.ufrag }, 'direct path: answer sent');
    this.options.signal.send({ kind: 'answer', sdp: answer });
  }

  private onAnswer(sdp: string): void {
    const attempt = this.attempt;
    if (this.options.role !== 'client') {
      this.log.warn('direct path: an answer reached the farm side; ignored (only the farm answers)');
      return;
    }
    if (attempt === null || attempt.remoteUfrag !== null || sdpUfrag(sdp) !== answerUfrag(attempt.ufrag)) {
      this.log.debug('direct path: answer to an attempt that is over; dropped');
      return;
    }
    attempt.remoteUfrag = sdpUfrag(sdp);
    try {
      attempt.pc.setRemoteDescription(sdp, 'answer');
    } catch (error) {
      this.attemptFailed(attempt, `answer refused: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private onCandidate(tagged: string, mid: string): void {
    const attempt = this.attempt;
    const { candidate, ufrag } = untagCandidate(tagged);
    // Before the peer's description is set there is nothing to add it to, and it can only be stale:
    // each side sends its description before its candidates, and signals arrive in order.
    if (attempt === null || attempt.over || attempt.remoteUfrag === null || ufrag !== attempt.remoteUfrag) {
      this.log.debug('direct path: candidate of an attempt that is over; dropped');
      return;
    }
    try {
      attempt.pc.addRemoteCandidate(candidate, mid);
    } catch (error) {
      this.log.debug({ err: error }, 'direct path: candidate refused');
    }
  }

  /** Every channel of an attempt gets its close callback registered (what frees it natively). */
  private adopt(attempt: Attempt, channel: DataChannel): void {
    if (attempt.over) {
      channel.onClosed(() => {});
      channel.close();
      return;
    }
    attempt.channels.push(channel);
    if (channel.isOpen()) {
      this.opened(attempt, channel);
      return;
    }
    channel.onOpen(() => {
      this.opened(attempt, channel);
    });
    channel.onClosed(() => {
      if (attempt.path === null) this.attemptFailed(attempt, 'data channel closed before it opened');
    });
  }

  private opened(attempt: Attempt, channel: DataChannel): void {
    if (attempt.over || attempt.path !== null) return;
    this.options.clock.clearTimeout(attempt.timer);
    attempt.timer = undefined;
    this.failures = 0;
    // DirectPath registers its own close callback (replacing adopt's): it reports the close as `down`.
    const path = new DirectPath(channel, this.options.path ?? {});
    attempt.path = path;
    path.events.on('down', ({ reason }) => {
      this.attemptFailed(attempt, reason);
    });
    const pair = attempt.pc.getSelectedCandidatePair();
    this.log.info(
      { local: pair?.local.address, remote: pair?.remote.address, type: pair?.remote.type },
      'direct path open',
    );
    this.setState('open', 'data channel open');
    this.events.emit('path', path);
  }

  /** The attempt is over (timeout, failure, channel closed): free it; the client tries again later. */
  private attemptFailed(attempt: Attempt, reason: string): void {
    if (attempt.over || this.attempt !== attempt) return;
    const wasOpen = attempt.path !== null;
    this.endAttempt(reason);
    if (this.options.role === 'farm') {
      this.log.info({ reason }, 'direct path gone; waiting for the next offer (the relay carries on)');
      this.setState('idle', reason);
      return;
    }
    // A channel that was open and closed is retried after the shortest wait; failed attempts back off.
    this.failures = wasOpen ? 1 : this.failures + 1;
    const base = Math.min(this.maxRetryMs, this.retryMs * 2 ** (this.failures - 1));
    const delay = Math.round(base * (0.5 + this.options.random() / 2));
    this.nextAttemptAtMs = this.options.clock.monotonic() + delay;
    this.log.info({ reason, retryInMs: delay }, 'direct path not available; the relay carries on; trying again later');
    this.setState('waiting', reason, delay);
    this.retryTimer = this.options.clock.setTimeout(
      () => {
        this.retryTimer = undefined;
        if (this.stateNow === 'waiting') this.offer();
      },
      delay,
      { unref: true },
    );
  }

  /** Closes the current attempt's channels and connection and stops its timer. */
  private endAttempt(reason: string): void {
    const attempt = this.attempt;
    if (attempt === null) return;
    this.attempt = null;
    attempt.over = true;
    this.options.clock.clearTimeout(attempt.timer);
    attempt.timer = undefined;
    attempt.path?.markDown(reason);
    for (const channel of attempt.channels) {
      try {
        channel.close();
      } catch {
        // Already closed natively.
      }
    }
    try {
      attempt.pc.close();
    } catch {
      // Already closed natively.
    }
  }

  private setState(state: DirectConnectorState, reason: string, retryInMs?: number): void {
    if (this.stateNow === state) return;
    this.stateNow = state;
    this.events.emit('change', { state, reason, ...(retryInMs !== undefined ? { retryInMs } : {}) });
  }
}

function randomUfrag(): string {
  return randomBytes(6).toString('hex');
}

/** The farm's ufrag for an answer: derived from the offer's, so the client knows which offer it answers. */
function answerUfrag(offerUfrag: string): string {
  return `${offerUfrag}a`;
}

function randomPwd(): string {
  return randomBytes(18).toString('hex');
}
