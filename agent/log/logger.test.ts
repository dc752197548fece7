import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, formatLocalTime, formatPrettyLine } from './logger.js';

describe('log lines', () => {
  it("look like the README's excerpts on the console", () => {
    const time = new Date(2026, 0, 3, 19, 30, 31).getTime();
    expect(formatLocalTime(time)).toBe('2026-01-03 19:30:31');
    expect(formatPrettyLine(JSON.stringify({ level: 30, time, msg: '✓ Connected to server' }))).toBe(
      '2026-01-03 19:30:31 | INFO     | ✓ Connected to server\n',
    );
    expect(formatPrettyLine(JSON.stringify({ level: 50, time, msg: 'Connect timeout', component: 'agent' }))).toBe(
      '2026-01-03 19:30:31 | ERROR    | agent | Connect timeout\n',
    );
  });

  it('go to the console and, as JSON lines, to a file that rotates by size', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-log-'));
    const consoleOut = new PassThrough();
    let printed = '';
    consoleOut.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    const { logger, close } = await createLogger({
      level: 'info',
      console: 'pretty',
      consoleStream: consoleOut,
      component: 'agent',
      file: { path: path.join(dir, 'agent.log'), maxSizeMb: 0.001, maxFiles: 3 },
    });
    // Spread over time as a running agent would: rotation happens between writes, not inside one.
    for (let i = 0; i < 40; i += 1) {
      logger.info({ i }, `line ${i} ${'x'.repeat(100)}`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    logger.debug('not at info level');
    await close();
    expect(printed).toContain('| INFO     | agent | line 0 ');
    expect(printed).not.toContain('not at info level');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.log'));
    expect(files.length).toBeGreaterThan(1); // rotated
    expect(files.length).toBeLessThanOrEqual(3); // and old ones removed
    const newest = files.sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1])).at(-1)!;
    const last = fs.readFileSync(path.join(dir, newest), 'utf8').trim().split('\n').at(-1)!;
    expect(JSON.parse(last)).toMatchObject({
      level: 30,
      msg: expect.stringMatching(/^line 39 /) as string,
      component: 'agent',
      i: 39,
    });
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
