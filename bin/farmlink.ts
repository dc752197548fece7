#!/usr/bin/env node
import { ConfigError, FarmlinkError } from '../lib/errors.js';
import { AGENT_VERSION } from '../lib/version.js';
import { agentCommand } from '../cli/agent-command.js';
import { connectCommand } from '../cli/connect-command.js';
import { UsageError } from '../cli/args.js';
import { eventCommand } from '../cli/event-command.js';
import { ExitCode } from '../cli/exit-codes.js';
import { hubCommand } from '../cli/hub-command.js';
import { panelUrlCommand } from '../cli/panel-url-command.js';
import { serviceCommand } from '../cli/service-command.js';
import { startCommand } from '../cli/start-command.js';
import { tokenCommand } from '../cli/token-command.js';

const HELP = `FarmLink ${AGENT_VERSION} — keeps farm PCs connected to their hub.

Usage: farmlink <command> [options]     (farmlink <command> --help for its options)

Commands:
  start    the agent with its configuration, or with a local hub when there is none (npm start)
  agent    the agent: connect to the configured hub and fallbacks, stay connected
  hub      the hub agents connect to, with /health, /metrics and the admin API
  token    mint a JWT for an agent (--agent ID) or for the admin API (--admin)
  panel-url  print the running agent's panel address with its key (for you at this PC)
  connect  serve a local port that leads to a service on a farm PC, through the hub's tunnel
           (farmlink connect AGENT_ID SERVICE --hub URL --listen [HOST:]PORT)
  event    hand an event to the running agent's durable outbox (farmlink event NAME [--data JSON])
  service  install|uninstall|status: run the agent as a systemd service, started at boot (Linux)
`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  start: startCommand,
  agent: agentCommand,
  hub: hubCommand,
  token: tokenCommand,
  'panel-url': panelUrlCommand,
  connect: connectCommand,
  event: eventCommand,
  service: (argv) => serviceCommand(argv),
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? ExitCode.USAGE : ExitCode.OK;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return ExitCode.OK;
  }
  const run = COMMANDS[command];
  if (!run)
    throw new UsageError(`farmlink: unknown command "${command}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`farmlink: ${error.message}\n`);
      process.exit(ExitCode.CONFIG);
    }
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\nRun "farmlink --help" for usage.\n`);
      process.exit(ExitCode.USAGE);
    }
    if (error instanceof FarmlinkError) {
      process.stderr.write(`farmlink: ${error.message} [${error.code}]\n`);
      process.exit(ExitCode.FAILURE);
    }
    const err = error as NodeJS.ErrnoException;
    process.stderr.write(
      `farmlink: ${err.code === 'EADDRINUSE' ? `address in use: ${err.message}` : (err.stack ?? String(error))}\n`,
    );
    process.exit(ExitCode.FAILURE);
  },
);
