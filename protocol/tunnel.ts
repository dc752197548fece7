import { z } from 'zod';
import { AgentIdSchema } from './messages.js';

/**
 * The tunnel's control plane (docs/tunnel.md): JSON text frames on the broker endpoint, between a
 * farm PC's tunnel link and the broker, and between a remote client and the broker. Data never
 * travels here: it goes in binary frames (protocol/tunnel-frame.ts), on the same socket through the
 * broker (the relay path) or on a direct WebRTC data channel.
 *
 * Objects are not strict, as in messages.ts: a peer ignores fields it does not know.
 */

/** The broker endpoint on every hub, for farm PCs and remote clients alike; the token says which is which. */
export const TUNNEL_WS_PATH = '/api/v1/tunnel';

/** Version of the tunnel protocol (control messages and binary frames). Bumped only for incompatible changes. */
export const TUNNEL_PROTOCOL_VERSION = 1;

export const SERVICE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const ServiceNameSchema = z.string().regex(SERVICE_NAME_PATTERN, {
  error: 'expected 1–64 letters, digits, "_", "." or "-", starting with a letter or digit',
});

/** A remote client's name, as in its token's subject. */
export const ClientNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/, {
  error: 'expected 1–128 letters, digits, "_", ".", ":", "@" or "-", starting with a letter or digit',
});

/**
 * A session's id: chosen by the broker (128 random bits, hex). It outlives the sockets that carry
 * it: either side presents it to resume after a reconnect, to this broker or to another.
 */
export const SessionIdSchema = z.string().regex(/^[0-9a-f]{32}$/, { error: 'expected 32 hex digits' });

/**
 * The number that stands for a session in binary frames on one broker: the broker assigns it when
 * the session is opened or resumed there, the same on both sides' sockets, so relaying a frame is a
 * lookup and a write, never a copy. Another broker (after a reconnect) assigns another.
 */
export const RouteSchema = z.number().int().min(1).max(0xffff_ffff);

/** Random per process start: a farm (or client) that comes back with another boot id has lost its sessions. */
export const BootIdSchema = z.string().regex(/^[0-9a-f]{16,64}$/, { error: 'expected 16–64 hex digits' });

const EpochMs = z.number().nonnegative();
const Reason = z.string().max(512);
const RequestId = z.number().int().nonnegative();
/** "host:port" as the broker saw it (IPv6 in brackets). */
const Address = z.string().max(128);

/**
 * Why a session was refused or ended, stable for programs (the human reason travels beside it).
 * Each side logs it and `farmlink connect` prints it.
 */
export const SESSION_END_CODES = [
  /** The client's token does not allow this farm PC. */
  'not_authorized',
  /** The farm PC is not connected to this broker (and the client asked to open, not to wait). */
  'farm_unavailable',
  /** The farm PC does not expose that service (not in its `tunnel.services`). */
  'unknown_service',
  /** A resume named a session neither the broker nor the farm PC knows: the farm restarted, or the window passed. */
  'unknown_session',
  /** The farm PC (or the client) restarted: its side of the session is gone. A new session is needed. */
  'peer_restarted',
  /** A side was away longer than the resume window. */
  'resume_window_expired',
  /** No stream open and no data for the idle limit. */
  'idle_timeout',
  /** The same client opened the same tunnel again (a restart): the old session gives way at once. */
  'replaced',
  /** Closed on purpose by the client or by the farm PC (stopping, config change). */
  'closed',
  /** The broker is draining or stopping; resume on the next server. */
  'broker_going_away',
  /** A limit: sessions per farm, per client, or streams per session. */
  'limit_reached',
  /** A frame broke the protocol (logged with detail on the side that saw it). */
  'protocol_error',
] as const;
export const SessionEndCodeSchema = z.enum(SESSION_END_CODES);
export type SessionEndCode = z.infer<typeof SessionEndCodeSchema>;

/** Settings the broker announces in `welcome`; both sides follow them for their sessions on this broker. */
export const BrokerTimingsSchema = z.object({
  /** Tunnel socket health: a ping this often, dead after `ping_timeout_ms` without a pong. */
  ping_interval_ms: z.number().int().positive(),
  ping_timeout_ms: z.number().int().positive(),
  /** How long a session waits for a side that went away before it is ended. */
  resume_window_ms: z.number().int().positive(),
  /** A session with no stream open and no data for this long is ended. */
  idle_timeout_ms: z.number().int().positive(),
  /** Largest binary frame the broker relays (header included). */
  max_frame_bytes: z.number().int().positive(),
});
export type BrokerTimings = z.infer<typeof BrokerTimingsSchema>;

/** A WebRTC signalling payload, passed through the broker untouched (the broker does not read it). */
export const SignalPayloadSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('offer'), sdp: z.string().max(65_536) }),
  z.object({ kind: z.literal('answer'), sdp: z.string().max(65_536) }),
  z.object({ kind: z.literal('candidate'), candidate: z.string().max(1024), mid: z.string().max(64) }),
  /** The sender's addresses changed: drop every candidate it sent before and start ICE again. */
  z.object({ kind: z.literal('restart') }),
]);
export type SignalPayload = z.infer<typeof SignalPayloadSchema>;

// ---- farm PC → broker ------------------------------------------------------------------------

export const FarmHelloSchema = z.object({
  type: z.literal('farm_hello'),
  protocol: z.number().int().positive(),
  /** Must be the agent token's subject. */
  agent_id: AgentIdSchema,
  boot_id: BootIdSchema,
  /** The names in the farm's `tunnel.services` (never the targets: those stay on the PC). */
  services: z.array(z.string().max(64)).max(256),
  /** The PC's own non-internal addresses, for diagnostics (the broker records the one it sees too). */
  local_addresses: z.array(z.string().max(64)).max(64),
  version: z.string().max(256),
});

/** The PC's addresses changed (the interface watcher saw it): sent at once, before any heartbeat. */
export const FarmAddressChangeSchema = z.object({
  type: z.literal('address_change'),
  local_addresses: z.array(z.string().max(64)).max(64),
});

export const SessionAcceptSchema = z.object({
  type: z.literal('session_accept'),
  session_id: SessionIdSchema,
  route: RouteSchema,
});

export const SessionRefuseSchema = z.object({
  type: z.literal('session_refuse'),
  session_id: SessionIdSchema,
  route: RouteSchema,
  code: SessionEndCodeSchema,
  reason: Reason,
});

// ---- remote client → broker ------------------------------------------------------------------

export const ClientHelloSchema = z.object({
  type: z.literal('client_hello'),
  protocol: z.number().int().positive(),
  boot_id: BootIdSchema,
  version: z.string().max(256),
});

export const OpenSchema = z.object({
  type: z.literal('open'),
  request_id: RequestId,
  agent_id: AgentIdSchema,
  service: ServiceNameSchema,
  /**
   * Stable for one tunnel of one client across its restarts (`farmlink connect` derives it from the
   * farm, service and listen address): a new open with the same key replaces the old session at once.
   */
  client_key: z.string().min(1).max(256),
  /** Resume this session (after a reconnect) instead of opening a new one. */
  resume: SessionIdSchema.optional(),
  /** Wait for a farm that is not connected (up to the resume window) instead of failing with farm_unavailable. */
  wait: z.boolean().optional(),
});

// ---- both sides → broker -----------------------------------------------------------------------

/** A signalling payload for the other side of a session. */
export const SignalSchema = z.object({
  type: z.literal('signal'),
  session_id: SessionIdSchema,
  payload: SignalPayloadSchema,
});

/** Ends a session on purpose; the broker tells the other side (`session_closed`, code `closed`). */
export const SessionCloseSchema = z.object({
  type: z.literal('session_close'),
  session_id: SessionIdSchema,
  reason: Reason,
});

/** What a side tells the broker about a session's health, for the broker's diagnostics and metrics. */
export const SessionReportSchema = z.object({
  type: z.literal('session_report'),
  session_id: SessionIdSchema,
  path: z.enum(['relay', 'direct']),
  rtt_ms: z.number().nonnegative().nullable(),
  streams_open: z.number().int().nonnegative(),
});

// ---- broker → farm PC and remote client --------------------------------------------------------

export const WelcomeSchema = z.object({
  type: z.literal('welcome'),
  protocol: z.number().int().positive(),
  broker_id: z.string().max(128),
  role: z.enum(['farm', 'client']),
  /** The address this socket comes from, as the broker sees it. */
  observed_address: Address,
  timings: BrokerTimingsSchema,
});

/** To the farm: a client opens (or resumes) a session to one of its services. */
export const SessionOpenSchema = z.object({
  type: z.literal('session_open'),
  session_id: SessionIdSchema,
  route: RouteSchema,
  service: z.string().max(64),
  client: z.object({ name: ClientNameSchema, address: Address }),
  /** True when the client resumes a session this farm may still hold; the farm refuses with unknown_session if not. */
  resume: z.boolean(),
});

/** To the client: the answer to `open`. */
export const OpenedSchema = z.object({
  type: z.literal('opened'),
  request_id: RequestId,
  session_id: SessionIdSchema,
  route: RouteSchema,
  agent_id: AgentIdSchema,
  service: z.string().max(64),
  /** True when an existing session continues (its streams with it); false for a new one. */
  resumed: z.boolean(),
  /** The farm's address as the broker last saw it. */
  farm_address: Address,
});

export const OpenFailedSchema = z.object({
  type: z.literal('open_failed'),
  request_id: RequestId,
  code: SessionEndCodeSchema,
  reason: Reason,
});

/**
 * The other side of a session went away (`down`: the session waits up to the resume window), came
 * back (`up`), or changed address (`moved`: any direct path is stale; the relay carries on).
 */
export const PeerStateSchema = z.object({
  type: z.literal('peer_state'),
  session_id: SessionIdSchema,
  state: z.enum(['up', 'down', 'moved']),
  reason: Reason,
  /** The peer's address as the broker sees it now (up, moved). */
  address: Address.optional(),
  /** The route to use from now on (up: a resume on this broker may assign a new one). */
  route: RouteSchema.optional(),
});

export const SessionClosedSchema = z.object({
  type: z.literal('session_closed'),
  session_id: SessionIdSchema,
  code: SessionEndCodeSchema,
  reason: Reason,
});

/** The broker is draining: move to the next server now; sessions resume there. */
export const BrokerDrainingSchema = z.object({
  type: z.literal('draining'),
  reason: Reason,
});

export const FarmToBrokerSchema = z.discriminatedUnion('type', [
  FarmHelloSchema,
  FarmAddressChangeSchema,
  SessionAcceptSchema,
  SessionRefuseSchema,
  SignalSchema,
  SessionCloseSchema,
  SessionReportSchema,
]);
export type FarmToBroker = z.infer<typeof FarmToBrokerSchema>;

export const ClientToBrokerSchema = z.discriminatedUnion('type', [
  ClientHelloSchema,
  OpenSchema,
  SignalSchema,
  SessionCloseSchema,
  SessionReportSchema,
]);
export type ClientToBroker = z.infer<typeof ClientToBrokerSchema>;

export const BrokerToFarmSchema = z.discriminatedUnion('type', [
  WelcomeSchema,
  SessionOpenSchema,
  SignalSchema,
  PeerStateSchema,
  SessionClosedSchema,
  BrokerDrainingSchema,
]);
export type BrokerToFarm = z.infer<typeof BrokerToFarmSchema>;

export const BrokerToClientSchema = z.discriminatedUnion('type', [
  WelcomeSchema,
  OpenedSchema,
  OpenFailedSchema,
  SignalSchema,
  PeerStateSchema,
  SessionClosedSchema,
  BrokerDrainingSchema,
]);
export type BrokerToClient = z.infer<typeof BrokerToClientSchema>;

// ---- diagnostics (agent snapshot, broker metrics, `farmlink connect`) --------------------------

/** establishing: opened, no path up yet; active: a path carries it; degraded: the peer or the path is away, waiting to resume; closed. */
export const SESSION_STATES = ['establishing', 'active', 'degraded', 'closed'] as const;
export const SessionStateSchema = z.enum(SESSION_STATES);
export type SessionState = z.infer<typeof SessionStateSchema>;

export const TunnelPathKindSchema = z.enum(['relay', 'direct']);
export type TunnelPathKind = z.infer<typeof TunnelPathKindSchema>;

/** Why a session recovered, and how (docs/tunnel.md, "Recovery by kind of failure"). */
export const RECOVERY_KINDS = [
  /** The socket to the broker timed out or dropped: reconnect at once and resume. */
  'network_timeout',
  /** This side's addresses changed: reconnect from the new address, drop direct candidates, resume. */
  'address_change',
  /** The peer went away: wait for it (resume window), or a new session when it restarted. */
  'peer_restart',
  /** The direct path stopped answering: traffic back on the relay. */
  'direct_lost',
  /** The direct path answered long enough: traffic moved to it. */
  'direct_up',
  /** The broker drained or restarted: resume on the next server. */
  'broker_restart',
] as const;
export const RecoveryKindSchema = z.enum(RECOVERY_KINDS);

export const RecoveryEventSchema = z.object({
  at: EpochMs,
  kind: RecoveryKindSchema,
  reason: z.string(),
  /** How long the session was without a path, when it had to wait (ms). */
  took_ms: z.number().nonnegative().nullable(),
});
export type RecoveryEvent = z.infer<typeof RecoveryEventSchema>;

export const TunnelSessionInfoSchema = z.object({
  session_id: z.string(),
  /** The other side: the client's name on the farm PC, the farm's agent id on a client. */
  peer: z.string(),
  service: z.string(),
  state: SessionStateSchema,
  path: TunnelPathKindSchema.nullable(),
  /** Round trip of the session's health pings on its current path. */
  rtt_ms: z.number().nonnegative().nullable(),
  bytes_in: z.number().nonnegative(),
  bytes_out: z.number().nonnegative(),
  streams_open: z.number().int().nonnegative(),
  streams_total: z.number().int().nonnegative(),
  created_at: EpochMs,
  last_activity_at: EpochMs,
  /** The last recoveries, oldest first (bounded). */
  recoveries: z.array(RecoveryEventSchema),
});
export type TunnelSessionInfo = z.infer<typeof TunnelSessionInfoSchema>;

/** The tunnel part of the agent's snapshot: what the panel's Tunnels card shows. */
export const TunnelSummarySchema = z.object({
  /** The allowlist: name and where it leads on this PC. */
  services: z.array(z.object({ name: z.string(), target: z.string() })),
  /** The tunnel socket to the broker. */
  link: z.object({
    state: z.enum(['off', 'connecting', 'connected', 'waiting']),
    broker_url: z.string().nullable(),
    /** This PC's address as the broker last saw it. */
    observed_address: z.string().nullable(),
    /** When `waiting`: why, and when the next attempt is due. */
    detail: z.string().nullable(),
    next_attempt_at: EpochMs.nullable(),
  }),
  sessions: z.array(TunnelSessionInfoSchema),
  /** Sessions ended since the agent started, and the last few (for "who was connected"). */
  closed_total: z.number().int().nonnegative(),
});
export type TunnelSummary = z.infer<typeof TunnelSummarySchema>;
