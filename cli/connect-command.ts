import { BadArguments, explainBadArguments, parseArgsMessage } from './args.js';
import fs from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { pino, type Level, type Logger } from 'pino';
import { ConfigError } from '../lib/errors.js';
import { TunnelClient, type TunnelClientEndCode } from '../client/tunnel-client.js';
import { addressHost } from '../lib/tunnel/address-host.js';
import { AgentIdSchema } from '../protocol/messages.js';
import { isServerUrl } from '../protocol/server-url.js';
import { ServiceNameSchema } from '../protocol/tunnel.js';
import { ExitCode } from './exit-codes.js';
import { onShutdownSignal } from './signals.js';

export const CONNECT_HELP = `Usage: farmlink connect AGENT_ID SERVICE --hub URL [--hub URL …] --listen [HOST:]PORT [--token-file FILE] [--no-direct]

Serves a local TCP port whose every connection comes out at SERVICE (a name in the farm PC's
tunnel.services) on the farm PC AGENT_ID, through the hub's tunnel broker. It keeps the tunnel up by
itself: through hub restarts (the next --hub in turn), network drops and farm PC restarts; the port
stays open throughout. Prints one line per change of state, for example:

  listening 127.0.0.1:15037 → pc-017/adb via relay
  pc-017/adb now direct (rtt 0.4 ms)
  pc-017/adb back on relay (direct path lost: direct path: no answer to health pings for 10000 ms)
  pc-017/adb farm unavailable, reconnecting
  pc-017/adb back via relay after 3.2 s
  pc-017/adb farm moved to 203.0.113.7

  AGENT_ID            the farm PC's agent id (the token must allow it)
  SERVICE             the service's name on that PC, e.g. adb
  --hub URL           the hub (http(s)://host:port, or a ws(s):// tunnel endpoint); repeat for fallbacks, in order
  --listen [HOST:]PORT  the local address to serve [host 127.0.0.1]
  --allow-remote      allow a --listen host other than loopback (anyone who reaches it reaches the service)
  --token-file FILE   a client token (farmlink token --client NAME --agents ID) [FARMLINK_CLIENT_TOKEN]
  --no-direct         stay on the relay: no direct WebRTC path to the farm PC (by default one is tried
                      beside the relay, and traffic moves to it once it has answered for a while)
  --log-level LEVEL   logs on stderr: fatal|error|warn|info|debug [warn]

Stops on SIGINT or SIGTERM, closing the session at the hub (exit 0). Exit codes: 64 bad arguments;
78 a configuration problem (token file, token of the wrong kind or refused by the hub, --listen
address in use or not loopback, unknown service); 77 the token does not allow this farm PC; 1 anything else.
`;

export interface ConnectRequest {
  agentId: string;
  service: string;
  hubs: string[];
  host: string;
  port: number;
  allowRemote: boolean;
  tokenFile: string | undefined;
  logLevel: Level;
  /** Try a direct path beside the relay (false with --no-direct). */
  direct: boolean;
}

const LEVELS: readonly Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export async function connectCommand(argv: string[]): Promise<number> {
  const request = explainBadArguments('connect', () => parseConnectArgs(argv));
  if (request === undefined) return ExitCode.BAD_ARGUMENTS;
  if (request === 'help') {
    process.stdout.write(CONNECT_HELP);
    return ExitCode.OK;
  }
  const token = readClientToken(request.tokenFile);
  if (!request.allowRemote && !isLoopback(request.host)) {
    throw new ConfigError([
      `--listen ${request.host}:${request.port}: not a loopback address; anyone who reaches it reaches ` +
        `${request.agentId}/${request.service}. Add --allow-remote to mean it`,
    ]);
  }
  return runConnect(request, token);
}

export function parseConnectArgs(argv: string[]): ConnectRequest | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        hub: { type: 'string', multiple: true },
        listen: { type: 'string' },
        'token-file': { type: 'string' },
        'allow-remote': { type: 'boolean' },
        'no-direct': { type: 'boolean' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new BadArguments(parseArgsMessage(error));
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length !== 2) {
    throw new BadArguments(`expected AGENT_ID and SERVICE, got ${positionals.length} argument(s)`);
  }
  const [agentId, service] = positionals as [string, string];
  if (!AgentIdSchema.safeParse(agentId).success) {
    throw new BadArguments(`AGENT_ID "${agentId}": expected 1–128 letters, digits, "_", ".", ":" or "-"`);
  }
  if (!ServiceNameSchema.safeParse(service).success) {
    throw new BadArguments(
      `SERVICE "${service}": expected 1–64 letters, digits, "_", "." or "-", starting with a letter or digit`,
    );
  }
  const hubs = values.hub ?? [];
  if (hubs.length === 0) throw new BadArguments('--hub URL is required (repeat it for fallbacks)');
  for (const hub of hubs) {
    if (!isServerUrl(hub)) throw new BadArguments(`--hub "${hub}": expected an http(s):// or ws(s):// URL`);
  }
  if (values.listen === undefined) throw new BadArguments('--listen [HOST:]PORT is required');
  const { host, port } = parseListen(values.listen);
  const logLevel = (values['log-level'] ?? 'warn') as Level;
  if (!LEVELS.includes(logLevel)) {
    throw new BadArguments(`--log-level "${values['log-level'] ?? ''}": expected one of ${LEVELS.join(', ')}`);
  }
  return {
    agentId,
    service,
    hubs,
    host,
    port,
    allowRemote: values['allow-remote'] === true,
    tokenFile: values['token-file'],
    logLevel,
    direct: values['no-direct'] !== true,
  };
}

/** "15037", "127.0.0.1:15037", "[::1]:15037", "localhost:15037". */
export function parseListen(raw: string): { host: string; port: number } {
  const match = /^(?:(\[[^\]]+\]|[^:]+):)?(\d+)$/.exec(raw);
  const portText = match?.[2];
  const port = portText === undefined ? NaN : Number(portText);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new BadArguments(`--listen "${raw}": expected [HOST:]PORT with a port from 1 to 65535, e.g. 15037`);
  }
  const host = (match[1] ?? '127.0.0.1').replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}

/**
 * The client token from --token-file or FARMLINK_CLIENT_TOKEN. Its role claim is read (not verified:
 * the secret is the hub's) so that an agent or admin token is named for what it is here, instead of
 * as a refusal from the hub later.
 */
export function readClientToken(file: string | undefined): string {
  let token: string;
  let source: string;
  if (file !== undefined) {
    source = `--token-file ${file}`;
    try {
      token = fs.readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw new ConfigError([`${source}: cannot read it: ${(error as Error).message}`]);
    }
  } else {
    source = 'FARMLINK_CLIENT_TOKEN (environment)';
    token = (process.env.FARMLINK_CLIENT_TOKEN ?? '').trim();
    if (!token) {
      throw new ConfigError([
        '--token-file FILE or FARMLINK_CLIENT_TOKEN (environment): required: a client token (farmlink token --client NAME --agents ID)',
      ]);
    }
  }
  if (!token) throw new ConfigError([`${source}: empty; expected a client token`]);
  const claims = jwtClaims(token);
  if (!claims) throw new ConfigError([`${source}: not a JWT; expected a client token (farmlink token --client …)`]);
  if (claims.role !== 'client') {
    const what = typeof claims.role === 'string' ? `an ${claims.role} token` : 'a token without a FarmLink role';
    const subject = typeof claims.sub === 'string' ? ` for "${claims.sub}"` : '';
    throw new ConfigError([
      `${source}: ${what}${subject}; farmlink connect needs a client token (farmlink token --client NAME --agents ID)`,
    ]);
  }
  return token;
}

function jwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return claims && typeof claims === 'object' ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A line on stdout; a closed stdout (`| head -1`) must not stop the tunnel. */
function say(line: string): void {
  if (process.stdout.destroyed || !process.stdout.writable) return;
  try {
    process.stdout.write(`${line}\n`);
  } catch {
    // EPIPE as an exception on some platforms: the reader went away, the tunnel carries on.
  }
}

const rtt = (ms: number | null) => (ms === null ? '' : ` (rtt ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms)`);

async function runConnect(request: ConnectRequest, token: string): Promise<number> {
  process.stdout.on('error', () => {
    // The reader of our output went away; nothing to do but stop writing (say() checks).
  });
  const logger: Logger = pino({ level: request.logLevel, base: { cmd: 'connect' } }, pino.destination(2));
  const name = `${request.agentId}/${request.service}`;
  const client = new TunnelClient({
    hubs: request.hubs,
    token,
    agentId: request.agentId,
    service: request.service,
    logger,
    direct: request.direct,
  });
  let where = `${request.host}:${request.port}`;
  let announced = false;
  const announce = (tail: string): void => {
    if (announced) return;
    announced = true;
    say(`listening ${where} → ${name}${tail}`);
  };
  let printedPath: 'relay' | 'direct' | undefined;
  const onPath = (path: 'relay' | 'direct', rttMs: number | null): void => {
    if (!announced) announce(` via ${path}${rtt(rttMs)}`);
    else if (path !== printedPath) say(`${name} now ${path}${rtt(rttMs)}`);
    printedPath = path;
  };
  client.events.on('relay', ({ rttMs, directLost }) => {
    if (directLost !== undefined && announced) {
      printedPath = 'relay';
      say(`${name} back on relay (direct path lost: ${directLost})`);
      return;
    }
    onPath('relay', rttMs);
  });
  client.events.on('direct', ({ rttMs }) => {
    onPath('direct', rttMs);
  });
  client.events.on('farm_unavailable', () => {
    if (!announced) announce(', farm unavailable, reconnecting');
    else say(`${name} farm unavailable, reconnecting`);
  });
  client.events.on('session_ended', ({ code, reason }) => {
    const next = code === 'idle_timeout' ? 'the next connection opens a new one' : 'opening a new one';
    // The farm's own close arrives as "CODE: why"; say the code once.
    const why = reason.startsWith(`${code}: `) ? reason.slice(code.length + 2) : reason;
    say(`${name} session ended (${code}): ${why}; ${next}`);
  });
  client.events.on('farm_moved', ({ address }) => {
    // The host is what changed; the port is the farm's new outgoing socket, of no use to the reader.
    if (announced) say(`${name} farm moved to ${address === null ? 'a new address' : addressHost(address)}`);
  });
  client.events.on('link_down', ({ reason }) => {
    if (announced) say(`${name} hub connection lost (${reason}), reconnecting`);
  });
  client.events.on('resumed', ({ path, tookMs, newSession, rttMs }) => {
    printedPath = path;
    const line = `back via ${path} after ${(tookMs / 1000).toFixed(1)} s${newSession ? ' (new session)' : ''}${rtt(rttMs)}`;
    if (!announced) announce(` ${line}`);
    else say(`${name} ${line}`);
  });
  client.events.on('session_replaced', () => {
    say(`${name} replaced by another connect with the same listen address; stopping`);
  });

  const finished = new Promise<number>((resolve) => {
    client.events.on('closed', ({ code, reason }) => {
      resolve(exitFor(code, reason, name));
    });
  });

  let refusedByHub: string | undefined;
  const dialFailedStatus = new Promise<number>((resolve) => {
    // A hub that refuses the token at the upgrade will refuse it on every retry: say so and stop.
    client.events.on('hub_refused', ({ reason }) => {
      refusedByHub = reason;
      resolve(ExitCode.CONFIG);
    });
  });

  try {
    const address = await client.listen({ host: request.host, port: request.port });
    where = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    const why = err.code === 'EADDRINUSE' ? 'address in use' : err.message;
    await client.close('could not listen');
    throw new ConfigError([`--listen ${request.host}:${request.port}: ${why}`]);
  }

  const stopped = new Promise<number>((resolve) => {
    onShutdownSignal(
      async (signal) => {
        logger.info({ signal }, 'stopping: closing the session at the hub');
        await client.close(`farmlink connect stopped (${signal})`);
        resolve(ExitCode.OK);
      },
      () => {
        resolve(ExitCode.FORCED);
      },
    );
  });

  const code = await Promise.race([finished, stopped, dialFailedStatus]);
  if (refusedByHub !== undefined) {
    process.stderr.write(`farmlink connect: --token-file/FARMLINK_CLIENT_TOKEN: ${refusedByHub}\n`);
    await client.close('token refused');
  }
  return code;
}

function exitFor(code: TunnelClientEndCode, reason: string, name: string): number {
  if (code === 'stopped') return ExitCode.OK;
  process.stderr.write(`farmlink connect: ${name}: ${code}: ${reason}\n`);
  if (code === 'not_authorized') return ExitCode.NO_PERMISSION;
  if (code === 'unknown_service') return ExitCode.CONFIG;
  return ExitCode.FAILURE;
}
