import type { TypedEmitter } from '../events.js';
import type { SessionEndCode } from '../../protocol/tunnel.js';
import type { DirectConnector } from './direct-connector.js';
import { DirectPath } from './direct-path.js';
import type { TunnelPath } from './tunnel-path.js';

interface DirectLinkEvents extends Record<string, unknown> {
  pathDead: { path: TunnelPath; reason: string };
  closed: { code: SessionEndCode; reason: string };
}

/** What linkDirect needs of a session: a TunnelSession, or the farm end's view of one (agent/tunnel/farm-ports.ts). */
export interface DirectLinkedSession {
  attach(path: TunnelPath): void;
  readonly events: Pick<TypedEmitter<DirectLinkEvents>, 'on'>;
}

/** What linkDirect needs of a connector: its `path` event and close(). */
export type DirectLinkedConnector = Pick<DirectConnector, 'events' | 'close'>;

/**
 * Joins a session and its direct connector, the same on both ends: every channel the connector opens is
 * attached to the session (which detaches it itself when the path says `down`), and a direct path the
 * session found silent (no answer to its health pings) is dropped, so the connector tries again later
 * instead of keeping a channel that carries nothing. Returns the function that undoes it (the owner
 * closes the connector itself).
 */
export function linkDirect(session: DirectLinkedSession, connector: DirectLinkedConnector): () => void {
  const offs = [
    connector.events.on('path', (path) => {
      session.attach(path);
    }),
    session.events.on('pathDead', ({ path, reason }) => {
      if (path instanceof DirectPath) path.markDown(reason);
    }),
    session.events.on('closed', () => {
      connector.close('session closed');
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}
