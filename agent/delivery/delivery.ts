import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../lib/clock.js';
import { errorInfo } from '../../lib/errors.js';
import type { AgentMessage, HubMessage } from '../../protocol/messages.js';
import type { AgentConnection } from '../connection/connection.js';
import type { OutboxEntry, OutboxStore } from '../outbox/outbox-store.js';

export interface DeliveryOptions {
  outbox: OutboxStore;
  connection: AgentConnection;
  clock: Clock;
  logger: Logger;
  /** Enhanced: most messages sent on one connection and not yet acknowledged [5000]. */
  maxInFlight?: number;
}

/** Enough for one frame's worth of messages; the link's batcher bounds the frame itself. */
const READ_BYTES = 512 * 1024;
/** A backlog is sent a frame's worth at a time; this many messages at most per step when the hub gave no batch size. */
const DEFAULT_STEP = 500;

/**
 * Moves messages from the outbox to the hub. Enhanced mode: in sequence order, a batch frame's
 * worth at a time at the pace the hub allows, at most `maxInFlight` unacknowledged; a message is
 * forgotten only when the hub acknowledges it (its sink has it), and after any reconnect — same
 * hub, a fallback, a restart — sending resumes after the last acknowledgement (the hub's
 * `registered.acked_seq` or the outbox's own, whichever is further), so nothing accepted is lost
 * and the hub drops what it already had. Legacy mode: one message per frame, paced under the hub's
 * rate limit and within the link's read window (at most a burst's worth unread by the hub), forgotten
 * once written to the socket (at most once: what was in flight when a connection died is lost, and
 * counted as delivered).
 */
export class Delivery {
  private readonly log: Logger;
  /** Highest seq handed to the current connection. */
  private sentUpTo = 0;
  /** Seqs sent on the current connection and not yet acknowledged, in order (enhanced). */
  private readonly inFlight: number[] = [];
  private pumping = false;
  private timer: TimerHandle | undefined;
  private pausedUntil = 0;
  private stopped = false;
  private readonly maxInFlight: number;
  private readonly offs: Array<() => void> = [];
  /** The highest acknowledgement seen; stored in the outbox by one running write at a time. */
  private ackTarget = 0;
  private acknowledging: Promise<void> | undefined;

  constructor(private readonly options: DeliveryOptions) {
    this.log = options.logger;
    this.maxInFlight = options.maxInFlight ?? 5000;
  }

  /** Sent on the current connection, waiting for the hub's acknowledgement. */
  get unacked(): number {
    return this.inFlight.length;
  }

  start(): void {
    const { connection, outbox } = this.options;
    this.offs.push(
      connection.events.on('registered', ({ registered, mode }) => {
        this.inFlight.length = 0;
        this.pausedUntil = 0;
        let hubHas = mode === 'enhanced' ? (registered.acked_seq ?? 0) : 0;
        const assigned = outbox.summary(0).next_seq - 1;
        if (hubHas > assigned) {
          // Numbers this outbox never gave out: another PC with this agent id, or an outbox restored
          // from an old backup. Believing the hub would forget messages it never had.
          this.log.error(
            { acked_seq: hubHas, highest_assigned: assigned, hub_id: registered.hub_id },
            `Hub ${registered.hub_id} says it has this agent's messages up to seq ${hubHas}, but this outbox has ` +
              `numbered only up to ${assigned}: is another PC running with agent id ${registered.agent_id}? ` +
              `Resuming after this outbox's own acknowledgement (seq ${outbox.ackedSeq}); the hub drops what it thinks it has`,
          );
          hubHas = 0;
        }
        this.sentUpTo = Math.max(outbox.ackedSeq, this.ackTarget, hubHas);
        if (hubHas > outbox.ackedSeq) {
          this.log.info(
            { acked_seq: hubHas, outbox_acked_seq: outbox.ackedSeq },
            `Hub ${registered.hub_id} already has everything up to seq ${hubHas}; resuming after it`,
          );
          this.acknowledge(hubHas);
        }
        this.pump();
      }),
      connection.events.on('message', (message) => this.onHubMessage(message)),
      connection.events.on('frameSent', () => this.pump()),
      connection.events.on('caughtUp', () => this.pump()),
      outbox.events.on('accepted', () => this.pump()),
    );
  }

  stop(): void {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Waits until acknowledgements in progress are stored (for a clean stop). */
  settled(): Promise<void> {
    return this.acknowledging ?? Promise.resolve();
  }

  private onHubMessage(message: HubMessage): void {
    if (message.type === 'ack') {
      while (this.inFlight.length > 0 && (this.inFlight[0] ?? Infinity) <= message.seq) this.inFlight.shift();
      if (message.seq > this.options.outbox.ackedSeq) this.acknowledge(message.seq);
      this.pump();
    } else if (message.type === 'nack') {
      const { seq, error, retry_after_ms: retryAfter } = message;
      // The hub kept nothing from `seq` on: send it all again, after the wait it asked for.
      this.sentUpTo = Math.min(this.sentUpTo, seq - 1);
      while (this.inFlight.length > 0 && (this.inFlight.at(-1) ?? -Infinity) >= seq) this.inFlight.pop();
      this.pausedUntil = this.options.clock.monotonic() + retryAfter;
      this.log.warn(
        { seq, code: error.code, retry_after_ms: retryAfter },
        `Hub could not take messages from seq ${seq} (${error.code}: ${error.message}); they stay in the outbox and go again in ${retryAfter} ms`,
      );
      this.wakeIn(retryAfter);
    }
  }

  /** Coalesced: a burst of acknowledgements (legacy writes one per message) is one outbox write or two. */
  private acknowledge(seq: number): void {
    if (seq <= this.ackTarget) return;
    this.ackTarget = seq;
    this.acknowledging ??= this.storeAcks().finally(() => {
      this.acknowledging = undefined;
    });
  }

  private async storeAcks(): Promise<void> {
    let stored = 0;
    while (this.ackTarget > stored) {
      const target = this.ackTarget;
      try {
        await this.options.outbox.acknowledge(target);
      } catch (error) {
        // The messages stay; the next acknowledgement (or a restart's resume) forgets them.
        this.log.warn(
          { err: errorInfo(error), seq: target },
          `Could not record the acknowledgement of seq ${target} in the outbox; the next acknowledgement tries again`,
        );
        this.ackTarget = stored;
        return;
      }
      stored = target;
    }
  }

  /** Sends what the connection can take now; called again on every frame sent, ack, accept and timer. */
  private pump(): void {
    if (this.pumping || this.stopped) return;
    this.pumping = true;
    try {
      this.pumpSteps();
    } finally {
      this.pumping = false;
    }
  }

  private pumpSteps(): void {
    const { connection, outbox, clock } = this.options;
    const pause = this.pausedUntil - clock.monotonic();
    if (pause > 0) {
      this.wakeIn(pause);
      return;
    }
    for (;;) {
      const channel = connection.channel();
      if (!channel) return;
      if (channel.frameWaitMs > 0) {
        // Infinity: legacy frames wait for the hub to read those on the way; `caughtUp` wakes us.
        if (Number.isFinite(channel.frameWaitMs)) this.wakeIn(channel.frameWaitMs);
        return;
      }
      const enhanced = channel.mode === 'enhanced';
      let room: number;
      if (enhanced) {
        const step = channel.batch?.max_messages ?? DEFAULT_STEP;
        room = Math.min(step - channel.pending, this.maxInFlight - this.inFlight.length);
      } else {
        room = 1;
      }
      if (room <= 0) return;
      const entries = outbox.read(this.sentUpTo, { messages: room, bytes: READ_BYTES });
      if (entries.length === 0) return;
      const sent = this.sendAll(entries, enhanced);
      if (sent === 0) return;
    }
  }

  /** Hands entries to the connection in order; returns how many went. */
  private sendAll(entries: readonly OutboxEntry[], enhanced: boolean): number {
    const { connection } = this.options;
    let sent = 0;
    for (const entry of entries) {
      const message = { ...entry.body, type: entry.type, seq: entry.seq } as AgentMessage;
      try {
        connection.send(message, { urgent: entry.priority === 'high' });
      } catch (error) {
        const info = errorInfo(error);
        if (info.code !== 'MESSAGE_TOO_LARGE') return sent;
        // It can never go to this hub; holding it would block everything behind it.
        this.log.error(
          { seq: entry.seq, type: entry.type, code: info.code },
          `Outbox message seq ${entry.seq} (${entry.type}) cannot be sent to this hub: ${info.message}; skipping it`,
        );
      }
      this.sentUpTo = entry.seq;
      sent += 1;
      if (enhanced) this.inFlight.push(entry.seq);
      else this.acknowledge(entry.seq);
    }
    return sent;
  }

  private wakeIn(ms: number): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = this.options.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(1, Math.ceil(ms)),
    );
  }
}
