import { num, table } from './markdown.js';

/** The parts of a V8 CPU profile (Profiler.stop) read here. */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }>;
  samples: number[];
  /** Microseconds since the previous sample. */
  timeDeltas: number[];
}

/** Where a frame's code lives: a package, a module of ours, Node itself, or V8's own bookkeeping. */
function category(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const ours = /\/dist\/((?:server|lib|protocol|bench|cli|bin)\/.+)\.js$/.exec(url);
  if (ours) return ours[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(-1)[0]}`;
  return url;
}

interface Tally {
  selfUs: Map<string, number>;
  functionUs: Map<string, number>;
  totalUs: number;
}

function tally(profiles: CpuProfile[]): Tally {
  const selfUs = new Map<string, number>();
  const functionUs = new Map<string, number>();
  let totalUs = 0;
  for (const profile of profiles) {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    profile.samples.forEach((id, i) => {
      const node = byId.get(id);
      const us = profile.timeDeltas[i] ?? 0;
      if (!node || node.callFrame.functionName === '(idle)') return;
      const { url, functionName, lineNumber } = node.callFrame;
      const where = category(url, functionName);
      selfUs.set(where, (selfUs.get(where) ?? 0) + us);
      const fn = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
      functionUs.set(fn, (functionUs.get(fn) ?? 0) + us);
      totalUs += us;
    });
  }
  return { selfUs, functionUs, totalUs };
}

/**
 * Self time of the profiled (non-idle) samples by where the code lives, then the busiest
 * functions, in ms per registration: what the hub spends that the floor does not, by module.
 */
export function profileBreakdown(profiles: CpuProfile[], registrations: number, top = 15): string {
  const { selfUs, functionUs, totalUs } = tally(profiles);
  const rows = (m: Map<string, number>, limit: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, us]) => [name, num(us / 1000 / registrations, 4), `${num((us / totalUs) * 100, 1)} %`]);
  return [
    table(['code (self time)', 'ms per registration', 'share'], rows(selfUs, 25)),
    '',
    table(['function (self time)', 'ms per registration', 'share'], rows(functionUs, top)),
    '',
    `Sampled, not idle: ${num(totalUs / 1000 / registrations, 3)} ms per registration.`,
  ].join('\n');
}
