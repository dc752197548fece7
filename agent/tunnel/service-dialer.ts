import net from 'node:net';
import { type Clock, systemClock } from '../../lib/clock.js';
import { FarmlinkError } from '../../lib/errors.js';
import type { AllowedService } from './service-allowlist.js';

/** Dialling a local service failed; `message` is what the remote client is told (RST CONNECT_FAILED). */
export class ServiceDialError extends FarmlinkError {
  override readonly code = 'SERVICE_DIAL_FAILED';
  /** The socket error's code (ECONNREFUSED, ETIMEDOUT, …), for logs and tests. */
  readonly cause_code: string;

  constructor(message: string, causeCode: string, options?: { cause?: unknown }) {
    super('SERVICE_DIAL_FAILED', message, options);
    this.name = 'ServiceDialError';
    this.cause_code = causeCode;
  }
}

export interface DialOptions {
  /** Give up on a service that neither accepts nor refuses within this long. */
  timeoutMs: number;
  clock?: Clock;
  /** Opens the socket [net.connect]; a test gives one that never connects. */
  connect?: (host: string, port: number) => net.Socket;
}

export type ServiceDialer = (service: AllowedService, options: DialOptions) => Promise<net.Socket>;

/** Opens a TCP connection to an allowed service; rejects with a ServiceDialError that says what went wrong. */
export const dialService: ServiceDialer = (service, { timeoutMs, clock = systemClock, connect = netConnect }) =>
  new Promise((resolve, reject) => {
    const socket = connect(service.host, service.port);
    let settled = false;
    const finish = (error: ServiceDialError | undefined) => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      if (error) {
        socket.destroy();
        reject(error);
      } else {
        resolve(socket);
      }
    };
    const onConnect = () => {
      finish(undefined);
    };
    const onError = (error: NodeJS.ErrnoException) => {
      finish(describeDialError(service.target, error));
    };
    const timer = clock.setTimeout(() => {
      finish(new ServiceDialError(`${service.target} did not answer within ${formatMs(timeoutMs)}`, 'ETIMEDOUT'));
    }, timeoutMs);
    socket.once('connect', onConnect);
    socket.once('error', onError);
  });

function netConnect(host: string, port: number): net.Socket {
  return net.connect({ host, port });
}

/** A socket error as one sentence about the service, for the remote user and the log. */
export function describeDialError(target: string, error: NodeJS.ErrnoException): ServiceDialError {
  const code = error.code ?? 'UNKNOWN';
  const what: Record<string, string> = {
    ECONNREFUSED: 'refused the connection',
    ECONNRESET: 'reset the connection',
    EHOSTUNREACH: 'is unreachable (no route to the host)',
    ENETUNREACH: 'is unreachable (no route to the network)',
    ETIMEDOUT: 'did not answer',
    ENOTFOUND: 'names a host that could not be resolved',
    EAI_AGAIN: 'names a host that could not be resolved (temporary DNS failure)',
    EADDRNOTAVAIL: 'is not an address this PC can reach',
  };
  const sentence = what[code] ?? `could not be reached (${code}: ${error.message})`;
  return new ServiceDialError(`${target} ${sentence}`, code, { cause: error });
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
