import type { Clock } from '../../lib/clock.js';
import { addressHost } from '../../lib/tunnel/address-host.js';

/** What the registry needs of a farm's tunnel socket. */
export interface FarmPeer {
  readonly address: string;
}

export interface FarmEntry<F extends FarmPeer = FarmPeer> {
  readonly agentId: string;
  readonly conn: F;
  readonly bootId: string;
  readonly services: readonly string[];
  localAddresses: readonly string[];
  /** The address the broker sees this socket come from. */
  readonly address: string;
  /** Epoch ms. */
  readonly connectedAt: number;
}

/**
 * How a farm's new socket relates to what came before it:
 * - first: the broker knows nothing of this agent id (first connection, or long gone);
 * - reconnect: the same boot id as last time (a network drop, a broker change): its sessions may resume;
 * - restart: another boot id: the farm PC restarted and lost every session it had.
 */
export type FarmArrival = 'first' | 'reconnect' | 'restart';

export interface ConnectOutcome<F extends FarmPeer> {
  arrival: FarmArrival;
  /** The socket still registered for this id, now replaced (the caller closes it 4409). */
  replaced: F | undefined;
  /** The address last seen for this farm, when its host differs from the new one's (a new port is no move). */
  movedFrom: string | undefined;
}

/**
 * The farms connected to this broker, by agent id: one socket each; a new socket for the same id
 * replaces the old one at once (a stale registration never blocks a reconnect). What a departed
 * farm was (boot id, address) is remembered for `rememberMs`, so its return is told apart as a
 * reconnect or a restart, and a move noticed.
 */
export class FarmRegistry<F extends FarmPeer = FarmPeer> {
  private readonly farms = new Map<string, FarmEntry<F>>();
  private readonly departed = new Map<string, { bootId: string; address: string; leftAt: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly rememberMs: number,
  ) {}

  get size(): number {
    return this.farms.size;
  }

  get(agentId: string): FarmEntry<F> | undefined {
    return this.farms.get(agentId);
  }

  /** The entry whose socket is `conn`, if it is still the registered one. */
  entryOf(agentId: string, conn: F): FarmEntry<F> | undefined {
    const entry = this.farms.get(agentId);
    return entry?.conn === conn ? entry : undefined;
  }

  all(): IterableIterator<FarmEntry<F>> {
    return this.farms.values();
  }

  connect(spec: Omit<FarmEntry<F>, 'connectedAt'>): ConnectOutcome<F> {
    this.forgetOld();
    const previous = this.farms.get(spec.agentId);
    const before = previous ?? this.departed.get(spec.agentId);
    this.departed.delete(spec.agentId);
    this.farms.set(spec.agentId, { ...spec, connectedAt: this.clock.now() });
    const arrival: FarmArrival =
      before === undefined ? 'first' : before.bootId === spec.bootId ? 'reconnect' : 'restart';
    const movedFrom =
      before !== undefined && addressHost(before.address) !== addressHost(spec.address) ? before.address : undefined;
    return { arrival, replaced: previous?.conn, movedFrom };
  }

  /** The socket is gone: unregistered if it is still the farm's socket (false if a newer one took over). */
  disconnect(agentId: string, conn: F): boolean {
    const entry = this.farms.get(agentId);
    if (entry?.conn !== conn) return false;
    this.farms.delete(agentId);
    this.departed.set(agentId, { bootId: entry.bootId, address: entry.address, leftAt: this.clock.monotonic() });
    return true;
  }

  /** The farm's own addresses changed (address_change): true when they differ from what was recorded. */
  recordLocalAddresses(agentId: string, conn: F, addresses: readonly string[]): boolean {
    const entry = this.entryOf(agentId, conn);
    if (!entry) return false;
    const same =
      entry.localAddresses.length === addresses.length && entry.localAddresses.every((a, i) => a === addresses[i]);
    entry.localAddresses = [...addresses];
    return !same;
  }

  private forgetOld(): void {
    const cutoff = this.clock.monotonic() - this.rememberMs;
    for (const [id, gone] of this.departed) if (gone.leftAt < cutoff) this.departed.delete(id);
  }
}
