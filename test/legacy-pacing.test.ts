import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isolatedEnv, runCli } from './helpers/cli-process.js';
import { startHeadlessAgent, type HeadlessAgent } from './helpers/headless-agent.js';
import { startHub, type HubProcess } from './helpers/hub-process.js';
import { metricFromText } from './helpers/raw-client.js';
import { sleep, waitUntil } from './helpers/wait.js';

/**
 * A legacy agent under a hub's low rate limit (50 messages/s, burst 20): events go one per frame,
 * and a hub that falls behind reading them — here it is stopped outright for a moment, as a long
 * GC pause or a starved VM stops it — must not find more frames waiting than its burst allows when
 * it reads again. Real hub, real agent, real `farmlink event`.
 */

const AGENT_ID = 'pc-paced';
const EVENTS = 300;
/** The hub is stopped this long: at the agent's pace (40 frames/s) twice the hub's burst would pile up. */
const PAUSE_MS = 1500;

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

interface LegacyFigures {
  total_connections: number;
  events_received: number;
}

describe('legacy mode under the hub’s rate limit', () => {
  it('paces itself so a hub that stalls reads no burst beyond its limit: no 4429, every event delivered once', async () => {
    const hub: HubProcess = await startHub({
      hubId: 'pacing-hub',
      args: ['--rate', '50', '--burst', '20', '--broadcast-interval', '0'],
    });
    cleanups.push(() => hub.kill());
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-pacing-'));
    cleanups.push(() => fs.promises.rm(parent, { recursive: true, force: true }));
    const { env, dataDir } = isolatedEnv(parent);
    const tokenFile = path.join(parent, 'agent-token');
    fs.writeFileSync(tokenFile, await hub.agentToken(AGENT_ID));
    const configFile = path.join(parent, 'agent.yaml');
    fs.writeFileSync(
      configFile,
      [
        'server:',
        `  url: ${hub.url}`,
        'agent:',
        `  id: ${AGENT_ID}`,
        `  token_file: ${tokenFile}`,
        'protocol:',
        '  mode: legacy',
        'adb:',
        '  track_devices: false',
        '',
      ].join('\n'),
    );
    const agent: HeadlessAgent = await startHeadlessAgent({ configFile, dataDir, env });
    cleanups.push(() => agent.kill());
    await waitUntil('the agent registered in legacy mode', async () => {
      const s = await agent.snapshot();
      return s.state.phase === 'connected' && s.mode.current === 'legacy';
    });

    const legacy = async (): Promise<LegacyFigures> => {
      const res = await fetch(`${hub.url}/metrics`, { headers: { accept: 'application/json' } });
      return ((await res.json()) as { legacy: LegacyFigures }).legacy;
    };
    const sent = await runCli(['event', 'paced.event', '--count', String(EVENTS), '--data-dir', dataDir], env);
    expect(sent.code, sent.stderr).toBe(0);
    await waitUntil('the hub reading the first events', async () => (await legacy()).events_received >= 20);
    hub.signal('SIGSTOP');
    await sleep(PAUSE_MS);
    hub.signal('SIGCONT');

    const rateLimited = async () =>
      metricFromText(await (await fetch(`${hub.url}/metrics`)).text(), 'farmlink_errors_total', {
        kind: 'rate_limited',
      });
    // Ends at a 4429 too, not at the timeout: it ends the connection, and what was in flight is lost.
    await waitUntil(
      `all ${EVENTS} events at the hub, or a 4429`,
      async () => (await rateLimited()) > 0 || (await legacy()).events_received === EVENTS,
      60_000,
    );
    expect(await rateLimited(), 'connections closed with 4429').toBe(0);
    const figures = await legacy();
    expect(figures.total_connections, 'one connection throughout').toBe(1);
    expect(hub.logs.filter((l) => l.kind === 'rate_limited')).toEqual([]);

    const admin = await hub.adminToken();
    const res = await fetch(`${hub.url}/api/v1/admin/events?limit=1000`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    const { events } = (await res.json()) as { events: Array<{ agent_id: string; seq: number | null }> };
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: EVENTS }, (_, i) => i + 1));
    expect(new Set(events.map((e) => e.agent_id))).toEqual(new Set([AGENT_ID]));
  }, 120_000);
});
