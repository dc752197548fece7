/**
 * The floor for the hub's registration cost: a bare `ws` server doing the least an agent's
 * registration needs — the upgrade, the HS256 check of the token in the Authorization header,
 * parsing hello, answering `registered`, and then answering heartbeats so the agent stays. No
 * budgets, registry, metrics, logs or sink. bench/registration.ts runs it beside the hub, on the
 * same fleet, to say how far above the floor the hub is.
 *
 *   node dist/bench/floor-server.js --port P --secret S
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { jwtVerify } from 'jose';
import { WebSocketServer, type WebSocket } from 'ws';

const { values } = parseArgs({ options: { port: { type: 'string' }, secret: { type: 'string' } } });
const key = new TextEncoder().encode(values.secret ?? '');
const LIMITS = { max_payload_bytes: 65_536, max_messages_per_second: 50, burst_messages: 200 };

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
  jwtVerify(token, key, { algorithms: ['HS256'] }).then(
    ({ payload }) => wss.handleUpgrade(req, socket, head, (ws) => serve(ws, String(payload.sub))),
    () => socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n'),
  );
});

let sessions = 0;

function serve(ws: WebSocket, subject: string): void {
  let registered = false;
  ws.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString('utf8')) as {
      type: string;
      agent_id?: string;
      seq?: number;
      timestamp?: number;
    };
    if (!registered) {
      if (message.type !== 'hello' || message.agent_id !== subject) {
        ws.close(4403, 'forbidden');
        return;
      }
      registered = true;
      sessions += 1;
      ws.send(
        JSON.stringify({
          type: 'registered',
          agent_id: subject,
          session_id: String(sessions),
          hub_id: 'floor',
          server_time: Date.now(),
          limits: LIMITS,
        }),
      );
      return;
    }
    if (message.type === 'heartbeat') {
      ws.send(
        JSON.stringify({
          type: 'heartbeat_ack',
          seq: message.seq,
          timestamp: message.timestamp,
          server_time: Date.now(),
        }),
      );
    }
  });
}

server.listen({ port: Number(values.port ?? 0), host: '127.0.0.1', backlog: 4096 }, () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ event: 'listening', port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
