import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makePrivateDir } from '../config/private-files.js';

/**
 * The headless panel's access token: random, kept in `<dataDir>/panel-token` readable by the
 * user only (0600; on Windows the profile folder's ACL does that job), so a bookmarked panel URL
 * keeps working across restarts. Delete the file to get a new token.
 */
export function loadOrCreatePanelToken(dataDir: string): string {
  const file = path.join(dataDir, 'panel-token');
  try {
    const token = fs.readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9_-]{32,}$/.test(token)) {
      if (process.platform !== 'win32' && (fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
      return token;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const token = randomBytes(32).toString('base64url');
  makePrivateDir(dataDir);
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

export function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
