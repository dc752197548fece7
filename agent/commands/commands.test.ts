import { describe, expect, it } from 'vitest';
import { SystemUsage } from '../system/system-usage.js';
import { devicesListCommand, parseAdbDevices } from './adb-devices.js';
import { CommandRegistry } from './registry.js';
import { systemInfoCommand } from './system-info.js';

describe('parseAdbDevices', () => {
  it('parses `adb devices -l`, skipping daemon chatter', () => {
    const output = [
      '* daemon not running; starting now at tcp:5037',
      '* daemon started successfully',
      'List of devices attached',
      'R58M123ABC             device usb:1-1.2 product:beyond1ltexx model:SM_G973F device:beyond1 transport_id:3',
      'emulator-5554          offline transport_id:1',
      '0123456789ABCDEF       unauthorized usb:1-1.4 transport_id:4',
      '',
    ].join('\n');
    expect(parseAdbDevices(output)).toEqual([
      {
        serial: 'R58M123ABC',
        state: 'device',
        properties: { usb: '1-1.2', product: 'beyond1ltexx', model: 'SM_G973F', device: 'beyond1', transport_id: '3' },
      },
      { serial: 'emulator-5554', state: 'offline', properties: { transport_id: '1' } },
      { serial: '0123456789ABCDEF', state: 'unauthorized', properties: { usb: '1-1.4', transport_id: '4' } },
    ]);
  });

  it('gives an empty list when nothing is attached, with Windows line ends too', () => {
    expect(parseAdbDevices('List of devices attached\r\n\r\n')).toEqual([]);
  });
});

describe('CommandRegistry', () => {
  it('answers data, a typed error, an unknown-command error or a timeout — never silence', async () => {
    const registry = new CommandRegistry(50)
      .register('echo', (args) => Promise.resolve(args))
      .register('boom', () => Promise.reject(Object.assign(new Error('disk on fire'), { code: 'EIO' })))
      .register(
        'slow',
        (_args, { signal }) => new Promise((resolve) => signal.addEventListener('abort', () => resolve('too late'))),
      );
    await expect(registry.run('echo', { a: 1 })).resolves.toEqual({ ok: true, data: { a: 1 } });
    await expect(registry.run('boom', {})).resolves.toEqual({
      ok: false,
      error: { code: 'EIO', message: 'disk on fire' },
    });
    await expect(registry.run('nope', {})).resolves.toEqual({
      ok: false,
      error: { code: 'UNKNOWN_COMMAND', message: 'Unknown command "nope"; this agent knows: boom, echo, slow' },
    });
    await expect(registry.run('slow', {})).resolves.toMatchObject({ ok: false, error: { code: 'COMMAND_TIMEOUT' } });
  });

  it('refuses to register a name twice', () => {
    const registry = new CommandRegistry(10).register('a', () => Promise.resolve(1));
    expect(() => registry.register('a', () => Promise.resolve(2))).toThrow(/twice/);
  });
});

describe('built-in commands', () => {
  it('system.info describes this machine', async () => {
    const info = (await systemInfoCommand(new SystemUsage(0), '1.2.3')(
      {},
      { signal: new AbortController().signal },
    )) as Record<string, unknown>;
    expect(info).toMatchObject({ platform: process.platform, agent_version: '1.2.3', node_version: process.version });
    expect(info.cpu_count).toBeGreaterThan(0);
    expect(info.cpu_usage).toBeGreaterThanOrEqual(0);
    expect(info.cpu_usage).toBeLessThanOrEqual(100);
  });

  it('devices.list answers ADB_NOT_FOUND with a hint when adb is not there', async () => {
    const run = devicesListCommand('/nonexistent/adb');
    await expect(run({}, { signal: new AbortController().signal })).rejects.toMatchObject({
      code: 'ADB_NOT_FOUND',
      message: expect.stringContaining('adb.path') as string,
    });
  });
});
