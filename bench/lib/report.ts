import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { table } from './markdown.js';
import type { BenchOptions } from './options.js';
import { cpuModel, ephemeralPortRange, openFilesLimit } from './proc.js';

export const START_MARK = '<!-- bench:results:start -->';
export const END_MARK = '<!-- bench:results:end -->';

/** The command as typed: `npm run bench` when npm ran us, else node with the script and its flags. */
export function commandLine(): string {
  const args = process.argv.slice(2).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${args ? ` -- ${args}` : ''}`;
  return `node ${path.relative(process.cwd(), process.argv[1] ?? '')}${args ? ` ${args}` : ''}`;
}

export function environment(options: BenchOptions, startedAt: Date, elapsedS: number): string {
  const ports = ephemeralPortRange();
  return table(
    ['', ''],
    [
      ['command', `\`${commandLine()}\``],
      [
        'date',
        `${startedAt.toISOString().replace('T', ' ').slice(0, 16)} UTC (run took ${Math.round(elapsedS / 60)} min)`,
      ],
      [
        'machine',
        `${os.cpus().length} cores, ${cpuModel()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Linux ${os.release()}`,
      ],
      ['Node', process.version],
      ['limits', `open files ${openFilesLimit()} per process; ephemeral ports ${ports ? ports.join('–') : 'unknown'}`],
      [
        'agent timing',
        `heartbeat ${options.heartbeatS} s (dead after ${options.heartbeatS * 3} s), WebSocket ping ` +
          `${options.pingS} s (timeout ${options.pingS} s), connect timeout 30 s, registration timeout 15 s; ` +
          `everything else as the agent's defaults`,
      ],
      [
        'load test',
        `agents ${options.agents.join(', ')}; start ` +
          `${options.rampRates.map((r) => (r ? `ramp ${r}/s` : 'all at once')).join(' and ')}; warm-up ` +
          `${Math.max(options.warmupS, options.heartbeatS)} s after all registered; measurement window ` +
          `${options.windowS} s`,
      ],
      [
        'failover test',
        `agents ${options.failoverAgents.join(', ')}; scenarios ${options.scenarios.join(', ')}; agents ` +
          `registered on A at ${options.setupRate}/s before the trigger`,
      ],
      [
        'client side',
        `real \`AgentConnection\`s in worker processes of at most ${options.perProcess} agents, one 127.0.x.y source address per ${options.perAddress} agents`,
      ],
    ],
  );
}

/** Replaces a generated block of bench/README.md (the hub results by default), keeping the hand-written text around it. */
export function writeReadme(
  readmePath: string,
  generated: string,
  marks: { start: string; end: string; heading: string } = { start: START_MARK, end: END_MARK, heading: '## Results' },
): void {
  const block = `${marks.start}\n${generated.trim()}\n${marks.end}`;
  let text = fs.existsSync(readmePath) ? fs.readFileSync(readmePath, 'utf8') : '';
  const start = text.indexOf(marks.start);
  const end = text.indexOf(marks.end);
  if (start >= 0 && end > start) text = `${text.slice(0, start)}${block}${text.slice(end + marks.end.length)}`;
  else text = `${text.trimEnd()}\n\n${marks.heading}\n\n${block}\n`;
  fs.writeFileSync(readmePath, text);
}
