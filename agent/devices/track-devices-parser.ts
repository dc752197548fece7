/**
 * The output of `adb track-devices -l`: a stream of messages, each 4 hex digits giving its length
 * in bytes, then that many bytes: the whole current device list, one `serial  state [key:value…]`
 * line per device (an empty message when no device is attached). A new message comes whenever the
 * list changes. Pure: bytes in, lists out, whatever way the stream is cut into chunks.
 */

export interface TrackedDevice {
  serial: string;
  /** device, offline, unauthorized, recovery, sideload, bootloader, no permissions (…), … as adb says it. */
  state: string;
  /** The key:value pairs of `-l` (product, model, device, transport_id, usb). */
  properties: Record<string, string>;
}

export type ParseResult = { lists: TrackedDevice[][]; error?: undefined } | { lists: TrackedDevice[][]; error: string };

/** A token of `-l`'s key:value part; the state never has one (its free text has no "word:" token). */
const PROPERTY = /^([a-z_]+):(.*)$/;

/**
 * One tracker's stream. After `error` (the stream is out of step: no length where one must be)
 * nothing more is parsed: the framing cannot be found again, the caller starts adb afresh.
 */
export class TrackDevicesParser {
  private buffer = Buffer.alloc(0);
  private failed: string | undefined;

  push(chunk: Buffer | string): ParseResult {
    if (this.failed !== undefined) return { lists: [], error: this.failed };
    this.buffer = Buffer.concat([this.buffer, typeof chunk === 'string' ? Buffer.from(chunk) : chunk]);
    const lists: TrackedDevice[][] = [];
    for (;;) {
      // Older adb clients print the daemon's start-up lines ("* daemon not running; starting now …")
      // on stdout, between messages.
      if (this.buffer[0] === 0x2a /* '*' */) {
        const nl = this.buffer.indexOf(0x0a);
        if (nl < 0) break;
        this.buffer = this.buffer.subarray(nl + 1);
        continue;
      }
      if (this.buffer.length < 4) break;
      const head = this.buffer.subarray(0, 4).toString('latin1');
      if (!/^[0-9a-fA-F]{4}$/.test(head)) {
        this.failed = `not the track-devices protocol: expected 4 hex digits of length, got ${JSON.stringify(
          this.buffer.subarray(0, 32).toString('latin1'),
        )}`;
        this.buffer = Buffer.alloc(0);
        return { lists, error: this.failed };
      }
      const length = Number.parseInt(head, 16);
      if (this.buffer.length < 4 + length) break;
      lists.push(parseDeviceList(this.buffer.subarray(4, 4 + length).toString('utf8')));
      this.buffer = this.buffer.subarray(4 + length);
    }
    return { lists };
  }
}

/** One message's device list: a line per device; blank lines and lines without a state are skipped. */
export function parseDeviceList(text: string): TrackedDevice[] {
  const devices: TrackedDevice[] = [];
  for (const line of text.split(/\r?\n/)) {
    const device = parseDeviceLine(line);
    if (device) devices.push(device);
  }
  return devices;
}

/**
 * `serial<TAB>state` without -l; with it, `serial  state product:… model:… device:… transport_id:N`
 * (spaces). A state may itself hold spaces ("no permissions (…); see [http://…]").
 */
export function parseDeviceLine(line: string): TrackedDevice | undefined {
  const trimmed = line.trim();
  const split = /[\t ]+/.exec(trimmed);
  if (!split) return undefined;
  const serial = trimmed.slice(0, split.index);
  const tokens = trimmed
    .slice(split.index + split[0].length)
    .split(/[\t ]+/)
    .filter(Boolean);
  const firstProperty = tokens.findIndex((token) => PROPERTY.test(token));
  const stateTokens = firstProperty < 0 ? tokens : tokens.slice(0, firstProperty);
  if (!serial || stateTokens.length === 0) return undefined;
  const properties: Record<string, string> = {};
  for (const token of firstProperty < 0 ? [] : tokens.slice(firstProperty)) {
    const match = PROPERTY.exec(token);
    if (match?.[1] !== undefined && match[2] !== undefined) properties[match[1]] = match[2];
  }
  return { serial, state: stateTokens.join(' '), properties };
}
