import { describe, expect, it } from 'vitest';
import { nestedDeeperThan } from './json-depth.js';

const nested = (depth: number): unknown => JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown;

describe('nestedDeeperThan', () => {
  it('counts objects and arrays, the value itself as level 1; scalars add nothing', () => {
    expect(nestedDeeperThan(42, 0)).toBe(false);
    expect(nestedDeeperThan(null, 0)).toBe(false);
    expect(nestedDeeperThan({}, 0)).toBe(true);
    expect(nestedDeeperThan({}, 1)).toBe(false);
    expect(nestedDeeperThan({ a: [{ b: 'x' }] }, 3)).toBe(false);
    expect(nestedDeeperThan({ a: [{ b: 'x' }] }, 2)).toBe(true);
    expect(nestedDeeperThan(nested(100), 100)).toBe(false);
    expect(nestedDeeperThan(nested(101), 100)).toBe(true);
  });

  it('measures a value far too deep for JSON.stringify without overflowing the stack', () => {
    const deep = nested(100_000);
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(nestedDeeperThan(deep, 100)).toBe(true);
  });
});
