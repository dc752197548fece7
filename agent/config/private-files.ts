import fs from 'node:fs';
import path from 'node:path';
import { makeDirSync } from '../../lib/make-dir.js';

/**
 * From now on this process creates files and folders for the user alone (umask 077), whatever
 * umask it was started with: the logs, the cache, ids and tokens, rotated logs made later on.
 * Then the data dir itself, made private and tightened if it exists looser.
 */
export function privateDataDir(dataDir: string): void {
  if (process.platform !== 'win32') process.umask(0o077);
  makePrivateDir(dataDir);
}

/** Creates a directory readable by the user only (0700), and tightens it if it exists looser. */
export function makePrivateDir(dir: string): void {
  makeDirSync(dir, 0o700);
  tighten(dir, 0o700);
}

/** chmod down to `mode` when group or others have any access (POSIX; on Windows the profile's ACL does this job). */
export function tighten(file: string, mode: number): void {
  if (process.platform === 'win32') return;
  try {
    if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/**
 * The data dir holds the agent id, the panel token, the logs and the cache: the user's alone
 * (0700 folders, 0600 files), whatever the umask was when they were made or an older FarmLink
 * left them. Run at start, after everything in it was opened.
 */
export function tightenDataDir(dataDir: string): void {
  if (process.platform === 'win32') return;
  const walk = (dir: string, depth: number) => {
    tighten(dir, 0o700);
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && depth < 4) walk(full, depth + 1);
      else if (entry.isFile()) tighten(full, 0o600);
    }
  };
  walk(dataDir, 0);
}
