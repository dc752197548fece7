import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ConnectionSectionSchema } from '../../protocol/config.js';
import type { Settings } from '../../protocol/agent-host.js';
import { FarmlinkError } from '../../lib/errors.js';
import { makeDirSync } from '../../lib/make-dir.js';

const CONNECTION_DEFAULTS = ConnectionSectionSchema.parse({});

/**
 * Writes the panel's Settings into the YAML config file, keeping everything else in it — other
 * sections, comments, key order. A connection timing is written when it differs from its default
 * or the file already names it, so a file stays as short as its owner made it. The write is
 * atomic (temp file, then rename) and the file is readable by its owner only: it holds the token.
 */
export function writeSettingsFile(
  file: string,
  settings: Settings,
  options: { skip?: ReadonlySet<string> } = {},
): void {
  writeFileAtomic(file, renderSettingsFile(file, settings, options));
}

/**
 * The text `writeSettingsFile` would write, without writing it, so the whole result can be
 * validated first: nothing reaches the disk that the agent would refuse to start with.
 */
export function renderSettingsFile(
  file: string,
  settings: Settings,
  options: { skip?: ReadonlySet<string> } = {},
): string {
  let doc: YAML.Document;
  if (fs.existsSync(file)) {
    doc = YAML.parseDocument(fs.readFileSync(file, 'utf8'));
    if (doc.errors.length > 0) {
      throw new FarmlinkError(
        'CONFIG_UNREADABLE',
        `${file} is not valid YAML (${doc.errors[0]?.message.split('\n')[0] ?? 'parse error'}); fix or remove it before saving from the panel`,
      );
    }
  } else {
    doc = new YAML.Document({});
    doc.commentBefore =
      ' FarmLink agent configuration (README → Configuration). Written by the panel; comments you add are kept.';
  }
  // Values fixed by the environment or flags are what the form shows, not what the file says.
  const skip = options.skip ?? new Set<string>();
  const write = (keyPath: string[], value: unknown) => {
    if (!skip.has(keyPath.join('.'))) doc.setIn(keyPath, value);
  };
  write(['server', 'url'], settings.server.url);
  write(['server', 'fallback_urls'], doc.createNode([...settings.server.fallback_urls]));
  for (const [key, value] of Object.entries(settings.connection)) {
    const keyPath = ['connection', key];
    const isDefault = CONNECTION_DEFAULTS[key as keyof typeof CONNECTION_DEFAULTS] === value;
    if (!isDefault || doc.hasIn(keyPath)) write(keyPath, value);
  }
  if (settings.agent.name) write(['agent', 'name'], settings.agent.name);
  else if (doc.hasIn(['agent', 'name']) && !skip.has('agent.name')) doc.deleteIn(['agent', 'name']);
  if (settings.agent.token) write(['agent', 'token'], settings.agent.token);
  // lineWidth 0: a long token stays on one line, as a person would paste it.
  return doc.toString({ lineWidth: 0 });
}

/** Temp file, then rename: a reader sees the old file or the new one, never half of one. Owner-only: it may hold the token. */
export function writeFileAtomic(file: string, text: string): void {
  makeDirSync(path.dirname(file));
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, text, { mode: 0o600 });
  fs.renameSync(temp, file);
}
