/**
 * Loopback source addresses for the agents, never reused within one bench run. A socket that
 * binds a source address takes a port from that address's ephemeral range, and closed sockets
 * keep theirs in TIME_WAIT for a minute; fresh addresses per scenario keep one scenario's
 * leftovers from failing the next one's dials with EADDRINUSE.
 */
let next = 2; // 127.0.0.1 stays the hubs' own address

export function takeAddresses(agents: number, perAddress: number): string[] {
  const count = Math.max(1, Math.ceil(agents / perAddress));
  const out: string[] = [];
  for (let i = 0; i < count; i += 1) {
    // 127.0.x.y with y in 2..254: every one of them is on lo (127.0.0.0/8).
    const n = next++;
    const x = Math.floor(n / 253);
    const y = (n % 253) + 2;
    if (x > 255) throw new RangeError('ran out of 127.0.x.y source addresses');
    out.push(`127.0.${x}.${y}`);
  }
  return out;
}
