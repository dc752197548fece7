import type { ErrorInfo } from '../../protocol/messages.js';
import { FarmlinkError, errorInfo } from '../../lib/errors.js';

export interface CommandContext {
  /** Aborted when the command's time is up or the agent stops. */
  signal: AbortSignal;
}

export type CommandHandler = (args: Record<string, unknown>, context: CommandContext) => Promise<unknown>;

export type CommandOutcome = { ok: true; data: unknown } | { ok: false; error: ErrorInfo };

/**
 * The commands a hub may run on this agent. Every call has an answer: data, a typed error,
 * UNKNOWN_COMMAND for a name nobody registered, or COMMAND_TIMEOUT — never silence.
 */
export class CommandRegistry {
  private readonly handlers = new Map<string, CommandHandler>();

  constructor(private readonly timeoutMs: number) {}

  register(name: string, handler: CommandHandler): this {
    if (this.handlers.has(name)) throw new Error(`command ${name} is registered twice`);
    this.handlers.set(name, handler);
    return this;
  }

  names(): string[] {
    return [...this.handlers.keys()].sort();
  }

  async run(name: string, args: Record<string, unknown>): Promise<CommandOutcome> {
    const handler = this.handlers.get(name);
    if (!handler) {
      return {
        ok: false,
        error: {
          code: 'UNKNOWN_COMMAND',
          message: `Unknown command "${name}"; this agent knows: ${this.names().join(', ')}`,
        },
      };
    }
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // Reject before aborting: a handler that resolves on abort must not win the race.
        reject(new FarmlinkError('COMMAND_TIMEOUT', `${name} did not finish within ${this.timeoutMs} ms`));
        controller.abort();
      }, this.timeoutMs);
    });
    try {
      const data = await Promise.race([handler(args, { signal: controller.signal }), timeout]);
      return { ok: true, data: data ?? null };
    } catch (error) {
      return { ok: false, error: errorInfo(error, 'COMMAND_FAILED') };
    } finally {
      clearTimeout(timer);
    }
  }
}
