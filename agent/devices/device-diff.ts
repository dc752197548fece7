import type { TrackedDevice } from './track-devices-parser.js';

export type DeviceChangeKind = 'connected' | 'disconnected' | 'state_changed';

/** The data of one `device` event (docs/protocol.md). */
export interface DeviceChange {
  serial: string;
  change: DeviceChangeKind;
  /** adb's state now (device, offline, unauthorized, …); null once the device is gone. */
  state: string | null;
  /** adb's state before; null for a device not seen before. */
  previous_state: string | null;
  model?: string;
  product?: string;
  transport_id?: string;
}

/**
 * What changed from one device list to the next: a `disconnected` per device gone (in the old
 * list's order), then a `connected` per new device and a `state_changed` per device whose state
 * differs (in the new list's order). Devices are matched by serial alone: the transport id is
 * renumbered by every new adb server, so it says nothing about the phone. A serial listed twice
 * counts once, as its last line says.
 */
export function diffDevices(previous: readonly TrackedDevice[], current: readonly TrackedDevice[]): DeviceChange[] {
  const before = bySerial(previous);
  const now = bySerial(current);
  const changes: DeviceChange[] = [];
  for (const [serial, old] of before) {
    if (!now.has(serial)) changes.push(change(old, 'disconnected', null, old.state));
  }
  for (const [serial, device] of now) {
    const old = before.get(serial);
    if (!old) changes.push(change(device, 'connected', device.state, null));
    else if (old.state !== device.state) changes.push(change(device, 'state_changed', device.state, old.state));
  }
  return changes;
}

function bySerial(devices: readonly TrackedDevice[]): Map<string, TrackedDevice> {
  const map = new Map<string, TrackedDevice>();
  for (const device of devices) {
    // A repeated serial takes the place of its first line, in the order of that first line.
    map.set(device.serial, device);
  }
  return map;
}

function change(
  device: TrackedDevice,
  kind: DeviceChangeKind,
  state: string | null,
  previous: string | null,
): DeviceChange {
  const { model, product, transport_id: transportId } = device.properties;
  return {
    serial: device.serial,
    change: kind,
    state,
    previous_state: previous,
    ...(model !== undefined ? { model } : {}),
    ...(product !== undefined ? { product } : {}),
    ...(transportId !== undefined ? { transport_id: transportId } : {}),
  };
}
