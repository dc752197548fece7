/**
 * Nesting limit for JSON the hub takes in and passes on (admin request bodies, command results).
 * JSON.parse reads any depth a frame or body can hold, but JSON.stringify recurses and throws a
 * RangeError a few thousand levels down — so such a value, once accepted, could not be sent on.
 * Real commands, results and broadcasts are a handful of levels deep.
 */
export const MAX_JSON_DEPTH = 100;

/**
 * True when `value` nests objects/arrays deeper than `limit` (the value itself is level 1).
 * Iterative, so that measuring a deep value cannot overflow the stack the way serialising it does.
 */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  for (let entry = stack.pop(); entry !== undefined; entry = stack.pop()) {
    const { value: current, depth } = entry;
    if (current === null || typeof current !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Object.values(current)) {
      if (child !== null && typeof child === 'object') stack.push({ value: child, depth: depth + 1 });
    }
  }
  return false;
}
