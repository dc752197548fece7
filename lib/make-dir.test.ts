import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeDirSync } from './make-dir.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-make-dir-'));
  dirs.push(dir);
  return dir;
}

describe('makeDirSync', () => {
  it('makes every missing level, with the mode given, and accepts a directory that exists', () => {
    const root = tmp();
    const deep = path.join(root, 'a', 'b', 'c');
    makeDirSync(deep, 0o700);
    expect(fs.statSync(deep).isDirectory()).toBe(true);
    if (process.platform !== 'win32') expect(fs.statSync(path.join(root, 'a')).mode & 0o777).toBe(0o700);
    expect(() => makeDirSync(deep)).not.toThrow();
  });

  it('says ENOTDIR when a level is a file', () => {
    const root = tmp();
    fs.writeFileSync(path.join(root, 'file'), 'x');
    expect(() => makeDirSync(path.join(root, 'file', 'sub'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
  });

  it('throws where Node’s recursive mkdir loops for ever (/proc)', () => {
    expect(() => makeDirSync('/proc/farmlink-nope/events')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
