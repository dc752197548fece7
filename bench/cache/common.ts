import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import pino, { type Logger } from 'pino';
import { num } from '../lib/markdown.js';

/** A logger that drops everything: the bench measures the cache, not its log lines. */
export const silentLogger: Logger = pino({ level: 'silent' });

export type Log = (line: string) => void;

/**
 * A full garbage collection, when one can be had: `global.gc` under `node --expose-gc`, else the
 * same function fetched through the flag set at run time (works on Node 20–24), else undefined.
 */
export const forceGc: (() => void) | undefined = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    v8.setFlagsFromString('--expose-gc');
    const fetched = vm.runInNewContext('gc') as unknown;
    if (typeof fetched === 'function') return fetched as () => void;
  } catch {
    // not available: the bench says so and goes on without
  }
  return undefined;
})();

/** Two full collections (the second catches what the first's finalizers freed), then a turn of the event loop. */
export async function collect(): Promise<void> {
  if (!forceGc) return;
  forceGc();
  forceGc();
  await new Promise((resolve) => setImmediate(resolve));
}

// ---- temporary directories, removed even when the run fails ---------------------------------

const tempDirs = new Set<string>();
let cleanupInstalled = false;

function removeTempDirs(): void {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function tempDir(prefix: string): string {
  if (!cleanupInstalled) {
    cleanupInstalled = true;
    process.on('exit', removeTempDirs);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `farmlink-cache-bench-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

// ---- numbers --------------------------------------------------------------------------------

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Operations per second, short: 12.3 M, 850 k. */
export function rate(opsPerS: number): string {
  if (!Number.isFinite(opsPerS)) return 'n/a';
  if (opsPerS >= 1e6) return `${num(opsPerS / 1e6, opsPerS >= 1e7 ? 1 : 2)} M`;
  if (opsPerS >= 1e3) return `${num(opsPerS / 1e3, opsPerS >= 1e5 ? 0 : 1)} k`;
  return num(opsPerS);
}

/** a as a percentage of b, with digits enough for small shares: "112 %", "36 %", "0.41 %". */
export function versus(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return 'n/a';
  const p = (a / b) * 100;
  return `${p >= 10 ? p.toFixed(0) : p >= 1 ? p.toFixed(1) : p.toFixed(2)} %`;
}

export function percent(fraction: number, digits = 1): string {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(digits)} %` : 'n/a';
}

/** Milliseconds with enough digits for sub-millisecond figures. */
export function msFine(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value < 0.1) return value.toFixed(3);
  if (value < 10) return value.toFixed(2);
  return num(value, value < 100 ? 1 : 0);
}

export function bytes(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  if (Math.abs(n) >= 2 ** 20) return `${num(n / 2 ** 20, 1)} MiB`;
  if (Math.abs(n) >= 2 ** 10) return `${num(n / 2 ** 10, 1)} KiB`;
  return `${num(n)} B`;
}

/** A count with thousands separators. */
export const count = (n: number): string => n.toLocaleString('en-US');
