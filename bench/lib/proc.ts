import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/** Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat. */
const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** Resident set size in KiB (VmRSS), or NaN when the process is gone. */
export function rssKb(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Milliseconds of the CPU-time fields of /proc/<pid>/stat at `indexes` (after the command name), summed; NaN when gone. */
function statCpuMs(pid: number, indexes: readonly number[]): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses; the fields after its last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = indexes.reduce((sum, i) => sum + Number(fields[i]), 0);
    return (ticks / CLK_TCK) * 1000;
  } catch {
    return Number.NaN;
  }
}

/** User + system CPU time of a process in milliseconds (utime, stime), or NaN when it is gone. */
export function cpuMs(pid: number): number {
  return statCpuMs(pid, [11, 12]);
}

/**
 * CPU milliseconds of a process, with what its exited, reaped children used (cutime, cstime): socat
 * with `fork` copies each connection's bytes in a child that is gone by the time anyone asks.
 */
export function cpuMsWithReaped(pid: number): number {
  return statCpuMs(pid, [11, 12, 13, 14]);
}

/** The pids of a process's children, from every thread's `children` list (empty when unreadable). */
function childPids(pid: number): number[] {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      fs
        .readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
        .split(' ')
        .filter((s) => s.trim() !== '')
        .map(Number),
    );
  } catch {
    return [];
  }
}

/**
 * CPU milliseconds of a process and its descendants alive now: a hub with `--workers N` is a
 * primary that does little and N worker processes that do the work.
 */
export function treeCpuMs(pid: number): number {
  return childPids(pid).reduce((total, child) => total + treeCpuMs(child), cpuMs(pid));
}

export class CpuMeter {
  private readonly start: number[];
  private readonly startedAt = performance.now();

  constructor(private readonly pids: readonly number[]) {
    this.start = pids.map(treeCpuMs);
  }

  /** Per-process % of one core since construction (each with its child processes). */
  percent(): number[] {
    const wall = performance.now() - this.startedAt;
    return this.used().map((used) => (used / wall) * 100);
  }

  /** Per-process CPU milliseconds since construction. */
  used(): number[] {
    return this.pids.map((pid, i) => treeCpuMs(pid) - this.start[i]!);
  }
}

export function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (match) return match[1]!.trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/** Soft limit on open files of this process, from /proc (Node has no getrlimit). */
export function openFilesLimit(): number {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export function ephemeralPortRange(): [number, number] | undefined {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return lo !== undefined && hi !== undefined ? [lo, hi] : undefined;
  } catch {
    return undefined;
  }
}

/** TcpExt and Tcp counters of this network namespace (/proc/net/netstat, /proc/net/snmp). */
export function tcpCounters(): Map<string, number> {
  const out = new Map<string, number>();
  for (const file of ['/proc/net/netstat', '/proc/net/snmp']) {
    let lines: string[];
    try {
      lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    } catch {
      continue;
    }
    // Pairs of lines: "Prefix: name name …" then "Prefix: value value …".
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = lines[i]!.split(/\s+/);
      const values = lines[i + 1]!.split(/\s+/);
      const prefix = names[0]!.replace(':', '');
      if (prefix !== 'TcpExt' && prefix !== 'Tcp') continue;
      for (let j = 1; j < names.length; j += 1) out.set(`${prefix}.${names[j]}`, Number(values[j]));
    }
  }
  try {
    // Column 2 of each CPU's line: packets dropped because the per-CPU input queue (netdev_max_backlog) was full.
    let dropped = 0;
    for (const line of fs.readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n'))
      dropped += parseInt(line.split(/\s+/)[1] ?? '0', 16);
    out.set('Softnet.Dropped', dropped);
  } catch {
    // not Linux
  }
  return out;
}

/** Counters that grew between two tcpCounters() readings and say something went wrong on the wire. */
export function tcpTrouble(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const watch = [
    'Softnet.Dropped',
    'TcpExt.ListenOverflows',
    'TcpExt.ListenDrops',
    'TcpExt.TCPSynRetrans',
    'TcpExt.TCPTimeouts',
    'TcpExt.TCPLostRetransmit',
    'Tcp.RetransSegs',
    'TcpExt.TCPBacklogDrop',
    'TcpExt.TCPRcvQDrop',
    'TcpExt.TCPAbortOnData',
    'TcpExt.TCPAbortOnClose',
    'Tcp.AttemptFails',
    'Tcp.EstabResets',
  ];
  const out: Record<string, number> = {};
  for (const key of watch) {
    const delta = (after.get(key) ?? 0) - (before.get(key) ?? 0);
    if (delta > 0) out[key.replace(/^TcpExt\.|^Tcp\./, '').replace('Softnet.Dropped', 'softnet_dropped')] = delta;
  }
  return out;
}
