import { describe, expect, it } from 'vitest';
import { CloseCode, closeCodeName } from './close-codes.js';
import { AgentMessageSchema, HubMessageSchema } from './messages.js';
import { isServerUrl, redactUrl, toAgentEndpoint } from './server-url.js';

describe('server URLs', () => {
  it('maps http(s) base URLs onto the agent endpoint and keeps ws(s) URLs as written', () => {
    expect(toAgentEndpoint('https://adb.example.com')).toBe('wss://adb.example.com/api/v1/pc/ws');
    expect(toAgentEndpoint('http://192.168.1.100:8000')).toBe('ws://192.168.1.100:8000/api/v1/pc/ws');
    expect(toAgentEndpoint('https://example.com/farm/')).toBe('wss://example.com/farm/api/v1/pc/ws');
    expect(toAgentEndpoint('wss://hub.example.com/custom/path?x=1')).toBe('wss://hub.example.com/custom/path?x=1');
  });

  it('accepts only http, https, ws and wss URLs with a host', () => {
    expect(['https://a.b', 'ws://127.0.0.1:1', 'wss://h/x'].every(isServerUrl)).toBe(true);
    expect(['ftp://a.b', 'a.b', '', 'http://'].some(isServerUrl)).toBe(false);
  });

  it('redacts credentials and queries for logs', () => {
    expect(redactUrl('wss://user:pw@h.example/x?token=abc')).toBe('wss://h.example/x?…');
    expect(redactUrl('redis://user:secret@redis.internal:6379/0')).toBe('redis://redis.internal:6379/0');
    expect(redactUrl('redis://user:secret@h:99999')).toBe('(unparseable URL)');
  });
});

describe('wire messages', () => {
  it('accepts a heartbeat without seq, as older agents send it', () => {
    expect(
      AgentMessageSchema.safeParse({ type: 'heartbeat', cpu_usage: 45, ram_usage: 60, timestamp: 1704300000000 })
        .success,
    ).toBe(true);
  });

  it('ignores unknown fields so either side can add optional ones', () => {
    const parsed = HubMessageSchema.parse({
      type: 'heartbeat_ack',
      seq: 1,
      timestamp: 1,
      server_time: 2,
      future_field: true,
    });
    expect(parsed).toEqual({ type: 'heartbeat_ack', seq: 1, timestamp: 1, server_time: 2 });
  });

  it('rejects out-of-range usage and malformed results', () => {
    expect(
      AgentMessageSchema.safeParse({ type: 'heartbeat', cpu_usage: 145, ram_usage: 60, timestamp: 1 }).success,
    ).toBe(false);
    expect(AgentMessageSchema.safeParse({ type: 'result', id: 'x', ok: false }).success).toBe(false);
    expect(
      AgentMessageSchema.safeParse({ type: 'result', id: 'x', ok: false, error: { code: 'E', message: 'm' } }).success,
    ).toBe(true);
  });

  it('names close codes for logs', () => {
    expect(closeCodeName(CloseCode.REPLACED)).toBe('REPLACED');
    expect(closeCodeName(4999)).toBe('CODE_4999');
  });
});
