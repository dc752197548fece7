import { randomUUID } from 'node:crypto';
import type { ErrorInfo, Result } from '../protocol/messages.js';
import type { AgentSession } from './agent-session.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from './json-depth.js';

export type CommandOutcome =
  | { status: 'ok'; data: unknown }
  | { status: 'error'; error: ErrorInfo }
  | { status: 'timeout' }
  | { status: 'agent_gone' }
  /** The agent answered with data too deeply nested to be serialised again for the caller. */
  | { status: 'result_too_deep' };

interface Pending {
  session: AgentSession;
  resolve: (outcome: CommandOutcome) => void;
  timer: NodeJS.Timeout;
}

/**
 * Commands sent to agents and the results awaited for them. Every call settles exactly once:
 * with the agent's result, a timeout, or "agent gone" when its connection closes first.
 */
export class CommandDispatcher {
  private readonly pending = new Map<string, Pending>();

  send(session: AgentSession, name: string, args: Record<string, unknown>, timeoutMs: number): Promise<CommandOutcome> {
    const id = randomUUID();
    return new Promise<CommandOutcome>((resolve) => {
      const timer = setTimeout(() => this.settle(id, { status: 'timeout' }), timeoutMs);
      this.pending.set(id, { session, resolve, timer });
      session.send({ type: 'command', id, name, args });
    });
  }

  /** A result arrived; false if nobody waits for it (late, or from the wrong agent). */
  resolve(session: AgentSession, result: Result): boolean {
    const entry = this.pending.get(result.id);
    if (!entry || entry.session !== session) return false;
    if (result.ok && nestedDeeperThan(result.data, MAX_JSON_DEPTH))
      this.settle(result.id, { status: 'result_too_deep' });
    else
      this.settle(
        result.id,
        result.ok ? { status: 'ok', data: result.data } : { status: 'error', error: result.error },
      );
    return true;
  }

  /** The session closed: everything it owed settles as agent_gone. */
  sessionClosed(session: AgentSession): void {
    for (const [id, entry] of this.pending) {
      if (entry.session === session) this.settle(id, { status: 'agent_gone' });
    }
  }

  get size(): number {
    return this.pending.size;
  }

  private settle(id: string, outcome: CommandOutcome): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    entry.resolve(outcome);
  }
}
