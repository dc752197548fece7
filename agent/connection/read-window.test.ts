import { describe, expect, it } from 'vitest';
import { HubReadWindow, isProbePong } from './read-window.js';

function windowOf(burst: number) {
  const pings: Buffer[] = [];
  const w = new HubReadWindow({ max_payload_bytes: 65536, max_messages_per_second: 50, burst_messages: burst }, (d) =>
    pings.push(d),
  );
  return { w, pings };
}

describe('HubReadWindow', () => {
  it('leaves room for the pacer’s burst, the hello and a heartbeat within the hub’s burst', () => {
    expect(windowOf(20).w.size).toBe(8);
    expect(windowOf(100).w.size).toBe(48);
    expect(windowOf(1).w.size).toBe(1);
  });

  it('probes every half window and once full; a probe’s pong opens the window up to where it was sent', () => {
    const { w, pings } = windowOf(20);
    for (let i = 0; i < 4; i++) w.wrote();
    expect(pings).toHaveLength(1);
    for (let i = 0; i < 4; i++) w.wrote();
    expect(w.full).toBe(true);
    expect(pings).toHaveLength(2);
    expect(pings.every(isProbePong)).toBe(true);
    // The first probe answered: the 4 frames before it are read.
    expect(w.pong(pings[0] ?? Buffer.alloc(0))).toEqual({ probe: true, opened: true });
    expect(w.unread).toBe(4);
    // A heartbeat that had to go anyway fills it again, and a probe covers it.
    for (let i = 0; i < 4; i++) w.wrote();
    expect(w.full).toBe(true);
    const last = pings.at(-1) ?? Buffer.alloc(0);
    expect(w.pong(last)).toEqual({ probe: true, opened: true });
    expect(w.unread).toBe(0);
  });

  it('leaves the ping monitor’s pongs alone, and a later pong answers the earlier probes too', () => {
    const { w, pings } = windowOf(20);
    expect(w.pong(Buffer.alloc(0))).toEqual({ probe: false, opened: false });
    expect(isProbePong(Buffer.from('hello'))).toBe(false);
    for (let i = 0; i < 8; i++) w.wrote();
    expect(w.pong(pings[1] ?? Buffer.alloc(0)).probe).toBe(true);
    expect(w.unread).toBe(0);
    expect(w.pong(pings[0] ?? Buffer.alloc(0))).toEqual({ probe: true, opened: false });
    expect(w.unread).toBe(0);
  });
});
