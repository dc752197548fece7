import { describe, expect, it } from 'vitest';
import { diffDevices } from './device-diff.js';
import type { TrackedDevice } from './track-devices-parser.js';

const phone = (serial: string, state = 'device', properties: Record<string, string> = {}): TrackedDevice => ({
  serial,
  state,
  properties,
});

describe('device diff', () => {
  it('announces a new device as connected, with its model, product and transport id', () => {
    const pixel = phone('R58N', 'device', { model: 'Pixel_5', product: 'redfin', transport_id: '3', usb: '1-1' });
    expect(diffDevices([], [pixel])).toEqual([
      {
        serial: 'R58N',
        change: 'connected',
        state: 'device',
        previous_state: null,
        model: 'Pixel_5',
        product: 'redfin',
        transport_id: '3',
      },
    ]);
  });

  it('announces a device gone as disconnected, with what was known of it', () => {
    expect(diffDevices([phone('A', 'offline', { model: 'M' })], [])).toEqual([
      { serial: 'A', change: 'disconnected', state: null, previous_state: 'offline', model: 'M' },
    ]);
  });

  it('announces a state change (unauthorized → device)', () => {
    expect(diffDevices([phone('A', 'unauthorized')], [phone('A', 'device')])).toEqual([
      { serial: 'A', change: 'state_changed', state: 'device', previous_state: 'unauthorized' },
    ]);
  });

  it('says nothing for the same list, nor when only the transport id changed (a new adb server renumbers)', () => {
    const before = [phone('A', 'device', { transport_id: '1' }), phone('B', 'device', { transport_id: '2' })];
    const after = [phone('B', 'device', { transport_id: '7' }), phone('A', 'device', { transport_id: '8' })];
    expect(diffDevices(before, after)).toEqual([]);
  });

  it('orders the changes: gone first (old order), then new and changed (new order)', () => {
    const before = [phone('A'), phone('B'), phone('C', 'offline')];
    const after = [phone('D'), phone('C'), phone('E', 'recovery')];
    expect(diffDevices(before, after).map((c) => `${c.change}:${c.serial}`)).toEqual([
      'disconnected:A',
      'disconnected:B',
      'connected:D',
      'state_changed:C',
      'connected:E',
    ]);
  });

  it('counts a serial listed twice once, as its last line says', () => {
    expect(diffDevices([], [phone('A', 'offline'), phone('A', 'device')])).toEqual([
      { serial: 'A', change: 'connected', state: 'device', previous_state: null },
    ]);
  });
});
