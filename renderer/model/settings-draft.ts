import { SettingsSchema, type Settings, type SettingsInput } from '../../protocol/agent-host.js';

/** The connection timings in the order the form shows them. */
export const CONNECTION_KEYS = [
  'heartbeat_interval',
  'dead_timeout',
  'ping_interval',
  'ping_timeout',
  'connect_timeout',
  'registration_timeout',
  'initial_reconnect_delay',
  'max_reconnect_delay',
  'reconnect_jitter',
  'stable_after',
] as const satisfies readonly (keyof Settings['connection'])[];
export type ConnectionKey = (typeof CONNECTION_KEYS)[number];

/**
 * The Settings form while it is being edited. Numbers stay the text the person typed, so a
 * half-typed "0." is not rewritten under their cursor; they become numbers only for validation.
 * Fallbacks carry an id so their inputs keep identity (and focus) when reordered.
 */
export interface SettingsDraft {
  url: string;
  fallbacks: { id: number; url: string }[];
  connection: Record<ConnectionKey, string>;
  name: string;
  /** A replacement token; empty keeps the current one. */
  token: string;
}

let nextFallbackId = 1;
export const newFallback = (url = '') => ({ id: nextFallbackId++, url });

/** `previous` lends its fallback ids by position, so refreshing an untouched form keeps focus where it is. */
export function draftFromSettings(values: Settings, previous?: SettingsDraft): SettingsDraft {
  const connection = {} as Record<ConnectionKey, string>;
  for (const key of CONNECTION_KEYS) connection[key] = String(values.connection[key]);
  return {
    url: values.server.url,
    fallbacks: values.server.fallback_urls.map((url, i) => {
      const id = previous?.fallbacks[i]?.id;
      return id === undefined ? newFallback(url) : { id, url };
    }),
    connection,
    name: values.agent.name ?? '',
    token: '',
  };
}

/**
 * A decimal number when the text is one; otherwise the text itself, so the schema rejects it with
 * its own message ("expected the heartbeat interval as a number of seconds") rather than ours.
 */
function toNumber(text: string): number | string {
  const trimmed = text.trim();
  if (trimmed === '' || !/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(trimmed)) return text;
  return Number(trimmed);
}

/** What Save sends: the shape SettingsSchema (and the config file) accepts. */
export function draftToInput(draft: SettingsDraft): SettingsInput {
  const connection = {} as Record<ConnectionKey, number>;
  // Strings go through on purpose (see toNumber); the schema is the one to refuse them.
  for (const key of CONNECTION_KEYS) connection[key] = toNumber(draft.connection[key]) as number;
  const name = draft.name.trim();
  const token = draft.token.trim();
  return {
    server: { url: draft.url.trim(), fallback_urls: draft.fallbacks.map((f) => f.url.trim()) },
    connection,
    // An empty name means "the default" (the computer's name), not an invalid empty string.
    agent: { ...(name ? { name } : {}), ...(token ? { token } : {}) },
  };
}

/** Two drafts that would save the same thing are equal, however the fallbacks' ids differ. */
export function sameSettings(a: SettingsDraft, b: SettingsDraft): boolean {
  return JSON.stringify(draftToInput(a)) === JSON.stringify(draftToInput(b));
}

/** Client-side validation with exactly the config file's schema: the first message per field path. */
export function validateDraft(draft: SettingsDraft): Map<string, string> {
  const problems = new Map<string, string>();
  const result = SettingsSchema.safeParse(draftToInput(draft));
  if (result.success) return problems;
  for (const issue of result.error.issues) {
    const path = issue.path.map(String).join('.');
    if (!problems.has(path)) problems.set(path, issue.message);
  }
  return problems;
}

/** The value at a dotted path ("server.fallback_urls.1") of what the draft would send. */
export function valueAtPath(input: unknown, path: string): unknown {
  let value: unknown = input;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** Who fixes a field's value outside the file ("--set connection.ping_interval"), if anyone. */
export function overriddenBy(path: string, overridden: readonly { path: string; source: string }[]): string | null {
  const hit = overridden.find((o) => o.path === path || path.startsWith(`${o.path}.`));
  return hit ? hit.source : null;
}

export function moveItem<T>(items: readonly T[], from: number, to: number): T[] {
  if (to < 0 || to >= items.length || from === to) return [...items];
  const copy = [...items];
  copy.splice(to, 0, ...copy.splice(from, 1));
  return copy;
}
