import { describe, expect, it } from 'vitest';
import { SettingsSchema, type Settings } from '../../protocol/agent-host.js';
import { ConnectionSectionSchema } from '../../protocol/config.js';
import {
  CONNECTION_KEYS,
  draftFromSettings,
  draftToInput,
  moveItem,
  overriddenBy,
  sameSettings,
  validateDraft,
  valueAtPath,
} from './settings-draft.js';

const values: Settings = SettingsSchema.parse({
  server: { url: 'https://hub.example.com', fallback_urls: ['https://b1.example.com', 'https://b2.example.com'] },
  connection: {},
  agent: { name: 'Rack 3' },
});

describe('settings draft', () => {
  it('edits every connection key the config file has', () => {
    expect([...CONNECTION_KEYS].sort()).toEqual(Object.keys(ConnectionSectionSchema.shape).sort());
  });

  it('round-trips the agent values unchanged, without a token', () => {
    const input = draftToInput(draftFromSettings(values));
    expect(SettingsSchema.parse(input)).toEqual(values);
    expect(input.agent).toEqual({ name: 'Rack 3' });
    expect(validateDraft(draftFromSettings(values)).size).toBe(0);
  });

  it('sends a typed token, and no name when the name is cleared (the default)', () => {
    const draft = { ...draftFromSettings(values), name: '  ', token: ' eyJ.abc ' };
    expect(draftToInput(draft).agent).toEqual({ token: 'eyJ.abc' });
  });

  it('reports the schema’s own messages at the field paths, first message per path', () => {
    const draft = draftFromSettings(values);
    draft.url = 'adb.example.com';
    draft.fallbacks[1]!.url = '';
    draft.connection.dead_timeout = '0.5';
    draft.connection.heartbeat_interval = '30';
    const problems = validateDraft(draft);
    expect(problems.get('server.url')).toMatch(/http:\/\/, https:\/\/, ws:\/\/ or wss:\/\//);
    expect(problems.get('server.fallback_urls.1')).toBeDefined();
    expect(problems.get('server.fallback_urls.0')).toBeUndefined();
    expect(problems.get('connection.dead_timeout')).toMatch(/more than heartbeat_interval/);
  });

  it('lets the schema reject text that is not a number, with its message', () => {
    const draft = draftFromSettings(values);
    draft.connection.ping_timeout = '2 s';
    expect(validateDraft(draft).get('connection.ping_timeout')).toMatch(/number of seconds/);
    draft.connection.ping_timeout = '';
    expect(validateDraft(draft).get('connection.ping_timeout')).toMatch(/number of seconds/);
    draft.connection.ping_timeout = '.5';
    expect(validateDraft(draft).has('connection.ping_timeout')).toBe(false);
  });

  it('compares what would be saved, not the fallbacks’ ids or surrounding spaces', () => {
    const a = draftFromSettings(values);
    const b = draftFromSettings(values);
    expect(a.fallbacks[0]!.id).not.toBe(b.fallbacks[0]!.id);
    expect(sameSettings(a, b)).toBe(true);
    expect(sameSettings(a, { ...b, url: ' https://hub.example.com ' })).toBe(true);
    expect(sameSettings(a, { ...b, fallbacks: moveItem(b.fallbacks, 0, 1) })).toBe(false);
  });

  it('keeps fallback ids by position when refreshed from new values', () => {
    const a = draftFromSettings(values);
    const b = draftFromSettings(values, a);
    expect(b.fallbacks.map((f) => f.id)).toEqual(a.fallbacks.map((f) => f.id));
  });

  it('moves items within bounds only', () => {
    expect(moveItem(['a', 'b', 'c'], 0, 2)).toEqual(['b', 'c', 'a']);
    expect(moveItem(['a', 'b', 'c'], 2, 1)).toEqual(['a', 'c', 'b']);
    expect(moveItem(['a', 'b'], 0, -1)).toEqual(['a', 'b']);
  });

  it('finds values by dotted path and overrides by path prefix', () => {
    const input = draftToInput(draftFromSettings(values));
    expect(valueAtPath(input, 'server.fallback_urls.1')).toBe('https://b2.example.com');
    expect(valueAtPath(input, 'server.nope.x')).toBeUndefined();
    const overridden = [{ path: 'server.fallback_urls', source: '--fallback-url' }];
    expect(overriddenBy('server.fallback_urls', overridden)).toBe('--fallback-url');
    expect(overriddenBy('server.fallback_urls.0', overridden)).toBe('--fallback-url');
    expect(overriddenBy('server.url', overridden)).toBeNull();
  });
});
