import { CONFIGURATION_CLOSE_CODES, CloseCode } from '../../protocol/close-codes.js';

/** What a person can do about a close that retrying alone will not fix. */
export function closeAdvice(code: number, agentId: string): string | undefined {
  if (code === CloseCode.UNAUTHORIZED) {
    return (
      'this will not change until the token is fixed: set agent.token (or agent.token_file) to one from ' +
      "`farmlink token --agent ID` signed with this hub's secret; retrying with backoff meanwhile"
    );
  }
  if (code === CloseCode.FORBIDDEN) {
    return (
      'this will not change until the token or agent id is fixed: ' +
      `the token must be an agent token minted for "${agentId}"; retrying with backoff meanwhile`
    );
  }
  if (code === CloseCode.TOKEN_EXPIRED) {
    return (
      'the token this agent registered with has expired: set agent.token (or agent.token_file) to a new one from ' +
      "`farmlink token --agent ID` signed with this hub's secret; " +
      'retrying with backoff meanwhile'
    );
  }
  if (CONFIGURATION_CLOSE_CODES.has(code)) {
    return 'this will not change until the agent and the hub run compatible versions; retrying with backoff meanwhile';
  }
  if (code === CloseCode.REPLACED) {
    return `another agent registered with the same id "${agentId}"; do two PCs share one agent id?`;
  }
  return undefined;
}

/** The agent id whole, or (when it is too long for a log line) its start and end around "…". */
export function displayId(id: string): string {
  return id.length <= 20 ? id : `${id.slice(0, 8)}…${id.slice(-4)}`;
}

/** Why a dial could not even start, in words that point at the setting to fix. */
export function describeDialError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ERR_INVALID_CHAR' && /authorization/i.test(error.message)) {
    return 'the token has a character an HTTP header cannot carry (a line break, a space, "…"?); check agent.token';
  }
  return code ? `${error.message} (${code})` : error.message;
}

/** "1.5s", "250ms", "2m 5s": for log lines people read. */
export function fmtMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s ? `${m}m ${s}s` : `${m}m`;
}
