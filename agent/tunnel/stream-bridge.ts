import type net from 'node:net';
import type { Logger } from 'pino';
import { errorInfo } from '../../lib/errors.js';
import { StreamResetCode } from '../../protocol/tunnel-frame.js';
import type { FarmStream } from './farm-ports.js';
import type { AllowedService } from './service-allowlist.js';
import type { ServiceDialer } from './service-dialer.js';
import type { Clock } from '../../lib/clock.js';

export interface BridgeContext {
  service: AllowedService;
  dial: ServiceDialer;
  dialTimeoutMs: number;
  clock: Clock;
  logger: Logger;
  /** The local socket while it is open, so the session can close it when the session ends. */
  track(socket: net.Socket): () => void;
}

/**
 * One client stream to the local service: dial, then OPEN_OK and bytes both ways; a failed dial
 * answers RST CONNECT_FAILED with the reason, so the remote user reads why. Either side ending or
 * failing ends the other: a closed local socket never leaves a half-open stream behind.
 */
export async function bridgeStream(stream: FarmStream, ctx: BridgeContext): Promise<void> {
  const { service, logger } = ctx;
  let socket: net.Socket;
  try {
    socket = await ctx.dial(service, { timeoutMs: ctx.dialTimeoutMs, clock: ctx.clock });
  } catch (error) {
    const { code, message } = errorInfo(error);
    logger.warn(
      { stream: stream.id, service: service.name, target: service.target, code, reason: message },
      `Could not reach ${service.name} (${message}); the client's stream ${stream.id} is refused and the session stays up`,
    );
    stream.reset(StreamResetCode.CONNECT_FAILED, message);
    return;
  }
  if (stream.destroyed) {
    // The session ended (or the client gave up) while the dial was under way.
    socket.destroy();
    return;
  }
  const untrack = ctx.track(socket);
  socket.setNoDelay(true);
  stream.accept();
  logger.debug({ stream: stream.id, service: service.name }, `Stream ${stream.id} connected to ${service.target}`);
  socket.pipe(stream).pipe(socket);
  socket.on('error', (error) => {
    logger.info(
      { stream: stream.id, service: service.name, err: errorInfo(error) },
      `The local ${service.name} connection failed (${error.message}); resetting stream ${stream.id}`,
    );
    stream.reset(StreamResetCode.ABORTED, `${service.target}: ${error.message}`);
  });
  stream.on('error', (error) => {
    logger.debug({ stream: stream.id, reason: error.message }, `Stream ${stream.id} reset: closing its local socket`);
    socket.destroy();
  });
  socket.on('close', untrack);
}
