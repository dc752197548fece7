import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/manual-clock.fixture.js';
import { TunnelSession } from '../lib/tunnel/tunnel-session.js';
import { ClientDirect } from './client-direct.js';

function logs(): { lines: Array<{ msg: string; reason?: string }>; logger: Logger } {
  const lines: Array<{ msg: string; reason?: string }> = [];
  const logger: Logger = pino(
    { level: 'info' },
    { write: (line: string) => lines.push(JSON.parse(line) as { msg: string }) },
  );
  return { lines, logger };
}

function session(clock: ManualClock): TunnelSession {
  return new TunnelSession({
    role: 'client',
    sessionId: '0123456789abcdef0123456789abcdef',
    peer: 'pc-017',
    service: 'adb',
    clock,
    pingIntervalMs: 1000,
    pingTimeoutMs: 3000,
  });
}

describe('ClientDirect', () => {
  it('where WebRTC does not load, says why once and sends no signal: the relay is all there is', async () => {
    const clock = new ManualClock();
    const { lines, logger } = logs();
    const signals: unknown[] = [];
    const direct = new ClientDirect({
      enabled: true,
      clock,
      random: () => 0.5,
      logger,
      signal: (_id, payload) => signals.push(payload),
      load: () => Promise.resolve({ ok: false, reason: 'node-datachannel did not load (no binary): relay only' }),
    });
    const s = session(clock);
    direct.start(s);
    await Promise.resolve();
    await Promise.resolve();
    direct.start(s);
    expect(lines.filter((l) => l.msg.includes('did not load'))).toHaveLength(1);
    expect(signals).toEqual([]);
    expect(direct.state).toBeNull();
    s.close('closed', 'test over');
  });

  it('turned off, makes no connector and never loads the library', () => {
    const clock = new ManualClock();
    const { lines, logger } = logs();
    let loads = 0;
    const direct = new ClientDirect({
      enabled: false,
      clock,
      random: () => 0.5,
      logger,
      signal: () => {},
      load: () => {
        loads++;
        return Promise.resolve({ ok: false, reason: 'x' });
      },
    });
    const s = session(clock);
    direct.start(s);
    expect(loads).toBe(0);
    expect(direct.state).toBeNull();
    expect(lines.map((l) => l.msg)).toContain('direct path off: the session stays on the relay');
    s.close('closed', 'test over');
  });
});
