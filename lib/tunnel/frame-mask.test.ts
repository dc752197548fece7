import { describe, expect, it } from 'vitest';
import { unmaskedFramesAllowed } from './frame-mask.js';

describe('unmaskedFramesAllowed', () => {
  it('allows a zero key inside TLS and on loopback only', () => {
    for (const url of [
      'wss://hub.farm.example/api/v1/tunnel',
      'wss://10.0.0.5:8443/api/v1/tunnel',
      'ws://127.0.0.1:8080/api/v1/tunnel',
      'ws://127.3.2.1/api/v1/tunnel',
      'ws://localhost:8080/api/v1/tunnel',
      'ws://[::1]:8080/api/v1/tunnel',
    ]) {
      expect(unmaskedFramesAllowed(url), url).toBe(true);
    }
    for (const url of [
      'ws://hub.farm.example/api/v1/tunnel',
      'ws://10.0.0.5:8080/api/v1/tunnel',
      'ws://127.0.0.1.nip.io/api/v1/tunnel',
      'ws://[::ffff:10.0.0.5]/api/v1/tunnel',
      'not a url',
    ]) {
      expect(unmaskedFramesAllowed(url), url).toBe(false);
    }
  });
});
