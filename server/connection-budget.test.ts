import { describe, expect, it } from 'vitest';
import { ConnectionBudget, sourceKey } from './connection-budget.js';

describe('ConnectionBudget', () => {
  it('refuses a source at its own limit first, then everyone at the total', () => {
    const budget = new ConnectionBudget(5, 3);
    for (let i = 0; i < 3; i += 1) expect(budget.acquire('a')).toBeUndefined();
    expect(budget.acquire('a')).toBe('per_address');
    expect(budget.acquire('b')).toBeUndefined();
    expect(budget.acquire('b')).toBeUndefined();
    expect(budget.acquire('c')).toBe('total');
    expect(budget.size).toBe(5);
    budget.release('a');
    expect(budget.refusal('c')).toBeUndefined();
    expect(budget.acquire('c')).toBeUndefined();
  });

  it('ignores a release for a source that holds nothing (never goes negative)', () => {
    const budget = new ConnectionBudget(2, 2);
    budget.release('nobody');
    expect(budget.size).toBe(0);
    budget.acquire('a');
    budget.release('a');
    budget.release('a');
    expect(budget.size).toBe(0);
    expect(budget.acquire('a')).toBeUndefined();
    expect(budget.acquire('a')).toBeUndefined();
    expect(budget.acquire('a')).toBe('per_address');
  });
});

describe('sourceKey', () => {
  it('counts IPv4 by address, also when it arrives IPv4-mapped', () => {
    expect(sourceKey('127.0.0.5')).toBe('127.0.0.5');
    expect(sourceKey('::ffff:127.0.0.5')).toBe('127.0.0.5');
    expect(sourceKey('::FFFF:10.1.2.3')).toBe('10.1.2.3');
  });

  it('counts IPv6 by its /64, however the address is written', () => {
    expect(sourceKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
  });

  it('has a key for a socket without an address', () => {
    expect(sourceKey(undefined)).toBe('unknown');
  });
});
