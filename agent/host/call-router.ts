import type { z } from 'zod';
import {
  AgentHostMethods,
  type AgentHostMethod,
  type FieldProblem,
  type MethodOutput,
  type ResultEnvelope,
} from '../../protocol/agent-host.js';
import { FarmlinkError } from '../../lib/errors.js';

/** A refusal the panel should show as it is (code, message, and field problems for a form). */
export class HostFailure extends FarmlinkError {
  constructor(
    code: string,
    message: string,
    readonly problems?: FieldProblem[],
  ) {
    super(code, message);
    this.name = 'HostFailure';
  }
}

/** One implementation per method, taking the input as the schema parsed it. */
export type AgentHostHandlers = {
  [M in AgentHostMethod]: (
    input: z.output<(typeof AgentHostMethods)[M]['input']>,
  ) => Promise<MethodOutput<M>> | MethodOutput<M>;
};

/**
 * Runs one call from either transport: unknown methods and invalid inputs are refused with a
 * clear error, and every outcome — including a thrown one — comes back as a result envelope.
 */
export async function routeCall(handlers: AgentHostHandlers, method: string, input: unknown): Promise<ResultEnvelope> {
  if (!Object.hasOwn(AgentHostMethods, method)) {
    return {
      ok: false,
      error: {
        code: 'UNKNOWN_METHOD',
        message: `No method "${method}"; known: ${Object.keys(AgentHostMethods).join(', ')}`,
      },
    };
  }
  const name = method as AgentHostMethod;
  const parsed = AgentHostMethods[name].input.safeParse(input ?? {});
  if (!parsed.success) {
    return {
      ok: false,
      error: {
        code: 'INVALID_INPUT',
        message: `Invalid input for ${name}`,
        problems: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      },
    };
  }
  try {
    const handler = handlers[name] as (input: unknown) => unknown;
    return { ok: true, value: await handler(parsed.data) };
  } catch (error) {
    if (error instanceof HostFailure)
      return {
        ok: false,
        error: { code: error.code, message: error.message, ...(error.problems ? { problems: error.problems } : {}) },
      };
    if (error instanceof FarmlinkError) return { ok: false, error: { code: error.code, message: error.message } };
    return { ok: false, error: { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) } };
  }
}
