import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AGENT_ID_PATTERN } from '../../protocol/messages.js';
import { FarmlinkError } from '../../lib/errors.js';
import { makePrivateDir } from './private-files.js';

/**
 * The agent's id when the config does not set one: made once, kept in `<dataDir>/agent-id`, so
 * the hub sees the same agent across restarts (and replaces its stale connection rather than
 * listing it twice).
 */
export function loadOrCreateAgentId(dataDir: string): string {
  const file = path.join(dataDir, 'agent-id');
  try {
    const stored = fs.readFileSync(file, 'utf8').trim();
    if (AGENT_ID_PATTERN.test(stored)) return stored;
    throw new FarmlinkError(
      'AGENT_ID_INVALID',
      `${file}: expected an agent id (letters, digits, "_", ".", ":" or "-"), found "${stored.slice(0, 40)}"; delete the file to get a new id`,
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const id = randomUUID();
  makePrivateDir(dataDir);
  // wx: if another process created it in between, keep theirs.
  try {
    fs.writeFileSync(file, `${id}\n`, { flag: 'wx', mode: 0o600 });
    return id;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return fs.readFileSync(file, 'utf8').trim();
    throw error;
  }
}
