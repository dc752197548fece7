import { describe, expect, it } from 'vitest';
import { addressHost } from './address-host.js';

describe('addressHost', () => {
  it('keeps the host of IPv4, bracketed IPv6 and name addresses, and leaves anything else alone', () => {
    expect(addressHost('10.213.1.3:51234')).toBe('10.213.1.3');
    expect(addressHost('[2001:db8::1]:443')).toBe('2001:db8::1');
    expect(addressHost('farm.example.com:80')).toBe('farm.example.com');
    expect(addressHost('10.213.1.3')).toBe('10.213.1.3');
    expect(addressHost('?:?')).toBe('?:?');
  });
});
