/** One exposed service: the name a client asks for and where it leads on this PC. */
export interface AllowedService {
  name: string;
  /** As written in the config ("127.0.0.1:5037", "[::1]:5037"). */
  target: string;
  /** The host to dial, without IPv6 brackets. */
  host: string;
  port: number;
}

/**
 * The services a remote client may reach on this PC (`tunnel.services`), and nothing else: a
 * session or stream for any other name is refused before anything is dialled. The config schema
 * has already checked every name and target, so parsing here cannot fail for a loaded config.
 */
export class ServiceAllowlist {
  private readonly byName: ReadonlyMap<string, AllowedService>;

  constructor(services: Readonly<Record<string, string>>) {
    const entries = Object.entries(services)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, target]) => [name, parseService(name, target)] as const);
    this.byName = new Map(entries);
  }

  get size(): number {
    return this.byName.size;
  }

  /** The service of that name, or undefined when it is not exposed. */
  lookup(name: string): AllowedService | undefined {
    // A Map, not the config object: "__proto__" or "toString" must not resolve to anything.
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  list(): AllowedService[] {
    return [...this.byName.values()];
  }
}

export function parseService(name: string, target: string): AllowedService {
  const colon = target.lastIndexOf(':');
  const rawHost = target.slice(0, colon);
  const host = rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost;
  const port = Number(target.slice(colon + 1));
  if (colon <= 0 || host === '' || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new TypeError(`tunnel.services.${name}: expected "host:port", got ${JSON.stringify(target)}`);
  }
  return { name, target, host, port };
}
