import { chromiumForFile, cleanupsAfterEach } from './helpers/e2e-file.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../protocol/agent-host.js';
import type { ProtocolModeSetting } from '../protocol/config.js';
import { mintToken } from '../server/auth.js';
import { isolatedEnv, panelUrlFrom } from './helpers/cli-process.js';
import { EventProducer } from './helpers/event-producer.js';
import { duplicatesDropped, readAdminEvents, readStream, type SinkEvent } from './helpers/event-sinks.js';
import { startHeadlessAgent, type HeadlessAgent } from './helpers/headless-agent.js';
import { ROOT, startHub, TEST_SECRET, type HubProcess } from './helpers/hub-process.js';
import { startRedis } from './helpers/redis-server.js';
import { waitUntil } from './helpers/wait.js';

/**
 * The protocol mode switched from the panel, in Debian's Chromium, while events flow: a real hub
 * (its lmdb event log in --data-dir, or a real redis-server's stream), a headless `farmlink agent`
 * in `protocol.mode: auto`, and `farmlink event` runs handing it events all along. The person
 * clicks Legacy, Enhanced, Legacy, Auto on the mode card, each once the card says the previous
 * mode is in use and events are waiting in the outbox; then the outbox drains and the hub's sink
 * is read: every accepted seq is there exactly once and in order — also across the switches out
 * of legacy mode, where delivery is at most once, because a switch closes the connection
 * gracefully (what was written goes before the close frame, and the hub handles it). What the
 * panel showed during each switch is recorded from the page itself and photographed into
 * test-artifacts/panel-mode-switch/.
 */

const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'panel-mode-switch');
const AGENT_ID = 'pc-switch';
const HUB_ID = 'hub-switch';
const EVENT_NAME = 'switch.flow';
const PER_CALL = 200;
/** `farmlink event` calls allowed before each switch, and after the last. */
const CALLS_PER_STEP = 4;
const SWITCHES: ReadonlyArray<{ click: ProtocolModeSetting; inUse: 'Legacy' | 'Enhanced' }> = [
  { click: 'legacy', inUse: 'Legacy' },
  { click: 'enhanced', inUse: 'Enhanced' },
  { click: 'legacy', inUse: 'Legacy' },
  { click: 'auto', inUse: 'Enhanced' },
];
const CALLS = (SWITCHES.length + 1) * CALLS_PER_STEP;
const TOTAL = CALLS * PER_CALL;
/** Generous: a run takes well under a minute on a quiet machine, several when other runs load the two cores. */
const RUN_TIMEOUT_MS = 300_000;
/** Each step's own bound, so a stuck step says which it was long before the test's timeout. */
const STEP_TIMEOUT_MS = 60_000;
const START_TIMEOUT_MS = 60_000;

const browser = chromiumForFile();
beforeAll(() => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});

const cleanups = cleanupsAfterEach();

/** What the page showed, each time the header's link status, the mode card's line or the quality changed. */
interface Seen {
  at: number;
  link: string | null;
  mode: string | null;
  quality: string | null;
}

/**
 * Records in the page every change of the two lines a person watches during a switch, from a
 * MutationObserver: a state that lasted one render is caught too, which polling from the test would miss.
 */
const RECORD_STATUS = `(() => {
  const seen = [];
  window.__switchSeen = seen;
  const text = (id) => document.querySelector('[data-testid="' + id + '"]')?.textContent ?? null;
  let last = '';
  const record = () => {
    const now = { at: Date.now(), link: text('link-status'), mode: text('mode-status'), quality: text('quality') };
    const key = now.link + '|' + now.mode + '|' + now.quality;
    if (key !== last) { last = key; seen.push(now); }
  };
  record();
  new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
})()`;
const seenSince = (page: Page, from: number) => page.evaluate<Seen[]>(`window.__switchSeen.slice(${String(from)})`);

const text = async (page: Page, testId: string) => (await page.getByTestId(testId).first().textContent()) ?? '';
const numberIn = (s: string) => Number(s.replace(/[^\d.]/g, ''));
/** "1,234 / 56" (the figures card's sent / received) → [1234, 56]. */
const sentReceived = (s: string) => s.split('/').map(numberIn) as [number, number];

type SinkKind = 'local' | 'redis';

interface SwitchRecord {
  to: ProtocolModeSetting;
  /** The outbox and the producer as the click found them. */
  depth: number;
  unacked: number;
  ackedSeq: number;
  accepted: number;
  /** Distinct (header, mode line) pairs the page showed from the click until the new mode was in use. */
  seen: Seen[];
  /** The Traffic card's "messages sent" once the new mode was in use. */
  messagesSent: number;
  reconnects: number;
}

async function run(sink: SinkKind) {
  const started = Date.now();
  const timeline: string[] = [];
  const mark = (what: string) => {
    const line = `${((Date.now() - started) / 1000).toFixed(1)} s  ${what}`;
    timeline.push(line);
    console.log(`mode switch (${sink}): ${line}`);
  };
  const shots = path.join(ARTIFACTS, sink);
  fs.mkdirSync(shots, { recursive: true });
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-switch-'));
  cleanups.push(() => fs.promises.rm(parent, { recursive: true, force: true }));
  const { env, dataDir } = isolatedEnv(parent);

  let sinkArgs = ['--data-dir', path.join(parent, 'hub-data')];
  let redisUrl: string | undefined;
  const prefix = `switch-${String(process.pid)}:`;
  if (sink === 'redis') {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    redisUrl = redis.url;
    sinkArgs = ['--redis-url', redis.url, '--redis-prefix', prefix];
  }
  // The agent paces itself at 80 % of the hub's rate: legacy (a frame per message) drains about 800
  // events per second, slower than a call hands 200 in, so legacy switches find a backlog; enhanced
  // frames of at most 50 keep several frames in flight unacknowledged when a switch comes.
  const hub: HubProcess = await startHub({
    hubId: HUB_ID,
    args: [
      '--rate',
      '1000',
      '--burst',
      '200',
      '--batch-max-messages',
      '50',
      '--broadcast-interval',
      '0',
      '--log-level',
      'info',
      ...sinkArgs,
    ],
    startTimeoutMs: START_TIMEOUT_MS,
  });
  cleanups.push(() => hub.kill());
  mark(`hub ready on ${hub.url} (${sink === 'redis' ? 'Redis stream' : 'lmdb event log'})`);

  const tokenFile = path.join(parent, 'agent-token');
  fs.writeFileSync(tokenFile, await mintToken(TEST_SECRET, { role: 'agent', agentId: AGENT_ID }));
  const configFile = path.join(parent, 'agent.yaml');
  fs.writeFileSync(
    configFile,
    [
      'server:',
      `  url: ${hub.url}`,
      'agent:',
      `  id: ${AGENT_ID}`,
      '  name: Switch PC',
      `  token_file: ${tokenFile}`,
      'connection:',
      '  heartbeat_interval: 0.5',
      '  dead_timeout: 5',
      '  connect_timeout: 3',
      '  registration_timeout: 5',
      '  initial_reconnect_delay: 0.1',
      '  max_reconnect_delay: 0.5',
      'protocol:',
      '  mode: auto',
      // No phones here, and no adb server shared with other tests.
      'adb:',
      '  track_devices: false',
      'log:',
      '  level: info',
      '',
    ].join('\n'),
  );
  const agent: HeadlessAgent = await startHeadlessAgent({ configFile, dataDir, env, timeoutMs: START_TIMEOUT_MS });
  cleanups.push(() => agent.kill());
  mark('agent started');

  const page = await browser().newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  cleanups.push(async () => {
    await page.close();
    // A CSP violation or an uncaught error in the panel fails the test that caused it.
    expect(problems, 'browser console errors').toEqual([]);
  });
  await page.goto(panelUrlFrom(agent.cli.stdout));
  const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const status = page.getByTestId('mode-status');
  const inUse = (label: string) => `${label} — agreed with ${HUB_ID}`;
  await expect.poll(() => status.textContent(), { timeout: STEP_TIMEOUT_MS }).toBe(inUse('Enhanced'));
  await page.evaluate(RECORD_STATUS);
  mark('panel open: enhanced, agreed with the hub');
  await shot('0-enhanced-at-start');

  let allowed = CALLS_PER_STEP;
  const producer = new EventProducer({
    dataDir,
    env,
    name: EVENT_NAME,
    calls: CALLS,
    perCall: PER_CALL,
    lanes: 2,
    allowed: () => allowed,
    agentUp: () => agent.alive,
    // The agent never goes away here: any failed call is a defect.
    maxAttempts: 1,
  });
  cleanups.push(() => {
    producer.stop();
    return Promise.resolve();
  });
  // A producer that fails ends the wait in progress at once, with its error.
  const { finished: producing, failed: producerFailed } = producer.start();
  const until = <T>(what: string, check: () => T | Promise<T>, timeoutMs = STEP_TIMEOUT_MS) =>
    Promise.race([waitUntil(what, check, timeoutMs, 50), producerFailed]);
  const outbox = (s: Snapshot) => {
    if (!s.outbox) throw new Error('the agent runs without an outbox');
    return s.outbox;
  };

  const switches: SwitchRecord[] = [];
  let current: 'Legacy' | 'Enhanced' = 'Enhanced';
  let ackedBefore = 0;
  for (const [i, { click, inUse: next }] of SWITCHES.entries()) {
    // Events flowing in the mode in use: some delivered in it since the last switch, more waiting.
    const before = await until(`events delivered in ${current} mode and more waiting`, async () => {
      const s = await agent.snapshot();
      const o = outbox(s);
      const flowing = o.acked_seq > ackedBefore && (o.depth > 0 || producer.callsDone >= allowed);
      return s.state.phase === 'connected' && s.mode.current === current.toLowerCase() && flowing ? s : undefined;
    });
    const seenFrom = (await seenSince(page, 0)).length;
    await page.getByTestId(`mode-${click}`).click();
    const o = outbox(before);
    mark(
      `clicked ${click} (outbox: ${o.depth} waiting, ${o.unacked} unacknowledged, acked_seq ${o.acked_seq}; ` +
        `${producer.acceptedCount} accepted so far)`,
    );
    await shot(`${i + 1}a-clicked-${click}`);
    allowed += CALLS_PER_STEP;

    // What the person sees: the card's line says the new mode is in use, the toggle is usable again.
    await until(`the mode card to say "${inUse(next)}"`, async () => {
      const line = await status.textContent();
      const pressed = await page.getByTestId(`mode-${click}`).getAttribute('aria-pressed');
      return line === inUse(next) && pressed === 'true' && (await page.getByTestId('mode-auto').isEnabled());
    });
    const after = await agent.snapshot();
    expect(after.mode.configured).toBe(click);
    expect(after.mode.current).toBe(next.toLowerCase());
    const record: SwitchRecord = {
      to: click,
      depth: o.depth,
      unacked: o.unacked,
      ackedSeq: o.acked_seq,
      accepted: producer.acceptedCount,
      seen: await seenSince(page, seenFrom),
      messagesSent: numberIn(await text(page, 'stat-messages-sent')),
      reconnects: numberIn(await text(page, 'stat-reconnects')),
    };
    switches.push(record);
    mark(
      `${next} in use; the page showed: ` +
        record.seen.map((s) => `[${s.link ?? '—'} | ${s.mode ?? '—'} | ${s.quality ?? '—'}]`).join(' → '),
    );
    await shot(`${i + 1}b-${next.toLowerCase()}-in-use`);
    ackedBefore = outbox(after).acked_seq;
    current = next;
  }

  // Every call accepted, then the outbox empties: as the panel's outbox card shows it.
  allowed = CALLS;
  await Promise.race([producing, producerFailed]);
  mark(`every call accepted (${producer.acceptedCount} events)`);
  // The agent first: the page may still show a snapshot from before the last call's events (one
  // that read 0 waiting between two calls), pushed at most every 250 ms and later under load.
  await until("the agent's outbox to drain", async () => {
    const o = outbox(await agent.snapshot());
    return o.depth === 0 && o.unacked === 0;
  });
  await until('the outbox card to show nothing waiting or unacknowledged', async () => {
    const waiting = await text(page, 'outbox-depth');
    const unacked = await text(page, 'outbox-unacked');
    return waiting.startsWith('Waiting0 of') && unacked === '0';
  });
  const end = await agent.snapshot();
  expect(outbox(end)).toMatchObject({ depth: 0, unacked: 0 });
  mark(`outbox drained (acked_seq ${outbox(end).acked_seq})`);
  await shot('5-drained');
  await page.getByTestId('mode-figures').screenshot({ path: path.join(shots, '5-figures.png') });

  const figures = {
    enhanced: sentReceived(await text(page, 'figures-messages-enhanced')),
    legacy: sentReceived(await text(page, 'figures-messages-legacy')),
    enhancedHead: await text(page, 'figures-head-enhanced'),
  };
  const events = redisUrl !== undefined ? await readStream(redisUrl, `${prefix}events`) : await readAdminEvents(hub);
  const duplicates = await duplicatesDropped(hub);
  const agentLog = agent.cli.stdout;
  // The page first: an open panel would try to reconnect to the stopped agent (a console error).
  await page.close();
  await agent.stop();
  // The hub's word on each connection a switch ended: the agent said goodbye, and why.
  const gracefulSwitches = hub.logs.filter(
    (l) => l.kind === 'graceful' && l.agent_id === AGENT_ID && l.reason === 'mode_changed',
  ).length;
  return { producer, switches, end, figures, events, timeline, agentLog, hub, duplicates, gracefulSwitches };
}

/** Which seqs the sink holds how often, and whether in order. */
function analyse(events: readonly SinkEvent[], producer: EventProducer) {
  const ours = events.filter((e) => e.agent_id === AGENT_ID);
  const seqs = ours.map((e) => e.seq ?? 0);
  const outOfOrder = seqs.flatMap((seq, i) => (i > 0 && !(seq > seqs[i - 1]!) ? [seq] : []));
  const present = new Set(seqs);
  const missing = [...producer.accepted.keys()].filter((seq) => !present.has(seq)).sort((a, b) => a - b);
  const notAccepted = seqs.filter((seq) => !producer.accepted.has(seq));
  const dataMismatch = ours.filter((e) => {
    const sent = producer.accepted.get(e.seq ?? 0);
    return sent !== undefined && (e.name !== EVENT_NAME || !isDeepStrictEqual(e.data, sent));
  });
  return { foreign: events.length - ours.length, count: ours.length, outOfOrder, missing, notAccepted, dataMismatch };
}

/** Consecutive seqs folded into ranges, for a readable report. */
function ranges(seqs: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < seqs.length;) {
    let j = i;
    while (j + 1 < seqs.length && seqs[j + 1] === seqs[j]! + 1) j += 1;
    out.push(i === j ? String(seqs[i]) : `${seqs[i]}–${seqs[j]}`);
    i = j + 1;
  }
  return out.join(', ') || 'none';
}

/** The agent's warn and error log lines, counted by message with numbers blanked. */
function agentProblems(stdout: string): string[] {
  const counts = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string };
      if ((entry.level ?? 0) < 40 || !entry.msg) continue;
      const key = entry.msg.replace(/\d+/g, 'N').slice(0, 160);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    } catch {
      // not a log line
    }
  }
  return [...counts].map(([msg, n]) => `${msg} ×${n}`);
}

describe('switching the protocol mode from the panel while events flow (Chromium, real hub and agent)', () => {
  it.each<[string, SinkKind]>([
    ['an lmdb event log in --data-dir', 'local'],
    ['a Redis stream', 'redis'],
  ])(
    'hub with %s: Legacy, Enhanced, Legacy, Auto clicked mid-flow; every accepted event in the sink exactly once, in order',
    async (_, sink) => {
      const outcome = await run(sink);
      const { producer, switches, end, figures } = outcome;
      const a = analyse(outcome.events, producer);
      const problems = [
        ...agentProblems(outcome.agentLog),
        ...[...outcome.hub.problemCounts].map(([m, n]) => `hub: ${m} ×${n}`),
      ];
      console.log(
        [
          `── mode switch, ${sink} sink`,
          ...outcome.timeline.map((t) => `  ${t}`),
          `  accepted: ${producer.acceptedCount}; in the sink: ${a.count} (${a.foreign} of other agents)`,
          `  missing: ${a.missing.length} (${ranges(a.missing)}); twice or out of order: ${a.outOfOrder.length}`,
          `  traffic card, messages sent after each switch: ${switches.map((s) => s.messagesSent).join(' → ')}; ` +
            `reconnects: ${switches.map((s) => s.reconnects).join(' → ')}`,
          `  hub: ${outcome.gracefulSwitches} graceful disconnects for a mode change; duplicates dropped: ${outcome.duplicates}`,
          `  figures card, messages sent / received: enhanced ${figures.enhanced.join(' / ')}, legacy ${figures.legacy.join(' / ')}`,
          ...problems.map((p) => `  logged: ${p}`),
        ].join('\n'),
      );

      expect(producer.acceptedCount).toBe(TOTAL);
      expect(a.foreign).toBe(0);
      // Each seq once and in order; every accepted one there, with the data it was accepted with.
      expect(a.outOfOrder).toEqual([]);
      expect(a.missing).toEqual([]);
      expect(a.notAccepted).toEqual([]);
      expect(a.dataMismatch).toEqual([]);

      // Each connection a switch ended was closed gracefully, as the hub saw it, and nothing in the
      // agent's log says one was lost.
      expect(outcome.gracefulSwitches).toBe(SWITCHES.length);
      expect(outcome.agentLog).not.toMatch(/"msg":"Connection lost/);

      // The statistics carry on across the switches: every switch is one more reconnect, and the
      // messages sent only grow, to at least every event (a reset would have lost the earlier ones).
      expect(switches.map((s) => s.reconnects)).toEqual([1, 2, 3, 4]);
      for (let i = 1; i < switches.length; i += 1) {
        expect(switches[i]!.messagesSent).toBeGreaterThan(switches[i - 1]!.messagesSent);
      }
      expect(end.stats.messages_sent).toBeGreaterThanOrEqual(TOTAL);
      // Both modes carried events, and the figures card shows them side by side; auto is enhanced at the end.
      expect(figures.enhanced[0]).toBeGreaterThan(0);
      expect(figures.legacy[0]).toBeGreaterThan(0);
      expect(figures.enhanced[0] + figures.legacy[0]).toBeGreaterThanOrEqual(TOTAL);
      expect(figures.enhancedHead).toBe('Enhanced (in use)');
      // No state in between said the agent was offline or stopped, or that the link was lost: the
      // gap between the two connections shows as the switch it is.
      const seen = switches.flatMap((s) => s.seen);
      expect(seen.filter((s) => /Offline|Stopped|Last known/.test(s.link ?? ''))).toEqual([]);
      expect(seen.filter((s) => s.quality === 'Disconnected')).toEqual([]);
      expect(seen.filter((s) => s.link !== 'Connected' && s.quality !== 'Switching mode…')).toEqual([]);
    },
    RUN_TIMEOUT_MS,
  );
});
