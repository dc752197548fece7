import fs from 'node:fs';
import path from 'node:path';
import { FarmlinkError } from '../lib/errors.js';
import { defaultDataDir } from '../agent/config/paths.js';
import { parseFlags } from './args.js';
import { ExitCode } from './exit-codes.js';
import { PANEL_ADDRESS_FILE } from './startup/agent-lock.js';

export const PANEL_URL_HELP = `Usage: farmlink panel-url [--data-dir DIR]

Prints the full address of the running agent's panel, key included (http://127.0.0.1:PORT/#token=…),
for the person at this PC — over SSH, say, where the agent's own console is not at hand. The logs
never hold the key; it is kept in <data dir>/panel-token, readable by you only.

  --data-dir DIR   the agent's data dir [FARMLINK_DATA_DIR, default ${defaultDataDir()}]
`;

export function panelUrlCommand(argv: string[]): Promise<number> {
  return Promise.resolve(printPanelUrl(argv));
}

function printPanelUrl(argv: string[]): number {
  const { values } = parseFlags('panel-url', argv, {
    'data-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(PANEL_URL_HELP);
    return ExitCode.OK;
  }
  const dataDir = values['data-dir'] ?? defaultDataDir();
  const read = (name: string, what: string) => {
    const file = path.join(dataDir, name);
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new FarmlinkError(
          'PANEL_NOT_RUNNING',
          `${file} does not exist: ${what} (is an agent with this data dir running, with its panel on? Pass --data-dir if it uses another one)`,
        );
      }
      throw error;
    }
  };
  const address = read(PANEL_ADDRESS_FILE, 'no agent has its panel running');
  const token = read('panel-token', 'the panel has no key yet');
  process.stdout.write(`${address}#token=${token}\n`);
  return ExitCode.OK;
}
