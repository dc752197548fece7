import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord, estimateSize, RECORD_FORMAT, type CacheRecord } from './record.js';

function recordOf<V>(value: V): CacheRecord<V> {
  return {
    value,
    createdAt: 1_700_000_000_000,
    freshUntil: 1_700_000_060_000,
    staleUntil: 1_700_000_120_000,
    tags: ['ns:users', 'user:7'],
    tagVersions: [3, 0],
  };
}

/** The value as it comes back from a tier. */
function roundTrip<V>(value: V): V {
  const decoded = decodeRecord<V>(encodeRecord(recordOf(value)));
  expect(decoded).toBeDefined();
  return decoded!.value;
}

describe('encodeRecord / decodeRecord', () => {
  it('keeps the record fields', () => {
    const record = recordOf({ name: 'farm-1' });
    const encoded = encodeRecord(record);
    expect(encoded[0]).toBe(RECORD_FORMAT);
    expect(decodeRecord(encoded)).toEqual(record);
  });

  it('round-trips a Date as a Date', () => {
    const date = new Date('2026-01-03T19:30:00.123Z');
    const back = roundTrip({ at: date, invalid: new Date(Number.NaN) });
    expect(back.at).toBeInstanceOf(Date);
    expect(back.at.getTime()).toBe(date.getTime());
    expect(back.invalid).toBeInstanceOf(Date);
    expect(Number.isNaN(back.invalid.getTime())).toBe(true);
  });

  it('round-trips a Buffer as a Buffer with the same bytes (also a pooled slice)', () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const pooled = Buffer.from('a small pooled buffer');
    expect(pooled.byteOffset > 0 || pooled.buffer.byteLength > pooled.length).toBe(true);
    const back = roundTrip({ bytes, pooled, empty: Buffer.alloc(0) });
    expect(Buffer.isBuffer(back.bytes)).toBe(true);
    expect(back.bytes).toBeInstanceOf(Uint8Array);
    expect([...back.bytes]).toEqual([0, 1, 2, 250, 255]);
    expect(Buffer.isBuffer(back.pooled)).toBe(true);
    expect(back.pooled.toString()).toBe('a small pooled buffer');
    expect(back.empty.length).toBe(0);
  });

  it('round-trips a Uint8Array as a Uint8Array (not a Buffer), and other typed arrays and ArrayBuffers', () => {
    const back = roundTrip({
      u8: new Uint8Array([1, 2, 3]),
      f64: new Float64Array([1.5, -0, Number.NaN, Number.POSITIVE_INFINITY]),
      i32: new Int32Array([-1, 2 ** 31 - 1]),
      big: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]),
      ab: new Uint8Array([9, 8, 7]).buffer,
      view: new DataView(new Uint8Array([4, 5]).buffer),
    });
    expect(back.u8.constructor).toBe(Uint8Array);
    expect(Buffer.isBuffer(back.u8)).toBe(false);
    expect([...back.u8]).toEqual([1, 2, 3]);
    expect(back.f64).toBeInstanceOf(Float64Array);
    expect(Object.is(back.f64[1], -0)).toBe(true);
    expect([...back.f64]).toEqual([1.5, -0, Number.NaN, Number.POSITIVE_INFINITY]);
    expect([...back.i32]).toEqual([-1, 2 ** 31 - 1]);
    expect([...back.big]).toEqual([-(2n ** 63n), 2n ** 63n - 1n]);
    expect(back.ab).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(back.ab)]).toEqual([9, 8, 7]);
    expect(back.view).toBeInstanceOf(DataView);
    expect(back.view.getUint8(1)).toBe(5);
  });

  it('round-trips Map (with non-string keys, in order) and Set', () => {
    const objectKey = { id: 1 };
    const map = new Map<unknown, unknown>([
      [1, 'one'],
      ['1', 'string one'],
      [objectKey, 'object'],
      [10n, 'bigint'],
      [null, 'null'],
      [new Date(5), 'date'],
    ]);
    const set = new Set<unknown>([3, '3', 2n, undefined, null, { x: 1 }]);
    const back = roundTrip({ map, set });
    expect(back.map).toBeInstanceOf(Map);
    expect([...back.map.entries()]).toEqual([...map.entries()]);
    expect(back.map.get(1)).toBe('one');
    expect(back.map.get('1')).toBe('string one');
    expect(back.map.get(10n)).toBe('bigint');
    expect(back.set).toBeInstanceOf(Set);
    expect([...back.set]).toEqual([...set]);
  });

  it('round-trips bigint, including beyond 2^64 and negative', () => {
    const values = [0n, 1n, -1n, 2n ** 63n, 2n ** 64n, 2n ** 64n + 1n, 2n ** 200n + 12345n, -(2n ** 130n)];
    expect(roundTrip(values)).toEqual(values);
    expect(roundTrip(2n ** 100n)).toBe(2n ** 100n);
  });

  it('round-trips the special numbers: NaN, -0, ±Infinity, MAX_SAFE_INTEGER, tiny doubles', () => {
    const back = roundTrip([
      Number.NaN,
      -0,
      0,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_VALUE,
      0.1 + 0.2,
    ]);
    expect(Number.isNaN(back[0])).toBe(true);
    expect(Object.is(back[1], -0)).toBe(true);
    expect(Object.is(back[2], 0)).toBe(true);
    expect(back.slice(3)).toEqual([
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_VALUE,
      0.1 + 0.2,
    ]);
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
  });

  it('round-trips null, undefined (at the top, in objects, in arrays) and array holes', () => {
    expect(roundTrip(null)).toBeNull();
    expect(roundTrip<unknown>(undefined)).toBeUndefined();
    const back = roundTrip({ a: undefined, b: null, list: [1, undefined, null, 4] });
    expect(Object.keys(back)).toEqual(['a', 'b', 'list']);
    expect('a' in back).toBe(true);
    expect(back.a).toBeUndefined();
    expect(back.b).toBeNull();
    expect(back.list).toHaveLength(4);
    expect(1 in back.list).toBe(true);
    expect(back.list).toEqual([1, undefined, null, 4]);
    // eslint-disable-next-line no-sparse-arrays
    const sparse = roundTrip([1, , 3]);
    expect(sparse).toHaveLength(3);
    expect(1 in sparse).toBe(false);
  });

  it('round-trips strings: empty, unicode, emoji, lone surrogates, NUL, long', () => {
    const strings = [
      '',
      'plain',
      'ümlaut ß',
      '中文字符',
      '🚜🌾👩🏽‍🌾',
      '\ud800 lone high',
      'lone low \udc00',
      'nul\u0000inside',
      'x'.repeat(1_000_000),
    ];
    expect(roundTrip(strings)).toEqual(strings);
  });

  it('round-trips nested objects and arrays, shared references and cycles', () => {
    const shared = { id: 'shared' };
    const value: Record<string, unknown> = {
      devices: [
        { id: 1, tags: ['a', 'b'], meta: { battery: 0.5, charging: true, lastSeen: new Date(1) } },
        { id: 2, tags: [], meta: { battery: 1, charging: false, nested: { deeper: { deepest: [[[1]]] } } } },
      ],
      left: shared,
      right: shared,
      regex: /farm-(\d+)/giu,
      boxed: [Object(1), Object('s'), Object(true)],
    };
    value.self = value;
    const back = roundTrip(value);
    expect(back.devices).toEqual(value.devices);
    expect(back.left).toEqual(shared);
    expect(back.left).toBe(back.right);
    expect(back.self).toBe(back);
    expect(back.regex).toBeInstanceOf(RegExp);
    expect(String(back.regex)).toBe('/farm-(\\d+)/giu');
    expect((back.boxed as unknown[]).map((b) => (b as { valueOf(): unknown }).valueOf())).toEqual([1, 's', true]);
  });

  it('round-trips large arrays', () => {
    const numbers = Array.from({ length: 200_000 }, (_, i) => (i % 7 === 0 ? i * 1.5 : i));
    const objects = Array.from({ length: 20_000 }, (_, i) => ({ i, name: `device-${i}`, on: i % 2 === 0 }));
    const back = roundTrip({ numbers, objects });
    expect(back.numbers).toEqual(numbers);
    expect(back.objects).toEqual(objects);
  });

  it('documented limits: class instances come back as plain objects with their own fields', () => {
    class Device {
      constructor(
        readonly id: number,
        readonly name: string,
      ) {}
      label() {
        return `${this.id}:${this.name}`;
      }
    }
    const back = roundTrip(new Device(7, 'pixel'));
    expect(back).not.toBeInstanceOf(Device);
    expect(back).toStrictEqual({ id: 7, name: 'pixel' });
    // Errors keep their kind and message, not their extra fields.
    const error = roundTrip(Object.assign(new TypeError('bad input'), { code: 'E_INPUT' }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe('bad input');
    expect(error.code).toBeUndefined();
    // Symbol-keyed and non-enumerable properties are left out.
    const tagged = Object.defineProperty({ visible: 1, [Symbol('meta')]: 2 }, 'hidden', {
      value: 3,
      enumerable: false,
    });
    const backTagged = roundTrip(tagged);
    expect(Reflect.ownKeys(backTagged)).toEqual(['visible']);
  });

  it.each([
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a function nested in an object', { ok: 1, handler: { onEvent() {} } }],
    ['a symbol in an array', [1, Symbol.iterator]],
    ['a function in a Map', new Map([['f', () => 1]])],
    ['a WeakMap', new WeakMap()],
    ['a Promise', Promise.resolve(1)],
  ])('refuses %s with an error rather than storing something else', (_label, value) => {
    expect(() => encodeRecord(recordOf(value))).toThrow(/could not be cloned/);
  });
});

describe('decodeRecord on bytes that are not a record', () => {
  it('answers undefined (a miss), never a misread value', () => {
    const good = encodeRecord(recordOf('v'));
    const otherFormat = Buffer.from(good);
    otherFormat[0] = RECORD_FORMAT + 1;
    const notARecord = Buffer.concat([Buffer.from([RECORD_FORMAT]), v8.serialize({ hello: 'world' })]);
    const scalar = Buffer.concat([Buffer.from([RECORD_FORMAT]), v8.serialize(42)]);
    const nullBody = Buffer.concat([Buffer.from([RECORD_FORMAT]), v8.serialize(null)]);
    for (const bytes of [
      Buffer.alloc(0),
      Buffer.from([RECORD_FORMAT]),
      otherFormat,
      good.subarray(0, good.length - 5),
      Buffer.from([RECORD_FORMAT, 1, 2, 3, 4]),
      notARecord,
      scalar,
      nullBody,
    ]) {
      expect(decodeRecord(bytes)).toBeUndefined();
    }
  });

  it('reads a record from a plain Uint8Array at any offset', () => {
    const good = encodeRecord(recordOf({ f: new Float64Array([3.25]) }));
    const backing = new Uint8Array(good.length + 3);
    backing.set(good, 3);
    const decoded = decodeRecord<{ f: Float64Array }>(backing.subarray(3));
    expect([...decoded!.value.f]).toEqual([3.25]);
  });
});

describe('estimateSize', () => {
  it('grows with the value and counts binary data by its length', () => {
    expect(estimateSize('a'.repeat(1000))).toBeGreaterThan(estimateSize('a'));
    expect(estimateSize(Buffer.alloc(100_000))).toBeGreaterThanOrEqual(100_000);
    expect(estimateSize({ list: Array.from({ length: 100 }, (_, i) => i) })).toBeGreaterThan(
      estimateSize({ list: [1] }),
    );
    expect(estimateSize(new Map([[1, 'x'.repeat(500)]]))).toBeGreaterThan(1000);
  });

  it('copes with cycles and stops at its budget', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(estimateSize(cyclic)).toBeGreaterThan(0);
    const huge = Array.from({ length: 100_000 }, (_, i) => i);
    expect(estimateSize(huge, 100)).toBeLessThan(estimateSize(huge, 10_000));
  });
});
