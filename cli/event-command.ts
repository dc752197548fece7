import { BadArguments, explainBadArguments, parseArgsMessage } from './args.js';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultDataDir } from '../agent/config/paths.js';
import { HostFailure } from '../agent/host/call-router.js';
import { errorInfo } from '../lib/errors.js';
import { PRIORITIES, type Priority } from '../protocol/messages.js';
import { ExitCode } from './exit-codes.js';
import { runningAgent } from './startup/agent-lock.js';
import { PanelAttachment } from './startup/panel-attachment.js';

export const EVENT_HELP = `Usage: farmlink event NAME [--data JSON] [--count N] [--priority high|normal|low] [--ttl SECONDS] [--data-dir DIR]

Hands an event to the agent running on this PC, which stores it in its durable outbox and delivers
it to the hub (in enhanced mode exactly once, in order, across reconnects and restarts). Exits 0
once every event is durably accepted, printing their sequence numbers, one per line; a summary
goes to stderr. The agent is found through its data dir, as the desktop app finds it.

  NAME              the event's name (1–128 characters), e.g. job.finished
  --data JSON       the event's data, any JSON value [none: null]
  --count N         send N copies of the event (the same data each time) [1]
  --priority P      high (sent at once) | normal (batched) | low (dropped first when the outbox is full) [normal]
  --ttl SECONDS     drop it unsent (counted, logged) if not delivered within this time [no limit]
  --data-dir DIR    the running agent's data dir [FARMLINK_DATA_DIR, default ${defaultDataDir()}]

Exit codes: 0 accepted; 64 bad arguments; 69 no agent runs for the data dir (or it cannot be
reached); 75 the outbox refused them (full, or it cannot write: the agent's message is printed);
1 anything else. Events printed before a refusal were accepted.
`;

/** At most this many events per call: the AgentHost API's own bound. */
export const MAX_EVENTS_PER_CALL = 10_000;
/** The panel socket takes frames of up to 1 MiB; a call stays well below it. */
export const MAX_BYTES_PER_CALL = 768 * 1024;

/** Bad arguments: exit 64 with the message. */

interface EventRequest {
  name: string;
  data: unknown;
  count: number;
  priority: Priority;
  ttlMs: number | undefined;
  dataDir: string;
}

export async function eventCommand(argv: string[]): Promise<number> {
  const request = explainBadArguments('event', () => parseEventArgs(argv));
  if (request === undefined) return ExitCode.BAD_ARGUMENTS;
  if (request === 'help') {
    process.stdout.write(EVENT_HELP);
    return ExitCode.OK;
  }
  return sendEvents(request);
}

export function parseEventArgs(argv: string[]): EventRequest | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        data: { type: 'string' },
        count: { type: 'string' },
        priority: { type: 'string' },
        ttl: { type: 'string' },
        'data-dir': { type: 'string' },
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
  if (positionals.length !== 1) {
    throw new BadArguments(
      positionals.length === 0
        ? 'expected the event name, e.g. farmlink event job.finished'
        : `expected one event name, got ${positionals.length}: ${positionals.join(' ')} (quote --data's JSON as one argument)`,
    );
  }
  const name = positionals[0] ?? '';
  if (name.length < 1 || name.length > 128)
    throw new BadArguments(`NAME: expected 1–128 characters, got ${name.length}`);
  let data: unknown = null;
  if (values.data !== undefined) {
    try {
      data = JSON.parse(values.data);
    } catch (error) {
      throw new BadArguments(`--data: not valid JSON (${(error as Error).message}): ${abbreviate(values.data)}`);
    }
  }
  const count = values.count === undefined ? 1 : Number(values.count);
  if (!Number.isSafeInteger(count) || count < 1)
    throw new BadArguments(`--count: expected a whole number ≥ 1, got "${values.count ?? ''}"`);
  const priority = values.priority ?? 'normal';
  if (!isPriority(priority))
    throw new BadArguments(`--priority: expected one of ${PRIORITIES.join(', ')}, got "${priority}"`);
  let ttlMs: number | undefined;
  if (values.ttl !== undefined) {
    const seconds = Number(values.ttl);
    ttlMs = Math.round(seconds * 1000);
    if (!Number.isFinite(seconds) || ttlMs < 1)
      throw new BadArguments(`--ttl: expected a number of seconds > 0, got "${values.ttl}"`);
  }
  const bytes = Buffer.byteLength(JSON.stringify({ name, data }));
  if (bytes > MAX_BYTES_PER_CALL)
    throw new BadArguments(
      `--data: the event is ${bytes} bytes; one event may be at most ${MAX_BYTES_PER_CALL} bytes (name and data as JSON)`,
    );
  return { name, data, count, priority, ttlMs, dataDir: values['data-dir'] ?? defaultDataDir() };
}

function isPriority(value: string): value is Priority {
  return (PRIORITIES as readonly string[]).includes(value);
}

/** A message without its closing full stop, to be followed by more. */
function sentence(message: string): string {
  return message.replace(/\.\s*$/, '');
}

function abbreviate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

/** How many copies of one event go in one call: bounded by the API's count and the socket's frame size. */
export function perCall(eventBytes: number): number {
  return Math.max(1, Math.min(MAX_EVENTS_PER_CALL, Math.floor(MAX_BYTES_PER_CALL / (eventBytes + 1))));
}

async function sendEvents(request: EventRequest): Promise<number> {
  const { dataDir } = request;
  const running = runningAgent(dataDir);
  if (!running) {
    return unavailable(
      `no agent runs for the data dir ${dataDir}. Start one (\`farmlink agent\`, \`farmlink start\`, the ` +
        `desktop app or the service), or pass --data-dir (or FARMLINK_DATA_DIR) if it runs from another data dir`,
    );
  }
  if (!running.panel) {
    return unavailable(
      `the agent running for ${dataDir} (pid ${running.pid}) serves no local API: events go through its ` +
        `panel, which is off (panel.enabled: false) or not listening yet`,
    );
  }
  let token: string;
  try {
    token = fs.readFileSync(path.join(dataDir, 'panel-token'), 'utf8').trim();
  } catch (error) {
    return unavailable(
      `cannot read the agent's key in ${path.join(dataDir, 'panel-token')}: ${errorInfo(error).message}`,
    );
  }
  let attachment: PanelAttachment;
  try {
    attachment = await PanelAttachment.open({ address: running.panel, token });
  } catch (error) {
    return unavailable(
      `cannot reach the agent running for ${dataDir} (pid ${running.pid}): ${errorInfo(error).message}`,
    );
  }
  const out = new SeqPrinter();
  const event = {
    name: request.name,
    data: request.data,
    priority: request.priority,
    ...(request.ttlMs !== undefined ? { ttl_ms: request.ttlMs } : {}),
  };
  const chunk = perCall(Buffer.byteLength(JSON.stringify(event)));
  const sendEvents = attachment.handlers().sendEvents;
  let agentId = attachment.snapshot().agent.id;
  try {
    for (let sent = 0; sent < request.count;) {
      const n = Math.min(chunk, request.count - sent);
      let result;
      try {
        result = await sendEvents({ events: Array.from({ length: n }, () => event) });
      } catch (error) {
        return refused(error, out, request.count, agentId);
      }
      agentId = result.agent_id;
      out.print(result.seqs);
      sent += n;
    }
  } finally {
    attachment.close();
  }
  process.stderr.write(`Accepted ${out.summary(agentId)}\n`);
  return ExitCode.OK;
}

function unavailable(message: string): number {
  process.stderr.write(`farmlink event: ${message}\n`);
  return ExitCode.UNAVAILABLE;
}

function refused(error: unknown, out: SeqPrinter, total: number, agentId: string): number {
  const before = out.count > 0 ? ` ${out.summary(agentId, total)} were accepted before that.` : ' None was accepted.';
  if (error instanceof HostFailure && (error.code === 'OUTBOX_FULL' || error.code === 'OUTBOX_UNAVAILABLE')) {
    process.stderr.write(
      `farmlink event: the agent's outbox refused the events: ${sentence(error.message)} [${error.code}].${before}\n`,
    );
    return ExitCode.OUTBOX_REFUSED;
  }
  if (error instanceof HostFailure) {
    const hint = error.code === 'UNKNOWN_METHOD' ? ' (the running agent is older than this command: update it)' : '';
    process.stderr.write(
      `farmlink event: the agent refused the events${hint}: ${sentence(error.message)} [${error.code}].${before}\n`,
    );
    return ExitCode.FAILURE;
  }
  // The socket went away mid-call: the agent stopped. What it was handling may or may not be in its outbox.
  const earlier = out.count > 0 ? ` ${out.summary(agentId, total)} were accepted before that.` : '';
  process.stderr.write(
    `farmlink event: ${errorInfo(error).message}; the events of the last call may or may not have been accepted ` +
      `(the agent's log and outbox say which).${earlier}\n`,
  );
  return ExitCode.UNAVAILABLE;
}

/**
 * Sequence numbers to stdout, one per line. A reader that goes away (`| head`) stops the printing,
 * not the sending: the events are what was asked for, and the summary still goes to stderr.
 */
class SeqPrinter {
  count = 0;
  private first: number | undefined;
  private last: number | undefined;
  private gaps = false;
  private open = true;

  constructor(private readonly stream: NodeJS.WriteStream = process.stdout) {
    stream.on('error', () => {
      this.open = false;
    });
  }

  print(seqs: number[]): void {
    for (const seq of seqs) {
      if (this.last !== undefined && seq !== this.last + 1) this.gaps = true;
      this.first ??= seq;
      this.last = seq;
    }
    this.count += seqs.length;
    if (!this.open || seqs.length === 0) return;
    try {
      this.stream.write(`${seqs.join('\n')}\n`);
    } catch {
      this.open = false;
    }
  }

  /** "10000 events (seq 1–10000) into the outbox of pc-017". */
  summary(agentId: string, total?: number): string {
    const what = total === undefined ? `${this.count}` : `${this.count} of ${total}`;
    const range =
      this.first === undefined
        ? ''
        : this.first === this.last
          ? ` (seq ${this.first})`
          : ` (seq ${this.first}–${this.last}${this.gaps ? ', with gaps' : ''})`;
    return `${what} event${this.count === 1 && total === undefined ? '' : 's'}${range} into the outbox of ${agentId}`;
  }
}
