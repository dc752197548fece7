import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { DeviceChange } from '../agent/devices/device-diff.js';
import {
  DEVICE_EVENT,
  DeviceTracker,
  restartDelay,
  type DeviceTrackerOptions,
} from '../agent/devices/device-tracker.js';
import { ManualClock } from '../lib/manual-clock.fixture.js';
import type { Priority } from '../protocol/messages.js';
import { ROOT, type LogLine } from './helpers/hub-process.js';
import { freePort } from './helpers/ports.js';
import { waitUntil } from './helpers/wait.js';

/**
 * The device tracker against Debian's real adb (its own adb server on a port of this test's, so
 * no other adb user is disturbed), and — for phones coming and going, which cannot happen on this
 * machine — against test/fixtures/fake-adb.js, the only stand-in here: it speaks adb's
 * track-devices protocol and reports the device list the test writes to a file.
 */

const FAKE_ADB = path.join(ROOT, 'test/fixtures/fake-adb.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-devices-'));
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Emitted {
  name: string;
  data: DeviceChange;
  priority: Priority;
}

function track(options: Partial<DeviceTrackerOptions> & { adbPath: string }) {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  const emitted: Emitted[] = [];
  const tracker = new DeviceTracker({
    logger,
    emit: (name, data, { priority }) => {
      emitted.push({ name, data, priority });
      return Promise.resolve();
    },
    restartMinMs: 50,
    ...options,
  });
  cleanups.push(() => tracker.stop());
  tracker.start();
  const logged = (what: string, predicate: (line: LogLine) => boolean) =>
    waitUntil(what, () => lines.find(predicate), 20_000).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; log: ${lines.map((l) => l.msg).join(' | ')}`);
    });
  return { tracker, lines, emitted, logged };
}

/** A fake adb's control directory. */
function fakeAdb() {
  const dir = fs.mkdtempSync(path.join(tmp, 'fake-'));
  return {
    env: { ...process.env, FAKE_ADB_DIR: dir },
    // Whole or not at all: the fake must never read a half-written list (a phone that seems to go and come back).
    devices: (text: string) => {
      fs.writeFileSync(path.join(dir, 'devices.tmp'), text);
      fs.renameSync(path.join(dir, 'devices.tmp'), path.join(dir, 'devices'));
    },
    quit: (stderr: string) => {
      fs.writeFileSync(path.join(dir, 'quit.tmp'), stderr);
      fs.renameSync(path.join(dir, 'quit.tmp'), path.join(dir, 'quit'));
    },
    runs: () =>
      fs.existsSync(path.join(dir, 'runs'))
        ? fs.readFileSync(path.join(dir, 'runs'), 'utf8').split('\n').filter(Boolean).length
        : 0,
  };
}

const PIXEL = (state: string) =>
  `R58N12ABCDE            ${state} usb:1-1 product:redfin model:Pixel_5 device:redfin transport_id:3\n`;
const GALAXY = 'RF8M33XYZ              device usb:1-2 product:beyond1 model:SM_G973F device:beyond1 transport_id:4\n';

const summary = (emitted: Emitted[]) => emitted.map((e) => `${e.data.change}:${e.data.serial}:${String(e.data.state)}`);

describe('DeviceTracker (fake adb: phones plugged and unplugged)', () => {
  it('emits one high-priority device event per change, in order', async () => {
    const adb = fakeAdb();
    adb.devices(PIXEL('unauthorized'));
    const { emitted, logged, tracker } = track({ adbPath: FAKE_ADB, env: adb.env });
    await logged('tracking', (l) => l.msg.startsWith('Tracking devices with adb track-devices (1 device attached)'));
    await waitUntil('connected', () => emitted.length >= 1);
    adb.devices(PIXEL('device'));
    await waitUntil('state change', () => emitted.length >= 2);
    adb.devices(PIXEL('device') + GALAXY);
    await waitUntil('second phone', () => emitted.length >= 3);
    adb.devices(GALAXY);
    await waitUntil('unplugged', () => emitted.length >= 4);
    expect(summary(emitted)).toEqual([
      'connected:R58N12ABCDE:unauthorized',
      'state_changed:R58N12ABCDE:device',
      'connected:RF8M33XYZ:device',
      'disconnected:R58N12ABCDE:null',
    ]);
    expect(emitted.every((e) => e.name === DEVICE_EVENT && e.priority === 'high')).toBe(true);
    expect(emitted[0]!.data).toEqual({
      serial: 'R58N12ABCDE',
      change: 'connected',
      state: 'unauthorized',
      previous_state: null,
      model: 'Pixel_5',
      product: 'redfin',
      transport_id: '3',
    });
    expect(emitted[3]!.data).toMatchObject({ change: 'disconnected', state: null, previous_state: 'device' });
    expect(tracker.devices().map((d) => d.serial)).toEqual(['RF8M33XYZ']);
  });

  it('restarts adb after it exits, with a backoff on the injected clock, announcing only what changed meanwhile', async () => {
    const adb = fakeAdb();
    adb.devices(PIXEL('device') + GALAXY);
    const clock = new ManualClock();
    const { emitted, lines, logged } = track({ adbPath: FAKE_ADB, env: adb.env, clock, restartMinMs: 1000 });
    await waitUntil('both phones', () => emitted.length >= 2);

    adb.quit('error: cannot connect to daemon\n');
    const exit = await logged('the exit', (l) => l.msg.startsWith('adb track-devices exited with code 1'));
    expect(exit).toMatchObject({ level: 40, restart_in_ms: 1000, stderr: 'error: cannot connect to daemon' });
    expect(exit.msg).toContain('(error: cannot connect to daemon)');
    // The Pixel is unplugged while adb is down.
    adb.devices(GALAXY);
    await clock.advance(999);
    expect(adb.runs()).toBe(1);
    await clock.advance(1);
    await logged('the restart', (l) => l.msg.startsWith('adb track-devices runs again (1 device attached)'));
    await waitUntil('the unplug', () => emitted.length >= 3);
    expect(summary(emitted)).toEqual([
      'connected:R58N12ABCDE:device',
      'connected:RF8M33XYZ:device',
      'disconnected:R58N12ABCDE:null',
    ]);

    // A second exit in a row waits twice as long; adb coming back with the same list says nothing.
    adb.quit('');
    await waitUntil(
      'second exit',
      () => lines.filter((l) => l.msg.startsWith('adb track-devices exited')).length === 2,
    );
    expect(lines.filter((l) => l.msg.startsWith('adb track-devices exited')).at(-1)).toMatchObject({
      restart_in_ms: 2000,
    });
    await clock.advance(2000);
    await waitUntil(
      'third run',
      () => lines.filter((l) => l.msg.startsWith('adb track-devices runs again')).length === 2,
    );
    expect(adb.runs()).toBe(3);
    expect(emitted).toHaveLength(3);
  });

  it('does not announce again the phones it knew from before it started', async () => {
    const adb = fakeAdb();
    adb.devices(PIXEL('device') + GALAXY);
    const { emitted, logged } = track({
      adbPath: FAKE_ADB,
      env: adb.env,
      known: [
        { serial: 'R58N12ABCDE', state: 'device', properties: {} },
        { serial: 'OLD1', state: 'device', properties: {} },
      ],
    });
    await logged('tracking', (l) => l.msg.startsWith('Tracking devices'));
    await waitUntil('the changes', () => emitted.length >= 2);
    expect(summary(emitted)).toEqual(['disconnected:OLD1:null', 'connected:RF8M33XYZ:device']);
  });

  it('restarts adb when its output is not the protocol, saying so', async () => {
    const script = path.join(tmp, 'garbage-adb.sh');
    fs.writeFileSync(script, '#!/bin/sh\necho "error: protocol fault (status read)"\nexec sleep 30\n', { mode: 0o755 });
    const { lines, logged, emitted } = track({ adbPath: script, restartMinMs: 60_000 });
    const warn = await logged('the complaint', (l) => l.msg.includes('not the track-devices protocol'));
    expect(warn.msg).toContain('"erro');
    await logged('the restart plan', (l) => l.msg.startsWith('adb track-devices exited on SIGKILL'));
    expect(lines.some((l) => l.level >= 50)).toBe(false);
    expect(emitted).toEqual([]);
  });

  it('logs an event the outbox refused, and goes on with the next', async () => {
    const adb = fakeAdb();
    adb.devices(PIXEL('device'));
    const accepted: string[] = [];
    const { lines, logged } = track({
      adbPath: FAKE_ADB,
      env: adb.env,
      emit: (_name, data) => {
        if (data.change === 'connected') return Promise.reject(new Error('The outbox is full'));
        accepted.push(`${data.change}:${data.serial}`);
        return Promise.resolve();
      },
    });
    const refused = await logged('the refusal', (l) => l.msg.includes('was not accepted'));
    expect(refused.msg).toBe(
      'The connected event of device R58N12ABCDE was not accepted (The outbox is full); it is not sent',
    );
    expect(refused.level).toBe(50);
    adb.devices('');
    await waitUntil('the unplug', () => accepted.length >= 1);
    expect(accepted).toEqual(['disconnected:R58N12ABCDE']);
    expect(lines.filter((l) => l.msg.includes('was not accepted'))).toHaveLength(1);
  });
});

describe('DeviceTracker without adb', () => {
  it('says once what to install or set, looks again slowly, and never throws', async () => {
    const clock = new ManualClock();
    const { lines, logged, tracker } = track({
      adbPath: '/nonexistent/adb',
      clock,
      missingRetryMs: 300_000,
    });
    const said = await logged('the advice', (l) => l.level === 50);
    expect(said.msg).toBe(
      'adb is not installed, or not at "/nonexistent/adb": no device events until it can be. Install Android\'s ' +
        'platform-tools (Debian/Ubuntu: apt install adb) or set adb.path to the adb executable (adb.track_devices: ' +
        'false turns tracking off); looking again every 5 min',
    );
    await clock.advance(300_000);
    await logged('the second look', (l) => l.msg.startsWith('adb still cannot be started'));
    await clock.advance(300_000);
    await waitUntil(
      'the third look',
      () => lines.filter((l) => l.msg.startsWith('adb still cannot be started')).length === 2,
    );
    expect(lines.filter((l) => l.level >= 40)).toHaveLength(1);
    expect(tracker.tracking).toBe(false);
    expect(tracker.devices()).toEqual([]);
  });

  it('doubles the wait between restarts up to the maximum', () => {
    expect([0, 1, 2, 3, 6, 7, 100].map((n) => restartDelay(n, 1000, 60_000))).toEqual([
      1000, 2000, 4000, 8000, 60_000, 60_000, 60_000,
    ]);
  });
});

describe('DeviceTracker (real adb)', () => {
  it('tracks an empty list, and when the adb server is killed starts again without announcing anything', async () => {
    const port = await freePort();
    const env = { ...process.env, ANDROID_ADB_SERVER_PORT: String(port) };
    const adb = (...args: string[]) => promisify(execFile)('adb', args, { env });
    cleanups.push(() => adb('kill-server').catch(() => undefined));
    const { tracker, lines, emitted, logged } = track({ adbPath: 'adb', env, restartMinMs: 100 });
    await logged('tracking', (l) => l.msg === 'Tracking devices with adb track-devices (0 devices attached)');
    expect(tracker.tracking).toBe(true);

    await adb('kill-server');
    const exit = await logged('the exit', (l) => l.msg.startsWith('adb track-devices exited'));
    expect(exit).toMatchObject({ level: 40, restart_in_ms: 100 });
    // adb's own lines about starting its server are no reason for the exit.
    expect(exit.stderr).toBeUndefined();
    // adb starts its server again by itself when the tracker runs it again.
    await logged('the restart', (l) => l.msg.startsWith('adb track-devices runs again (0 devices attached)'));
    expect(tracker.tracking).toBe(true);
    expect(emitted).toEqual([]);
    expect(tracker.devices()).toEqual([]);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});
