/** "850 B", "12.3 KB", "4.1 MB" (decimal units, as network rates are usually read). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '—';
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** "45s", "3m 12s", "2h 5m", "3d 4h". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** "12 ms", "1.4 s". */
export function formatMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '—';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** "14:03:07" local time. */
export function formatClock(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** "just now", "5s ago", "3m ago". */
export function formatAgo(at: number | null, now: number): string {
  if (at === null) return 'never';
  const ms = now - at;
  if (ms < 1500) return 'just now';
  return `${formatDuration(ms)} ago`;
}

export function formatRate(perSecond: number, unit: 'msg' | 'bytes'): string {
  if (unit === 'bytes') return `${formatBytes(perSecond)}/s`;
  return `${perSecond < 10 ? perSecond.toFixed(1) : Math.round(perSecond)} msg/s`;
}
