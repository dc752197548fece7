import { startHub, type HubProcess } from '../../test/helpers/hub-process.js';
import { track } from './children.js';
import { Inspector, type HeapReading } from './inspector.js';

export const BENCH_SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuv';

export interface BenchHubSettings {
  /** Extra `farmlink hub` flags (limits, intervals). */
  args: string[];
  hubId: string;
  /** Start node with --inspect on a loopback port, so memoryAfterGc() can force a GC. */
  inspect?: boolean;
  /** Path of the farmlink CLI; the build in dist/ by default. */
  bin?: string | undefined;
}

/**
 * A hub as the bench runs it: warn-level logs (info would log every registration, thousands of
 * lines costing hub CPU) kept only as problem counts, ready once /health answers, and killed with
 * the bench however the bench ends.
 */
export function startBenchHub(settings: BenchHubSettings): Promise<HubProcess> {
  return startHub({
    args: settings.args,
    hubId: settings.hubId,
    secret: BENCH_SECRET,
    logLevel: 'warn',
    keepLogs: false,
    onSpawn: track,
    // A hub with --workers starts each worker process before it answers /health.
    startTimeoutMs: 60_000,
    ...(settings.inspect !== undefined ? { inspect: settings.inspect } : {}),
    ...(settings.bin ? { bin: settings.bin } : {}),
  });
}

/**
 * Memory after a forced full GC; needs a hub started with `inspect: true`. The inspector session
 * is closed again at once, so none is attached while anything is being timed.
 */
export async function memoryAfterGc(hub: HubProcess): Promise<HeapReading> {
  const url = hub.inspectorUrl();
  if (!url) throw new Error('the hub was not started with inspect: true');
  const inspector = await Inspector.connect(url);
  try {
    return await inspector.memoryAfterGc();
  } finally {
    inspector.close();
  }
}
