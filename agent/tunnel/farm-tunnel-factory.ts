import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import { systemRandom, type Clock, type Random } from '../../lib/clock.js';
import { BrokerLink } from '../../lib/tunnel/broker-link.js';
import { DirectConnector } from '../../lib/tunnel/direct-connector.js';
import { loadWebRtc, type WebRtc } from '../../lib/tunnel/webrtc.js';
import { AGENT_VERSION } from '../../lib/version.js';
import type { AgentSettings } from '../config/agent-settings.js';
import { watchNetwork } from '../system/network-watch.js';
import type { CreateFarmDirect } from './farm-ports.js';
import { FarmTunnel } from './farm-tunnel.js';
import { farmSessionFactory } from './farm-session.js';
import { ServiceAllowlist } from './service-allowlist.js';
import { dialService } from './service-dialer.js';
import { tunnelEndpointFor } from './tunnel-servers.js';

/** Random per process start (not per agent): a broker seeing another one knows this PC restarted. */
export const PROCESS_BOOT_ID = randomBytes(16).toString('hex');

export interface FarmTunnelSetup {
  settings: AgentSettings;
  services: Readonly<Record<string, string>>;
  addressCheckIntervalMs: number;
  /** tunnel.direct: try a direct WebRTC path beside the relay. */
  direct: boolean;
  clock: Clock;
  logger: Logger;
  random?: Random;
  bootId?: string;
}

/** This PC's own non-internal addresses (what farm_hello and address_change carry). */
export function localAddresses(interfaces = os.networkInterfaces()): string[] {
  const all = Object.values(interfaces).flatMap((list) =>
    (list ?? []).filter((a) => !a.internal).map((a) => a.address),
  );
  return [...new Set(all)].sort();
}

/** The farm end as the agent runs it: a real link to the agent's own server list, real sessions, real dials. */
export function createFarmTunnel(setup: FarmTunnelSetup): FarmTunnel {
  const { settings, clock, logger } = setup;
  if (!setup.direct) logger.info('Tunnel: direct path off (tunnel.direct is false); every session stays on the relay');
  return new FarmTunnel({
    agentId: settings.identity.id,
    bootId: setup.bootId ?? PROCESS_BOOT_ID,
    version: AGENT_VERSION,
    services: new ServiceAllowlist(setup.services),
    createLink: (hello) =>
      new BrokerLink({
        role: 'farm',
        servers: settings.servers.map(tunnelEndpointFor),
        token: settings.identity.token ?? '',
        hello,
        clock,
        random: setup.random ?? systemRandom,
        logger: logger.child({ part: 'link' }),
        connectTimeoutMs: settings.timing.connectTimeoutMs,
      }),
    createSession: farmSessionFactory(clock),
    dial: dialService,
    localAddresses: () => localAddresses(),
    watchAddresses: (onChange) => watchNetwork(() => onChange(), setup.addressCheckIntervalMs),
    clock,
    logger,
    ...(setup.direct ? { createDirect: directConnectors(setup.clock, setup.random ?? systemRandom, logger) } : {}),
  });
}

/**
 * Each session's direct connector, once node-datachannel has loaded (a few ms after start, long before
 * a client can open a session); where it does not load, the reason is logged once and every session
 * stays on the relay.
 */
function directConnectors(clock: Clock, random: Random, logger: Logger): CreateFarmDirect {
  let webrtc: WebRtc | undefined;
  void loadWebRtc().then((load) => {
    if (load.ok) webrtc = load.webrtc;
    else logger.warn({ reason: load.reason }, `Tunnel: ${load.reason}`);
  });
  return (sessionId, signal) => {
    if (!webrtc) return undefined;
    return new DirectConnector({
      role: 'farm',
      webrtc,
      sessionId,
      signal: { send: signal },
      clock,
      random,
      logger: logger.child({ part: 'direct' }),
    });
  };
}
