import fs from 'node:fs';
import path from 'node:path';

/**
 * `mkdir -p`, one level at a time. Node's own `fs.mkdirSync(dir, { recursive: true })` loops for
 * ever when a level cannot be made although its parent exists (`/proc/x`: mkdir answers ENOENT, and
 * Node retries the parent, which exists, then the level again): `--data-dir /proc/x` hung the hub and
 * the agent with nothing printed. Here that mkdir's error is thrown, for the caller to report.
 */
export function makeDirSync(dir: string, mode?: number): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  for (;;) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(at);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (stat) {
      if (!stat.isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${at}'`), { code: 'ENOTDIR', path: at });
      }
      break;
    }
    missing.push(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const level of missing.reverse()) {
    try {
      fs.mkdirSync(level, mode === undefined ? undefined : { mode });
    } catch (error) {
      // Made meanwhile by someone else: fine, as with mkdir -p.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}
