import pino from 'pino';
import { systemClock } from '../clock.js';
import type { SignalPayload } from '../../protocol/tunnel.js';
import { DirectConnector, type DirectConnectorOptions } from './direct-connector.js';
import type { DirectPath } from './direct-path.js';
import { loadWebRtc } from './webrtc.js';

const loaded = await loadWebRtc();
if (!loaded.ok) throw new Error(loaded.reason);
const webrtc = loaded.webrtc;

/**
 * Two real DirectConnectors (client and farm) whose signals go through an in-memory pipe: each payload
 * is delivered on a later turn of the event loop, in order, as a broker would. `cut()` drops every
 * payload from then on (a peer that never answers); the counts show what went each way.
 */
export interface LinkedConnectors {
  client: DirectConnector;
  farm: DirectConnector;
  sent: { client: SignalPayload[]; farm: SignalPayload[] };
  cut(): void;
  close(): void;
}

export function linkedConnectors(options: Partial<DirectConnectorOptions> = {}): LinkedConnectors {
  let cut = false;
  const sent: LinkedConnectors['sent'] = { client: [], farm: [] };
  const base = {
    sessionId: '0123456789abcdef0123456789abcdef',
    webrtc,
    clock: systemClock,
    random: () => 0.5,
    logger: pino({ level: 'silent' }),
    // Loopback only: nothing outside this machine is reachable, and host candidates are all it needs.
    bindAddress: '127.0.0.1',
    ...options,
  };
  const deliver = (to: () => DirectConnector, log: SignalPayload[]) => ({
    send: (payload: SignalPayload) => {
      log.push(payload);
      if (cut) return;
      setImmediate(() => {
        to().receive(payload);
      });
    },
  });
  const client: DirectConnector = new DirectConnector({
    ...base,
    role: 'client',
    signal: deliver(() => farm, sent.client),
  });
  const farm: DirectConnector = new DirectConnector({
    ...base,
    role: 'farm',
    signal: deliver(() => client, sent.farm),
  });
  return {
    client,
    farm,
    sent,
    cut: () => {
      cut = true;
    },
    close: () => {
      client.close();
      farm.close();
    },
  };
}

/** The next path the connector opens. */
export function nextPath(connector: DirectConnector): Promise<DirectPath> {
  return new Promise((resolve) => {
    const off = connector.events.on('path', (path) => {
      off();
      resolve(path);
    });
  });
}

/** Resolves with the reason once the path says `down` (at once if it already has). */
export function pathDown(path: DirectPath): Promise<string> {
  return new Promise((resolve) => {
    if (!path.isUp) {
      resolve('already down');
      return;
    }
    path.events.once('down', ({ reason }) => {
      resolve(reason);
    });
  });
}

/** Sends every frame in order, waiting for `drain` whenever the path refuses more. */
export async function sendAll(path: DirectPath, frames: Buffer[]): Promise<void> {
  for (const frame of frames) {
    if (!path.isUp) throw new Error('path down while sending');
    // false: the frame went, but the channel's queue is above the high-water mark.
    if (!path.send(frame)) {
      await new Promise<void>((resolve, reject) => {
        const offDrain = path.events.once('drain', () => {
          offDown();
          resolve();
        });
        const offDown = path.events.once('down', ({ reason }) => {
          offDrain();
          reject(new Error(`path down while sending: ${reason}`));
        });
      });
    }
  }
}

/** Collects frames until `bytes` have arrived. */
export function receiveBytes(path: DirectPath, bytes: number): Promise<Buffer[]> {
  const frames: Buffer[] = [];
  let total = 0;
  return new Promise((resolve) => {
    const off = path.events.on('frame', (frame) => {
      frames.push(frame);
      total += frame.length;
      if (total >= bytes) {
        off();
        resolve(frames);
      }
    });
  });
}
