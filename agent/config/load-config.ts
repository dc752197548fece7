import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import {
  AdbSectionSchema,
  AgentConfigSchema,
  PanelSectionSchema,
  AgentSectionSchema,
  ConnectionSectionSchema,
  LogSectionSchema,
  ServerSectionSchema,
  agentTokenProblem,
  type AgentConfig,
} from '../../protocol/config.js';
import { ConfigError } from '../../lib/errors.js';

/** One value set from outside the file, remembered with where it came from for error messages. */
export interface ConfigOverride {
  path: readonly string[];
  value: unknown;
  /** "FARMLINK_SERVER_URL (environment)", "--server-url" … */
  source: string;
}

type Env = Record<string, string | undefined>;

const ENV_KEYS: ReadonlyArray<{ name: string; path: string[]; list?: boolean; number?: boolean }> = [
  { name: 'FARMLINK_SERVER_URL', path: ['server', 'url'] },
  { name: 'FARMLINK_FALLBACK_URLS', path: ['server', 'fallback_urls'], list: true },
  { name: 'FARMLINK_AGENT_ID', path: ['agent', 'id'] },
  { name: 'FARMLINK_AGENT_NAME', path: ['agent', 'name'] },
  { name: 'FARMLINK_AGENT_TOKEN', path: ['agent', 'token'] },
  { name: 'FARMLINK_AGENT_TOKEN_FILE', path: ['agent', 'token_file'] },
  { name: 'FARMLINK_LOG_LEVEL', path: ['log', 'level'] },
  { name: 'FARMLINK_LOG_FILE', path: ['log', 'file'] },
  { name: 'FARMLINK_PANEL_PORT', path: ['panel', 'port'], number: true },
];

/** Overrides from the environment (documented in the README's configuration table). */
export function envOverrides(env: Env): ConfigOverride[] {
  const out: ConfigOverride[] = [];
  for (const key of ENV_KEYS) {
    const raw = env[key.name];
    if (raw === undefined || raw === '') continue;
    const value = key.list
      ? raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : key.number && /^\d+$/.test(raw)
        ? Number(raw)
        : raw;
    out.push({ path: key.path, value, source: `${key.name} (environment)` });
  }
  return out;
}

export interface ConfigFlags {
  serverUrl?: string | undefined;
  fallbackUrls?: readonly string[] | undefined;
  agentId?: string | undefined;
  name?: string | undefined;
  token?: string | undefined;
  tokenFile?: string | undefined;
  logLevel?: string | undefined;
  logFile?: string | false | undefined;
  panelPort?: string | undefined;
  panelHost?: string | undefined;
  /** false: --no-panel */
  panel?: boolean | undefined;
  panelAllowRemote?: boolean | undefined;
  /** `--set connection.heartbeat_interval=0.05`: any key, the value read as YAML. */
  set?: readonly string[] | undefined;
}

/** Overrides from command-line flags; they win over the environment, which wins over the file. */
export function flagOverrides(flags: ConfigFlags): ConfigOverride[] {
  const out: ConfigOverride[] = [];
  const add = (path: string[], value: unknown, source: string) => {
    if (value !== undefined) out.push({ path, value, source });
  };
  add(['server', 'url'], flags.serverUrl, '--server-url');
  if (flags.fallbackUrls && flags.fallbackUrls.length > 0)
    add(['server', 'fallback_urls'], [...flags.fallbackUrls], '--fallback-url');
  add(['agent', 'id'], flags.agentId, '--agent-id');
  add(['agent', 'name'], flags.name, '--name');
  add(['agent', 'token'], flags.token, '--token');
  add(['agent', 'token_file'], flags.tokenFile, '--token-file');
  add(['log', 'level'], flags.logLevel, '--log-level');
  add(['log', 'file'], flags.logFile, flags.logFile === false ? '--no-log-file' : '--log-file');
  add(
    ['panel', 'port'],
    flags.panelPort === undefined
      ? undefined
      : /^\d+$/.test(flags.panelPort)
        ? Number(flags.panelPort)
        : flags.panelPort,
    '--panel-port',
  );
  add(['panel', 'host'], flags.panelHost, '--panel-host');
  add(['panel', 'enabled'], flags.panel === false ? false : undefined, '--no-panel');
  add(['panel', 'allow_remote'], flags.panelAllowRemote ? true : undefined, '--panel-allow-remote');
  for (const assignment of flags.set ?? []) {
    const eq = assignment.indexOf('=');
    const key = eq > 0 ? assignment.slice(0, eq).trim() : '';
    if (!key)
      throw new ConfigError([
        `--set ${assignment}: expected key.path=value, e.g. --set connection.heartbeat_interval=5`,
      ]);
    let value: unknown;
    try {
      value = YAML.parse(assignment.slice(eq + 1));
    } catch (error) {
      throw new ConfigError([`--set ${assignment}: the value is not valid YAML (${(error as Error).message})`]);
    }
    out.push({ path: key.split('.'), value, source: `--set ${key}` });
  }
  return out;
}

export interface LoadConfigOptions {
  /** The YAML file; absent → configuration from overrides alone. */
  file?: string | undefined;
  /** Where the file's name came from ("--config", "FARMLINK_CONFIG (environment)"), for errors about the file itself. */
  fileSource?: string | undefined;
  /** The file's text as it would be written: validated in place of the file (saving checks before writing). */
  text?: string | undefined;
  overrides?: readonly ConfigOverride[];
}

export interface LoadedConfig {
  config: AgentConfig;
  file: string | undefined;
}

/**
 * Reads, merges and validates the agent configuration. Every problem is reported at once, each
 * naming where the value came from (the file, an environment variable or a flag), the key path
 * and what was expected.
 */
export function loadAgentConfig(options: LoadConfigOptions): LoadedConfig {
  const file = options.file;
  const raw: Record<string, unknown> =
    options.text !== undefined
      ? parseYaml(options.text, file ?? 'configuration')
      : file
        ? readYamlFile(file, options.fileSource)
        : {};
  const overrides = options.overrides ?? [];
  for (const override of overrides) setPath(raw, override.path, override.value);

  const parsed = AgentConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.flatMap((issue) => describeIssue(issue, file, overrides)));
  }
  return { config: withTokenFromFile(parsed.data, file, overrides), file };
}

/**
 * agent.token_file → agent.token: the file's content, trimmed, checked like a token in the
 * config. A relative path is relative to the config file when the file names it (like log.file),
 * else to the working directory (an environment variable or a flag).
 */
function withTokenFromFile(
  config: AgentConfig,
  file: string | undefined,
  overrides: readonly ConfigOverride[],
): AgentConfig {
  const tokenFile = config.agent.token_file;
  if (tokenFile === undefined) return config;
  const source = sourceOf(['agent', 'token_file'], file, overrides);
  if (config.agent.token !== undefined) {
    const tokenSource = sourceOf(['agent', 'token'], file, overrides);
    throw new ConfigError([
      `${source}: agent.token_file: expected either agent.token_file or agent.token, but ` +
        `${tokenSource === source ? 'both are set there' : `agent.token is also set (${tokenSource})`}; keep one`,
    ]);
  }
  const baseDir = source === file && file ? path.dirname(path.resolve(file)) : process.cwd();
  const tokenPath = path.resolve(baseDir, tokenFile);
  let text: string;
  try {
    text = fs.readFileSync(tokenPath, 'utf8');
  } catch (error) {
    throw new ConfigError([`${source}: agent.token_file: cannot read ${tokenPath}: ${readProblem(error)}`]);
  }
  const token = text.trim();
  const problem = agentTokenProblem(token);
  if (problem) throw new ConfigError([`${source}: agent.token_file: ${tokenPath}: ${problem}`]);
  return { ...config, agent: { ...config.agent, token } };
}

/** Validates a config object without a file (the panel's Settings form uses this). */
export function validateAgentConfig(
  raw: unknown,
): { ok: true; config: AgentConfig } | { ok: false; problems: Array<{ path: string; message: string }> } {
  const parsed = AgentConfigSchema.safeParse(raw);
  if (parsed.success) return { ok: true, config: parsed.data };
  return {
    ok: false,
    problems: parsed.error.issues.flatMap((issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ path: [...issue.path, key].join('.'), message: 'unknown key' }))
        : [{ path: issue.path.join('.'), message: issue.message }],
    ),
  };
}

function readYamlFile(file: string, fileSource: string | undefined): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([
      `${file}${fileSource ? ` (from ${fileSource})` : ''}: cannot read the config file: ${readProblem(error)}`,
    ]);
  }
  return parseYaml(text, file);
}

function parseYaml(text: string, file: string): Record<string, unknown> {
  // prettyErrors fills in linePos; the message's own "at line …" tail is dropped since we prefix it.
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const message = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
        return `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${message}`;
      }),
    );
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError([
      `${file}: expected a YAML mapping with sections such as "server:" and "connection:", found ${Array.isArray(value) ? 'a list' : typeof value}`,
    ]);
  }
  return value as Record<string, unknown>;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1];
  if (last !== undefined) node[last] = value;
}

const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': Object.keys(AgentConfigSchema.shape),
  server: Object.keys(ServerSectionSchema.shape),
  connection: Object.keys(ConnectionSectionSchema.shape),
  agent: Object.keys(AgentSectionSchema.shape),
  log: Object.keys(LogSectionSchema.shape),
  adb: Object.keys(AdbSectionSchema.shape),
  panel: Object.keys(PanelSectionSchema.shape),
};

function describeIssue(
  issue: z.core.$ZodIssue,
  file: string | undefined,
  overrides: readonly ConfigOverride[],
): string[] {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const known = KNOWN_KEYS[path.join('.')] ?? [];
    return issue.keys.map((key) => {
      const full = [...path, key];
      const guess = closest(key, known);
      const hint = guess ? ` — did you mean "${guess}"?` : known.length ? ` (known keys: ${known.join(', ')})` : '';
      return `${sourceOf(full, file, overrides)}: ${full.join('.')}: unknown key${hint}`;
    });
  }
  const where = path.length > 0 ? path.join('.') : '(top level)';
  return [`${sourceOf(path, file, overrides)}: ${where}: ${issue.message}`];
}

function sourceOf(path: readonly string[], file: string | undefined, overrides: readonly ConfigOverride[]): string {
  // The last override wins, as it did when merging.
  for (const o of [...overrides].reverse()) {
    if (o.path.length <= path.length && o.path.every((k, j) => k === path[j])) return o.source;
  }
  return file ?? 'configuration';
}

/** The known key nearest to a misspelt one, if it is near enough to be a typo. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  // One row of the Levenshtein table at a time: `above` is the previous row, `left` the cell just computed.
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  let distance = b.length;
  for (let i = 1; i <= a.length; i += 1) {
    let diagonal = i - 1;
    let left = i;
    const next = [left];
    for (const [j, above] of row.slice(1).entries()) {
      left = Math.min(above + 1, left + 1, diagonal + (a[i - 1] === b[j] ? 0 : 1));
      next.push(left);
      diagonal = above;
    }
    row = next;
    distance = left;
  }
  return distance;
}

/** Why a file could not be read, in words a config error can carry. */
function readProblem(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT'
    ? 'file not found'
    : code === 'EACCES'
      ? 'permission denied'
      : code === 'EISDIR'
        ? 'it is a directory'
        : (error as Error).message;
}
