import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Capability } from '../../protocol/version.js';
import type { ProtocolModeSetting } from '../../protocol/config.js';
import { ManualClock } from '../../lib/manual-clock.fixture.js';
import { AgentConnection } from '../connection/connection.js';
import { FakeHub, TEST_TIMING, type FakeHubLink } from '../connection/fake-hub-link.fixture.js';
import { MemoryOutbox } from '../outbox/memory-outbox.js';
import { Delivery } from './delivery.js';

const A = 'ws://hub-a.test/api/v1/pc/ws';
const B = 'ws://hub-b.test/api/v1/pc/ws';

function setup(mode: ProtocolModeSetting = 'auto', maxInFlight = 5000) {
  const clock = new ManualClock();
  const hub = new FakeHub(clock);
  const logger = pino({ level: 'silent' });
  const connection = new AgentConnection({
    servers: [A, B],
    timing: TEST_TIMING,
    identity: { id: 'pc-017', name: 'rack 3', token: 't', version: '0', hostname: 'h', platform: 'linux' },
    clock,
    random: () => 0.5,
    logger,
    usage: () => ({ cpu_usage: 1, ram_usage: 2 }),
    link: hub.factory,
    mode,
  });
  const outbox = new MemoryOutbox(() => clock.now());
  const delivery = new Delivery({ outbox, connection, clock, logger, maxInFlight });
  delivery.start();
  const connect = (grant: boolean, ackedSeq = 0): FakeHubLink => {
    const link = hub.last();
    link.accept();
    link.register(
      grant
        ? {
            capabilities: [Capability.BATCH_V1],
            acked_seq: ackedSeq,
            batch: { window_ms: 50, max_messages: 100, max_bytes: 60_000 },
          }
        : {},
    );
    return link;
  };
  const events = (n: number, priority: 'high' | 'normal' | 'low' = 'normal') =>
    outbox.accept(
      Array.from({ length: n }, (_, i) => ({
        type: 'event' as const,
        body: { name: 'tick', data: { i }, timestamp: 1 },
        priority,
      })),
    );
  const seqsSent = (link: FakeHubLink) => link.sentOf('event').map((e) => e.seq);
  /** Lets the outbox's acknowledgement writes (promises) settle. */
  const settle = async () => {
    await delivery.settled();
    await Promise.resolve();
  };
  return { clock, hub, connection, outbox, delivery, connect, events, seqsSent, settle };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('Delivery, enhanced mode', () => {
  it('sends in seq order and forgets messages only when the hub acknowledges them', async () => {
    const t = setup();
    await t.events(250);
    t.connection.start();
    const link = t.connect(true);
    expect(t.seqsSent(link)).toEqual(range(1, 250));
    expect(t.delivery.unacked).toBe(250);
    expect(t.outbox.entries).toHaveLength(250);
    link.deliver({ type: 'ack', seq: 100 });
    await t.settle();
    expect(t.outbox.entries).toHaveLength(150);
    expect(t.outbox.ackedSeq).toBe(100);
    expect(t.delivery.unacked).toBe(150);
    // New messages go out as they are accepted, each event carrying its seq.
    await t.events(2, 'high');
    expect(link.sentOf('event').slice(-2)).toMatchObject([{ seq: 251, name: 'tick' }, { seq: 252 }]);
    expect(link.urgent.filter((m) => m.type === 'event')).toHaveLength(2);
  });

  it('keeps at most maxInFlight unacknowledged, sending more as acks come', async () => {
    const t = setup('auto', 100);
    await t.events(350);
    t.connection.start();
    const link = t.connect(true);
    expect(t.seqsSent(link)).toEqual(range(1, 100));
    link.deliver({ type: 'ack', seq: 60 });
    expect(t.seqsSent(link)).toEqual(range(1, 160));
  });

  it('after a reconnect resumes after the last acknowledgement, resending what was in flight', async () => {
    const t = setup();
    await t.events(50);
    t.connection.start();
    const a = t.connect(true);
    a.deliver({ type: 'ack', seq: 20 });
    await t.settle();
    a.hubCloses(1006);
    const b = t.connect(true, 0);
    // The fallback's sink has nothing of ours: the agent's own acknowledgement decides.
    expect(t.seqsSent(b)).toEqual(range(21, 50));
  });

  it('a hub whose sink already has more (it acked before the agent stored it) is believed', async () => {
    const t = setup();
    await t.events(50);
    t.connection.start();
    t.connect(true);
    t.hub.last().hubCloses(1006);
    const b = t.connect(true, 30);
    expect(t.seqsSent(b)).toEqual(range(31, 50));
    await t.settle();
    expect(t.outbox.ackedSeq).toBe(30);
    expect(t.outbox.entries.map((e) => e.seq)).toEqual(range(31, 50));
  });

  it('a hub claiming seqs this outbox never numbered is not believed (nothing is forgotten)', async () => {
    const t = setup();
    await t.events(50);
    t.connection.start();
    const link = t.connect(true, 1000);
    expect(t.seqsSent(link)).toEqual(range(1, 50));
    await t.settle();
    expect(t.outbox.entries).toHaveLength(50);
  });

  it('a nack: everything from its seq goes again after the wait the hub asked for', async () => {
    const t = setup();
    await t.events(10);
    t.connection.start();
    const link = t.connect(true);
    link.deliver({ type: 'ack', seq: 4 });
    link.deliver({
      type: 'nack',
      seq: 5,
      error: { code: 'SINK_UNAVAILABLE', message: 'redis down' },
      retry_after_ms: 1000,
    });
    expect(t.delivery.unacked).toBe(0);
    t.clock.advanceSync(999);
    expect(t.seqsSent(link)).toEqual(range(1, 10));
    t.clock.advanceSync(1);
    expect(t.seqsSent(link)).toEqual([...range(1, 10), ...range(5, 10)]);
  });

  it('nothing is sent while not connected; the backlog goes on registration', async () => {
    const t = setup();
    t.connection.start();
    await t.events(5);
    expect(t.hub.last().sent).toHaveLength(0);
    const link = t.connect(true);
    expect(t.seqsSent(link)).toEqual(range(1, 5));
  });
});

describe('Delivery, legacy mode', () => {
  it('one message per frame, forgotten once written (at most once)', async () => {
    const t = setup('legacy');
    await t.events(30);
    t.connection.start();
    const link = t.connect(false);
    expect(t.seqsSent(link)).toEqual(range(1, 30));
    await t.settle();
    expect(t.outbox.entries).toHaveLength(0);
    expect(t.outbox.ackedSeq).toBe(30);
    expect(t.delivery.unacked).toBe(0);
  });
});
