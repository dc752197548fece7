import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.js';
import { resolveAgentSettings } from './agent-settings.js';
import { envOverrides, flagOverrides, loadAgentConfig, validateAgentConfig } from './load-config.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected a ConfigError');
}

/** Has a JWT's form; its signature is for the hub to check, not the config. */
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwYy0wMTcifQ.c2lnbmF0dXJl';

const FARM_CONFIG = `
server:
  url: "https://adb.example.com"
  fallback_urls:
    - "https://relay.example.net"
    - "https://backup1.example.com"
    - "https://backup2.example.com"
    - "http://192.168.1.100:8000"  # local server

connection:
  heartbeat_interval: 30
  connect_timeout: 30
  max_reconnect_delay: 60
  initial_reconnect_delay: 1
`;

describe('loadAgentConfig', () => {
  it("reads a farm's configuration as written, mapping http(s) base URLs to the agent endpoint", () => {
    const f = file('farm.yaml', FARM_CONFIG);
    const { config } = loadAgentConfig({ file: f });
    const settings = resolveAgentSettings(
      { ...config, agent: { ...config.agent, id: 'pc-1' } },
      { file: f, dataDir: dir },
    );
    expect(settings.servers).toEqual([
      'wss://adb.example.com/api/v1/pc/ws',
      'wss://relay.example.net/api/v1/pc/ws',
      'wss://backup1.example.com/api/v1/pc/ws',
      'wss://backup2.example.com/api/v1/pc/ws',
      'ws://192.168.1.100:8000/api/v1/pc/ws',
    ]);
    expect(settings.timing).toMatchObject({
      heartbeatIntervalMs: 30_000,
      connectTimeoutMs: 30_000,
      maxReconnectDelayMs: 60_000,
      initialReconnectDelayMs: 1000,
      pingIntervalMs: 20_000,
      pingTimeoutMs: 20_000,
      deadTimeoutMs: 90_000,
    });
  });

  it('accepts fractional seconds so tests can run in milliseconds', () => {
    const f = file(
      'fast.yaml',
      'server: {url: "ws://127.0.0.1:9/x"}\nconnection: {heartbeat_interval: 0.05, dead_timeout: 0.2, ' +
        'initial_reconnect_delay: 0.01, max_reconnect_delay: 0.1}\n',
    );
    const { config } = loadAgentConfig({ file: f });
    const settings = resolveAgentSettings({ ...config, agent: { id: 'x' } }, { file: f, dataDir: dir });
    expect(settings.servers).toEqual(['ws://127.0.0.1:9/x']); // ws URLs are used as written
    expect(settings.timing.heartbeatIntervalMs).toBe(50);
    expect(settings.timing.deadTimeoutMs).toBe(200);
    expect(settings.timing.initialReconnectDelayMs).toBe(10);
  });

  it('reports every problem at once, each with the file, the key path and what was expected', () => {
    const f = file(
      'bad.yaml',
      `
server:
  url: "ftp://nope"
  fallback_urls: ["https://ok.example.com", 42]
connection:
  heartbeat_intervall: 15
  connect_timeout: -1
  max_reconnect_delay: "soon"
log:
  level: loud
`,
    );
    const list = problems(() => loadAgentConfig({ file: f }));
    expect(list).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^${f}: server\\.url: expected an http://, https://, ws:// or wss:// URL`)),
        expect.stringMatching(new RegExp(`^${f}: server\\.fallback_urls\\.1: expected a URL string`)),
        `${f}: connection.heartbeat_intervall: unknown key — did you mean "heartbeat_interval"?`,
        expect.stringMatching(
          new RegExp(`^${f}: connection\\.connect_timeout: expected the connect timeout greater than 0 seconds`),
        ),
        expect.stringMatching(
          new RegExp(
            `^${f}: connection\\.max_reconnect_delay: expected the largest reconnect delay as a number of seconds`,
          ),
        ),
        expect.stringMatching(new RegExp(`^${f}: log\\.level: expected one of trace, debug, info`)),
      ]),
    );
    expect(list).toHaveLength(6);
  });

  it('says a missing server.url is required, and what it is', () => {
    const f = file('empty-server.yaml', 'connection:\n  heartbeat_interval: 10\n');
    expect(problems(() => loadAgentConfig({ file: f }))).toEqual([
      `${f}: server: required: a "server:" section with at least "url:" (the hub to connect to)`,
    ]);
    const g = file('no-url.yaml', 'server:\n  fallback_urls: []\n');
    expect(problems(() => loadAgentConfig({ file: g }))).toEqual([
      `${g}: server.url: required: the hub to connect to, such as "https://hub.example.com"`,
    ]);
  });

  it('names the file and the key of a bad tunnel service, and what a service is', () => {
    const f = file(
      'tunnel.yaml',
      [
        'server: {url: "https://h.example"}',
        'tunnel:',
        '  services:',
        '    adb: "127.0.0.1:99999"',
        '    ssh: 22',
        '    "bad name!": "127.0.0.1:22"',
        '  address_check_interval: 0',
        '',
      ].join('\n'),
    );
    expect(problems(() => loadAgentConfig({ file: f }))).toEqual([
      `${f}: tunnel.services.adb: expected a port from 1 to 65535`,
      `${f}: tunnel.services.ssh: expected "host:port", such as "127.0.0.1:5037"`,
      `${f}: tunnel.services.bad name!: expected a service name of 1–64 letters, digits, "_", "." or "-", starting with a letter or digit`,
      expect.stringMatching(
        new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: tunnel\\.address_check_interval: `),
      ),
    ]);
    const g = file('tunnel-list.yaml', 'server: {url: "https://h.example"}\ntunnel: {services: ["adb"]}\n');
    expect(problems(() => loadAgentConfig({ file: g }))).toEqual([
      `${g}: tunnel.services: expected a map of service names to "host:port", such as { adb: "127.0.0.1:5037" }`,
    ]);
  });

  it('checks settings against each other', () => {
    const f = file(
      'cross.yaml',
      'server: {url: "https://h.example"}\nconnection: {initial_reconnect_delay: 90, max_reconnect_delay: 60, heartbeat_interval: 30, dead_timeout: 30}\n',
    );
    const list = problems(() => loadAgentConfig({ file: f }));
    expect(list).toEqual([
      `${f}: connection.initial_reconnect_delay: expected at most max_reconnect_delay (60), got 90`,
      `${f}: connection.dead_timeout: expected more than heartbeat_interval (30) so one late ack is not fatal, got 30`,
    ]);
  });

  it('names the line and column of a YAML syntax error', () => {
    const f = file('syntax.yaml', 'server:\n  url: "https://h.example\n  fallback_urls: [\n');
    const [first] = problems(() => loadAgentConfig({ file: f }));
    expect(first).toMatch(new RegExp(`^${f}:\\d+:\\d+: invalid YAML: `));
  });

  it('explains a file that is missing or is not a mapping', () => {
    expect(problems(() => loadAgentConfig({ file: path.join(dir, 'absent.yaml') }))).toEqual([
      `${path.join(dir, 'absent.yaml')}: cannot read the config file: file not found`,
    ]);
    const f = file('list.yaml', '- a\n- b\n');
    expect(problems(() => loadAgentConfig({ file: f }))[0]).toMatch(/expected a YAML mapping .* found a list/);
  });

  it('lets the environment override the file, and flags override both, naming the source in errors', () => {
    const f = file('base.yaml', 'server:\n  url: "https://file.example"\nagent:\n  name: from-file\n');
    const env = {
      FARMLINK_SERVER_URL: 'https://env.example',
      FARMLINK_FALLBACK_URLS: 'https://f1.example, https://f2.example',
      FARMLINK_AGENT_TOKEN: TOKEN,
    };
    const { config } = loadAgentConfig({
      file: f,
      overrides: [
        ...envOverrides(env),
        ...flagOverrides({ name: 'from-flag', set: ['connection.heartbeat_interval=5'] }),
      ],
    });
    expect(config.server.url).toBe('https://env.example');
    expect(config.server.fallback_urls).toEqual(['https://f1.example', 'https://f2.example']);
    expect(config.agent).toMatchObject({ name: 'from-flag', token: TOKEN });
    expect(config.connection.heartbeat_interval).toBe(5);

    const list = problems(() =>
      loadAgentConfig({
        file: f,
        overrides: [
          ...envOverrides({ FARMLINK_SERVER_URL: 'nonsense' }),
          ...flagOverrides({ set: ['connection.ping_timeout=-3'] }),
        ],
      }),
    );
    expect(list).toEqual([
      expect.stringMatching(/^FARMLINK_SERVER_URL \(environment\): server\.url: expected an http/),
      expect.stringMatching(
        /^--set connection\.ping_timeout: connection\.ping_timeout: expected the WebSocket ping timeout greater than 0/,
      ),
    ]);
  });

  it('rejects a malformed --set', () => {
    expect(() => flagOverrides({ set: ['no-equals-sign'] })).toThrow(ConfigError);
  });
});

describe('agent.token and agent.token_file', () => {
  it('refuses a token that is not a JWT, saying what a JWT looks like and what is wrong with this one', () => {
    const placeholder = file(
      'placeholder.yaml',
      'server:\n  url: "https://hub.example"\nagent:\n  id: pc-017\n  token: "eyJhbGciOiJIUzI1NiIs…"\n',
    );
    expect(problems(() => loadAgentConfig({ file: placeholder }))).toEqual([
      `${placeholder}: agent.token: expected a JWT as \`farmlink token --agent ID\` prints it: three ` +
        `base64url segments (letters, digits, "-" and "_") joined by dots, on one line; it contains "…": ` +
        `paste the whole token, not a shortened one`,
    ]);
    // A block scalar ("|") keeps the line break at the end of the token.
    const block = file('block.yaml', `server:\n  url: "https://hub.example"\nagent:\n  token: |\n    ${TOKEN}\n`);
    expect(problems(() => loadAgentConfig({ file: block }))).toEqual([
      expect.stringMatching(
        new RegExp(`^${block}: agent\\.token: expected a JWT .*; it contains a line break \\(a YAML block scalar`),
      ),
    ]);
    expect(
      problems(() =>
        loadAgentConfig({ overrides: flagOverrides({ serverUrl: 'https://h.example', token: 'abc.def' }) }),
      ),
    ).toEqual([expect.stringMatching(/^--token: agent\.token: expected a JWT .*; it has 2 dot-separated segments$/)]);
    expect(
      loadAgentConfig({
        file: file('good.yaml', `server:\n  url: "https://hub.example"\nagent:\n  token: "${TOKEN}"\n`),
      }).config.agent.token,
    ).toBe(TOKEN);
  });

  it('reads agent.token_file relative to the config file, trimmed', () => {
    const sub = fs.mkdtempSync(path.join(dir, 'tf-'));
    fs.writeFileSync(path.join(sub, 'agent.token'), `${TOKEN}\n`, { mode: 0o600 });
    const f = path.join(sub, 'agent.yaml');
    fs.writeFileSync(f, 'server:\n  url: "https://hub.example"\nagent:\n  token_file: agent.token\n');
    const { config } = loadAgentConfig({ file: f });
    expect(config.agent.token).toBe(TOKEN);
    expect(resolveAgentSettings(config, { file: f, dataDir: sub }).identity.token).toBe(TOKEN);
  });

  it('takes --token-file and FARMLINK_AGENT_TOKEN_FILE relative to the working directory', () => {
    const tokenPath = path.join(dir, 'env.token');
    fs.writeFileSync(tokenPath, `  ${TOKEN}  \n`);
    const relative = path.relative(process.cwd(), tokenPath);
    expect(
      loadAgentConfig({
        overrides: [...envOverrides({ FARMLINK_SERVER_URL: 'https://h.example', FARMLINK_AGENT_TOKEN_FILE: relative })],
      }).config.agent.token,
    ).toBe(TOKEN);
    expect(
      loadAgentConfig({ overrides: flagOverrides({ serverUrl: 'https://h.example', tokenFile: tokenPath }) }).config
        .agent.token,
    ).toBe(TOKEN);
  });

  it('names the key and the file when the token file is missing, unreadable or holds no JWT', () => {
    const f = file('tf-missing.yaml', 'server:\n  url: "https://hub.example"\nagent:\n  token_file: nowhere.token\n');
    expect(problems(() => loadAgentConfig({ file: f }))).toEqual([
      `${f}: agent.token_file: cannot read ${path.join(dir, 'nowhere.token')}: file not found`,
    ]);
    const bad = path.join(dir, 'bad.token');
    fs.writeFileSync(bad, 'eyJhbGciOiJIUzI1NiIs…\n');
    expect(
      problems(() => loadAgentConfig({ overrides: flagOverrides({ serverUrl: 'https://h.example', tokenFile: bad }) })),
    ).toEqual([
      expect.stringMatching(
        new RegExp(`^--token-file: agent\\.token_file: ${bad}: expected a JWT .*paste the whole token`),
      ),
    ]);
    const empty = path.join(dir, 'empty.token');
    fs.writeFileSync(empty, '\n');
    expect(
      problems(() =>
        loadAgentConfig({ overrides: flagOverrides({ serverUrl: 'https://h.example', tokenFile: empty }) }),
      )[0],
    ).toMatch(/agent\.token_file: .*empty\.token: expected a JWT .*got an empty string/);
    expect(
      problems(() =>
        loadAgentConfig({ overrides: flagOverrides({ serverUrl: 'https://h.example', tokenFile: dir }) }),
      )[0],
    ).toMatch(/agent\.token_file: cannot read .*: it is a directory/);
  });

  it('refuses agent.token and agent.token_file together, naming where each came from', () => {
    const tokenPath = path.join(dir, 'both.token');
    fs.writeFileSync(tokenPath, TOKEN);
    const f = file(
      'both.yaml',
      `server:\n  url: "https://hub.example"\nagent:\n  token_file: both.token\n  token: "${TOKEN}"\n`,
    );
    expect(problems(() => loadAgentConfig({ file: f }))).toEqual([
      `${f}: agent.token_file: expected either agent.token_file or agent.token, but both are set there; keep one`,
    ]);
    const g = file('one.yaml', 'server:\n  url: "https://hub.example"\nagent:\n  token_file: both.token\n');
    expect(
      problems(() => loadAgentConfig({ file: g, overrides: envOverrides({ FARMLINK_AGENT_TOKEN: TOKEN }) })),
    ).toEqual([
      `${g}: agent.token_file: expected either agent.token_file or agent.token, but agent.token is also set (FARMLINK_AGENT_TOKEN (environment)); keep one`,
    ]);
  });
});

describe('the config file itself', () => {
  it('says where its name came from when it cannot be read', () => {
    const missing = path.join(dir, 'nope.yaml');
    expect(problems(() => loadAgentConfig({ file: missing, fileSource: 'FARMLINK_CONFIG (environment)' }))).toEqual([
      `${missing} (from FARMLINK_CONFIG (environment)): cannot read the config file: file not found`,
    ]);
  });
});

describe('resolveAgentSettings', () => {
  it("the breaker section: the design's defaults (10 refusals in 60 s, 120 s to the probe), in ms; bad values named", () => {
    const plain = file('breaker-default.yaml', 'server: {url: "https://h.example"}\nagent: {id: a1}\n');
    expect(
      resolveAgentSettings(loadAgentConfig({ file: plain }).config, { file: plain, dataDir: dir }).breaker,
    ).toEqual({
      failures: 3,
      windowMs: 600_000,
      recoveryMs: 120_000,
    });
    const set = file(
      'breaker.yaml',
      'server: {url: "https://h.example"}\nagent: {id: a1}\nbreaker: {failures: 5, window: 30, recovery: 1.5}\n',
    );
    expect(resolveAgentSettings(loadAgentConfig({ file: set }).config, { file: set, dataDir: dir }).breaker).toEqual({
      failures: 5,
      windowMs: 30_000,
      recoveryMs: 1500,
    });
    const bad = file('breaker-bad.yaml', 'server: {url: "https://h.example"}\nbreaker: {failures: 0, colour: red}\n');
    const found = problems(() => loadAgentConfig({ file: bad }));
    expect(found.some((p) => p.includes(bad) && p.includes('breaker.failures'))).toBe(true);
    expect(found.some((p) => p.includes(bad) && p.includes('colour'))).toBe(true);
  });

  it('persists a generated agent id in the data dir and reuses it', () => {
    const dataDir = path.join(dir, 'data');
    const { config } = loadAgentConfig({ overrides: flagOverrides({ serverUrl: 'https://h.example' }) });
    const first = resolveAgentSettings(config, { file: undefined, dataDir });
    const second = resolveAgentSettings(config, { file: undefined, dataDir });
    expect(first.identity.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(second.identity.id).toBe(first.identity.id);
    expect(fs.readFileSync(path.join(dataDir, 'agent-id'), 'utf8').trim()).toBe(first.identity.id);
    expect(first.identity.name).toBe(os.hostname());
    expect(first.log.file).toBe(path.join(dataDir, 'logs', 'agent.log'));
  });

  it('resolves a relative log file against the config file, and false turns it off', () => {
    const f = file('logs.yaml', 'server: {url: "https://h.example"}\nagent: {id: a1}\nlog: {file: "logs/agent.log"}\n');
    expect(resolveAgentSettings(loadAgentConfig({ file: f }).config, { file: f, dataDir: dir }).log.file).toBe(
      path.join(dir, 'logs', 'agent.log'),
    );
    const g = file('nolog.yaml', 'server: {url: "https://h.example"}\nagent: {id: a1}\nlog: {file: false}\n');
    expect(resolveAgentSettings(loadAgentConfig({ file: g }).config, { file: g, dataDir: dir }).log.file).toBeNull();
  });
});

describe('validateAgentConfig', () => {
  it('returns field-level problems for a form', () => {
    const result = validateAgentConfig({ server: { url: 'x', bogus: 1 } });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems).toEqual(
        expect.arrayContaining([
          { path: 'server.url', message: expect.stringMatching(/expected an http/) as string },
          { path: 'server.bogus', message: 'unknown key' },
        ]),
      );
    }
  });
});
