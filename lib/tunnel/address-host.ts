/**
 * The host of a "host:port" address as the broker records it ("10.0.0.3:51234" → "10.0.0.3",
 * "[2001:db8::1]:443" → "2001:db8::1"); anything else is returned as it is. A farm's port changes
 * with every socket it opens, so only the host says whether it moved.
 */
export function addressHost(address: string): string {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):\d+$/.exec(address);
  return match?.[1] ?? match?.[2] ?? address;
}
