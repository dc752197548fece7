import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort } from './ports.js';

// The child is ports-child.ts and the real ports.ts, compiled to plain modules Node runs as they are.
const compiled = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-ports-'));
afterAll(() => fs.rmSync(compiled, { recursive: true, force: true }));
for (const name of ['ports', 'ports-child']) {
  const source = fs.readFileSync(path.join(import.meta.dirname, `${name}.ts`), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  fs.writeFileSync(path.join(compiled, `${name}.js`), outputText);
}
fs.writeFileSync(path.join(compiled, 'package.json'), '{"type":"module"}');
const CHILD = path.join(compiled, 'ports-child.js');

const children: { stdin: NodeJS.WritableStream | null; exited: Promise<unknown> }[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.stdin?.end();
    await child.exited;
  }
});

/** Another test process taking `count` ports; resolves with them while it still holds them. */
function otherProcess(count: number, env: Record<string, string>): Promise<number[]> {
  const proc = spawn(process.execPath, [CHILD, String(count)], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push({ stdin: proc.stdin, exited: new Promise((resolve) => proc.once('exit', resolve)) });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('\n')) resolve(JSON.parse(out) as number[]);
    });
    proc.once('exit', (code) => reject(new Error(`ports child exited with ${code} before answering`)));
  });
}

function listenOnZero(): Promise<net.Server> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

describe('freePort', () => {
  it('hands out ports below the ephemeral range, so nothing listening on port 0 (a hub, a proxy) can take one', async () => {
    const [ephemeralFrom] = fs
      .readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const port of ports) expect(port).toBeLessThan(ephemeralFrom!);
    const listeners = await Promise.all(Array.from({ length: 20 }, listenOnZero));
    const taken = listeners.map((s) => (s.address() as net.AddressInfo).port);
    await Promise.all(listeners.map((s) => new Promise((resolve) => s.close(resolve))));
    expect(taken.filter((p) => ports.includes(p))).toEqual([]);
  });

  it('never hands out the same port twice in one process', async () => {
    const ports = await Promise.all(Array.from({ length: 100 }, () => freePort()));
    expect(new Set(ports).size).toBe(ports.length);
  });

  it('two processes with the same worker id at once (two suites on one machine) get different ports', async () => {
    const env = { VITEST_POOL_ID: '3', VITEST_WORKER_ID: '3' };
    const [a, b] = await Promise.all([otherProcess(40, env), otherProcess(40, env)]);
    expect(a).toHaveLength(40);
    expect(b).toHaveLength(40);
    expect(a.filter((p) => b.includes(p))).toEqual([]);
  });

  it('skips a port that something else listens on', async () => {
    // A port of this worker's slice that is taken by someone outside the tests.
    const probe = await freePort();
    const squatter = net.createServer();
    await new Promise<void>((resolve, reject) =>
      squatter.once('error', reject).listen(probe + 1, '127.0.0.1', resolve),
    );
    try {
      const next = await freePort();
      expect(next).not.toBe(probe + 1);
      await new Promise<void>((resolve, reject) => {
        const server = net.createServer().once('error', reject);
        server.listen(next, '127.0.0.1', () => server.close(() => resolve()));
      });
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
