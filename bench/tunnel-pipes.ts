import type { ChildGroup } from './lib/tcp-tools.js';

/** One way for bytes to get from a client to a TCP service on `targetPort`, for bench/tunnel.ts. */
export interface PipeSetup {
  /** For --pipes. */
  name: string;
  label: string;
  /** Processes the bytes pass through between client and service (the socat chain of the same length is the floor). */
  hops: number;
  /** Starts the pipe in front of the service; `port` is where a client connects, `pids` the processes it runs. */
  start(targetPort: number): Promise<ChildGroup>;
}

/** FarmLink's tunnel, by path. */
export const TUNNEL_PIPES: PipeSetup[] = [];
