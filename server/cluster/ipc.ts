import { z } from 'zod';
import { FarmlinkError, errorInfo } from '../../lib/errors.js';
import type { CommandOutcome } from '../command-dispatcher.js';
import type { AgentSummary } from '../hub.js';
import type { AgentListing, HealthFigures } from '../hub-view.js';
import type { HubMetricsParts } from './metrics-view.js';

/**
 * Messages between the primary of a multi-process hub and its workers, over Node's cluster IPC.
 * Every message carries `channel`, so prom-client's own cluster messages (and anything else on
 * the channel) pass by untouched.
 *
 * The same operations go both ways with two scopes: a worker asks the primary for the whole hub
 * ("agents" = every worker's agents); the primary asks a worker for its own part ("agents" = the
 * agents on that worker), and gathers the answers.
 */
export const IPC_CHANNEL = 'farmlink-hub';

const AgentIdField = z.string().min(1).max(128);

export const OpSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('agents') }),
  z.object({ op: z.literal('agent'), agent_id: AgentIdField }),
  z.object({
    op: z.literal('command'),
    agent_id: AgentIdField,
    name: z.string().min(1),
    args: z.record(z.string(), z.unknown()),
    timeout_ms: z.number().int().positive().optional(),
  }),
  z.object({ op: z.literal('broadcast'), data: z.record(z.string(), z.unknown()) }),
  z.object({ op: z.literal('drain'), reason: z.string().optional() }),
  z.object({ op: z.literal('health') }),
  z.object({ op: z.literal('metrics') }),
  /** The JSON view of /metrics: worker → primary, the whole hub's parts; primary → worker, its own. */
  z.object({ op: z.literal('metrics_json') }),
  /** Primary → worker: the agent registered on another worker; close this worker's older session. */
  z.object({ op: z.literal('replace'), agent_id: AgentIdField, session_id: z.string(), where: z.string() }),
  /** Primary → worker: drain (or, with force, close at once), then exit. */
  z.object({ op: z.literal('shutdown'), reason: z.string(), force: z.boolean() }),
]);
export type Op = z.infer<typeof OpSchema>;
export type OpName = Op['op'];
export type OpOf<K extends OpName> = Extract<Op, { op: K }>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const AgentSummarySchema = z.custom<AgentSummary>((v) => isRecord(v) && typeof v.agent_id === 'string', {
  error: 'expected an agent summary',
});
const OutcomeSchema = z.custom<CommandOutcome | { status: 'not_connected' }>(
  (v) => isRecord(v) && typeof v.status === 'string',
  { error: 'expected a command outcome' },
);
/** One worker's registry.getMetricsAsJSON(): passed on to AggregatorRegistry.aggregate as is. */
const MetricsJsonSchema = z.array(z.record(z.string(), z.unknown()));

const ModeFiguresShape = z.record(z.string(), z.number().nullable());
const WorkerPartSchema = z.object({
  id: z.string(),
  pid: z.number().int(),
  view: z.object({
    enhanced: ModeFiguresShape,
    legacy: ModeFiguresShape,
    hub: z.record(z.string(), z.unknown()),
  }),
  latency: z.record(z.string(), z.object({ sum: z.number(), count: z.number() })),
});
const ModeNumbers = z.object({ enhanced: z.number(), legacy: z.number() });
/** Checked for shape on the way through; the fields are the MetricsView's own. */
const MetricsPartsSchema = z.custom<HubMetricsParts>(
  (v) =>
    z
      .object({
        workers: z.array(WorkerPartSchema),
        peak_connections: ModeNumbers.optional(),
        uptime_s: z.number().optional(),
        draining: z.boolean().optional(),
      })
      .safeParse(v).success,
  { error: 'expected the JSON metrics of the workers' },
);

/** What each operation answers. */
export interface Results {
  agents: AgentListing[];
  agent: { agent: AgentSummary; hub_id: string } | null;
  command: CommandOutcome | { status: 'not_connected' };
  broadcast: number;
  drain: { started: boolean; connections_open: number };
  health: HealthFigures;
  /** One entry per worker. */
  metrics: Array<Array<Record<string, unknown>>>;
  metrics_json: HubMetricsParts;
  replace: boolean;
  shutdown: null;
}

const RESULT_SCHEMAS: { [K in OpName]: z.ZodType<Results[K]> } = {
  agents: z.array(AgentSummarySchema),
  agent: z.object({ agent: AgentSummarySchema, hub_id: z.string() }).nullable(),
  command: OutcomeSchema,
  broadcast: z.number().int().nonnegative(),
  drain: z.object({ started: z.boolean(), connections_open: z.number().int().nonnegative() }),
  health: z.object({
    draining: z.boolean(),
    agents_connected: z.number().int().nonnegative(),
    connections_open: z.number().int().nonnegative(),
  }),
  metrics: z.array(MetricsJsonSchema),
  metrics_json: MetricsPartsSchema,
  replace: z.boolean(),
  shutdown: z.null(),
};

export const NoticeSchema = z.discriminatedUnion('type', [
  /** A worker's hub is listening. */
  z.object({ type: z.literal('ready'), port: z.number().int(), url: z.string() }),
  z.object({ type: z.literal('registered'), agent_id: AgentIdField, session_id: z.string() }),
  z.object({ type: z.literal('unregistered'), agent_id: AgentIdField, session_id: z.string() }),
  /** A worker's open sessions per mode changed (coalesced: see SessionCountReporter). */
  z.object({
    type: z.literal('sessions'),
    counts: z.object({
      enhanced: z.object({ current: z.number().int().nonnegative(), peak: z.number().int().nonnegative() }),
      legacy: z.object({ current: z.number().int().nonnegative(), peak: z.number().int().nonnegative() }),
    }),
  }),
]);
export type Notice = z.infer<typeof NoticeSchema>;

const EnvelopeSchema = z.union([
  z.object({ channel: z.literal(IPC_CHANNEL), kind: z.literal('request'), id: z.number().int(), op: OpSchema }),
  z.object({
    channel: z.literal(IPC_CHANNEL),
    kind: z.literal('reply'),
    id: z.number().int(),
    ok: z.literal(true),
    result: z.unknown(),
  }),
  z.object({
    channel: z.literal(IPC_CHANNEL),
    kind: z.literal('reply'),
    id: z.number().int(),
    ok: z.literal(false),
    error: z.object({ code: z.string(), message: z.string() }),
  }),
  z.object({ channel: z.literal(IPC_CHANNEL), kind: z.literal('notice'), notice: NoticeSchema }),
]);

/** Why a request to the other side of the IPC channel did not get an answer. */
export class IpcError extends FarmlinkError {
  /** IPC_TIMEOUT, IPC_CLOSED, IPC_BAD_REPLY, or the code of the error the other side answered with. */
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'IpcError';
  }
}

interface Pending {
  op: OpName;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export interface IpcEndpointOptions {
  /** Sends one message to the other side; false when the channel is closed. */
  send: (message: unknown) => boolean;
  /** Answers a request from the other side. */
  answer: (op: Op) => Promise<unknown>;
  onNotice?: (notice: Notice) => void;
  /** A message on our channel that does not parse: a bug on the other side, logged by the caller. */
  onInvalid?: (problem: string) => void;
  /** Who is on the other side, for error messages ("worker w2", "the primary"). */
  peer: string;
}

/** One side of the channel: requests with replies (by id, with a timeout), one-way notices. */
export class IpcEndpoint {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly options: IpcEndpointOptions) {}

  request<K extends OpName>(op: OpOf<K>, timeoutMs: number): Promise<Results[K]> {
    const id = this.nextId++;
    return new Promise<Results[K]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new IpcError('IPC_TIMEOUT', `${this.options.peer} did not answer "${op.op}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { op: op.op, resolve: resolve as (value: unknown) => void, reject, timer });
      if (!this.options.send({ channel: IPC_CHANNEL, kind: 'request', id, op })) {
        this.settle(id, new IpcError('IPC_CLOSED', `${this.options.peer} is gone (IPC channel closed)`));
      }
    });
  }

  notify(notice: Notice): void {
    this.options.send({ channel: IPC_CHANNEL, kind: 'notice', notice });
  }

  /** Everything received on the channel goes here; messages of other channels are ignored. */
  receive(message: unknown): void {
    if (!isRecord(message) || message.channel !== IPC_CHANNEL) return;
    const parsed = EnvelopeSchema.safeParse(message);
    if (!parsed.success) {
      this.options.onInvalid?.(`from ${this.options.peer}: ${parsed.error.message.slice(0, 300)}`);
      return;
    }
    const envelope = parsed.data;
    switch (envelope.kind) {
      case 'notice':
        this.options.onNotice?.(envelope.notice);
        return;
      case 'request':
        void this.options.answer(envelope.op).then(
          (result) => this.options.send({ channel: IPC_CHANNEL, kind: 'reply', id: envelope.id, ok: true, result }),
          (error: unknown) =>
            this.options.send({
              channel: IPC_CHANNEL,
              kind: 'reply',
              id: envelope.id,
              ok: false,
              error: errorInfo(error),
            }),
        );
        return;
      case 'reply': {
        const entry = this.pending.get(envelope.id);
        if (!entry) return;
        if (!envelope.ok) {
          this.settle(envelope.id, new IpcError(envelope.error.code, envelope.error.message));
          return;
        }
        const result = RESULT_SCHEMAS[entry.op].safeParse(envelope.result);
        if (result.success) this.settle(envelope.id, undefined, result.data);
        else
          this.settle(
            envelope.id,
            new IpcError('IPC_BAD_REPLY', `${this.options.peer} answered "${entry.op}" with ${result.error.message}`),
          );
        return;
      }
    }
  }

  /** The other side is gone: every request still waiting fails now rather than at its timeout. */
  closeAll(why: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, new IpcError('IPC_CLOSED', why));
  }

  private settle(id: number, error: Error | undefined, value?: unknown): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    if (error) entry.reject(error);
    else entry.resolve(value);
  }
}
