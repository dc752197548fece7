/**
 * The panel's costs (issue #3): the renderer bundle (gzip), the time from opening the headless
 * panel to its first paint and to a meaningful one (the header says "Connected"), and the agent
 * process's CPU with the panel open and updating. Prints Markdown tables and writes them into
 * bench/README.md between the panel markers.
 *
 *   node dist/bench/panel.js [--runs 10] [--cpu-window 60] [--no-readme]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import type { Browser } from 'playwright-core';
import { mintToken } from '../server/auth.js';
import { stopChild, track } from './lib/children.js';
import { launchChromium } from '../test/helpers/chromium.js';
import { ROOT, type HubProcess } from '../test/helpers/hub-process.js';
import { BENCH_SECRET, startBenchHub } from './lib/bench-hub.js';
import { table, ms, num } from './lib/markdown.js';
import { CpuMeter, cpuModel } from './lib/proc.js';
import { commandLine, writeReadme } from './lib/report.js';
import { summarize } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    'cpu-window': { type: 'string', default: '60' },
    readme: { type: 'boolean', default: true },
    'no-readme': { type: 'boolean' },
  },
});
const RUNS = Number(values.runs);
const CPU_WINDOW_S = Number(values['cpu-window']);
const BUNDLE_BUDGET_KB = 300;
const CPU_BUDGET_PCT = 2;
const log = (line: string) => process.stderr.write(`[panel bench] ${line}\n`);

// ---- bundle ---------------------------------------------------------------------------------

function bundle(): { rows: string[][]; jsGzipKb: number } {
  const dir = path.join(ROOT, 'dist', 'renderer', 'assets');
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.(js|css)$/.test(f))
    .sort();
  let jsGzip = 0;
  const rows = files.map((file) => {
    const raw = fs.readFileSync(path.join(dir, file));
    const gz = zlib.gzipSync(raw, { level: 9 }).length;
    if (file.endsWith('.js')) jsGzip += gz;
    return [file.replace(/-[\w-]{8}\./, '.'), `${num(raw.length / 1024, 1)} KB`, `${num(gz / 1024, 1)} KB`];
  });
  return { rows, jsGzipKb: jsGzip / 1024 };
}

// ---- an agent with its panel ----------------------------------------------------------------

interface AgentProcess {
  child: ChildProcess;
  url: string;
}

async function startAgent(hub: HubProcess, id: string, extra: string[]): Promise<AgentProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-panel-bench-'));
  const token = await mintToken(BENCH_SECRET, { role: 'agent', agentId: id });
  const child = track(
    spawn(
      process.execPath,
      [
        path.join(ROOT, 'dist/bin/farmlink.js'),
        'agent',
        '--server-url',
        hub.url,
        '--agent-id',
        id,
        '--token',
        token,
        '--panel-port',
        '0',
        '--no-log-file',
        '--log-format',
        'json',
        '--data-dir',
        dir,
        ...extra,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, HOME: dir },
      },
    ),
  );
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const deadline = Date.now() + 15_000;
  for (;;) {
    // The panel line holds the address; the key is in the data dir's panel-token (never in a log).
    const match = /"event":"panel","url":"([^"]+)"/.exec(out);
    if (match && out.includes('Registered as'))
      return { child, url: `${match[1]!}#token=${fs.readFileSync(path.join(dir, 'panel-token'), 'utf8').trim()}` };
    if (Date.now() > deadline)
      throw new Error(`agent did not start its panel and register within 15 s:\n${out.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ---- paint ----------------------------------------------------------------------------------

interface PaintRun {
  fcp: number;
  connected: number;
}

/** One cold load in a fresh browser context: first contentful paint, and when the header first said "Connected". */
async function paintOnce(browser: Browser, url: string): Promise<PaintRun> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector('[data-testid="link-status"][data-tone="connected"]', { timeout: 15_000 });
  const connected = await page.evaluate<number>('performance.now()');
  const fcp = await page.evaluate<number>(
    "(performance.getEntriesByName('first-contentful-paint')[0] || { startTime: NaN }).startTime",
  );
  await context.close();
  return { fcp, connected };
}

// ---- CPU ------------------------------------------------------------------------------------

async function agentCpu(pid: number, seconds: number): Promise<number> {
  const meter = new CpuMeter([pid]);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return meter.percent()[0]!;
}

// ---- run ------------------------------------------------------------------------------------

const started = new Date();
const { rows: bundleRows, jsGzipKb } = bundle();
log(`bundle: ${jsGzipKb.toFixed(1)} KB of JS gzip`);

const hub = await startBenchHub({ hubId: 'panel-bench', args: [] });
const browser = await launchChromium();
const cpuRows: string[][] = [];
let paint: { fcp: ReturnType<typeof summarize>; connected: ReturnType<typeof summarize> };
let idleWithPanel = Number.NaN;
try {
  // The agent's default timings: what a farm PC runs for months.
  const agent = await startAgent(hub, 'bench-panel', []);
  const runs: PaintRun[] = [];
  for (let i = 0; i < RUNS; i += 1) runs.push(await paintOnce(browser, agent.url));
  paint = { fcp: summarize(runs.map((r) => r.fcp)), connected: summarize(runs.map((r) => r.connected)) };
  log(`paint: FCP p50 ${paint.fcp.p50.toFixed(0)} ms, connected p50 ${paint.connected.p50.toFixed(0)} ms`);

  const pid = agent.child.pid!;
  log(`CPU: ${CPU_WINDOW_S} s without a panel open`);
  const idle = await agentCpu(pid, CPU_WINDOW_S);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(agent.url);
  await page.waitForSelector('[data-testid="link-status"][data-tone="connected"]');
  log(`CPU: ${CPU_WINDOW_S} s with the panel open`);
  idleWithPanel = await agentCpu(pid, CPU_WINDOW_S);
  await page.close();
  cpuRows.push(["the agent's defaults (heartbeat 30 s, ping 20 s)", `${num(idle, 2)} %`, `${num(idleWithPanel, 2)} %`]);
  await stopChild(agent.child, 'SIGTERM');

  // A busy link: a heartbeat and a ping every second, so the panel's feed has something to coalesce.
  const busy = await startAgent(hub, 'bench-panel-busy', [
    '--set',
    'connection.heartbeat_interval=1',
    '--set',
    'connection.dead_timeout=5',
    '--set',
    'connection.ping_interval=1',
    '--set',
    'connection.ping_timeout=2',
  ]);
  log(`CPU: busy link, ${CPU_WINDOW_S} s without and with the panel`);
  const busyIdle = await agentCpu(busy.child.pid!, CPU_WINDOW_S);
  const busyPage = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await busyPage.goto(busy.url);
  await busyPage.waitForSelector('[data-testid="link-status"][data-tone="connected"]');
  const busyWithPanel = await agentCpu(busy.child.pid!, CPU_WINDOW_S);
  await busyPage.close();
  cpuRows.push(['heartbeat and ping every 1 s', `${num(busyIdle, 2)} %`, `${num(busyWithPanel, 2)} %`]);
  await stopChild(busy.child, 'SIGTERM');
} finally {
  await browser.close();
  await hub.kill();
}

const generated = [
  '### Run',
  table(
    ['', ''],
    [
      ['command', `\`${commandLine()}\``],
      ['date', `${started.toISOString().replace('T', ' ').slice(0, 16)} UTC`],
      [
        'machine',
        `${os.cpus().length} cores, ${cpuModel()}, Node ${process.version}, Chromium from /usr/bin/chromium (headless), playwright-core`,
      ],
    ],
  ),
  '### Renderer bundle',
  table(
    ['file', 'size', 'gzip -9'],
    [
      ...bundleRows,
      [
        '**all JavaScript**',
        '',
        `**${num(jsGzipKb, 1)} KB** (budget ${BUNDLE_BUDGET_KB} KB: ${jsGzipKb < BUNDLE_BUDGET_KB ? 'met' : 'not met'})`,
      ],
    ],
  ),
  '### Time to a meaningful panel (headless mode)',
  `${RUNS} cold loads, each in a fresh browser context (empty cache), of \`farmlink agent\`'s panel on ` +
    `127.0.0.1 at 1280×800; milliseconds from navigation start.`,
  table(
    ['measure', 'p50', 'p90', 'max'],
    [
      ['first contentful paint', ms(paint.fcp.p50), ms(paint.fcp.p90), ms(paint.fcp.max)],
      [
        'header shows "Connected" (snapshot received and rendered)',
        ms(paint.connected.p50),
        ms(paint.connected.p90),
        ms(paint.connected.max),
      ],
    ],
  ),
  '### Agent CPU with the panel open',
  `\`farmlink agent\` (one agent, connected to a local hub), CPU of the agent process (user + system from ` +
    `/proc) over ${CPU_WINDOW_S} s, as % of one core; "panel open" has the panel showing in Chromium, its ` +
    `feed updating.`,
  table(['agent timing', 'no panel open', 'panel open and updating'], cpuRows),
  `Budget: agent + panel idle < ${CPU_BUDGET_PCT} % of one core — ` +
    `${idleWithPanel < CPU_BUDGET_PCT ? 'met' : 'not met'} (${num(idleWithPanel, 2)} % at the agent's ` +
    `defaults).`,
].join('\n\n');

process.stdout.write(`${generated}\n`);
if (values.readme && !values['no-readme']) {
  writeReadme(path.join(ROOT, 'bench', 'README.md'), generated, {
    start: '<!-- bench:panel:start -->',
    end: '<!-- bench:panel:end -->',
    heading: '## Panel (issue #3)',
  });
  log('wrote bench/README.md');
}
process.exit(0);
