import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import YAML from 'yaml';
import { systemClock, type Clock } from '../lib/clock.js';
import { flagOverrides, loadAgentConfig } from '../agent/config/load-config.js';
import { AgentHost, LOCAL_HUB_SOURCE } from '../agent/host/agent-host.js';
import { LogBuffer } from '../agent/host/log-buffer.js';
import { subscribeFeed } from '../agent/host/snapshot-feed.js';
import { createLogger } from '../agent/log/logger.js';
import { PanelServer } from '../agent/panel/panel-server.js';
import { findRendererDir } from '../agent/panel/static-files.js';
import { SnapshotSchema, type Snapshot } from '../protocol/agent-host.js';
import { OFFLINE_AFTER_MS, downSince, linkStatus } from '../protocol/link-status.js';
import { PANEL_WS_PATH, PanelCloseCode } from '../protocol/panel-wire.js';
import { connectionQuality } from '../protocol/quality.js';
import { startHub, type HubProcess } from './helpers/hub-process.js';
import { freePort } from './helpers/ports.js';
import { waitUntil } from './helpers/wait.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-host-'));
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

const FAST = [
  'connection.heartbeat_interval=0.1',
  'connection.dead_timeout=1',
  'connection.ping_interval=0.2',
  'connection.ping_timeout=0.5',
  'connection.initial_reconnect_delay=0.05',
  'connection.max_reconnect_delay=0.3',
];

async function hub(): Promise<HubProcess> {
  const h = await startHub();
  cleanups.push(() => h.kill());
  return h;
}

/** A real AgentHost (real agent, real logger into a LogBuffer) on a config file of its own. */
async function host(configText: string, options: { throughputIntervalMs?: number; clock?: Clock } = {}) {
  const dir = fs.mkdtempSync(path.join(tmp, 'agent-'));
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(file, configText);
  const overrides = flagOverrides({ set: FAST, logFile: false });
  const { config } = loadAgentConfig({ file, overrides });
  const logs = new LogBuffer();
  const { logger } = await createLogger({ level: 'info', console: 'off', memory: logs });
  const h = new AgentHost({
    config,
    configFile: file,
    defaultConfigFile: file,
    overrides,
    dataDir: dir,
    logger,
    logs,
    throughputIntervalMs: options.throughputIntervalMs ?? 200,
    ...(options.clock ? { clock: options.clock, agentDeps: { clock: options.clock } } : {}),
  });
  cleanups.push(() => h.stop());
  h.start();
  return { host: h, file, logs };
}

const connectedTo = (h: AgentHost, index: number) => () => {
  const s = h.snapshot();
  return s.state.phase === 'connected' && s.state.server.index === index;
};

describe('AgentHost', () => {
  it('snapshots the agent as the panel needs it, valid against the schema', async () => {
    const a = await hub();
    const { host: h } = await host(
      `server:\n  url: "${a.url}"\n  fallback_urls: ["http://127.0.0.1:1"]\nagent:\n  id: pc-snap\n  token: "${await a.agentToken('pc-snap')}"\n`,
    );
    await waitUntil('registered', connectedTo(h, 0));
    await waitUntil(
      'a few heartbeats and throughput samples',
      () => h.snapshot().stats.heartbeat_rtt.length >= 3 && h.snapshot().throughput.length >= 2,
    );
    const snapshot = h.snapshot();
    expect(SnapshotSchema.safeParse(snapshot).success).toBe(true);
    expect(snapshot.servers.map((s) => [s.role, s.status, s.configured_url])).toEqual([
      ['primary', 'active', a.url],
      ['fallback', 'untried', 'http://127.0.0.1:1'],
    ]);
    // The level itself depends on round trips (a loaded machine can make them 'poor'): check it is
    // judged from this connection's own heartbeats, and that a connected agent is never 'disconnected'.
    expect(snapshot.quality).toEqual(connectionQuality(snapshot.state, snapshot.stats));
    expect(snapshot.quality.samples).toBeGreaterThanOrEqual(3);
    expect(snapshot.quality.level).not.toBe('disconnected');
    expect(snapshot.events.map((e) => e.to.phase)).toEqual(['connecting', 'registering', 'connected']);
    // The hub offers enhanced mode and auto takes it: every frame, the handshake included, counts as enhanced.
    expect(snapshot.mode).toMatchObject({
      configured: 'auto',
      current: 'enhanced',
      negotiated: true,
      available: ['legacy', 'enhanced'],
      unavailable: {},
    });
    expect(snapshot.mode_figures.legacy.frames_sent).toBe(0);
    expect(snapshot.mode_figures.enhanced.frames_sent).toBeGreaterThanOrEqual(2);
    expect(snapshot.settings).toMatchObject({ has_token: true, values: { server: { url: a.url } } });
    expect(JSON.stringify(snapshot)).not.toContain((await a.agentToken('pc-snap')).slice(-20)); // the token never leaves
    expect(h.tailLogs({ limit: 50, min_level: 'info' }).map((l) => l.msg)).toContainEqual(
      expect.stringMatching(/^✓ Connected to server ws:/),
    );
  });

  it('refuses invalid settings with every field problem, and writes nothing', async () => {
    const a = await hub();
    const text = `# my notes\nserver:\n  url: "${a.url}"\nagent:\n  id: pc-invalid\n  token: "${await a.agentToken('pc-invalid')}"\n`;
    const { host: h, file } = await host(text);
    await waitUntil('registered', connectedTo(h, 0));
    const values = h.snapshot().settings.values;
    await expect(
      h.saveSettings({
        ...values,
        server: { url: 'ftp://nope', fallback_urls: ['http://ok.example', 'bad'] },
        connection: { ...values.connection, ping_timeout: -1 },
      }),
    ).rejects.toMatchObject({
      code: 'INVALID_SETTINGS',
      problems: [
        { path: 'server.url', message: expect.stringMatching(/http:\/\/, https:\/\//) as string },
        { path: 'server.fallback_urls.1', message: expect.any(String) as string },
        { path: 'connection.ping_timeout', message: expect.stringMatching(/greater than 0/) as string },
      ],
    });
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
    expect(connectedTo(h, 0)()).toBe(true);
  });

  it("saves valid settings to the file (keeping the owner's comments) and applies them live, keeping history and counters", async () => {
    const [a, b] = [await hub(), await hub()];
    const text =
      `# Farm 7, rack 3 — do not remove\nserver:\n  url: "${a.url}" # the old hub\nagent:\n  id: ` +
      `pc-live\n  token: "${await a.agentToken('pc-live')}"\nlog:\n  level: info\n`;
    const { host: h, file } = await host(text);
    await waitUntil('registered on A', connectedTo(h, 0));
    await waitUntil('some traffic', () => h.snapshot().stats.messages_received > 5);
    const before = h.snapshot();
    const values = before.settings.values;
    const result = await h.saveSettings({
      ...values,
      server: { url: b.url, fallback_urls: [a.url] },
      connection: { ...values.connection, registration_timeout: 7 },
      agent: { name: 'Rack 3 PC' },
    });
    expect(result).toEqual({ file });
    await waitUntil('registered on B, the new primary', connectedTo(h, 0));
    const after = h.snapshot();
    expect(after.servers.map((s) => s.configured_url)).toEqual([b.url, a.url]);
    expect(after.agent.name).toBe('Rack 3 PC');
    expect(after.stats.messages_received).toBeGreaterThanOrEqual(before.stats.messages_received);
    expect(after.stats.reconnect_count).toBe(before.stats.reconnect_count + 1);
    expect(after.events.length).toBeGreaterThan(before.events.length);
    expect(after.events.some((e) => e.reason.message === 'Applying new settings')).toBe(true);
    await b.waitForLog(
      'pc-live registered on B',
      (l) => l.agent_id === 'pc-live' && typeof l.msg === 'string' && l.msg.includes('registered'),
    );
    await a.waitForLog('pc-live left A gracefully', (l) => l.agent_id === 'pc-live' && l.kind === 'graceful');

    const written = fs.readFileSync(file, 'utf8');
    expect(written).toContain('# Farm 7, rack 3 — do not remove');
    expect(written).toContain('# the old hub');
    expect(written).toContain('level: info');
    expect(written).toContain('registration_timeout: 7');
    expect(written).not.toContain('connect_timeout'); // defaults are not spelled out
    expect(written).not.toContain('heartbeat_interval'); // fixed by a --set flag: the file is not where it lives
    expect(written).toMatch(/token: \S{100,}\n/); // the long token stays on one line
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(loadAgentConfig({ file }).config.server).toEqual({ url: b.url, fallback_urls: [a.url] });
  });

  it(
    'after Save and apply the link is reconnecting from the moment of the apply, not offline since the ' +
      'start; last message and counters carry on',
    async () => {
      const a = await hub();
      const nobody = await freePort();
      // The host's wall clock, moved on by hand: five minutes of being connected, without waiting them.
      let skipped = 0;
      const clock: Clock = { ...systemClock, now: () => Date.now() + skipped };
      const { host: h } = await host(
        `server:\n  url: "${a.url}"\nagent:\n  id: pc-apply\n  token: "${await a.agentToken('pc-apply')}"\n`,
        { clock },
      );
      await waitUntil('registered', connectedTo(h, 0));
      await waitUntil('some traffic', () => h.snapshot().stats.messages_received > 3);
      skipped = 5 * 60_000;
      const before = h.snapshot();
      expect(before.stats.last_message_at).not.toBeNull();
      const appliedAt = clock.now();
      const values = before.settings.values;
      await h.saveSettings({ ...values, server: { url: `http://127.0.0.1:${nobody}`, fallback_urls: [] } });

      const check = (after: Snapshot) => {
        expect(after.state.phase).not.toBe('connected');
        expect(after.stats.disconnected_since).toBeGreaterThanOrEqual(appliedAt);
        expect(downSince(after.state, after.stats, after.started_at)).toBe(after.stats.disconnected_since);
        expect(after.now - after.stats.disconnected_since!).toBeLessThan(OFFLINE_AFTER_MS);
        expect(linkStatus(after.state, after.stats, after.started_at, after.now).tone).toBe('reconnecting');
        // The history goes on: the last message is the old agent's, the counters include its traffic.
        expect(after.stats.last_message_at).toBeGreaterThanOrEqual(before.stats.last_message_at!);
        expect(after.stats.messages_received).toBeGreaterThanOrEqual(before.stats.messages_received);
        expect(after.stats.last_success_at).toBe(before.stats.last_success_at);
      };
      check(h.snapshot());
      await waitUntil(
        'the new primary refused and a retry is scheduled',
        () => h.snapshot().state.phase === 'reconnecting',
      );
      check(h.snapshot());
    },
  );

  it('switches the protocol mode live: a graceful reconnect to the same hub in the other mode, and back', async () => {
    const a = await hub();
    const { host: h } = await host(
      `server:\n  url: "${a.url}"\nagent:\n  id: pc-mode\n  token: "${await a.agentToken('pc-mode')}"\n`,
    );
    const session = () => {
      const state = h.snapshot().state;
      return state.phase === 'connected' ? state : undefined;
    };
    await waitUntil('connected in enhanced mode', () => session()?.mode === 'enhanced');
    const first = session()?.session_id;
    expect(h.setMode('legacy')).toBe('legacy');
    await waitUntil('connected again, in legacy mode', () => session()?.mode === 'legacy');
    expect(session()?.session_id).not.toBe(first);
    expect(h.snapshot().mode).toMatchObject({ configured: 'legacy', current: 'legacy', negotiated: true });
    // A switch is not a failure of the server, and the hub saw a graceful disconnect.
    expect(h.snapshot().stats.servers[0]?.failures).toBe(0);
    await a.waitForLog(
      'graceful disconnect',
      (l) => l.agent_id === 'pc-mode' && /gracefully \(mode_changed\)/.test(l.msg),
    );
    // Already what the setting allows: nothing to do.
    const registrations = h.snapshot().stats.servers[0]?.registrations;
    expect(h.setMode('legacy')).toBe('legacy');
    expect(h.setMode('auto')).toBe('auto');
    await waitUntil('back in enhanced mode', () => session()?.mode === 'enhanced');
    expect(h.snapshot().stats.servers[0]?.registrations).toBe((registrations ?? 0) + 1);
  });

  it('coalesces changes: at most one snapshot per interval however busy the connection', async () => {
    const a = await hub();
    const { host: h } = await host(
      `server:\n  url: "${a.url}"\nagent:\n  id: pc-busy\n  token: "${await a.agentToken('pc-busy')}"\n`,
      { throughputIntervalMs: 50 },
    );
    let changes = 0;
    h.events.on('changed', () => (changes += 1));
    const sent: number[] = [];
    const off = subscribeFeed(
      h,
      (event) => {
        if (event === 'snapshot') sent.push(Date.now());
      },
      250,
    );
    // Enough snapshots to measure five gaps between them, and more than twice as many changes (heartbeats
    // every 100 ms, samples every 50 ms), however slowly a loaded machine runs those timers.
    await waitUntil(
      'six snapshots sent, for more than twice as many changes',
      () => sent.length >= 6 && changes > sent.length * 2,
      30_000,
    );
    off();
    const gaps = sent.slice(1).map((t, i) => t - sent[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(240);
  });
});

describe('AgentHost: a save never half-happens', () => {
  it('refuses a token that is not a JWT as an inline problem, writes nothing, and the next save works', async () => {
    const a = await hub();
    const text = `server:\n  url: "${a.url}"\nagent:\n  id: pc-badtoken\n  token: "${await a.agentToken('pc-badtoken')}"\n`;
    const { host: h, file } = await host(text);
    await waitUntil('registered', connectedTo(h, 0));
    const values = h.snapshot().settings.values;
    for (const token of ['eyJhbGciOiJIUzI1NiIs…', `${await a.agentToken('pc-badtoken')}\n`]) {
      await expect(h.saveSettings({ ...values, agent: { ...values.agent, token } })).rejects.toMatchObject({
        code: 'INVALID_SETTINGS',
        problems: [
          {
            path: 'agent.token',
            message: expect.stringMatching(/^expected a JWT .*three base64url segments/) as string,
          },
        ],
      });
    }
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
    expect(connectedTo(h, 0)()).toBe(true);
    await h.saveSettings({ ...values, agent: { name: 'after a refusal' } });
    await waitUntil(
      'the valid save applied',
      () => h.snapshot().agent.name === 'after a refusal' && connectedTo(h, 0)(),
    );
  });

  it('refuses a new token in the form while the token comes from agent.token_file, pointing at that file', async () => {
    const a = await hub();
    const dir = fs.mkdtempSync(path.join(tmp, 'tokenfile-'));
    fs.writeFileSync(path.join(dir, 'pc.token'), `${await a.agentToken('pc-tokenfile')}\n`, { mode: 0o600 });
    const file = path.join(dir, 'agent.yaml');
    const text = `server:\n  url: "${a.url}"\nagent:\n  id: pc-tokenfile\n  token_file: pc.token\n`;
    fs.writeFileSync(file, text);
    const overrides = flagOverrides({ set: FAST, logFile: false });
    const { config } = loadAgentConfig({ file, overrides });
    const logs = new LogBuffer();
    const { logger } = await createLogger({ level: 'info', console: 'off', memory: logs });
    const h = new AgentHost({
      config,
      configFile: file,
      defaultConfigFile: file,
      overrides,
      dataDir: dir,
      logger,
      logs,
    });
    cleanups.push(() => h.stop());
    h.start();
    await waitUntil('registered with the token from the file', connectedTo(h, 0));
    expect(h.snapshot().settings.has_token).toBe(true);
    const values = h.snapshot().settings.values;
    await expect(
      h.saveSettings({ ...values, agent: { token: await a.agentToken('pc-tokenfile') } }),
    ).rejects.toMatchObject({
      code: 'INVALID_SETTINGS',
      problems: [
        {
          path: 'agent.token',
          message:
            'this agent reads its token from agent.token_file (pc.token): put the new token in that file instead',
        },
      ],
    });
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
  });

  it('validates the whole file before writing: a save that would leave it invalid writes nothing and keeps the agent as it was', async () => {
    const a = await hub();
    const text = `server:\n  url: "${a.url}"\nagent:\n  id: pc-whole\n  token: "${await a.agentToken('pc-whole')}"\n`;
    const { host: h, file } = await host(text);
    await waitUntil('registered', connectedTo(h, 0));
    const values = h.snapshot().settings.values;
    // Someone broke the file by hand while the agent ran.
    const broken = `${text}log:\n  level: loud\n`;
    fs.writeFileSync(file, broken);
    await expect(h.saveSettings({ ...values, agent: { name: 'not saved' } })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(
        /^Nothing was saved: .*agent\.yaml would not be valid as a whole: .*log\.level: expected one of/,
      ) as string,
    });
    expect(fs.readFileSync(file, 'utf8')).toBe(broken);
    expect(connectedTo(h, 0)()).toBe(true);
    expect(h.snapshot().agent.name).not.toBe('not saved');
    // Fixed by hand: the next save goes through.
    fs.writeFileSync(file, text);
    await h.saveSettings({ ...values, agent: { name: 'saved' } });
    await waitUntil('applied', () => h.snapshot().agent.name === 'saved' && connectedTo(h, 0)());
    expect(fs.readFileSync(file, 'utf8')).toContain('name: saved');
  });
});

describe('AgentHost: the local hub of `farmlink start`', () => {
  it('going back to the local hub in Settings reconnects to it with its own token, in memory, in any spelling of its URL', async () => {
    // "local" plays the in-process hub: its secret is its own, and only tokenFor knows it.
    const localSecret = `local-${Math.random().toString(36).slice(2)}-0123456789abcdefghijklmnop`;
    const [local, farm] = [await startHub({ secret: localSecret }), await hub()];
    cleanups.push(() => local.kill());
    const localHub = { url: local.url, tokenFor: (id: string) => local.agentToken(id) };
    const dir = fs.mkdtempSync(path.join(tmp, 'zero-'));
    const file = path.join(dir, 'agent.yaml'); // does not exist yet: zero-config mode
    const overrides = [
      ...flagOverrides({ agentId: 'pc-local', set: FAST, logFile: false }),
      { path: ['server', 'url'], value: local.url, source: LOCAL_HUB_SOURCE },
    ];
    const { config: draft } = loadAgentConfig({ overrides });
    const config = { ...draft, agent: { ...draft.agent, token: await localHub.tokenFor('pc-local') } };
    const logs = new LogBuffer();
    const { logger } = await createLogger({ level: 'info', console: 'off', memory: logs });
    const h = new AgentHost({
      config,
      configFile: undefined,
      defaultConfigFile: file,
      overrides,
      dataDir: dir,
      logger,
      logs,
      localHub,
      throughputIntervalMs: 200,
    });
    cleanups.push(() => h.stop());
    h.start();
    await waitUntil('registered on the local hub', connectedTo(h, 0));
    expect(h.snapshot().local_hub).toEqual({ url: local.url });
    const values = h.snapshot().settings.values;

    // To the farm's hub, with its token…
    const farmToken = await farm.agentToken('pc-local');
    await h.saveSettings({ ...values, server: { url: farm.url, fallback_urls: [] }, agent: { token: farmToken } });
    await farm.waitForLog(
      'registered on the farm hub',
      (l) => l.agent_id === 'pc-local' && typeof l.msg === 'string' && l.msg.includes('registered'),
    );
    await waitUntil('connected to the farm hub', connectedTo(h, 0));
    expect(h.snapshot().local_hub).toBeNull();

    // …and back, spelled differently. The file keeps the farm hub's token, which the local hub would refuse.
    for (const spelling of [`http://localhost:${local.port}/`, `ws://127.0.0.1:${local.port}/api/v1/pc/ws`]) {
      const registrations = local.logs.filter(
        (l) => l.agent_id === 'pc-local' && typeof l.msg === 'string' && l.msg.includes('registered'),
      ).length;
      await h.saveSettings({ ...h.snapshot().settings.values, server: { url: spelling, fallback_urls: [] } });
      await waitUntil(
        `registered again on the local hub (${spelling})`,
        () =>
          local.logs.filter(
            (l) => l.agent_id === 'pc-local' && typeof l.msg === 'string' && l.msg.includes('registered'),
          ).length > registrations,
      );
      await waitUntil('connected', connectedTo(h, 0));
      expect(h.snapshot().local_hub).toEqual({ url: local.url });
      expect(h.snapshot().stats.last_error?.close_code).not.toBe(4401);
      const written = fs.readFileSync(file, 'utf8');
      expect(written).toContain(`url: ${spelling}`);
      expect((YAML.parse(written) as { agent: { token: string } }).agent.token).toBe(farmToken);
    }
    expect(h.tailLogs({ limit: 200, min_level: 'info' }).map((l) => l.msg)).toContainEqual(
      expect.stringMatching(/^server\.url is the local hub this process runs .*kept in memory and not written to/),
    );
  });
});

describe('headless panel server', () => {
  async function panel(options: { token?: string; rendererDir?: string | undefined } = {}) {
    const a = await hub();
    const { host: h } = await host(
      `server:\n  url: "${a.url}"\nagent:\n  id: pc-panel\n  token: "${await a.agentToken('pc-panel')}"\n`,
    );
    const server = new PanelServer({
      host: '127.0.0.1',
      port: 0,
      allowRemote: false,
      fallbackToFreePort: false,
      token: options.token ?? 'panel-token-0123456789-abcdefghijklmnopq',
      rendererDir: 'rendererDir' in options ? options.rendererDir : findRendererDir(),
      agentHost: h,
      logger: (await createLogger({ level: 'silent', console: 'off' })).logger,
      authTimeoutMs: 500,
    });
    await server.listen();
    cleanups.push(() => server.close());
    return {
      server,
      host: h,
      base: `http://127.0.0.1:${server.port}`,
      ws: `ws://127.0.0.1:${server.port}${PANEL_WS_PATH}`,
    };
  }

  function socket(url: string, origin?: string) {
    const ws = new WebSocket(url, origin ? { origin } : {});
    const messages: Array<{ kind: string; [k: string]: unknown }> = [];
    ws.on('message', (d: Buffer) => messages.push(JSON.parse(d.toString()) as { kind: string }));
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    const opened = new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return { ws, messages, closed, opened };
  }

  it('serves the renderer with a strict CSP, and nothing outside it', async () => {
    const { base } = await panel();
    const index = await fetch(`${base}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await index.text()).toContain('<div id="root">');
    expect((await fetch(`${base}/..%2f..%2fpackage.json`)).status).toBe(404);
    expect((await fetch(`${base}/%2e%2e/%2e%2e/package.json`)).status).toBe(404);
  });

  it('answers only loopback host names (no DNS rebinding)', async () => {
    const { server } = await panel();
    const status = await new Promise<number>((resolve) => {
      const req = http.request(
        { host: '127.0.0.1', port: server.port, path: '/', headers: { host: `attacker.example:${server.port}` } },
        (res) => resolve(res.statusCode ?? 0),
      );
      req.end();
    });
    expect(status).toBe(403);
  });

  it('opens the API only to the token, then pushes coalesced snapshots and answers calls', async () => {
    const { ws: url, base } = await panel();
    const wrong = socket(url, base);
    await wrong.opened;
    wrong.ws.send(JSON.stringify({ kind: 'auth', token: 'guess' }));
    expect(await wrong.closed).toMatchObject({ code: PanelCloseCode.UNAUTHORIZED });

    const silent = socket(url, base);
    expect(await silent.closed).toMatchObject({ code: PanelCloseCode.AUTH_TIMEOUT });

    const foreign = socket(url, 'http://evil.example');
    expect(await foreign.closed).toMatchObject({ code: PanelCloseCode.FORBIDDEN_ORIGIN });

    const good = socket(url, base);
    await good.opened;
    good.ws.send(JSON.stringify({ kind: 'auth', token: 'panel-token-0123456789-abcdefghijklmnopq' }));
    await waitUntil(
      'ready and a pushed snapshot',
      () =>
        good.messages.some((m) => m.kind === 'ready') &&
        good.messages.some((m) => m.kind === 'event' && m.event === 'snapshot'),
    );
    good.ws.send(JSON.stringify({ kind: 'call', id: 7, method: 'getSnapshot', input: {} }));
    good.ws.send(JSON.stringify({ kind: 'call', id: 8, method: 'setMode', input: { mode: 'enhanced' } }));
    good.ws.send(
      JSON.stringify({ kind: 'call', id: 9, method: 'saveSettings', input: { settings: { server: { url: 'nope' } } } }),
    );
    await waitUntil('three results', () => good.messages.filter((m) => m.kind === 'result').length === 3);
    const results = new Map(
      good.messages
        .filter((m) => m.kind === 'result')
        .map((m) => [m.id as number, m.result as { ok: boolean; value?: Snapshot; error?: { code: string } }]),
    );
    expect(SnapshotSchema.safeParse(results.get(7)?.value).success).toBe(true);
    expect(results.get(8)).toMatchObject({ ok: true, value: { mode: 'enhanced' } });
    expect(results.get(9)).toMatchObject({ ok: false, error: { code: 'INVALID_SETTINGS' } });
    good.ws.send('not json');
    expect(await good.closed).toMatchObject({ code: PanelCloseCode.INVALID_MESSAGE });
  });

  it('says how to build the panel when it is not built', async () => {
    const { base } = await panel({ rendererDir: undefined });
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('npm run build');
  });

  it('refuses to listen beyond loopback unless remote access was asked for', async () => {
    const { logger } = await createLogger({ level: 'silent', console: 'off' });
    expect(
      () =>
        new PanelServer({
          host: '0.0.0.0',
          port: 0,
          allowRemote: false,
          fallbackToFreePort: false,
          token: 't'.repeat(40),
          rendererDir: undefined,
          agentHost: undefined as unknown as AgentHost,
          logger,
        }),
    ).toThrow(/not loopback/);
  });
});
