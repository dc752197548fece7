/**
 * `npm run bench`: the hub load test, then the failover test; prints Markdown tables and puts
 * them, with the command, date, machine and settings, into bench/README.md.
 */
import path from 'node:path';
import { failoverTables, failoverTargets, runFailover } from './failover.js';
import { loadTables, loadTargets, runHubLoad } from './hub-load.js';
import { table } from './lib/markdown.js';
import { parseBenchOptions } from './lib/options.js';
import { environment, writeReadme } from './lib/report.js';
import { ROOT } from '../test/helpers/hub-process.js';

const options = parseBenchOptions(process.argv.slice(2));
const startedAt = new Date();
const began = performance.now();
const log = (line: string) =>
  process.stderr.write(`[${((performance.now() - began) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

const load = await runHubLoad(options, log);
const failover = await runFailover(options, log);

const hubCommand = load[0]?.hubCommand;
const generated = [
  `### Run`,
  environment(options, startedAt, (performance.now() - began) / 1000),
  hubCommand
    ? `Load-test hub, one per fleet size (\`--max-connections\` twice the fleet, at least 20,000). The ` +
      `failover test starts its hubs A and B the same way but without \`--inspect\`, A with ` +
      `\`--drain-timeout 60\`:\n\n\`\`\`\n${hubCommand}\n\`\`\``
    : '',
  `### Hub load\n\n${loadTables(load)}`,
  `### Failover\n\n${failoverTables(failover)}`,
  `### Targets\n\n${table(['target', 'measured', 'verdict'], [...loadTargets(load), ...failoverTargets(failover)])}`,
]
  .filter(Boolean)
  .join('\n\n');

process.stdout.write(`${generated}\n`);
if (options.readme) {
  const readme = path.join(ROOT, 'bench', 'README.md');
  writeReadme(readme, generated);
  log(`wrote ${path.relative(process.cwd(), readme)}`);
}
process.exit(0);
