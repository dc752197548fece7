import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { FarmlinkError } from '../lib/errors.js';
import { AGENT_VERSION } from '../lib/version.js';
import { AgentIdSchema, describeIssues } from '../protocol/messages.js';
import { AGENT_LEGACY_WS_PATH, AGENT_WS_PATH } from '../protocol/version.js';
import { TUNNEL_WS_PATH } from '../protocol/tunnel.js';
import { bearerToken } from './auth.js';
import { pathParam, readJsonBody, requestPath, sendError, sendJson, statusOf } from './http-util.js';
import { MAX_JSON_DEPTH } from './json-depth.js';
import type { Hub } from './hub.js';
import { hubView } from './hub-view.js';

const CommandRequestSchema = z.object({
  name: z.string().min(1).max(128),
  args: z.record(z.string(), z.unknown()).default({}),
  timeout_ms: z.number().int().positive().max(600_000).optional(),
});

const BroadcastRequestSchema = z.object({ data: z.record(z.string(), z.unknown()) });
const DrainRequestSchema = z.object({ reason: z.string().max(200).optional() });

const AGENT_PATH = /^\/api\/v1\/admin\/agents\/([^/]+)$/;
const COMMAND_PATH = /^\/api\/v1\/admin\/agents\/([^/]+)\/commands$/;

/**
 * HTTP side of the hub: /health and /metrics (open, for load balancers and Prometheus) and the
 * admin API under /api/v1/admin (Bearer admin token from `farmlink token --admin`).
 */
export async function handleHttp(hub: Hub, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  let path = '?';
  try {
    // Inside the try: a request target the URL parser cannot read once threw out of this
    // function, and the unhandled rejection ended the hub process.
    path = requestPath(req);
    if (path === '/health' && method === 'GET') {
      const { draining, agents_connected, connections_open } = await hubView(hub).health();
      sendJson(res, draining ? 503 : 200, {
        status: draining ? 'draining' : 'ok',
        hub_id: hub.id,
        version: AGENT_VERSION,
        agents_connected,
        connections_open,
        uptime_s: Math.round((Date.now() - hub.startedAt) / 1000),
      });
      return;
    }
    if (path === '/metrics' && method === 'GET') {
      // Prometheus text stays the default; a client that asks for JSON gets the per-mode view.
      if (prefersJson(req.headers.accept)) {
        sendJson(res, 200, await hubView(hub).metricsView());
        return;
      }
      const registry = await hubView(hub).metrics();
      const text = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
      return;
    }
    if (path === '/' && method === 'GET') {
      sendJson(res, 200, {
        service: 'farmlink-hub',
        hub_id: hub.id,
        endpoints: {
          agents: AGENT_WS_PATH,
          agents_legacy_only: AGENT_LEGACY_WS_PATH,
          tunnel: TUNNEL_WS_PATH,
          health: '/health',
          metrics: '/metrics',
          admin: '/api/v1/admin/agents',
        },
      });
      return;
    }
    if (path.startsWith('/api/v1/admin/')) {
      await handleAdmin(hub, req, res, path, method);
      return;
    }
    sendError(res, 404, 'NOT_FOUND', `No route for ${method} ${path}`);
  } catch (error) {
    if (error instanceof FarmlinkError) {
      if (!res.headersSent) sendError(res, statusOf(error), error.code, error.message);
      return;
    }
    hub.logger.error({ err: error, path, method }, `Admin API ${method} ${path} failed; answered 500 INTERNAL`);
    if (!res.headersSent) sendError(res, 500, 'INTERNAL', 'internal error');
  }
}

async function handleAdmin(
  hub: Hub,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  method: string,
): Promise<void> {
  const token = bearerToken(req.headers.authorization);
  if (!token)
    throw new FarmlinkError('UNAUTHORIZED', 'send Authorization: Bearer <admin token> (farmlink token --admin)');
  const claims = await hub.verifier.verify(token);
  if (claims.role !== 'admin') throw new FarmlinkError('FORBIDDEN', `a ${claims.role} token cannot use the admin API`);

  if (path === '/api/v1/admin/agents' && method === 'GET') {
    const view = hubView(hub);
    const [agents, { draining }] = await Promise.all([view.agents(), view.health()]);
    sendJson(res, 200, { hub_id: hub.id, draining, agents });
    return;
  }
  const commandAgent = COMMAND_PATH.exec(path)?.[1];
  if (commandAgent !== undefined && method === 'POST') {
    const agentId = agentIdParam(commandAgent);
    const body = parseBody(CommandRequestSchema, await readJsonBody(req));
    const outcome = await hubView(hub).command(agentId, body.name, body.args, body.timeout_ms);
    switch (outcome.status) {
      case 'ok':
        sendJson(res, 200, { ok: true, data: outcome.data });
        return;
      case 'error':
        sendJson(res, 200, { ok: false, error: outcome.error });
        return;
      case 'not_connected': {
        const elsewhere = await hub.locate(agentId);
        if (elsewhere)
          sendError(
            res,
            409,
            'AGENT_ON_OTHER_HUB',
            `Agent "${agentId}" is connected to hub ${elsewhere.hub_id}; send the command there`,
            { hub_id: elsewhere.hub_id },
          );
        else
          sendError(
            res,
            404,
            'AGENT_NOT_CONNECTED',
            `No agent "${agentId}" is connected to this hub${hub.shared ? ' or any hub sharing its Redis' : ''}`,
          );
        return;
      }
      case 'agent_gone':
        sendError(res, 502, 'AGENT_DISCONNECTED', `Agent "${agentId}" disconnected before answering`);
        return;
      case 'timeout':
        sendError(res, 504, 'COMMAND_TIMEOUT', `Agent "${agentId}" did not answer ${body.name} in time`);
        return;
      case 'result_too_deep':
        sendError(
          res,
          502,
          'RESULT_TOO_DEEP',
          `Agent "${agentId}" answered ${body.name} with a result nested deeper than ${MAX_JSON_DEPTH} levels; the hub does not pass it on`,
        );
        return;
    }
  }
  const pathAgent = AGENT_PATH.exec(path)?.[1];
  if (pathAgent !== undefined && method === 'GET') {
    const agentId = agentIdParam(pathAgent);
    const found = await hubView(hub).agent(agentId);
    if (found) {
      sendJson(res, 200, { ...found.agent, hub_id: found.hub_id, here: true });
      return;
    }
    // Not here: the registry the hubs share through Redis may know where it is.
    const elsewhere = await hub.locate(agentId);
    if (elsewhere) sendJson(res, 200, { ...elsewhere, here: false });
    else
      sendError(
        res,
        404,
        'AGENT_NOT_CONNECTED',
        `No agent "${agentId}" is connected to this hub${hub.shared ? ' or any hub sharing its Redis' : ''}`,
      );
    return;
  }
  if (path === '/api/v1/admin/tunnel/sessions' && method === 'GET') {
    // This process's broker: a session's two ends are always on one process (docs/tunnel.md).
    sendJson(res, 200, {
      hub_id: hub.id,
      draining: hub.draining,
      farms: hub.tunnel.listFarms(),
      sessions: hub.tunnel.listSessions(),
    });
    return;
  }
  if (path === '/api/v1/admin/events' && method === 'GET') {
    await sendEvents(hub, req, res);
    return;
  }
  if (path === '/api/v1/admin/broadcast' && method === 'POST') {
    const body = parseBody(BroadcastRequestSchema, await readJsonBody(req));
    sendJson(res, 200, { recipients: await hubView(hub).broadcast(body.data) });
    return;
  }
  if (path === '/api/v1/admin/drain' && method === 'POST') {
    const body = parseBody(DrainRequestSchema, await readJsonBody(req));
    const { started, connections_open } = await hubView(hub).drain(body.reason);
    sendJson(res, 202, { draining: true, started, connections_open });
    return;
  }
  sendError(res, 404, 'NOT_FOUND', `No admin route for ${method} ${path}`);
}

/** Accept names application/json ahead of (or without) text/plain: the JSON view of /metrics. */
function prefersJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const types = accept.split(',').map((part) => part.split(';')[0]?.trim().toLowerCase());
  const json = types.indexOf('application/json');
  if (json < 0) return false;
  const text = types.findIndex((t) => t === 'text/plain' || t === 'application/openmetrics-text');
  return text < 0 || json < text;
}

const EVENTS_LIMIT_DEFAULT = 100;
const EVENTS_LIMIT_MAX = 1000;

/**
 * GET /api/v1/admin/events?after=CURSOR&limit=N: the hub's event sink in order, a page at a time.
 * `after` is a cursor from an earlier answer (its form depends on the sink, which checks it).
 */
async function sendEvents(hub: Hub, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const query = new URLSearchParams((req.url ?? '').split('?')[1]?.split('#')[0] ?? '');
  const after = query.get('after') ?? undefined;
  const limitText = query.get('limit');
  let limit = EVENTS_LIMIT_DEFAULT;
  if (limitText !== null) {
    if (!/^\d{1,5}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > EVENTS_LIMIT_MAX) {
      throw new FarmlinkError(
        'BAD_LIMIT',
        `limit: expected a whole number from 1 to ${EVENTS_LIMIT_MAX}, got "${limitText.slice(0, 40)}"`,
      );
    }
    limit = Number(limitText);
  }
  if (after === '') throw new FarmlinkError('BAD_CURSOR', 'after: expected a cursor from an earlier answer, got ""');
  const sink = hub.events;
  if (!sink.read) {
    sendError(res, 404, 'EVENTS_NOT_READABLE', `This hub's ${sink.kind} event sink cannot be read through the API`);
    return;
  }
  const page = await sink.read(after, limit);
  sendJson(res, 200, { events: page.events, next: page.next, sink: sink.kind });
}

/** The agent id from a path segment: decoded, and an id an agent could have (else 400, not a lookup). */
function agentIdParam(segment: string): string {
  const id = pathParam(segment, 'agent id');
  if (!AgentIdSchema.safeParse(id).success) {
    throw new FarmlinkError(
      'BAD_AGENT_ID',
      `"${id.slice(0, 100)}" is not an agent id (1–128 letters, digits, "_", ".", ":" or "-")`,
    );
  }
  return id;
}

function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new FarmlinkError('BAD_REQUEST', `invalid body: ${describeIssues(parsed.error)}`);
  return parsed.data;
}
