import { describe, expect, it } from 'vitest';
import { ServiceAllowlist, parseService } from './service-allowlist.js';

describe('ServiceAllowlist', () => {
  it('finds exposed services by name, with host and port split from the target', () => {
    const list = new ServiceAllowlist({ adb: '127.0.0.1:5037', ssh: '[::1]:22', web: 'localhost:8080' });
    expect(list.lookup('adb')).toEqual({ name: 'adb', target: '127.0.0.1:5037', host: '127.0.0.1', port: 5037 });
    expect(list.lookup('ssh')).toMatchObject({ host: '::1', port: 22 });
    expect(list.lookup('web')).toMatchObject({ host: 'localhost', port: 8080 });
    expect(list.names()).toEqual(['adb', 'ssh', 'web']);
    expect(list.size).toBe(3);
  });

  it('reaches nothing outside the list, including names an object would inherit', () => {
    const list = new ServiceAllowlist({ adb: '127.0.0.1:5037' });
    for (const name of ['ssh', 'ADB', '__proto__', 'toString', 'constructor', '', '127.0.0.1:5037']) {
      expect(list.lookup(name)).toBeUndefined();
    }
  });

  it('is empty when the config exposes nothing', () => {
    const list = new ServiceAllowlist({});
    expect(list.size).toBe(0);
    expect(list.list()).toEqual([]);
  });

  it('refuses a target that is not host:port, naming the config key', () => {
    expect(() => parseService('adb', '5037')).toThrow('tunnel.services.adb: expected "host:port", got "5037"');
    expect(() => parseService('adb', '127.0.0.1:0')).toThrow('tunnel.services.adb');
  });
});
