import path from 'node:path';
import { parseArgs } from 'node:util';

/** The repository root, from dist/bench/cache/ (the bench runs from the build). */
export const ROOT = path.resolve(import.meta.dirname, '../../..');

export const SECTIONS = ['l1', 'memory', 'hit', 'redis', 'disk'] as const;
export type Section = (typeof SECTIONS)[number];

export interface CacheBenchOptions {
  sections: Section[];
  /** L1 throughput: capacities. */
  sizes: number[];
  /** L1 throughput: operations per timed round, and timed rounds per process (the median is reported). */
  ops: number;
  rounds: number;
  /** L1 throughput: fresh processes per synchronous contender, run interleaved; the async ones run once. */
  repeats: number;
  /** L1 throughput: which contenders (ids of CONTENDER_IDS), all when omitted. */
  contenders: string[] | undefined;
  /** Hit ratio: cache sizes and requests per trace. */
  hitSizes: number[];
  traceLength: number;
  /** Bytes per entry: entries held. */
  memoryEntries: number;
  /** L2: keys read once each (sequential, and again with `concurrency` in flight). */
  redisOps: number;
  concurrency: number;
  /** Redis down: how long each kind of call is measured, and at most how many calls. */
  downSeconds: number;
  downMaxCalls: number;
  /** L3: small-value and 64 KiB-value records written and read; entries for the warm start. */
  diskEntries: number;
  diskLarge: number;
  warmEntries: number;
  seed: number;
  readme: string;
  write: boolean;
  quick: boolean;
}

/** The L1 contenders by id, in the order of l1-throughput.ts's CONTENDERS. */
export const CONTENDER_IDS = ['tinylfu', 'lru-tier', 'lru-cache', 'bentocache', 'cache-manager', 'multitier'] as const;

export const USAGE = `node dist/bench/cache/run.js [options]   (npm run bench:cache -- [options])

  --sections LIST      which parts: ${SECTIONS.join(',')}                 [all]
  --sizes LIST         L1 throughput: cache capacities                 [10000,100000]
  --ops N              L1 throughput: operations per timed round       [500000]
  --rounds N           L1 throughput: timed rounds per process         [10]
  --repeats N          L1 throughput: fresh processes per sync contender, interleaved [3]
  --contenders LIST    L1 throughput: ${CONTENDER_IDS.join(',')} [all]
  --hit-sizes LIST     hit ratio: cache sizes                          [1000,10000,100000]
  --trace-length N     hit ratio: requests per trace                   [3000000]
  --memory-entries N   bytes per entry: entries held                   [100000]
  --redis-ops N        L2: keys read (each once) per measurement       [20000]
  --concurrency N      L2: calls in flight for the concurrent reading  [32]
  --down-seconds S     Redis down: seconds of calls per kind of call   [3]
  --down-max-calls N   Redis down: at most this many calls per kind    [5000]
  --disk-entries N     L3: small records written and read              [100000]
  --disk-large N       L3: 64 KiB records written and read             [2000]
  --warm-entries N     L3: entries for the warm-start measurement      [100000]
  --seed N             PRNG seed of the traces and key sequences       [1]
  --readme PATH        where the tables go, between the bench:cache markers [bench/README.md]
  --no-write           print the tables only (also --no-readme)
  --quick              small sizes and short runs, to check the bench works
                       (explicit flags still win)
  -h, --help
`;

const QUICK: Partial<Record<string, string>> = {
  sizes: '10000',
  ops: '50000',
  rounds: '3',
  repeats: '1',
  'hit-sizes': '1000,10000',
  'trace-length': '200000',
  'memory-entries': '20000',
  'redis-ops': '2000',
  'down-seconds': '0.5',
  'disk-entries': '10000',
  'disk-large': '200',
  'warm-entries': '10000',
};

function contenders(value: string): string[] | undefined {
  if (value === '') return undefined;
  const ids = value.split(',').map((s) => s.trim());
  for (const id of ids) {
    if (!(CONTENDER_IDS as readonly string[]).includes(id))
      throw new Error(`--contenders: unknown "${id}" (expected ${CONTENDER_IDS.join(', ')})`);
  }
  return ids;
}

function list(flag: string, value: string): number[] {
  const out = value.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`--${flag}: expected whole numbers like 1000,10000, got "${value}"`);
  return out;
}

function number(flag: string, value: string, min: number, integer = true): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
    throw new Error(`--${flag}: expected a ${integer ? 'whole ' : ''}number ≥ ${min}, got "${value}"`);
  return n;
}

export function parseCacheBenchOptions(argv: string[]): CacheBenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      sections: { type: 'string' },
      sizes: { type: 'string' },
      ops: { type: 'string' },
      rounds: { type: 'string' },
      repeats: { type: 'string' },
      contenders: { type: 'string' },
      'hit-sizes': { type: 'string' },
      'trace-length': { type: 'string' },
      'memory-entries': { type: 'string' },
      'redis-ops': { type: 'string' },
      concurrency: { type: 'string' },
      'down-seconds': { type: 'string' },
      'down-max-calls': { type: 'string' },
      'disk-entries': { type: 'string' },
      'disk-large': { type: 'string' },
      'warm-entries': { type: 'string' },
      seed: { type: 'string' },
      readme: { type: 'string' },
      'no-write': { type: 'boolean' },
      'no-readme': { type: 'boolean' },
      quick: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true;
  const get = (
    flag: Exclude<keyof typeof values, 'no-write' | 'no-readme' | 'quick' | 'help'>,
    fallback: string,
  ): string => {
    const given = values[flag];
    if (typeof given === 'string') return given;
    return (quick ? QUICK[flag] : undefined) ?? fallback;
  };
  const sections = get('sections', SECTIONS.join(','))
    .split(',')
    .map((s) => s.trim());
  for (const s of sections)
    if (!(SECTIONS as readonly string[]).includes(s))
      throw new Error(`--sections: unknown "${s}" (expected ${SECTIONS.join(', ')})`);
  return {
    sections: sections as Section[],
    sizes: list('sizes', get('sizes', '10000,100000')),
    ops: number('ops', get('ops', '500000'), 1000),
    rounds: number('rounds', get('rounds', '10'), 1),
    repeats: number('repeats', get('repeats', '3'), 1),
    contenders: contenders(get('contenders', '')),
    hitSizes: list('hit-sizes', get('hit-sizes', '1000,10000,100000')),
    traceLength: number('trace-length', get('trace-length', '3000000'), 1000),
    memoryEntries: number('memory-entries', get('memory-entries', '100000'), 1000),
    redisOps: number('redis-ops', get('redis-ops', '20000'), 100),
    concurrency: number('concurrency', get('concurrency', '32'), 1),
    downSeconds: number('down-seconds', get('down-seconds', '3'), 0.1, false),
    downMaxCalls: number('down-max-calls', get('down-max-calls', '5000'), 10),
    diskEntries: number('disk-entries', get('disk-entries', '100000'), 100),
    diskLarge: number('disk-large', get('disk-large', '2000'), 10),
    warmEntries: number('warm-entries', get('warm-entries', '100000'), 100),
    seed: number('seed', get('seed', '1'), 0),
    readme: path.resolve(get('readme', path.join(ROOT, 'bench', 'README.md'))),
    write: !(values['no-write'] === true || values['no-readme'] === true),
    quick,
  };
}
