import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Heartbeat } from '../../protocol/messages.js';
import { systemClock } from '../../lib/clock.js';
import { HeartbeatMonitor } from './heartbeat.js';

function setup(intervalMs = 30_000, deadTimeoutMs = 90_000) {
  const sent: Heartbeat[] = [];
  const rtts: number[] = [];
  const dead: number[] = [];
  let lost = 0;
  const monitor = new HeartbeatMonitor({
    intervalMs,
    deadTimeoutMs,
    clock: systemClock,
    sample: () => ({ cpu_usage: 45, ram_usage: 60 }),
    send: (hb) => sent.push(hb),
    onRtt: (rtt) => rtts.push(rtt),
    onLost: () => {
      lost += 1;
    },
    onDead: (silent) => dead.push(silent),
  });
  const ack = (hb: Heartbeat) =>
    monitor.handleAck({ type: 'heartbeat_ack', seq: hb.seq, timestamp: hb.timestamp, server_time: Date.now() });
  return { monitor, sent, rtts, dead, ack, lost: () => lost };
}

describe('HeartbeatMonitor', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-01-03T19:30:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends a heartbeat with CPU, RAM and a timestamp at once, then every interval', () => {
    const { monitor, sent, ack } = setup();
    monitor.start();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toEqual({
      type: 'heartbeat',
      seq: 1,
      cpu_usage: 45,
      ram_usage: 60,
      timestamp: Date.parse('2026-01-03T19:30:00Z'),
    });
    ack(sent[0]!);
    vi.advanceTimersByTime(29_999);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(sent).toHaveLength(2);
    for (let i = 0; i < 2; i += 1) {
      ack(sent[sent.length - 1]!);
      vi.advanceTimersByTime(30_000);
    }
    expect(sent.map((h) => h.seq)).toEqual([1, 2, 3, 4]);
    monitor.stop();
  });

  it('measures the round trip of each acked heartbeat', () => {
    const { monitor, sent, rtts, ack } = setup();
    monitor.start();
    vi.advanceTimersByTime(120);
    ack(sent[0]!);
    expect(rtts).toHaveLength(1);
    expect(rtts[0]).toBeCloseTo(120, 0);
    ack(sent[0]!); // a duplicate ack is not a second sample
    expect(rtts).toHaveLength(1);
    monitor.stop();
  });

  it('declares the connection dead after the dead timeout without any ack (90 s)', () => {
    const { monitor, sent, dead } = setup();
    monitor.start();
    vi.advanceTimersByTime(89_999);
    expect(dead).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toBeCloseTo(90_000, -1);
    const count = sent.length;
    vi.advanceTimersByTime(300_000);
    expect(sent).toHaveLength(count); // stopped: no more heartbeats into a dead socket
  });

  it('restarts the dead timer on every ack, so detection counts from the last answer', () => {
    const { monitor, sent, dead, ack } = setup();
    monitor.start();
    vi.advanceTimersByTime(60_000); // heartbeats 1..3 sent, none acked
    ack(sent[2]!); // the ack for #3 settles #1 and #2 too
    vi.advanceTimersByTime(89_000);
    expect(dead).toEqual([]);
    vi.advanceTimersByTime(1_000);
    expect(dead).toHaveLength(1);
  });

  it('counts a heartbeat unanswered for a whole interval as lost, once, even if its ack comes late', () => {
    const { monitor, sent, ack, lost } = setup(1000, 10_000);
    monitor.start(); // #1
    ack(sent[0]!);
    vi.advanceTimersByTime(1000); // #2 sent; #1 was acked
    expect(lost()).toBe(0);
    vi.advanceTimersByTime(1000); // #3 sent; #2 unanswered → lost
    expect(lost()).toBe(1);
    ack(sent[1]!); // late ack for #2 (and #1..#2 settled)
    ack(sent[2]!);
    vi.advanceTimersByTime(1000); // #4 sent; #3 was acked
    expect(lost()).toBe(1);
    monitor.stop();
  });

  it('ignores acks it did not ask for and acks after stop', () => {
    const { monitor, rtts, dead, sent } = setup(1000, 3000);
    monitor.start();
    monitor.handleAck({ type: 'heartbeat_ack', seq: 999, timestamp: 0, server_time: 0 });
    monitor.handleAck({ type: 'heartbeat_ack', timestamp: 0, server_time: 0 });
    expect(rtts).toEqual([]);
    vi.advanceTimersByTime(3000);
    expect(dead).toHaveLength(1);
    monitor.handleAck({ type: 'heartbeat_ack', seq: sent[0]!.seq, timestamp: 0, server_time: 0 });
    expect(rtts).toEqual([]);
  });
});
