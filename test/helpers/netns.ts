import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';

/**
 * A farm PC in a network namespace of its own, joined to this machine by a veth pair in a private
 * /24 (10.213.N.0/24: .1 on this machine's side, the farm's address from .2 on). Nothing leaves the
 * machine. Made with iproute2 (`ip netns`, `ip link`), which needs root or CAP_NET_ADMIN: without it
 * creating one throws, saying so, and the test that wanted it fails rather than skips.
 */
export interface FarmNetns {
  /** The namespace's name (unique per run). */
  readonly name: string;
  /** This machine's side of the veth pair: where the hub and the services the farm reaches listen. */
  readonly hostAddress: string;
  /** The farm's address now. */
  readonly address: string;
  /** `via` for spawnCli: runs a command inside the namespace. */
  readonly via: string[];
  /** The farm's address becomes 10.213.N.`lastOctet` at once (the new one added, the old one removed). */
  moveTo(lastOctet: number): string;
  /** Kills every process left in the namespace, deletes it and the veth pair; safe to call twice. */
  destroy(): void;
}

function ip(args: string[]): void {
  const run = spawnSync('ip', args, { encoding: 'utf8' });
  if (run.error) throw new Error(`ip ${args.join(' ')}: ${run.error.message} (is iproute2 installed?)`);
  if (run.status !== 0) throw new Error(`ip ${args.join(' ')} exited ${String(run.status)}: ${run.stderr.trim()}`);
}

/** A /24 under 10.213.0.0/16 that no interface of this machine uses yet. */
function freeSubnet(): number {
  const used = new Set(
    Object.values(os.networkInterfaces())
      .flatMap((list) => list ?? [])
      .map((a) => /^10\.213\.(\d+)\./.exec(a.address)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number),
  );
  for (let tries = 0; tries < 500; tries++) {
    const n = 1 + Math.floor(Math.random() * 254);
    if (!used.has(n)) return n;
  }
  throw new Error('no free /24 under 10.213.0.0/16 for a test namespace');
}

export function createFarmNetns(): FarmNetns {
  const tag = randomBytes(3).toString('hex');
  const name = `flnr-${tag}`;
  const hostIf = `flh${tag}`;
  const farmIf = `fln${tag}`;
  const subnet = freeSubnet();
  const prefix = `10.213.${subnet}`;
  const hostAddress = `${prefix}.1`;
  let address = `${prefix}.2`;
  try {
    ip(['netns', 'add', name]);
  } catch (error) {
    throw new Error(
      `cannot create a network namespace for the farm PC (${(error as Error).message}); ` +
        'this test needs root or CAP_NET_ADMIN and iproute2',
      { cause: error },
    );
  }
  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    spawnSync('ip', ['netns', 'del', name]);
    // Deleting the namespace deletes its end of the pair and so the pair; this is for a half-made one.
    spawnSync('ip', ['link', 'del', hostIf]);
  };
  try {
    ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', farmIf]);
    // No IPv6 link-local addresses: they would appear a moment later and look like an address change.
    ip(['link', 'set', hostIf, 'addrgenmode', 'none']);
    ip(['link', 'set', farmIf, 'addrgenmode', 'none']);
    ip(['link', 'set', farmIf, 'netns', name]);
    ip(['addr', 'add', `${hostAddress}/24`, 'dev', hostIf]);
    ip(['link', 'set', hostIf, 'up']);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
    ip(['-n', name, 'addr', 'add', `${address}/24`, 'dev', farmIf]);
    ip(['-n', name, 'link', 'set', farmIf, 'up']);
    // Removing the farm's first address must keep the second one (the default removes both); no IPv6 in
    // the namespace, whose link-local address would come and go beside the change the test makes.
    execFileSync('ip', [
      'netns',
      'exec',
      name,
      'sh',
      '-c',
      'echo 1 > /proc/sys/net/ipv4/conf/all/promote_secondaries && echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6',
    ]);
  } catch (error) {
    destroy();
    throw new Error(
      `cannot set up a network namespace for the farm PC (${(error as Error).message}); ` +
        'this test needs root or CAP_NET_ADMIN and iproute2',
      { cause: error },
    );
  }
  return {
    name,
    hostAddress,
    get address() {
      return address;
    },
    via: ['ip', 'netns', 'exec', name],
    moveTo(lastOctet: number): string {
      const next = `${prefix}.${lastOctet}`;
      // One batch, so the farm is never seen with both addresses or with none.
      const run = spawnSync('ip', ['-n', name, '-batch', '-'], {
        input: `addr add ${next}/24 dev ${farmIf}\naddr del ${address}/24 dev ${farmIf}\n`,
        encoding: 'utf8',
      });
      if (run.status !== 0) throw new Error(`moving the farm to ${next}: ${run.stderr.trim()}`);
      address = next;
      return next;
    },
    destroy,
  };
}
