import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/manual-clock.fixture.js';
import { FarmRegistry, type FarmPeer } from './farm-registry.js';

const socket = (address: string): FarmPeer => ({ address });

function entry(conn: FarmPeer, bootId: string) {
  return { agentId: 'pc-017', conn, bootId, services: ['adb'], localAddresses: ['10.0.0.5'], address: conn.address };
}

describe('FarmRegistry', () => {
  it('tells a first connection, a reconnect (same boot id) and a restart (another) apart; a new socket replaces the old at once', () => {
    const clock = new ManualClock();
    const registry = new FarmRegistry(clock, 60_000);
    const a = socket('127.0.0.1:1000');
    expect(registry.connect(entry(a, 'b1'))).toEqual({ arrival: 'first', replaced: undefined, movedFrom: undefined });
    expect(registry.get('pc-017')?.connectedAt).toBe(clock.now());
    // Every socket has a port of its own: the same host on another port is no move.
    const b = socket('127.0.0.1:1001');
    expect(registry.connect(entry(b, 'b1'))).toEqual({ arrival: 'reconnect', replaced: a, movedFrom: undefined });
    // The replaced socket's close comes later: it no longer unregisters anything.
    expect(registry.disconnect('pc-017', a)).toBe(false);
    expect(registry.get('pc-017')?.conn).toBe(b);
    const c = socket('127.0.0.2:2000');
    expect(registry.connect(entry(c, 'b2'))).toEqual({ arrival: 'restart', replaced: b, movedFrom: '127.0.0.1:1001' });
    expect(registry.size).toBe(1);
  });

  it('remembers a departed farm for a while: its return is a reconnect or a move; after that, a first connection', async () => {
    const clock = new ManualClock();
    const registry = new FarmRegistry(clock, 1000);
    const a = socket('127.0.0.1:1000');
    registry.connect(entry(a, 'b1'));
    expect(registry.disconnect('pc-017', a)).toBe(true);
    expect(registry.get('pc-017')).toBeUndefined();
    await clock.advance(900);
    const b = socket('127.0.0.3:3000');
    expect(registry.connect(entry(b, 'b1'))).toEqual({
      arrival: 'reconnect',
      replaced: undefined,
      movedFrom: '127.0.0.1:1000',
    });
    registry.disconnect('pc-017', b);
    await clock.advance(1001);
    expect(registry.connect(entry(socket('127.0.0.4:1'), 'b1')).arrival).toBe('first');
  });

  it('records local addresses from address_change, saying whether they changed, for the registered socket only', () => {
    const registry = new FarmRegistry(new ManualClock(), 1000);
    const a = socket('127.0.0.1:1000');
    registry.connect(entry(a, 'b1'));
    expect(registry.recordLocalAddresses('pc-017', a, ['10.0.0.5'])).toBe(false);
    expect(registry.recordLocalAddresses('pc-017', a, ['10.0.0.6'])).toBe(true);
    expect(registry.get('pc-017')?.localAddresses).toEqual(['10.0.0.6']);
    expect(registry.recordLocalAddresses('pc-017', socket('x:1'), ['1.1.1.1'])).toBe(false);
  });
});
