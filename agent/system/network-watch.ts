import os from 'node:os';

/** The machine's non-internal addresses, as one comparable string. */
export function addressFingerprint(interfaces = os.networkInterfaces()): string {
  return Object.entries(interfaces)
    .flatMap(([name, addrs]) => (addrs ?? []).filter((a) => !a.internal).map((a) => `${name}/${a.family}/${a.address}`))
    .sort()
    .join(',');
}

/**
 * Notices network changes (an interface coming up or going down, a new address after the router
 * reconnected) by comparing the address list every few seconds — the same on Windows and Linux,
 * with or without Electron.
 */
export function watchNetwork(
  onChange: (before: string, after: string) => void,
  intervalMs = 3000,
  read = addressFingerprint,
): () => void {
  let last = read();
  const timer = setInterval(() => {
    const now = read();
    if (now !== last) {
      const before = last;
      last = now;
      onChange(before, now);
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Notices that the machine slept: a timer that should fire every `intervalMs` finds far more time
 * has passed. After a suspend the old TCP connection is almost surely dead, so the agent
 * reconnects at once rather than waiting for the ping deadline.
 */
export function watchWake(
  onWake: (sleptMs: number) => void,
  intervalMs = 5000,
  toleranceMs = 15_000,
  now = () => Date.now(),
): () => void {
  let expected = now() + intervalMs;
  const timer = setInterval(() => {
    const t = now();
    const late = t - expected;
    if (late > toleranceMs) onWake(late + intervalMs);
    expected = t + intervalMs;
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
