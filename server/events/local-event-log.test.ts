import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { SinkEvent, StoredEvent } from './event-sink.js';
import { LocalEventLog } from './local-event-log.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
const logs: LocalEventLog[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-event-log-'));
  dirs.push(dir);
  return dir;
}

function openLog(dir: string): LocalEventLog {
  const log = LocalEventLog.open(dir);
  logs.push(log);
  return log;
}

const events = (agent: string, seqs: ReadonlyArray<number | null>): SinkEvent[] =>
  seqs.map((seq, i) => ({
    agent_id: agent,
    seq,
    name: 'plugged',
    data: { serial: `S${seq ?? `n${i}`}` },
    ts: 1000 + i,
  }));

async function readAll(log: LocalEventLog, limit = 1000): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await log.read(after, limit);
    all.push(...page.events);
    if (page.next === null) return all;
    after = page.next;
  }
}

afterEach(async () => {
  for (const log of logs.splice(0)) await log.close();
});
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe('LocalEventLog', () => {
  it('keeps each (agent, seq) once: a replay is counted as duplicates and the last seq stays', async () => {
    const log = openLog(tempDir());
    expect(await log.append('a', events('a', [1, 2, 3]))).toEqual({ appended: 3, duplicates: 0, last_seq: 3 });
    expect(await log.append('a', events('a', [2, 3, 4, 5]))).toEqual({ appended: 2, duplicates: 2, last_seq: 5 });
    expect(await log.append('b', events('b', [1]))).toEqual({ appended: 1, duplicates: 0, last_seq: 1 });
    expect(await log.lastSeq('a')).toBe(5);
    expect(await log.lastSeq('nobody')).toBe(0);
    const all = await readAll(log);
    expect(all.map((e) => `${e.agent_id}:${e.seq}`)).toEqual(['a:1', 'a:2', 'a:3', 'a:4', 'a:5', 'b:1']);
    expect(all.map((e) => e.cursor)).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(all[0]).toEqual({ cursor: '1', agent_id: 'a', seq: 1, name: 'plugged', data: { serial: 'S1' }, ts: 1000 });
  });

  it('appends events without a seq (legacy agents) without the check, and they leave the last seq alone', async () => {
    const log = openLog(tempDir());
    await log.append('a', events('a', [7]));
    expect(await log.append('a', events('a', [null, null]))).toEqual({ appended: 2, duplicates: 0, last_seq: 7 });
    expect((await readAll(log)).map((e) => e.seq)).toEqual([7, null, null]);
  });

  it('keeps what it acknowledged across a reopen, and goes on numbering after it', async () => {
    const dir = tempDir();
    const first = LocalEventLog.open(dir);
    await first.append('a', events('a', [1, 2]));
    await first.close();
    const again = openLog(dir);
    expect(await again.lastSeq('a')).toBe(2);
    expect(await again.append('a', events('a', [2, 3]))).toEqual({ appended: 1, duplicates: 1, last_seq: 3 });
    expect((await readAll(again)).map((e) => [e.cursor, e.seq])).toEqual([
      ['1', 1],
      ['2', 2],
      ['3', 3],
    ]);
  });

  it('pages with read: after is exclusive, next is set only when more follow', async () => {
    const log = openLog(tempDir());
    await log.append('a', events('a', [1, 2, 3, 4, 5]));
    const first = await log.read(undefined, 2);
    expect(first.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(first.next).toBe('2');
    const second = await log.read('2', 2);
    expect(second.events.map((e) => e.seq)).toEqual([3, 4]);
    const last = await log.read(second.next ?? '', 2);
    expect(last.events.map((e) => e.seq)).toEqual([5]);
    expect(last.next).toBeNull();
    expect(await log.read('5', 2)).toEqual({ events: [], next: null });
    expect(await log.read('999', 2)).toEqual({ events: [], next: null });
  });

  it('refuses a cursor that is not a position, naming the parameter', async () => {
    const log = openLog(tempDir());
    await expect(log.read('1764547200000-0', 10)).rejects.toMatchObject({
      code: 'BAD_CURSOR',
      message: expect.stringMatching(/^after: expected a position/) as unknown,
    });
  });

  it('rejects with a typed error once closed', async () => {
    const log = LocalEventLog.open(tempDir());
    await log.close();
    await expect(log.append('a', events('a', [1]))).rejects.toMatchObject({ code: 'SINK_CLOSED' });
  });

  it('says which directory it cannot use', () => {
    const file = path.join(tempDir(), 'a-file');
    fs.writeFileSync(file, '');
    expect(() => LocalEventLog.open(file)).toThrow(
      expect.objectContaining({ code: 'SINK_WRITE_FAILED', message: expect.stringContaining(file) as unknown }),
    );
  });

  describe('two processes on one directory', () => {
    // The writer runs as a plain module: it and the modules it imports, transpiled, with the
    // repository's node_modules linked beside them so that `lmdb` resolves.
    const compiled = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-event-log-writer-'));
    afterAll(() => fs.rmSync(compiled, { recursive: true, force: true }));
    for (const file of [
      'server/events/event-log-writer.fixture.ts',
      'server/events/local-event-log.ts',
      'server/events/sink-error.ts',
      'lib/errors.ts',
      'lib/make-dir.ts',
    ]) {
      const { outputText } = ts.transpileModule(fs.readFileSync(path.join(ROOT, file), 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      const out = path.join(compiled, file.replace(/\.ts$/, '.js'));
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.writeFileSync(out, outputText);
    }
    fs.writeFileSync(path.join(compiled, 'package.json'), '{"type":"module"}');
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(compiled, 'node_modules'));

    function writer(args: string[]): Promise<{ appended: number; duplicates: number }> {
      const proc = spawn(
        process.execPath,
        [path.join(compiled, 'server/events/event-log-writer.fixture.js'), ...args],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
      return new Promise((resolve, reject) => {
        proc.once('exit', (code) => {
          if (code === 0) resolve(JSON.parse(out) as { appended: number; duplicates: number });
          else reject(new Error(`writer ${args.join(' ')} exited with ${code}: ${err}`));
        });
      });
    }

    it('keeps each (agent, seq) once and every position unique when both replay one agent', async () => {
      const dir = tempDir();
      // Both replay seqs 1..400 of agent "a" (as two workers would after a reconnect), in batches
      // of different sizes so their transactions interleave; the second also writes agent "b".
      const [one, two, three] = await Promise.all([
        writer([dir, 'a', '1', '400', '7']),
        writer([dir, 'a', '1', '400', '3']),
        writer([dir, 'b', '1', '200', '5']),
      ]);
      expect(one.appended + two.appended).toBe(400);
      expect(one.duplicates + two.duplicates).toBe(400);
      expect(three).toEqual({ appended: 200, duplicates: 0 });
      const log = openLog(dir);
      const all = await readAll(log, 128);
      expect(all.map((e) => e.cursor)).toEqual(all.map((_, i) => String(i + 1)));
      const seqsOf = (agent: string) => all.filter((e) => e.agent_id === agent).map((e) => e.seq);
      expect(seqsOf('a')).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
      expect(seqsOf('b')).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      expect(await log.lastSeq('a')).toBe(400);
    });
  });
});
