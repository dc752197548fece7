import fs from 'node:fs';
import { agentsProblem, mintToken } from '../server/auth.js';
import { assertStrongSecret } from '../server/secret-strength.js';
import { AgentIdSchema } from '../protocol/messages.js';
import { ClientNameSchema } from '../protocol/tunnel.js';
import { ConfigError, FarmlinkError } from '../lib/errors.js';
import { BadArguments, UsageError, explainBadArguments, parseFlags } from './args.js';
import { ExitCode } from './exit-codes.js';

export const TOKEN_HELP = `Usage: farmlink token (--agent AGENT_ID | --admin | --client NAME --agents ID[,ID…])
                      [--expires-in DURATION] [--out FILE]

Prints a JWT signed with FARMLINK_HUB_SECRET (the same secret the hub runs with; like the hub, this
refuses a secret that is short, repetitive or low in variety, with exit 78).
  --agent ID          a token for that agent (for agent.token_file, FARMLINK_AGENT_TOKEN_FILE or agent.token)
  --out FILE          write the token to FILE (readable by you only) instead of printing it
  --admin             a token for the hub's admin API (Authorization: Bearer …)
  --client NAME       a tunnel client token (farmlink connect, the client API) for NAME, which may open
                      sessions only to the farm PCs given with --agents
  --agents ID[,ID…]   with --client: the agent ids it may reach, or '*' (quoted) for every farm PC
  --expires-in D      lifetime such as 12h, 30d, 1y [agent and client tokens: none; admin tokens: 24h]

Exit codes: 0 minted; 2 unknown flag or not exactly one kind; 64 a bad --agent id, --client name or --agents list;
78 FARMLINK_HUB_SECRET missing or weak.
`;

/** A bad --client or --agents value: exit 64 with a sentence naming the flag. */

export async function tokenCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('token', argv, {
    agent: { type: 'string' },
    admin: { type: 'boolean' },
    client: { type: 'string' },
    agents: { type: 'string' },
    'expires-in': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(TOKEN_HELP);
    return ExitCode.OK;
  }
  const kinds = [values.agent !== undefined, values.admin === true, values.client !== undefined].filter(Boolean);
  if (kinds.length !== 1)
    throw new UsageError('farmlink token: give exactly one of --agent AGENT_ID, --admin or --client NAME');
  const checked = explainBadArguments('token', () => {
    if (values.agent !== undefined && !AgentIdSchema.safeParse(values.agent).success) {
      throw new BadArguments(
        `--agent: "${values.agent}" is not a valid agent id (1–128 letters, digits, "_", ".", ":" or "-")`,
      );
    }
    return { client: clientFlags(values.client, values.agents) };
  });
  if (checked === undefined) return ExitCode.BAD_ARGUMENTS;
  const { client } = checked;
  const secret = process.env.FARMLINK_HUB_SECRET;
  if (!secret)
    throw new ConfigError([
      'FARMLINK_HUB_SECRET (environment): required: the secret your hub runs with; tokens are signed with it',
    ]);
  // The hub refuses a weak secret, so a token signed with one could never be used: same check, same exit code.
  assertStrongSecret(secret, 'FARMLINK_HUB_SECRET (environment)');
  const expiresIn = values['expires-in'] ?? (values.admin ? '24h' : undefined);
  let token: string;
  try {
    // Exactly one kind was given (checked above).
    const agentId = values.agent;
    token = await mintToken(
      secret,
      client !== undefined
        ? { role: 'client', clientName: client.name, agents: client.agents, expiresIn }
        : agentId === undefined
          ? { role: 'admin', expiresIn }
          : { role: 'agent', agentId, expiresIn },
    );
  } catch (error) {
    const message = (error as Error).message;
    if (/time period|duration|format/i.test(message))
      throw new UsageError(`--expires-in: expected a duration such as 12h, 30d or 1y, got "${expiresIn}"`);
    throw error;
  }
  if (values.out !== undefined) {
    writeSecretFile(values.out, `${token}\n`);
    process.stderr.write(`Token written to ${values.out} (mode 0600)\n`);
    return ExitCode.OK;
  }
  process.stdout.write(`${token}\n`);
  return ExitCode.OK;
}

/** --client and --agents, checked: undefined when neither is given (another kind of token). */
function clientFlags(
  name: string | undefined,
  agents: string | undefined,
): { name: string; agents: string[] } | undefined {
  if (name === undefined) {
    if (agents !== undefined) throw new BadArguments('--agents: only for client tokens; give --client NAME with it');
    return undefined;
  }
  if (!ClientNameSchema.safeParse(name).success) {
    throw new BadArguments(
      `--client: "${name.slice(0, 140)}" is not a valid client name (1–128 letters, digits, "_", ".", ":", "@" or "-", ` +
        'starting with a letter or digit)',
    );
  }
  if (agents === undefined)
    throw new BadArguments(
      `--agents: required with --client: the agent ids "${name}" may reach (--agents pc-017,pc-018), or '*' for all`,
    );
  const list = agents.split(',').map((id) => id.trim());
  const problem = agentsProblem(list);
  if (problem) throw new BadArguments(`--agents: ${problem}, got "${agents.slice(0, 200)}"`);
  return { name, agents: list };
}

/** Owner-only from the first byte (created 0600, and an existing file narrowed before it is written). */
function writeSecretFile(file: string, text: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'w', 0o600);
  } catch (error) {
    throw new FarmlinkError('TOKEN_FILE_UNWRITABLE', `--out: cannot write ${file}: ${(error as Error).message}`);
  }
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
}
