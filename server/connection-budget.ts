import { isIPv4, isIPv6 } from 'node:net';

export type BudgetRefusal = 'per_address' | 'total';

/**
 * Seats counted per source and in total, for connections that have not shown a valid token yet:
 * one source cannot take more than `perSource` of them, and all of them together no more than
 * `total`, whatever the hub's capacity for authenticated agents. Counting only — callers decide
 * what a refusal looks like.
 */
export class ConnectionBudget {
  private readonly bySource = new Map<string, number>();
  private count = 0;

  constructor(
    readonly total: number,
    readonly perSource: number,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Why one more seat for `source` would be refused, or undefined when there is room. */
  refusal(source: string): BudgetRefusal | undefined {
    if ((this.bySource.get(source) ?? 0) >= this.perSource) return 'per_address';
    if (this.count >= this.total) return 'total';
    return undefined;
  }

  /** Takes a seat for `source`; the refusal (and nothing taken) when there is no room. */
  acquire(source: string): BudgetRefusal | undefined {
    const refusal = this.refusal(source);
    if (refusal) return refusal;
    this.bySource.set(source, (this.bySource.get(source) ?? 0) + 1);
    this.count += 1;
    return undefined;
  }

  release(source: string): void {
    const held = this.bySource.get(source);
    if (held === undefined) return;
    if (held <= 1) this.bySource.delete(source);
    else this.bySource.set(source, held - 1);
    this.count -= 1;
  }
}

/**
 * The source a connection is counted under: the IPv4 address (also when it arrives IPv4-mapped
 * on a dual-stack socket), or the /64 prefix of an IPv6 address — one host usually holds a whole
 * /64, so counting single IPv6 addresses would count nothing.
 */
export function sourceKey(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  const address = remoteAddress.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return mapped;
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight hextets of an IPv6 address, "::" expanded, lower case, without leading zeros. */
function expandIPv6(address: string): string[] {
  // An embedded IPv4 tail ("64:ff9b::1.2.3.4") is two hextets.
  const text = address
    .toLowerCase()
    .replace(
      /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
      (_, a: string, b: string, c: string, d: string) =>
        `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
    );
  const part = (s: string) => (s ? s.split(':') : []);
  const [head = '', tail] = text.split('::');
  const left = part(head);
  const right = part(tail ?? '');
  const fill = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((hextet) => hextet.replace(/^0+(?=.)/, ''));
}
