/**
 * The floor for the hub's registration cost: a bare `ws` server doing the least an agent's
 * registration needs — the upgrade, the HS256 check of the token in the Authorization header
 * (issuer, role and subject as the hub checks them), hello validated with the protocol's own
 * schema, `registered` answered with the hub's fields (enhanced mode granted to an agent that
 * offers it, as the hub does), and then heartbeats answered (validated, batched in enhanced mode)
 * so the agent stays. No budgets, rate limits, registry, metrics, logs, breakers or event sink.
 * bench/registration.ts runs it beside the hub, on the same fleet, to say how far above the floor
 * the hub is.
 *
 *   node dist/bench/floor-server.js --port P --secret S [--hub-id ID]
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { jwtVerify } from 'jose';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  AgentBatchSchema,
  AgentMessageSchema,
  HelloSchema,
  type Heartbeat,
  type HubMessage,
} from '../protocol/messages.js';
import { Capability } from '../protocol/version.js';

const { values } = parseArgs({
  options: { port: { type: 'string' }, secret: { type: 'string' }, 'hub-id': { type: 'string' } },
});
const key = new TextEncoder().encode(values.secret ?? '');
const hubId = values['hub-id'] ?? 'floor';
// The hub's defaults, so `registered` is the same size.
const LIMITS = { max_payload_bytes: 65_536, max_messages_per_second: 50, burst_messages: 200 };
const BATCH = { window_ms: 50, max_messages: 500, max_bytes: 65_536 };

const server = http.createServer((_req, res) => {
  res.writeHead(200).end('ok');
});
const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 65_536,
  perMessageDeflate: false,
  clientTracking: false,
});

server.on('upgrade', (req, socket, head) => {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (!token) {
    socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
    return;
  }
  jwtVerify(token, key, { algorithms: ['HS256'], issuer: 'farmlink' }).then(
    ({ payload }) => {
      if (payload.role !== 'agent' || typeof payload.sub !== 'string') {
        socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        return;
      }
      const subject = payload.sub;
      wss.handleUpgrade(req, socket, head, (ws) => serve(ws, subject));
    },
    () => socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n'),
  );
});

function serve(ws: WebSocket, subject: string): void {
  let enhanced: boolean | undefined;
  const send = (message: HubMessage) =>
    ws.send(JSON.stringify(enhanced ? { type: 'batch', messages: [message] } : message));
  const ack = (hb: Heartbeat): HubMessage => ({
    type: 'heartbeat_ack',
    ...(hb.seq !== undefined ? { seq: hb.seq } : {}),
    timestamp: hb.timestamp,
    server_time: Date.now(),
  });
  ws.on('message', (data: Buffer) => {
    const json: unknown = JSON.parse(data.toString('utf8'));
    if (enhanced === undefined) {
      const hello = HelloSchema.safeParse(json);
      if (!hello.success || hello.data.agent_id !== subject) {
        ws.close(4403, 'forbidden');
        return;
      }
      const granted = hello.data.capabilities?.includes(Capability.BATCH_V1) === true;
      ws.send(
        JSON.stringify({
          type: 'registered',
          agent_id: subject,
          session_id: randomUUID(),
          hub_id: hubId,
          server_time: Date.now(),
          limits: LIMITS,
          ...(granted ? { capabilities: [Capability.BATCH_V1], acked_seq: 0, batch: BATCH } : {}),
        }),
      );
      enhanced = granted;
      return;
    }
    if (enhanced) {
      const batch = AgentBatchSchema.safeParse(json);
      if (!batch.success) return;
      for (const message of batch.data.messages) if (message.type === 'heartbeat') send(ack(message));
      return;
    }
    const message = AgentMessageSchema.safeParse(json);
    if (message.success && message.data.type === 'heartbeat') send(ack(message.data));
  });
}

server.listen({ port: Number(values.port ?? 0), host: '127.0.0.1', backlog: 4096 }, () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ event: 'listening', port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
