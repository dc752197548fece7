import type { Snapshot } from '../../protocol/agent-host.js';
import { CONFIGURATION_CLOSE_CODES, CloseCode, closeCodeName } from '../../protocol/close-codes.js';
import { serverName } from './labels.js';
import { overriddenBy } from './settings-draft.js';

/** One server whose hub keeps closing the connection for a reason only a configuration change fixes. */
export interface Refusal {
  index: number;
  /** "Primary", "Fallback #1". */
  name: string;
  /** As configured. */
  url: string;
  closeCode: number;
  /** "UNAUTHORIZED". */
  codeName: string;
  /** What the code means for this PC, in words. */
  meaning: string;
  /** The hub's own words, when it gave any. */
  hubSaid: string | null;
  at: number;
}

export interface RefusalBanner {
  /** Every configured server refuses (the PC cannot connect at all), or only some do. */
  scope: 'all' | 'some';
  title: string;
  refusals: Refusal[];
  /** What to do, one step per distinct cause. */
  steps: string[];
}

type Cause = 'token' | 'version';

const MEANING: Record<number, { cause: Cause; meaning: (hasToken: boolean) => string }> = {
  [CloseCode.UNAUTHORIZED]: {
    cause: 'token',
    meaning: (hasToken) =>
      hasToken
        ? "this PC's token is not valid there (made with another hub secret, or expired)"
        : 'this PC has no token',
  },
  [CloseCode.FORBIDDEN]: {
    cause: 'token',
    meaning: () => "this PC's token was made for another agent id (or is not an agent token)",
  },
  [CloseCode.UNSUPPORTED_PROTOCOL]: {
    cause: 'version',
    meaning: () => "this PC's FarmLink speaks a protocol version that hub does not",
  },
  [CloseCode.INVALID_MESSAGE]: {
    cause: 'version',
    meaning: () => "that hub rejects this PC's messages, usually because FarmLink differs in version between them",
  },
};

/**
 * The servers whose hub refuses this PC — closed the last connection with a code that retrying
 * cannot cure (protocol/close-codes.ts CONFIGURATION_CLOSE_CODES) and has not accepted it since —
 * and what to tell the person at the PC. Null when no server refuses it.
 */
export function hubRefusals(snapshot: Pick<Snapshot, 'servers' | 'agent' | 'settings'>): RefusalBanner | null {
  const refusals: Refusal[] = [];
  for (const server of snapshot.servers) {
    const error = server.last_error;
    if (server.status === 'active' || !error || error.code !== 'closed_by_hub' || error.close_code === undefined)
      continue;
    if (!CONFIGURATION_CLOSE_CODES.has(error.close_code)) continue;
    if (server.last_success_at !== null && server.last_success_at > error.at) continue;
    const known = MEANING[error.close_code];
    refusals.push({
      index: server.index,
      name: serverName(server.index),
      url: server.configured_url,
      closeCode: error.close_code,
      codeName: closeCodeName(error.close_code),
      meaning: known
        ? known.meaning(snapshot.settings.has_token)
        : 'that hub refuses this PC until its configuration changes',
      hubSaid: /"(.*)"$/.exec(error.message)?.[1] ?? null,
      at: error.at,
    });
  }
  if (refusals.length === 0) return null;

  const all = refusals.length === snapshot.servers.length;
  const only = refusals.length === 1 ? refusals[0] : undefined;
  const tokenProblem = refusals.some((r) => MEANING[r.closeCode]?.cause !== 'version');
  const versionProblem = refusals.some((r) => MEANING[r.closeCode]?.cause === 'version');
  const token = snapshot.settings.has_token ? "this PC's token" : 'this PC, which has no token';
  const what =
    tokenProblem && !versionProblem
      ? token
      : versionProblem && !tokenProblem
        ? "this PC's FarmLink version"
        : 'this PC';
  const title = all
    ? snapshot.servers.length === 1
      ? `The hub refuses ${what}: this PC cannot connect until that is fixed`
      : `Every hub refuses ${what}: this PC cannot connect until that is fixed`
    : `${only ? `${only.name} refuses` : `${refusals.length} of ${snapshot.servers.length} servers refuse`} ` +
      `${what}: the agent uses the others, but cannot fall back to ${refusals.length === 1 ? 'it' : 'them'}`;

  const steps: string[] = [];
  if (tokenProblem) {
    steps.push(tokenStep(snapshot.agent.id, snapshot.settings.overridden));
  }
  if (versionProblem) steps.push('Update FarmLink on this PC or on the hub so that both run the same version.');
  return { scope: all ? 'all' : 'some', title, refusals, steps };
}

/**
 * How to get a new token to this agent. A token given by a flag or the environment wins over the
 * file, so Settings cannot replace it; and a token on the command line is readable by every user
 * of the PC (the process list), so the advice never sends anyone back to --token.
 */
function tokenStep(agentId: string, overridden: readonly { path: string; source: string }[]): string {
  const mint = `On the hub, run \`farmlink token --agent ${agentId}\` (with the hub's FARMLINK_HUB_SECRET)`;
  const fromFile = overriddenBy('agent.token_file', overridden);
  if (fromFile) return `${mint} and put the token in the file named by ${fromFile}, then restart the agent.`;
  const lockedBy = overriddenBy('agent.token', overridden);
  if (lockedBy === '--token') {
    return (
      `${mint} with \`--out FILE\`, copy that file to this PC and ` +
      `start the agent with \`--token-file FILE\` instead of --token (a token on the command line can be ` +
      `read by every user of this PC), then ` +
      `restart it.`
    );
  }
  if (lockedBy)
    return `${mint}, then give it to this agent through ${lockedBy}, which sets its token now, and restart the agent.`;
  return `${mint}, then paste the token in Settings → This agent → Replace token and press Save and apply.`;
}
