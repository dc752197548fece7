/**
 * What the tunnel holds in memory: per open session and per open (idle) stream, on the hub (the broker)
 * and on the agent (the farm end), read after a forced garbage collection in each process.
 *
 *   npm run build && node dist/bench/tunnel-memory.js [--sessions 1000] [--streams 1000]
 *
 * Sessions are opened by one remote client socket (so the figure is the session's own cost, not a
 * socket's); streams are opened on one session, each connected through to an echo service and idle.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { systemClock, systemRandom } from '../lib/clock.js';
import { BrokerLink } from '../lib/tunnel/broker-link.js';
import { TunnelSession } from '../lib/tunnel/tunnel-session.js';
import type { TunnelStream } from '../lib/tunnel/tunnel-stream.js';
import { TUNNEL_PROTOCOL_VERSION, type BrokerToClient } from '../protocol/tunnel.js';
import { mintToken } from '../server/auth.js';
import { BENCH_SECRET, memoryAfterGc } from './lib/bench-hub.js';
import { Inspector, type HeapReading } from './lib/inspector.js';
import { num, table } from './lib/markdown.js';
import { startEchoServer } from './lib/tcp-tools.js';
import { BENCH_AGENT_ID, agentInspectorUrl, startTunnelRig } from './tunnel-pipes.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1000' },
    streams: { type: 'string', default: '1000' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write('node dist/bench/tunnel-memory.js [--sessions N, 1000] [--streams N, 1000]\n');
  process.exit(0);
}
const sessionCount = Number(values.sessions);
const streamCount = Number(values.streams);
// Sessions all go to one farm PC, which the hub allows 1024 of (--tunnel-max-sessions-per-farm).
for (const [flag, n, max] of [
  ['sessions', sessionCount, 1024],
  ['streams', streamCount, 20_000],
] as const) {
  if (!Number.isInteger(n) || n < 1 || n > max) {
    process.stderr.write(`--${flag}: expected a whole number 1–${max}\n`);
    process.exit(2);
  }
}
const log = (line: string) => process.stderr.write(`${line}\n`);

const echo = await startEchoServer();
const rig = await startTunnelRig(echo.port, { direct: false, inspect: true });
const agentUrl = agentInspectorUrl(rig);
if (!agentUrl) throw new Error(`no inspector address on the agent's stderr:\n${rig.agent.cli.stderr}`);

async function agentMemory(): Promise<HeapReading> {
  const inspector = await Inspector.connect(agentUrl ?? '');
  try {
    return await inspector.memoryAfterGc();
  } finally {
    inspector.close();
  }
}
const settle = () => new Promise((resolve) => setTimeout(resolve, 1500));
async function readBoth(): Promise<{ hub: HeapReading; agent: HeapReading }> {
  await settle();
  return { hub: await memoryAfterGc(rig.hub), agent: await agentMemory() };
}

const link = new BrokerLink({
  role: 'client',
  servers: [rig.hub.url],
  token: await mintToken(BENCH_SECRET, { role: 'client', clientName: 'bench-memory', agents: [BENCH_AGENT_ID] }),
  hello: () => ({
    type: 'client_hello',
    protocol: TUNNEL_PROTOCOL_VERSION,
    boot_id: randomBytes(16).toString('hex'),
    version: 'bench',
  }),
  clock: systemClock,
  random: systemRandom,
  logger: pino({ level: 'silent' }),
});
const answers = new Map<number, (message: BrokerToClient) => void>();
link.events.on('message', (message) => {
  if (message.type === 'opened' || message.type === 'open_failed') answers.get(message.request_id)?.(message);
});
link.start();
while (!link.isConnected) await new Promise((resolve) => setTimeout(resolve, 20));

const sessions: TunnelSession[] = [];
async function openSession(n: number): Promise<TunnelSession> {
  const answer = new Promise<BrokerToClient>((resolve) => answers.set(n, resolve));
  link.send({ type: 'open', request_id: n, agent_id: BENCH_AGENT_ID, service: 'svc', client_key: `bench-${n}` });
  const opened = await answer;
  if (opened.type !== 'opened') throw new Error(`open ${n} failed: ${JSON.stringify(opened)}`);
  const timings = link.timings;
  const session = new TunnelSession({
    role: 'client',
    sessionId: opened.session_id,
    peer: BENCH_AGENT_ID,
    service: 'svc',
    clock: systemClock,
    pingIntervalMs: timings?.ping_interval_ms ?? 5000,
    pingTimeoutMs: timings?.ping_timeout_ms ?? 10_000,
  });
  const relay = link.relayPath(opened.route);
  if (!relay) throw new Error('the client link went down');
  session.attach(relay);
  return session;
}

log(`memory: baseline`);
const base = await readBoth();
log(`memory: opening ${sessionCount} sessions`);
for (let i = 1; i <= sessionCount; i++) sessions.push(await openSession(i));
const withSessions = await readBoth();
const streamSession = sessions[0];
if (!streamSession) throw new Error('no session');
log(`memory: opening ${streamCount} streams on one session`);
const streams: TunnelStream[] = [];
for (let i = 0; i < streamCount; i++) {
  const stream = streamSession.openStream();
  streams.push(stream);
  // Through to the echo service and back: the farm end has dialled it and both sockets are up.
  await new Promise<void>((resolve, reject) => {
    stream.once('data', () => resolve());
    stream.once('error', reject);
    stream.write('x');
  });
}
const withStreams = await readBoth();

const perKb = (after: number, before: number, n: number) => num((after - before) / n, 1);
const rows = [
  [
    `open session (${sessionCount})`,
    perKb(withSessions.hub.heapUsedKb, base.hub.heapUsedKb, sessionCount),
    perKb(withSessions.hub.rssKb, base.hub.rssKb, sessionCount),
    perKb(withSessions.agent.heapUsedKb, base.agent.heapUsedKb, sessionCount),
    perKb(withSessions.agent.rssKb, base.agent.rssKb, sessionCount),
  ],
  [
    `open idle stream (${streamCount})`,
    perKb(withStreams.hub.heapUsedKb, withSessions.hub.heapUsedKb, streamCount),
    perKb(withStreams.hub.rssKb, withSessions.hub.rssKb, streamCount),
    perKb(withStreams.agent.heapUsedKb, withSessions.agent.heapUsedKb, streamCount),
    perKb(withStreams.agent.rssKb, withSessions.agent.rssKb, streamCount),
  ],
];
process.stdout.write(
  `\n### Memory per session and per stream (after a forced GC in each process)\n\n` +
    table(['each', 'hub heap KB', 'hub RSS KB', 'agent heap KB', 'agent RSS KB'], rows) +
    `\n\nBaseline: hub heap ${num(base.hub.heapUsedKb / 1024, 1)} MB, RSS ${num(base.hub.rssKb / 1024, 1)} MB; ` +
    `agent heap ${num(base.agent.heapUsedKb / 1024, 1)} MB, RSS ${num(base.agent.rssKb / 1024, 1)} MB.\n`,
);

for (const stream of streams) stream.destroy();
for (const session of sessions) session.close('closed', 'bench over');
link.stop('bench over');
await rig.stop();
await echo.close();
