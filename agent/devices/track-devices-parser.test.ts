import { describe, expect, it } from 'vitest';
import { TrackDevicesParser, parseDeviceLine, parseDeviceList } from './track-devices-parser.js';

/** One track-devices message: 4 hex digits of length, then the text. */
const message = (text: string) => `${Buffer.byteLength(text).toString(16).padStart(4, '0')}${text}`;

const PIXEL = 'R58N12ABCDE            device usb:1-1 product:redfin model:Pixel_5 device:redfin transport_id:3\n';
const GALAXY = 'emulator-5554          offline transport_id:4\n';

describe('track-devices parser', () => {
  it('reads an empty list (no device attached)', () => {
    expect(new TrackDevicesParser().push('0000')).toEqual({ lists: [[]] });
  });

  it('reads the -l format: serial, state, and the key:value properties', () => {
    const { lists } = new TrackDevicesParser().push(message(PIXEL + GALAXY));
    expect(lists).toEqual([
      [
        {
          serial: 'R58N12ABCDE',
          state: 'device',
          properties: { usb: '1-1', product: 'redfin', model: 'Pixel_5', device: 'redfin', transport_id: '3' },
        },
        { serial: 'emulator-5554', state: 'offline', properties: { transport_id: '4' } },
      ],
    ]);
  });

  it('reads the plain format (serial TAB state)', () => {
    expect(parseDeviceList('abc123\tdevice\nxyz\tunauthorized\n')).toEqual([
      { serial: 'abc123', state: 'device', properties: {} },
      { serial: 'xyz', state: 'unauthorized', properties: {} },
    ]);
  });

  it('keeps a state that holds spaces whole', () => {
    const line =
      '0123456789ABCDEF       no permissions (user in plugdev group; are your udev rules wrong?); see [http://developer.android.com/tools/device.html] usb:1-2 transport_id:7';
    expect(parseDeviceLine(line)).toEqual({
      serial: '0123456789ABCDEF',
      state:
        'no permissions (user in plugdev group; are your udev rules wrong?); see [http://developer.android.com/tools/device.html]',
      properties: { usb: '1-2', transport_id: '7' },
    });
  });

  it('gives the same lists however the stream is cut into chunks, down to one byte at a time', () => {
    const stream = message('') + message(PIXEL) + message(PIXEL + GALAXY) + message(GALAXY);
    const whole = new TrackDevicesParser().push(stream).lists;
    expect(whole).toHaveLength(4);
    const parser = new TrackDevicesParser();
    const bytes = Buffer.from(stream);
    const pieces = [];
    for (let i = 0; i < bytes.length; i++) pieces.push(...parser.push(bytes.subarray(i, i + 1)).lists);
    expect(pieces).toEqual(whole);
    // Cut inside the length, inside the text, and at a boundary.
    const cuts = new TrackDevicesParser();
    const parts = [stream.slice(0, 2), stream.slice(2, 10), stream.slice(10, 50), stream.slice(50)];
    expect(parts.flatMap((part) => cuts.push(part).lists)).toEqual(whole);
  });

  it('reads several messages that arrive in one chunk, in order', () => {
    const { lists } = new TrackDevicesParser().push(message(PIXEL) + message('') + message(GALAXY));
    expect(lists.map((l) => l.map((d) => d.serial))).toEqual([['R58N12ABCDE'], [], ['emulator-5554']]);
  });

  it('counts the length in bytes, not characters', () => {
    const text = 'séríal-ü\tdevice\n';
    expect(new TrackDevicesParser().push(message(text) + message('')).lists).toEqual([
      [{ serial: 'séríal-ü', state: 'device', properties: {} }],
      [],
    ]);
  });

  it("skips the daemon's start-up lines that older adb clients print on stdout", () => {
    const stream = '* daemon not running; starting now at tcp:5037\n* daemon started successfully\n' + message(GALAXY);
    expect(new TrackDevicesParser().push(stream).lists).toEqual([
      [{ serial: 'emulator-5554', state: 'offline', properties: { transport_id: '4' } }],
    ]);
  });

  it('says so on garbage, keeps the lists before it, and parses nothing after', () => {
    const parser = new TrackDevicesParser();
    const result = parser.push(message(GALAXY) + 'error: protocol fault\n');
    expect(result.lists).toHaveLength(1);
    expect(result.error).toMatch(/^not the track-devices protocol: expected 4 hex digits of length, got "erro/);
    expect(parser.push(message('')).lists).toEqual([]);
    expect(parser.push(message('')).error).toBe(result.error);
  });

  it('skips blank lines and lines without a state', () => {
    expect(parseDeviceList('\n  \nlonely\nabc device\n')).toEqual([{ serial: 'abc', state: 'device', properties: {} }]);
  });
});
