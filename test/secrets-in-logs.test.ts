import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { mintToken } from '../server/auth.js';
import { hubUrlOf, isolatedEnv, spawnCli, type CliProcess } from './helpers/cli-process.js';
import { startRedis } from './helpers/redis-server.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-secrets-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cleanEnv = (extra: Record<string, string> = {}) => isolatedEnv(tmp, { FARMLINK_HEADLESS: '1', ...extra });

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

function dirsUnder(dir: string): string[] {
  return [
    dir,
    ...fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .flatMap((e) => dirsUnder(path.join(dir, e.name))),
  ];
}

const mode = (file: string) => (fs.statSync(file).mode & 0o777).toString(8);

async function stop(cli: CliProcess): Promise<string> {
  cli.kill('SIGTERM');
  const run = await cli.exited;
  expect(run.code, run.stderr).toBe(0);
  return run.stdout + run.stderr;
}

const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{10,}/;

describe("no secret reaches a log, and what FarmLink keeps is the user's alone", () => {
  it('agent, hub (with a Redis password) and start: every log file and every console output is free of every secret', async () => {
    const hubSecret = randomBytes(32).toString('base64url');
    const redisPassword = `pw-${randomBytes(12).toString('hex')}`;
    const redis = await startRedis();
    // Set after start: the helper's readiness check speaks to Redis without a password.
    const admin = new Redis(redis.port, '127.0.0.1', { lazyConnect: true });
    await admin.connect();
    await admin.config('SET', 'requirepass', redisPassword);
    admin.disconnect();
    const outputs: string[] = [];
    try {
      // The hub: secret from the environment, Redis behind a password in its URL.
      const redisUrl = `redis://:${redisPassword}@127.0.0.1:${redis.port}`;
      const hub = spawnCli(
        ['hub', '--port', '0', '--log-format', 'json', '--log-level', 'debug', '--redis-url', redisUrl],
        cleanEnv({ FARMLINK_HUB_SECRET: hubSecret }).env,
      );
      const hubUrl = await hubUrlOf(hub);

      // An agent with a good token, another whose token the hub refuses (signed with another secret).
      const agentToken = await mintToken(hubSecret, { role: 'agent', agentId: 'pc-secret' });
      const foreignToken = await mintToken(randomBytes(32).toString('base64url'), {
        role: 'agent',
        agentId: 'pc-foreign',
      });
      const a = cleanEnv();
      const dataDir = path.join(a.home, 'data');
      const agent = spawnCli(
        [
          'agent',
          '--server-url',
          hubUrl,
          '--agent-id',
          'pc-secret',
          '--token',
          agentToken,
          '--data-dir',
          dataDir,
          '--panel-port',
          '0',
          '--log-level',
          'debug',
        ],
        a.env,
      );
      const b = cleanEnv();
      const foreignDir = path.join(b.home, 'data');
      const foreign = spawnCli(
        [
          'agent',
          '--server-url',
          hubUrl,
          '--agent-id',
          'pc-foreign',
          '--token',
          foreignToken,
          '--data-dir',
          foreignDir,
          '--panel-port',
          '0',
          '--log-level',
          'debug',
        ],
        b.env,
      );
      await agent.waitForOutput('Registered as', 20_000);
      await foreign.waitForOutput(/4401|UNAUTHORIZED|signature/i, 20_000);

      // farmlink start: its own local hub, secret and token made inside; its panel key on disk.
      const s = cleanEnv();
      const startDir = path.join(s.home, 'data');
      const start = spawnCli(
        ['start', '--headless', '--hub-port', '0', '--panel-port', '0', '--data-dir', startDir, '--log-level', 'debug'],
        s.env,
      );
      await start.waitForOutput('Registered as', 20_000);

      const panelTokens = [dataDir, foreignDir, startDir].map((dir) =>
        fs.readFileSync(path.join(dir, 'panel-token'), 'utf8').trim(),
      );
      outputs.push(await stop(agent), await stop(foreign), await stop(start), await stop(hub));

      const logs = [dataDir, foreignDir, startDir].flatMap((dir) => filesUnder(path.join(dir, 'logs')));
      expect(logs.length).toBeGreaterThanOrEqual(3);
      const texts = [...outputs, ...logs.map((f) => fs.readFileSync(f, 'utf8'))];
      // The logs did say what happened (so their silence about secrets means something).
      expect(texts.join('\n')).toContain('Agent stopped');
      expect(texts.join('\n')).toContain('Panel: http://127.0.0.1:');
      const secrets = {
        hubSecret,
        redisPassword,
        agentToken,
        foreignToken,
        ...Object.fromEntries(panelTokens.map((t, i) => [`panelToken${i}`, t])),
      };
      for (const [name, secret] of Object.entries(secrets)) {
        for (const [i, text] of texts.entries()) {
          expect(
            text.includes(secret),
            `${name} in ${i < outputs.length ? `console output #${i}` : logs[i - outputs.length]}`,
          ).toBe(false);
        }
      }
      // Tokens no test knows (start's local hub mints its own): nothing shaped like a JWT either.
      for (const text of texts) expect(text).not.toMatch(JWT_SHAPE);
    } finally {
      await redis.stop();
    }
  });

  it('the data dir, its logs and every file in it are 0700/0600 with umask 022, and looser ones left by an older version are tightened', async () => {
    const { env, home } = cleanEnv();
    const dataDir = path.join(home, 'data');
    // As an older FarmLink left it: 0755 folders, 0644 files, the panel token too.
    fs.mkdirSync(path.join(dataDir, 'logs'), { recursive: true, mode: 0o755 });
    fs.chmodSync(dataDir, 0o755);
    fs.chmodSync(path.join(dataDir, 'logs'), 0o755);
    fs.writeFileSync(path.join(dataDir, 'logs', 'agent.1.log'), '{"msg":"an old line"}\n', { mode: 0o644 });
    fs.writeFileSync(path.join(dataDir, 'panel-token'), `${randomBytes(32).toString('base64url')}\n`, { mode: 0o644 });
    fs.writeFileSync(path.join(dataDir, 'agent-id'), 'pc-old\n', { mode: 0o644 });
    const oldMask = process.umask(0o022); // what the children inherit
    let cli: CliProcess;
    try {
      cli = spawnCli(['start', '--headless', '--hub-port', '0', '--panel-port', '0', '--data-dir', dataDir], env);
    } finally {
      process.umask(oldMask);
    }
    await cli.waitForOutput('Registered as', 20_000);
    await stop(cli);
    const files = filesUnder(dataDir);
    expect(files.map((f) => path.relative(dataDir, f))).toEqual(
      expect.arrayContaining(['agent-id', 'panel-token', path.join('logs', 'agent.1.log')]),
    );
    expect(files.some((f) => f.includes(`${path.sep}cache${path.sep}`))).toBe(true);
    for (const dir of dirsUnder(dataDir)) expect(mode(dir), dir).toBe('700');
    for (const file of files) expect(mode(file), file).toBe('600');
  });
});
