import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, expect, it } from 'vitest';

/**
 * node-datachannel holds native callbacks that keep a process alive without showing up as handles; a
 * connection or channel the connector forgot to close would leave a farm PC's agent unable to exit.
 * So this runs the connectors in a process of their own (the TypeScript compiled on the fly into a
 * folder under node_modules, where `node-datachannel` and `pino` resolve) and checks that, once every
 * connector is closed, the process exits by itself: nothing calls process.exit or the library's
 * global cleanup.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = path.join(ROOT, 'node_modules', '.cache', `farmlink-direct-exit-${String(process.pid)}`);
const SOURCES = [
  'lib/events.ts',
  'lib/clock.ts',
  'lib/tunnel/direct-path.ts',
  'lib/tunnel/webrtc.ts',
  'lib/tunnel/direct-connector.ts',
  'lib/tunnel/direct-pair.fixture.ts',
];

const SCRIPT = `
import { linkedConnectors, nextPath } from './lib/tunnel/direct-pair.fixture.js';
const open = async (pair) => {
  const paths = Promise.all([nextPath(pair.client), nextPath(pair.farm)]);
  pair.client.start();
  return paths;
};
const pair = linkedConnectors();
const [client, farm] = await open(pair);
const got = new Promise((resolve) => farm.events.once('frame', resolve));
client.send(Buffer.alloc(100, 7));
await got;
// A replaced attempt must be freed too.
const again = Promise.all([nextPath(pair.client), nextPath(pair.farm)]);
pair.client.peerMoved('moved');
await again;
// An attempt nobody answers, given up and waiting to retry.
const lonely = linkedConnectors({ openTimeoutMs: 100, retryMs: 60_000 });
lonely.cut();
const waiting = new Promise((resolve) => lonely.client.events.on('change', (e) => e.state === 'waiting' && resolve()));
lonely.client.start();
await waiting;
// The farm side of an attempt that never opens: answered, then given up.
const farmIdle = new Promise((resolve) => lonely.farm.events.on('change', (e) => e.state === 'idle' && resolve()));
lonely.farm.receive(lonely.sent.client.find((p) => p.kind === 'offer'));
await farmIdle;
pair.close();
lonely.close();
process.stdout.write('closed\\n');
`;

afterAll(() => {
  rmSync(OUT, { recursive: true, force: true });
});

it('a process exits by itself once its connectors are closed (no native handle or timer left)', async () => {
  for (const source of SOURCES) {
    const { outputText } = ts.transpileModule(readFileSync(path.join(ROOT, source), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    const target = path.join(OUT, source.replace(/\.ts$/, '.js'));
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  writeFileSync(path.join(OUT, 'package.json'), '{"type":"module"}');
  writeFileSync(path.join(OUT, 'run.js'), SCRIPT);

  const child = spawn(process.execPath, [path.join(OUT, 'run.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // Not a time limit on the code: a guard so that a process that never exits fails the test instead of hanging it.
  let killed = false;
  const guard = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, 45_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(guard);
  expect({ killed, out: out.trim(), err: err.trim() }).toEqual({ killed: false, out: 'closed', err: '' });
  expect(code).toBe(0);
});
