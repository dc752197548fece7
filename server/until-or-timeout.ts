/**
 * Waits for `promise`, or `ms` at most. The timer is cleared when the promise wins: a bare
 * `Promise.race` with a `setTimeout` leaves it holding the event loop, and the process that has
 * finished its work lingers that long before it exits.
 */
export async function untilOrTimeout(promise: Promise<unknown>, ms: number): Promise<'done' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([promise.then(() => 'done' as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
